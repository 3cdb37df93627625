import Foundation
import OrderlyDomain
import OrderlyEventStore

/// An idempotent MongoDB write: `filter` carries a guard (a version or revision), so a write that
/// was already made matches nothing and the upsert fails with a duplicate key: "already applied".
public struct ProjectionWrite: Sendable, Equatable {
    public var filter: Document
    public var update: Document
}

/// An order as read-side clients see it (`GET /orders/{id}`): its status through the whole saga,
/// lines, totals, payment and a timeline of every event about it.
public struct OrderView: Codable, Sendable, Equatable {
    public struct TimelineEntry: Codable, Sendable, Equatable {
        public var type: String
        public var at: String
        public var position: Int64
    }

    public struct PaymentView: Codable, Sendable, Equatable {
        /// REQUESTED, CHARGED, DECLINED, REFUNDED or VOIDED.
        public var status: String
        public var amount: Int64?
        public var reason: String?
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
    public var cancellationReason: String?
    public var payment: PaymentView?
    /// Outcomes the customer was notified of.
    public var notified: [String]?
    /// The order stream's version and the highest log position this view reflects.
    public var version: Int64
    public var position: Int64
    /// The last version applied from each of the order's streams (order, reservation, payment,
    /// notification): what makes every update idempotent.
    public var applied: [String: Int64]
    /// Bumped on every write; a write expects the revision it read (optimistic concurrency).
    public var revision: Int64
    /// When the projector last changed `status` (its own clock): when a status became visible.
    public var statusChangedAt: String?
}

/// The `orders` read model. Pure: folds one event into the order's view.
public enum OrdersProjection {
    public static let name = "orders"
    public static let collection = "orders"

    /// The order an event is about, or nil for events of other aggregates (stock).
    public static func orderID(of event: DomainEvent) -> String? {
        switch event {
        case .orderPlaced(let e): e.orderId
        case .orderCompleted(let e): e.orderId
        case .orderCancelled(let e): e.orderId
        case .stockReserved(let e): e.orderId
        case .stockReservationFailed(let e): e.orderId
        case .stockReleased(let e): e.orderId
        case .paymentRequested(let e): e.orderId
        case .paymentProcessed(let e): e.orderId
        case .paymentFailed(let e): e.orderId
        case .paymentRefunded(let e): e.orderId
        case .paymentVoided(let e): e.orderId
        case .notificationSent(let e): e.orderId
        case .stockRestocked, .stockItemReserved, .stockItemReleased, .stockItemCommitted: nil
        }
    }

    /// The view after `event`, or nil when the event changes nothing (already applied, or about an
    /// order whose placement has not been seen).
    public static func apply(_ event: DomainEvent, recorded: RecordedEvent, to current: OrderView?, now: Date) -> OrderView? {
        let kind = String(recorded.streamID.prefix { $0 != "-" })
        let at = format(recorded.recordedAt)
        var view: OrderView
        if case .orderPlaced(let placed) = event {
            guard current == nil else { return nil }
            view = OrderView(
                orderId: placed.orderId, customerId: placed.customerId, status: OrderStatus.placed.rawValue, currency: placed.currency,
                lines: placed.lines, total: placed.total, placedAt: at, updatedAt: at, timeline: [], version: 0, position: 0,
                applied: [:], revision: 0, statusChangedAt: format(now))
        } else {
            guard let current else { return nil }
            view = current
        }
        if let last = view.applied[kind], recorded.streamVersion <= last { return nil }
        let before = view.status
        switch event {
        case .stockReserved:
            if view.status == OrderStatus.placed.rawValue { view.status = OrderStatus.stockReserved.rawValue }
        case .paymentRequested:
            view.payment = OrderView.PaymentView(status: "REQUESTED")
        case .paymentProcessed(let paid):
            view.payment = OrderView.PaymentView(status: "CHARGED", amount: paid.amount)
            if [OrderStatus.placed.rawValue, OrderStatus.stockReserved.rawValue].contains(view.status) { view.status = OrderStatus.paid.rawValue }
        case .paymentFailed(let failed):
            view.payment = OrderView.PaymentView(status: "DECLINED", amount: failed.amount, reason: failed.reason)
        case .paymentRefunded(let refunded):
            view.payment = OrderView.PaymentView(status: "REFUNDED", amount: refunded.amount)
        case .paymentVoided:
            view.payment = OrderView.PaymentView(status: "VOIDED")
        case .orderCompleted(let completed):
            view.status = OrderStatus.completed.rawValue
            view.total = completed.total
        case .orderCancelled(let cancelled):
            view.status = OrderStatus.cancelled.rawValue
            view.cancellationReason = cancelled.reason.rawValue
        case .notificationSent(let sent):
            view.notified = (view.notified ?? []) + [sent.outcome.rawValue]
        default:
            break
        }
        if view.status != before { view.statusChangedAt = format(now) }
        if kind == "order" { view.version = recorded.streamVersion }
        view.applied[kind] = recorded.streamVersion
        view.position = max(view.position, recorded.position)
        view.updatedAt = at
        view.timeline.append(OrderView.TimelineEntry(type: recorded.type, at: at, position: recorded.position))
        view.revision += 1
        return view
    }

    /// Writes `view` if the stored document is still at `revision` (0: there is none yet).
    public static func write(_ view: OrderView, expecting revision: Int64) throws -> ProjectionWrite {
        guard case .object(var fields) = try Document.from(view) else { throw MongoError(message: "order view is not an object") }
        fields.removeAll { $0.0 == "_id" }
        return ProjectionWrite(filter: ["_id": .string(view.orderId), "revision": .int(revision)], update: ["$set": .object(fields)])
    }

    static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
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
