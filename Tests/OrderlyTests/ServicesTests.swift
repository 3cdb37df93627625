import Foundation
import Logging
import OrderlyDomain
import OrderlyEventStore
import OrderlyServices
import Testing

/// The services' building blocks on the in-memory store (the PostgreSQL store passes the same
/// contract suite; the saga itself is tested end to end in SagaTests).
@Suite struct ServicesTests {
    @Test func aCachedAggregateSeesWhatOtherWritersAppended() async throws {
        let store = InMemoryEventStore()
        let mine = AggregateStore(store: store)
        let theirs = AggregateStore(store: store)
        try await mine.update("stock-S", as: Stock.self, metadata: EventMetadata()) { _ in
            try Stock.restock(sku: "S", quantity: 5, unitPrice: 100)
        }
        #expect(try await mine.load("stock-S", as: Stock.self).state.available == 5)
        try await theirs.update("stock-S", as: Stock.self, metadata: EventMetadata()) { _ in
            try Stock.restock(sku: "S", quantity: 2, unitPrice: 100)
        }
        // `mine` has version 1 cached; it must read version 2 written by the other instance.
        let (stock, version) = try await mine.load("stock-S", as: Stock.self)
        #expect(stock.available == 7)
        #expect(version == 2)
        // A decision on stale state is retried on the new history: both reservations fit only once.
        let line = OrderLine(sku: "S", quantity: 4, unitPrice: 100)
        async let first = mine.update("stock-S", as: Stock.self, metadata: EventMetadata()) { stock in
            guard case .reserve(let events) = stock.reserve(line, for: "o1") else { return [] }
            return events
        }
        async let second = theirs.update("stock-S", as: Stock.self, metadata: EventMetadata()) { stock in
            guard case .reserve(let events) = stock.reserve(line, for: "o2") else { return [] }
            return events
        }
        let results = try await [first, second]
        #expect(results.compactMap { $0 }.count == 1)
        #expect(try await AggregateStore(store: store).load("stock-S", as: Stock.self).state.available == 3)
    }

    @Test func theDeadlineSweepCancelsLateOrdersOnce() async throws {
        let store = InMemoryEventStore()
        let commands = OrderCommands(store: store)
        let order = try await commands.placeOrder(
            .init(customerId: "c", currency: "EUR", lines: [OrderLine(sku: "S", quantity: 1, unitPrice: 5)], paymentToken: "tok_ok"),
            actor: "c")
        let watcher = SagaDeadlineWatcher(store: store, settings: .init(deadline: .seconds(60)), logger: Logger(label: "test"))
        #expect(try await watcher.sweep(now: Date()) == 0)
        #expect(try await watcher.sweep(now: Date().addingTimeInterval(61)) == 1)
        #expect(try await watcher.sweep(now: Date().addingTimeInterval(62)) == 0)
        let (state, _) = try await commands.loadOrder(order.orderId)
        #expect(state.status == .cancelled)
        #expect(state.cancellationReason == .deadlineExceeded)
    }
}
