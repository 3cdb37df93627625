import Foundation
import OrderlyDomain
import OrderlyEventStore
import Synchronization

/// The four read models in memory: the same folds as the MongoDB ones (`ReadModelProjection`) behind
/// the same query protocols, so the api can be run and tested without a document server (the fast
/// test tier). A contract suite runs the same queries over both. Fed from the log in order
/// (`catchUp(with:)`) or with events in hand (`apply`).
public final class InMemoryReadModels: OrderReadModel, InventoryReadModel, SalesReadModel {
    private struct Documents {
        var orders: [String: OrderView] = [:]
        var inventory: [String: InventoryView] = [:]
        var customers: [String: CustomerOrdersView] = [:]
        var sales: [String: SalesDayView] = [:]
        /// How far `catchUp` has read the log.
        var cursor = LogCursor.start
    }

    private let documents = Mutex(Documents())

    public init() {}

    /// Applies `events` (in the order `source` delivered them) to every model, each changed document
    /// once with its next revision, as one projector batch would.
    public func apply(_ events: [RecordedEvent], source: String = SourcedEvent.logSource, now: Date = Date()) throws {
        let orders = try events.compactMap { try OrdersProjection.sourced($0, source: source) }
        let inventory = try events.compactMap { try InventoryProjection.sourced($0, source: source) }
        let customers = try events.compactMap { try CustomerOrdersProjection.sourced($0, source: source) }
        let sales = try events.compactMap { try SalesDailyProjection.sourced($0, source: source) }
        self.documents.withLock { documents in
            Self.fold(OrdersProjection.self, orders, into: &documents.orders, now: now)
            Self.fold(InventoryProjection.self, inventory, into: &documents.inventory, now: now)
            Self.fold(CustomerOrdersProjection.self, customers, into: &documents.customers, now: now)
            Self.fold(SalesDailyProjection.self, sales, into: &documents.sales, now: now)
        }
    }

    /// Applies what `store` committed since the last call, in log order; returns how many events it read.
    @discardableResult
    public func catchUp(with store: any EventStore, now: Date = Date()) async throws -> Int {
        var read = 0
        while true {
            let cursor = self.documents.withLock { $0.cursor }
            let events = try await store.readAll(after: cursor, limit: 1000)
            guard let last = events.last else { return read }
            try self.apply(events, now: now)
            self.documents.withLock { $0.cursor = max($0.cursor, last.cursor) }
            read += events.count
        }
    }

    private static func fold<P: ReadModelProjection>(_: P.Type, _ events: [SourcedEvent], into documents: inout [String: P.View], now: Date) {
        guard !events.isEmpty else { return }
        // The touched documents as they were (not a copy of the whole model: the fold writes in place).
        var before: [String: P.View] = [:]
        for item in events {
            for id in P.documentIDs(of: item.event, recorded: item.recorded) where before[id] == nil { before[id] = documents[id] }
        }
        for id in P.fold(events, into: &documents, now: now) {
            guard let view = documents[id] else { continue }
            documents[id] = P.revised(view, replacing: before[id])
        }
    }

    public func order(id: String) async throws -> OrderView? {
        self.documents.withLock { $0.orders[id] }
    }

    /// The same filter, order and cut as the MongoDB query: a filter on a field the document lacks
    /// does not match it.
    public func orders(matching query: OrderQuery) async throws -> OrderPage {
        let all = self.documents.withLock { Array($0.orders.values) }
        let matching = all.filter { view in
            if let customerId = query.customerId, view.customerId != customerId { return false }
            if let status = query.status, view.status != status { return false }
            if query.placedFrom != nil || query.placedBefore != nil {
                guard let placed = view.placedAtMs else { return false }
                if let from = query.placedFrom, placed < from { return false }
                if let before = query.placedBefore, placed >= before { return false }
            }
            if let after = query.after {
                guard let key = view.pageKey, key < after.pageKey else { return false }
            }
            return true
        }
        let newestFirst = matching.sorted { ($0.pageKey ?? "") > ($1.pageKey ?? "") }
        return OrderPage(fetched: Array(newestFirst.prefix(query.limit + 1)), limit: query.limit)
    }

    public func shipmentsInTransit(dispatchedBefore date: Date) async throws -> Int {
        let before = UTCTime.milliseconds(date)
        return self.documents.withLock { documents in
            documents.orders.values.filter { view in view.inTransitSinceMs.map { $0 < before } ?? false }.count
        }
    }

    public func stock(sku: String) async throws -> InventoryView? {
        self.documents.withLock { $0.inventory[sku] }
    }

    public func customerSummary(customerId: String) async throws -> CustomerOrdersView? {
        self.documents.withLock { $0.customers[customerId] }
    }

    public func dailySales(from: Int64, to: Int64) async throws -> [SalesDayView] {
        let days = self.documents.withLock { Array($0.sales.values) }
        return Array(
            days.filter { $0.dayNumber >= from && $0.dayNumber <= to }.sorted { $0.dayNumber < $1.dayNumber }.prefix(MongoSalesReadModel.maxDays))
    }
}
