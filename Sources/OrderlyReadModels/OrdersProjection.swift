import Foundation
import OrderlyDomain
import OrderlyEventStore

/// An idempotent MongoDB write: `filter` carries a version guard (`version < n`), so replaying the
/// same event matches nothing and the upsert fails with a duplicate key, which means "already applied".
public struct ProjectionWrite: Sendable, Equatable {
    public var filter: Document
    public var update: Document
}

/// The `orders` read model: one document per order with status, lines, totals and a timeline.
/// Pure: it maps an event to the write that applies it.
public enum OrdersProjection {
    public static let name = "orders"
    public static let collection = "orders"

    public static func write(for event: RecordedEvent) throws -> ProjectionWrite? {
        let domainEvent: OrderEvent
        do {
            domainEvent = try EventCodec.decode(EncodedEvent(type: event.type, schemaVersion: event.schemaVersion, data: event.data))
        } catch .unknownType {
            return nil
        }
        let at = Document.string(event.recordedAt.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        let timelineEntry: Document = ["type": .string(event.type), "at": at, "position": .int(event.position)]
        let bookkeeping: [(String, Document)] = [
            ("version", .int(event.streamVersion)), ("position", .int(event.position)), ("updatedAt", at),
        ]
        switch domainEvent {
        case .placed(let placed):
            var fields: [(String, Document)] = [
                ("orderId", .string(placed.orderId)),
                ("customerId", .string(placed.customerId)),
                ("status", .string(OrderStatus.placed.rawValue)),
                ("currency", .string(placed.currency)),
                ("lines", try Document.from(placed.lines)),
                ("total", .int(placed.total)),
                ("placedAt", at),
            ]
            fields += bookkeeping
            return ProjectionWrite(
                filter: ["_id": .string(placed.orderId), "version": ["$lt": .int(event.streamVersion)]],
                update: ["$set": .object(fields), "$push": ["timeline": timelineEntry]]
            )
        }
    }
}

/// An order as read-side clients see it (`GET /orders/{id}`).
public struct OrderView: Codable, Sendable, Equatable {
    public struct TimelineEntry: Codable, Sendable, Equatable {
        public var type: String
        public var at: String
        public var position: Int64
    }

    public var orderId: String
    public var customerId: String
    public var status: String
    public var currency: String
    public var lines: [OrderLine]
    public var total: Int64
    public var placedAt: String
    public var updatedAt: String
    public var timeline: [TimelineEntry]
    /// The order stream's version and the log position this view reflects.
    public var version: Int64
    public var position: Int64
}

/// Queries over the `orders` collection.
public protocol OrderReadModel: Sendable {
    func order(id: String) async throws -> OrderView?
}

public struct MongoOrderReadModel: OrderReadModel {
    let collection: MongoCollection

    public init(client: MongoClient) {
        self.collection = client.collection(OrdersProjection.collection)
    }

    public func order(id: String) async throws -> OrderView? {
        try await self.collection.findOne(["_id": .string(id)], as: OrderView.self)
    }
}
