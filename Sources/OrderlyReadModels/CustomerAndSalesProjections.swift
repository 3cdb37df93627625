import Foundation
import OrderlyDomain
import OrderlyEventStore

/// Per source ("p3", "log"), the log cursor of the last event applied from it. Counting read models
/// add up events of many orders, so they cannot remember each order's version; within one source
/// events come in log order, so an event at or before the source's cursor is a repeat.
public typealias AppliedSources = [String: LogCursor]

extension AppliedSources {
    /// Whether `recorded` from `source` comes after everything applied from that source; if so,
    /// records it as applied.
    mutating func admit(_ recorded: RecordedEvent, from source: String) -> Bool {
        if let last = self[source], recorded.cursor <= last { return false }
        self[source] = recorded.cursor
        return true
    }
}

/// A customer's orders at a glance (`GET /customers/{id}/summary`).
public struct CustomerOrdersView: ProjectedView {
    public var customerId: String
    public var ordersPlaced: Int64
    public var ordersCompleted: Int64
    public var ordersCancelled: Int64
    /// Placed and not ended yet.
    public var ordersOpen: Int64
    /// Totals of completed orders per currency, in minor units.
    public var spent: [String: Int64]
    public var lastOrderId: String?
    public var lastOrderAt: String?
    /// The log position of the last order's OrderPlaced: "last" follows the log's one total order,
    /// not arrival order (orders of one customer come through different partitions, and several
    /// can share one recorded time), so the live model and a fresh fold agree.
    public var lastOrderPosition: Int64?
    public var applied: AppliedSources
    public var revision: Int64?

    public var documentID: String { self.customerId }
}

/// The `customer_orders` read model: one document per customer, from the order streams' placed,
/// completed and cancelled events (each carries the customer).
public enum CustomerOrdersProjection: ReadModelProjection {
    public static let name = "customer_orders"
    public static let unverifiedFields: Set<String> = ["revision", "applied"]
    public static let handledTypes: Set<String> = [OrderPlaced.typeName, OrderCompleted.typeName, OrderCancelled.typeName]

    public static func documentIDs(of event: DomainEvent, recorded: RecordedEvent) -> [String] {
        switch event {
        case .orderPlaced(let e): [e.customerId]
        case .orderCompleted(let e): [e.customerId]
        case .orderCancelled(let e): [e.customerId]
        default: []
        }
    }

    public static func apply(
        _ event: DomainEvent, recorded: RecordedEvent, source: String, to current: CustomerOrdersView?, id: String, now: Date
    ) -> CustomerOrdersView? {
        var view =
            current
            ?? CustomerOrdersView(
                customerId: id, ordersPlaced: 0, ordersCompleted: 0, ordersCancelled: 0, ordersOpen: 0, spent: [:], applied: [:])
        guard view.applied.admit(recorded, from: source) else { return nil }
        switch event {
        case .orderPlaced(let placed):
            view.ordersPlaced += 1
            if view.lastOrderPosition.map({ recorded.position > $0 }) ?? true {
                view.lastOrderPosition = recorded.position
                view.lastOrderAt = UTCTime.iso8601(recorded.recordedAt)
                view.lastOrderId = placed.orderId
            }
        case .orderCompleted(let completed):
            view.ordersCompleted += 1
            view.spent[completed.currency ?? unknownCurrency, default: 0] += completed.total
        case .orderCancelled:
            view.ordersCancelled += 1
        default:
            return nil
        }
        view.ordersOpen = view.ordersPlaced - view.ordersCompleted - view.ordersCancelled
        return view
    }
}

/// ISO 4217's "no currency": where totals of events recorded before they carried a currency go.
let unknownCurrency = "XXX"

/// One day's sales (`GET /sales/daily`), by the day (UTC) each event was recorded.
public struct SalesDayView: ProjectedView {
    /// `yyyy-MM-dd`.
    public var day: String
    /// yyyyMMdd as a number: what ranges filter and pages sort on.
    public var dayNumber: Int64
    public var placed: Int64
    public var completed: Int64
    public var cancelled: Int64
    /// Orders whose parcel reached the customer that day (counted by when the carrier delivered).
    /// Absent in days written before delivery existed.
    public var delivered: Int64?
    /// Totals of the orders completed that day, per currency, in minor units.
    public var revenue: [String: Int64]
    public var applied: AppliedSources
    public var revision: Int64?

    public var documentID: String { self.day }
}

/// The `sales_daily` read model: one document per day.
public enum SalesDailyProjection: ReadModelProjection {
    public static let name = "sales_daily"
    public static let unverifiedFields: Set<String> = ["revision", "applied"]
    public static let handledTypes: Set<String> = [
        OrderPlaced.typeName, OrderCompleted.typeName, OrderCancelled.typeName, ShipmentDelivered.typeName,
    ]

    public static func documentIDs(of event: DomainEvent, recorded: RecordedEvent) -> [String] {
        [UTCTime.day(recorded.recordedAt).text]
    }

    public static func apply(_ event: DomainEvent, recorded: RecordedEvent, source: String, to current: SalesDayView?, id: String, now: Date)
        -> SalesDayView?
    {
        let day = UTCTime.day(recorded.recordedAt)
        var view = current ?? SalesDayView(day: day.text, dayNumber: day.number, placed: 0, completed: 0, cancelled: 0, revenue: [:], applied: [:])
        guard view.applied.admit(recorded, from: source) else { return nil }
        switch event {
        case .orderPlaced: view.placed += 1
        case .orderCompleted(let completed):
            view.completed += 1
            view.revenue[completed.currency ?? unknownCurrency, default: 0] += completed.total
        case .orderCancelled: view.cancelled += 1
        case .shipmentDelivered: view.delivered = (view.delivered ?? 0) + 1
        default: return nil
        }
        return view
    }
}

/// Queries over `customer_orders` and `sales_daily`.
public protocol SalesReadModel: Sendable {
    func customerSummary(customerId: String) async throws -> CustomerOrdersView?
    /// Days from `from` to `to` (yyyyMMdd, both included), oldest first; days without events are absent.
    func dailySales(from: Int64, to: Int64) async throws -> [SalesDayView]
}

public struct MongoSalesReadModel: SalesReadModel {
    /// The most days one query answers (the api asks for at most 366).
    static let maxDays = 400
    let collections: ActiveCollections

    public init(collections: ActiveCollections) {
        self.collections = collections
    }

    public func customerSummary(customerId: String) async throws -> CustomerOrdersView? {
        try await self.collections.collection(CustomerOrdersProjection.name).findOne(["_id": .string(customerId)], as: CustomerOrdersView.self)
    }

    public func dailySales(from: Int64, to: Int64) async throws -> [SalesDayView] {
        try await self.collections.collection(SalesDailyProjection.name).find(
            ["dayNumber": ["$gte": .int(from), "$lte": .int(to)]], sort: ["dayNumber": 1], limit: Int64(Self.maxDays), as: SalesDayView.self)
    }
}
