import Foundation
import OrderlyDomain
import OrderlyEventStore

/// An idempotent MongoDB write of a whole document, as the JSON libbson reads: `filter` carries a
/// guard (a revision), so a write that was already made matches nothing and the upsert fails with a
/// duplicate key. The document replaces the stored one (it is the whole view; replacing costs the
/// document server less than `$set`).
public struct ProjectionWrite: Sendable, Equatable {
    public var filter: Data
    public var replacement: Data
}

/// An order as read-side clients see it (`GET /orders/{id}`): its status through the whole saga,
/// lines, totals, payment and a timeline of every event about it.
public struct OrderView: ProjectedView {
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

    /// Where the paid order's parcel is. COMPLETED keeps meaning paid; this tells the rest.
    public struct FulfilmentView: Codable, Sendable, Equatable {
        /// REQUESTED, SKIPPED, DISPATCHED, DELIVERED or FAILED.
        public var status: String
        public var carrier: String?
        public var trackingNumber: String?
        /// Why it was skipped or failed.
        public var reason: String?
        public var requestedAt: String?
        public var dispatchedAt: String?
        public var deliveredAt: String?
        public var failedAt: String?
        /// When the shipment last changed (the latest of the times above, or when it was skipped).
        public var updatedAt: String?
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
    /// The shipment, once the order is paid; absent before.
    public var fulfilment: FulfilmentView?
    /// The order stream's version and the highest log position this view reflects.
    public var version: Int64
    public var position: Int64
    /// The last version applied from each of the order's streams (order, reservation, payment,
    /// notification): what makes every update idempotent. Absent in documents written before the
    /// saga existed, which held the order stream only (`version`).
    public var applied: [String: Int64]?
    /// Bumped on every write; a write expects the revision it read (optimistic concurrency). Absent
    /// in documents written before revisions existed.
    public var revision: Int64?
    /// When the projector last changed `status` (its own clock): when a status became visible.
    public var statusChangedAt: String?
    /// The same for `fulfilment.status`: when a step of the shipment became visible.
    public var fulfilmentChangedAt: String?
    /// `k<placedAt>|<orderId>`: the one key pages are sorted and cut by (newest first, ties by id).
    /// The letter in front keeps the document server here comparing it as text (NX-27017 compares
    /// strings that start with a digit wrongly).
    public var pageKey: String?
    /// `placedAt` in milliseconds since 1970, for time-range filters.
    public var placedAtMs: Int64?
    /// While the parcel is on its way (fulfilment DISPATCHED): when it left, in milliseconds since
    /// 1970; absent otherwise. The overdue-parcel count filters on this one indexed number.
    public var inTransitSinceMs: Int64?
    /// The customer's name, email and shipping address as the OrderPlaced event holds them: sealed.
    /// Stored so; the api opens it when it serves the order and never serves this field itself.
    public var personalData: SealedPersonalData?
    /// Filled by the api from `personalData` when it serves the order; never stored.
    public var customer: CustomerDetails?
    public var shippingAddress: ShippingAddress?
    /// True when the order had personal data and the customer has since been forgotten (the fields
    /// above are then absent); absent otherwise. Never stored.
    public var personalDataErased: Bool?

    public var documentID: String { self.orderId }
}

/// The `orders` read model. Pure: folds one event into the order's view.
public enum OrdersProjection: ReadModelProjection {
    public static let name = "orders"
    public static let unverifiedFields: Set<String> = ["revision", "statusChangedAt", "fulfilmentChangedAt"]
    /// Clients poll it for an order's status after each command.
    public static let writtenFirst = true

    /// The event types this read model applies (its definition in projections/orders.json lists the same).
    public static let handledTypes: Set<String> = [
        OrderPlaced.typeName, OrderCompleted.typeName, OrderCancelled.typeName, StockReserved.typeName, StockReservationFailed.typeName,
        StockReleased.typeName, PaymentRequested.typeName, PaymentProcessed.typeName, PaymentFailed.typeName, PaymentRefunded.typeName,
        PaymentVoided.typeName, NotificationSent.typeName, ShipmentRequested.typeName, ShipmentSkipped.typeName, ShipmentDispatched.typeName,
        ShipmentDelivered.typeName, ShipmentFailed.typeName,
    ]

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
        case .shipmentRequested(let e): e.orderId
        case .shipmentSkipped(let e): e.orderId
        case .shipmentDispatched(let e): e.orderId
        case .shipmentDelivered(let e): e.orderId
        case .shipmentFailed(let e): e.orderId
        case .stockReturned(let e): e.orderId
        case .stockRestocked, .stockItemReserved, .stockItemReleased, .stockItemCommitted, .stockItemReturned: nil
        }
    }

    public static func documentIDs(of event: DomainEvent, recorded: RecordedEvent) -> [String] {
        self.orderID(of: event).map { [$0] } ?? []
    }

    public static func startsDocument(_ event: DomainEvent, recorded: RecordedEvent) -> Bool {
        if case .orderPlaced = event { true } else { false }
    }

    /// The view after `event`, or nil when the event changes nothing (already applied: each of the
    /// order's streams has its last applied version in `applied`; or about an order whose placement
    /// has not been seen).
    public static func apply(_ event: DomainEvent, recorded: RecordedEvent, source: String, to current: OrderView?, id: String, now: Date)
        -> OrderView?
    {
        let kind = String(recorded.streamID.prefix { $0 != "-" })
        let at = UTCTime.iso8601(recorded.recordedAt)
        var view: OrderView
        if case .orderPlaced(let placed) = event {
            guard current == nil else { return nil }
            view = OrderView(
                orderId: placed.orderId, customerId: placed.customerId, status: OrderStatus.placed.rawValue, currency: placed.currency,
                lines: placed.lines, total: placed.total, placedAt: at, updatedAt: at, timeline: [], version: 0, position: 0,
                applied: [:], revision: 0, statusChangedAt: UTCTime.iso8601(now), personalData: placed.personalData)
        } else {
            guard let current else { return nil }
            view = current
        }
        var applied = view.applied ?? ["order": view.version]
        if let last = applied[kind], recorded.streamVersion <= last { return nil }
        let before = view.status
        let fulfilmentBefore = view.fulfilment?.status
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
            // A withheld one (the customer was forgotten) told no one.
            if sent.withheld == nil { view.notified = (view.notified ?? []) + [sent.outcome.rawValue] }
        case .shipmentRequested(let requested):
            let at = UTCTime.iso8601(requested.requestedAt)
            view.fulfilment = OrderView.FulfilmentView(status: Shipment.Status.requested.rawValue, requestedAt: at, updatedAt: at)
        case .shipmentSkipped(let skipped):
            view.fulfilment = OrderView.FulfilmentView(status: Shipment.Status.skipped.rawValue, reason: skipped.reason, updatedAt: at)
        case .shipmentDispatched(let dispatched):
            view.advanceFulfilment(to: .dispatched, at: dispatched.dispatchedAt) {
                $0.carrier = dispatched.carrier
                $0.trackingNumber = dispatched.trackingNumber
                $0.dispatchedAt = $1
            }
        case .shipmentDelivered(let delivered):
            view.advanceFulfilment(to: .delivered, at: delivered.deliveredAt) { $0.deliveredAt = $1 }
        case .shipmentFailed(let failed):
            view.advanceFulfilment(to: .failed, at: failed.failedAt) {
                $0.reason = failed.reason
                $0.failedAt = $1
            }
        default:
            break
        }
        if view.status != before { view.statusChangedAt = UTCTime.iso8601(now) }
        if view.fulfilment?.status != fulfilmentBefore { view.fulfilmentChangedAt = UTCTime.iso8601(now) }
        if kind == "order" { view.version = recorded.streamVersion }
        applied[kind] = recorded.streamVersion
        view.applied = applied
        view.position = max(view.position, recorded.position)
        view.updatedAt = at
        view.timeline.append(OrderView.TimelineEntry(type: recorded.type, at: at, position: recorded.position))
        // Set on the first write (and on the next change of documents from before they existed).
        if view.pageKey == nil { view.pageKey = "k\(view.placedAt)|\(view.orderId)" }
        if case .orderPlaced = event {
            view.placedAtMs = UTCTime.milliseconds(recorded.recordedAt)
        } else if view.placedAtMs == nil, let placed = UTCTime.parse(view.placedAt) {
            view.placedAtMs = UTCTime.milliseconds(placed)
        }
        view.inTransitSinceMs = view.fulfilment.flatMap { fulfilment in
            guard fulfilment.status == Shipment.Status.dispatched.rawValue else { return nil }
            return fulfilment.dispatchedAt.flatMap(UTCTime.parse).map(UTCTime.milliseconds)
        }
        return view
    }

}

/// A page request over the orders: filters, a page size and where the previous page ended.
public struct OrderQuery: Sendable, Equatable {
    public var customerId: String?
    public var status: String?
    /// Placed at or after this time (milliseconds since 1970).
    public var placedFrom: Int64?
    /// Placed before this time (milliseconds since 1970).
    public var placedBefore: Int64?
    public var limit: Int
    public var after: OrderCursor?

    public init(
        customerId: String? = nil, status: String? = nil, placedFrom: Int64? = nil, placedBefore: Int64? = nil, limit: Int = 50,
        after: OrderCursor? = nil
    ) {
        self.customerId = customerId
        self.status = status
        self.placedFrom = placedFrom
        self.placedBefore = placedBefore
        self.limit = limit
        self.after = after
    }
}

/// Where a page ended: orders come newest first by `pageKey` (placedAt, then order id), so the next
/// page starts strictly after this key. Orders placed meanwhile are newer and never shift later pages:
/// paging neither repeats nor skips.
public struct OrderCursor: Sendable, Equatable {
    public var pageKey: String

    public init(pageKey: String) {
        self.pageKey = pageKey
    }

    /// Opaque to clients: base64url of the key.
    public var token: String {
        Data(self.pageKey.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public init?(token: String) {
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard token.count <= 256, let data = Data(base64Encoded: base64), let key = String(data: data, encoding: .utf8), key.contains("|")
        else { return nil }
        self.pageKey = key
    }
}

public struct OrderPage: Codable, Sendable, Equatable {
    public var items: [OrderView]
    /// Pass as `cursor` for the next page; absent on the last page.
    public var nextCursor: String?

    /// The page of `limit` from up to `limit + 1` orders fetched newest first: one more than the
    /// page says there is a next one.
    init(fetched: [OrderView], limit: Int) {
        var items = fetched
        var next: String?
        if items.count > limit {
            items.removeLast(items.count - limit)
            next = items.last.map { OrderCursor(pageKey: $0.pageKey ?? "k\($0.placedAt)|\($0.orderId)").token }
        }
        self.items = items
        self.nextCursor = next
    }
}

/// Queries over the `orders` collection.
public protocol OrderReadModel: Sendable {
    func order(id: String) async throws -> OrderView?
    func orders(matching query: OrderQuery) async throws -> OrderPage
    /// How many parcels left before `date` and have neither arrived nor failed: the carrier owes an
    /// update (the api's `orderly_shipments_overdue` gauge).
    func shipmentsInTransit(dispatchedBefore date: Date) async throws -> Int
}

public struct MongoOrderReadModel: OrderReadModel {
    let collections: ActiveCollections

    public init(collections: ActiveCollections) {
        self.collections = collections
    }

    public init(client: MongoClient) {
        self.init(collections: ActiveCollections(client: client))
    }

    public func order(id: String) async throws -> OrderView? {
        try await self.collections.collection(OrdersProjection.name).findOne(["_id": .string(id)], as: OrderView.self)
    }

    public func orders(matching query: OrderQuery) async throws -> OrderPage {
        // One flat filter on plain fields and one sort key: what the local document server handles well.
        var filter: [(String, Document)] = []
        if let customerId = query.customerId { filter.append(("customerId", .string(customerId))) }
        if let status = query.status { filter.append(("status", .string(status))) }
        var placed: [(String, Document)] = []
        if let from = query.placedFrom { placed.append(("$gte", .int(from))) }
        if let before = query.placedBefore { placed.append(("$lt", .int(before))) }
        if !placed.isEmpty { filter.append(("placedAtMs", .object(placed))) }
        if let after = query.after { filter.append(("pageKey", ["$lt": .string(after.pageKey)])) }
        let items = try await self.collections.collection(OrdersProjection.name).find(
            .object(filter), sort: ["pageKey": -1], limit: Int64(query.limit + 1), as: OrderView.self)
        return OrderPage(fetched: items, limit: query.limit)
    }

    public func shipmentsInTransit(dispatchedBefore date: Date) async throws -> Int {
        let count = try await self.collections.collection(OrdersProjection.name).count([
            "inTransitSinceMs": ["$lt": .int(UTCTime.milliseconds(date))]
        ])
        return Int(count)
    }
}

extension OrderView {
    /// A later step of the shipment: its status and time, and what `details` sets with that time.
    mutating func advanceFulfilment(
        to status: Shipment.Status, at time: Date, _ details: (inout OrderView.FulfilmentView, String) -> Void
    ) {
        var fulfilment = self.fulfilment ?? OrderView.FulfilmentView(status: "")
        let at = UTCTime.iso8601(time)
        fulfilment.status = status.rawValue
        fulfilment.updatedAt = at
        details(&fulfilment, at)
        self.fulfilment = fulfilment
    }
}
