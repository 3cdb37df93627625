import Foundation
import OrderlyDomain
import OrderlyEventStore

/// A SKU's stock as read-side clients see it (`GET /inventory/{sku}`).
public struct InventoryView: Codable, Sendable, Equatable {
    public var sku: String
    public var onHand: Int64
    public var reserved: Int64
    public var available: Int64
    /// The catalog price order lines must match, in minor units.
    public var unitPrice: Int64?
    /// The stock stream's version this view reflects.
    public var version: Int64
}

/// The `inventory` read model: one document per SKU. A SKU's stock events travel under the SKU's
/// own Kafka key, so they arrive in stream order; each write expects the previous version
/// (`{_id, version: v - 1}`), so a repeat matches nothing and is reported as already applied.
public enum InventoryProjection {
    public static let name = "inventory"
    public static let collection = "inventory"
    public static let handledTypes: Set<String> = [
        StockRestocked.typeName, StockItemReserved.typeName, StockItemReleased.typeName, StockItemCommitted.typeName,
    ]

    /// The write that applies `event` (the stream's version `version`), or nil for other events.
    public static func write(for event: DomainEvent, version: Int64) -> ProjectionWrite? {
        let sku: String
        var increments: [(String, Document)] = []
        var sets: [(String, Document)] = [("version", .int(version))]
        switch event {
        case .stockRestocked(let restocked):
            sku = restocked.sku
            increments = [("onHand", .int(Int64(restocked.quantity))), ("available", .int(Int64(restocked.quantity)))]
            sets.append(("unitPrice", .int(restocked.unitPrice)))
        case .stockItemReserved(let reserved):
            sku = reserved.sku
            increments = [("reserved", .int(Int64(reserved.quantity))), ("available", .int(-Int64(reserved.quantity)))]
        case .stockItemReleased(let released):
            sku = released.sku
            increments = [("reserved", .int(-Int64(released.quantity))), ("available", .int(Int64(released.quantity)))]
        case .stockItemCommitted(let committed):
            sku = committed.sku
            increments = [("reserved", .int(-Int64(committed.quantity))), ("onHand", .int(-Int64(committed.quantity)))]
        default:
            return nil
        }
        sets.append(("sku", .string(sku)))
        let zero: [(String, Document)] = ["onHand", "reserved", "available"].filter { field in !increments.contains { $0.0 == field } }
            .map { ($0, .int(0)) }
        return ProjectionWrite(
            filter: ["_id": .string(sku), "version": .int(version - 1)],
            update: ["$set": .object(sets), "$inc": .object(increments), "$setOnInsert": .object(zero)])
    }
}

/// Queries over the `inventory` collection.
public protocol InventoryReadModel: Sendable {
    func stock(sku: String) async throws -> InventoryView?
}

public struct MongoInventoryReadModel: InventoryReadModel {
    let collection: MongoCollection

    public init(client: MongoClient) {
        self.collection = client.collection(InventoryProjection.collection)
    }

    public func stock(sku: String) async throws -> InventoryView? {
        try await self.collection.findOne(["_id": .string(sku)], as: InventoryView.self)
    }
}
