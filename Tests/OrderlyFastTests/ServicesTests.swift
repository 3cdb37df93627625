import Foundation
import Logging
import OrderlyContracts
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import OrderlyServices
import Synchronization
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

    /// An update decides on the cached state without reading the stream, and what it appends stands
    /// only if the stream is still at that version. A cache that is behind never decides alone: a
    /// release after another instance's reservation is not "nothing to release", and a refusal is
    /// made again on the stream as stored.
    @Test func anUpdateDecidesOnTheCacheWithoutReadingYetNeverOnAStaleOne() async throws {
        let store = CountingEventStore(InMemoryEventStore())
        let mine = AggregateStore(store: store)
        let theirs = AggregateStore(store: store)
        let line = OrderLine(sku: "S", quantity: 2, unitPrice: 100)
        try await mine.update("stock-S", as: Stock.self, metadata: EventMetadata()) { _ in
            try Stock.restock(sku: "S", quantity: 5, unitPrice: 100)
        }
        // Warm: the next decision needs no read at all.
        let readsBefore = store.streamReads
        let reserved = try await mine.update("stock-S", as: Stock.self, metadata: EventMetadata()) { stock in
            guard case .reserve(let events) = stock.reserve(line, for: "o1") else { return [] }
            return events
        }
        #expect(reserved?.streamVersion == 2)
        #expect(store.streamReads == readsBefore, "a warm update read the stream")
        // `theirs` reserves for o2 behind `mine`'s back; `mine` releasing o2 must find that reservation.
        try await theirs.update("stock-S", as: Stock.self, metadata: EventMetadata()) { stock in
            guard case .reserve(let events) = stock.reserve(line, for: "o2") else { return [] }
            return events
        }
        let released = try await mine.update("stock-S", as: Stock.self, metadata: EventMetadata()) { $0.release(for: "o2") }
        #expect(released != nil, "a release decided on a stale cache was taken as nothing to do")
        // A stale non-empty decision conflicts and is made again: o3's 3 units do not fit beside o1's 2
        // once `theirs` has taken 1 more; `mine` still believes 3 are free.
        try await theirs.update("stock-S", as: Stock.self, metadata: EventMetadata()) { stock in
            guard case .reserve(let events) = stock.reserve(OrderLine(sku: "S", quantity: 1, unitPrice: 100), for: "o4") else { return [] }
            return events
        }
        var decision = Stock.ReservationDecision.alreadyReserved
        try await mine.update("stock-S", as: Stock.self, metadata: EventMetadata()) { stock in
            decision = stock.reserve(OrderLine(sku: "S", quantity: 3, unitPrice: 100), for: "o3")
            guard case .reserve(let events) = decision else { return [] }
            return events
        }
        guard case .refuse = decision else {
            Issue.record("reserved 3 of the 2 units left: \(decision)")
            return
        }
        // A refusal on the cache is not final either: an order this instance saw missing, since
        // placed by the other, can be cancelled.
        #expect(try await mine.load("order-X", as: Order.self).version == 0)
        try await theirs.update("order-X", as: Order.self, metadata: EventMetadata()) { order in
            try order.place(
                PlaceOrder(orderId: "X", customerId: "c-1", currency: "EUR", lines: [line], paymentToken: "tok_ok"), at: Date())
        }
        let cancelled = try await mine.update("order-X", as: Order.self, metadata: EventMetadata()) { order in
            guard order.placedAt != nil else { throw ValidationError(field: "orderId", reason: "no such order") }
            return order.cancel(because: .customerRequest, at: Date())
        }
        #expect(cancelled?.streamVersion == 2)
    }

    /// What an instance learns from the topic or assumes for a stream that starts now is only a
    /// shortcut, like its cache: a later update decides on it without reading, and its append, which
    /// expects that version, still meets what others wrote; an event that does not follow on is passed
    /// over.
    @Test func anInstanceDecidesOnWhatItLearntOrAssumedWithoutReadingYetNeverWrongly() async throws {
        let store = CountingEventStore(InMemoryEventStore())
        let mine = AggregateStore(store: store)
        let theirs = AggregateStore(store: store)
        let line = OrderLine(sku: "S", quantity: 2, unitPrice: 100)
        let place = PlaceOrder(orderId: "X", customerId: "c-1", currency: "EUR", lines: [line], paymentToken: "tok_ok")
        try await theirs.update("order-X", as: Order.self, metadata: EventMetadata()) { try $0.place(place, at: Date()) }
        let placed = try #require(try await store.readStream("order-X", from: 1).first)

        // Learnt from the topic: completing the order reads nothing and appends after it.
        let readsBefore = store.streamReads
        mine.learn(try #require(try placed.domainEventForHandler()), recorded: placed, as: Order.self)
        #expect(try await mine.lastKnown("order-X", as: Order.self).placedAt != nil)
        let completed = try await mine.update("order-X", as: Order.self, metadata: EventMetadata()) { $0.complete(charged: 200, at: Date()) }
        #expect(completed?.streamVersion == 2)
        #expect(store.streamReads == readsBefore, "an update on a learnt state read the stream")

        // An event that does not follow on what is known is passed over: version 1 again changes
        // nothing, and a state learnt from it alone would be behind.
        let other = AggregateStore(store: store)
        let completion = try #require(try await store.readStream("order-X", from: 2).first)
        other.learn(try #require(try completion.domainEventForHandler()), recorded: completion, as: Order.self)
        #expect(try await other.lastKnown("order-X", as: Order.self, assumingNew: true).placedAt == nil, "learnt version 2 without 1")
        mine.learn(try #require(try placed.domainEventForHandler()), recorded: placed, as: Order.self)
        #expect(try await mine.load("order-X", as: Order.self).version == 2)

        // A known state is used as it is only when it settles the question; otherwise the stream is read.
        let readsBeforeAsking = store.streamReads
        #expect(try await mine.lastKnown("order-X", as: Order.self, whenIt: { $0.placedAt != nil }).placedAt != nil)
        #expect(store.streamReads == readsBeforeAsking, "a known state that settles the question was read again")
        _ = try await mine.lastKnown("order-X", as: Order.self, whenIt: { _ in false })
        #expect(store.streamReads == readsBeforeAsking + 1, "a known state that does not settle the question was not read")

        // A stream taken for new that exists after all: the append expecting no stream conflicts, the
        // stream is read, and the decision is made again on it (a repeated request decides nothing).
        guard case .orderPlaced(let orderPlaced) = try placed.domainEventForHandler() else {
            Issue.record("the order's first event is not its placement")
            return
        }
        let fresh = AggregateStore(store: store)
        let first = try await fresh.update("payment-X", as: Payment.self, metadata: EventMetadata(), likelyNew: true) { $0.request(orderPlaced) }
        #expect(first?.streamVersion == 1)
        let restarted = AggregateStore(store: store)
        let readsBeforeRepeat = store.streamReads
        let repeated = try await restarted.update("payment-X", as: Payment.self, metadata: EventMetadata(), likelyNew: true) {
            $0.request(orderPlaced)
        }
        #expect(repeated == nil, "a repeated payment request appended again")
        #expect(store.streamReads > readsBeforeRepeat, "the conflict did not make it read the stream")
        #expect(try await store.readStream("payment-X", from: 1).count == 1)
    }

    /// The services decide on what they last wrote, learnt from the topic or know to be new: a happy
    /// order costs them one read of a stream (the inventory's look at the order's reservation before
    /// it reserves), not one per step (seven before); and everything delivered again to restarted
    /// services, which know nothing, changes nothing.
    @Test func aHappyOrderCostsTheServicesOneStreamReadAndARedeliveryChangesNothing() async throws {
        let store = CountingEventStore(InMemoryEventStore())
        let sender = CountingSender()
        func services() -> [any EventHandler] {
            [
                InventoryService(store: store), PaymentService(store: store, gateway: SimulatedPaymentGateway()), OrderService(store: store),
                NotificationService(store: store, sender: sender, vault: PersonalDataVault(keys: InMemoryCustomerKeyStore())),
            ]
        }
        let admin = AggregateStore(store: store)
        try await admin.update(StreamNames.stock("S"), as: Stock.self, metadata: EventMetadata()) { _ in
            try Stock.restock(sku: "S", quantity: 10, unitPrice: 100)
        }
        func place(_ order: String) async throws {
            try await admin.update(StreamNames.order(order), as: Order.self, metadata: EventMetadata(correlationId: order)) {
                try $0.place(
                    PlaceOrder(
                        orderId: order, customerId: "c-1", currency: "EUR", lines: [OrderLine(sku: "S", quantity: 2, unitPrice: 100)],
                        paymentToken: "tok_ok"), at: Date())
            }
        }
        // Every service reads every new event in log order, as their consumer groups do.
        func deliver(to handlers: [any EventHandler], after start: LogCursor) async throws -> LogCursor {
            var cursor = start
            while true {
                let events = try await store.readAll(after: cursor, limit: 1000)
                guard let last = events.last else { return cursor }
                for event in events {
                    for handler in handlers { try await handler.handle(event) }
                }
                cursor = last.cursor
            }
        }
        // A first order warms the services up (the stock stream is read once); the second is counted.
        let running = services()
        try await place("W")
        let afterWarmUp = try await deliver(to: running, after: .start)
        try await place("X")
        let readsBefore = store.streamReads
        _ = try await deliver(to: running, after: afterWarmUp)
        #expect(store.streamReads - readsBefore == 1, "stream reads for one order: \(store.streamReads - readsBefore)")
        #expect(try await store.readStream(StreamNames.order("X"), from: 1).map(\.type) == [OrderPlaced.typeName, OrderCompleted.typeName])
        #expect(try await store.readStream(StreamNames.notification("X"), from: 1).map(\.type) == [NotificationSent.typeName])
        let eventCount = try await store.readAll(after: .start, limit: 1000).count

        _ = try await deliver(to: services(), after: .start)
        #expect(try await store.readAll(after: .start, limit: 1000).count == eventCount, "a redelivery appended events")
        #expect(Set(sender.calls.withLock { $0 }.flatMap { $0 }) == ["W:COMPLETED", "X:COMPLETED"])
        #expect(try await admin.load(StreamNames.stock("S"), as: Stock.self).state.available == 6)
    }

    @Test func theSimulatedGatewayFollowsItsRules() {
        func decide(_ token: String, _ amount: MinorUnits) -> PaymentDecision {
            SimulatedPaymentGateway.decide(ChargeRequest(orderId: "o", amount: amount, currency: "EUR", token: token))
        }
        #expect(decide("tok_ok", 1_000_000) == .approved(chargeId: "ch_o"))
        #expect(decide("tok_ok", 1_000_001) == .declined(reason: "AMOUNT_LIMIT_EXCEEDED"))
        #expect(decide("tok_declined", 10) == .declined(reason: "CARD_DECLINED"))
        #expect(decide("tok_other", 10) == .declined(reason: "UNKNOWN_TOKEN"))
    }

    /// Another gateway plugs into the payment service without touching the domain: its decision and
    /// charge id are what the log records, a redelivered event does not charge again, and a refund
    /// recorded on cancellation is carried out at that gateway when the service reads it.
    @Test func aPaymentGatewayIsAPortTheServiceAsksAndRecords() async throws {
        let store = InMemoryEventStore()
        let gateway = LedgerGateway()
        let service = PaymentService(store: store, gateway: gateway)
        let placed = OrderPlaced(
            orderId: "o1", customerId: "c", currency: "EUR", lines: [], total: 250, paymentToken: "card-4242", placedAt: Date())
        let reserved = StockReserved(orderId: "o1", lines: [], total: 250)
        let cancelled = OrderCancelled(orderId: "o1", customerId: "c", reason: .customerRequest, cancelledAt: Date())
        func deliver(_ event: DomainEvent, position: Int64) async throws {
            try await service.handle(TestEvents.recorded(event, stream: "order-o1", version: position, position: position, correlation: "o1"))
        }
        try await deliver(.orderPlaced(placed), position: 1)
        try await deliver(.stockReserved(reserved), position: 2)
        try await deliver(.stockReserved(reserved), position: 2)
        #expect(gateway.charges.withLock { $0 } == [ChargeRequest(orderId: "o1", amount: 250, currency: "EUR", token: "card-4242")])
        // A redelivered StockReserved finds the payment decided and does not ask the gateway again.
        #expect(gateway.chargeCalls.withLock { $0 } == 1)
        let payment = try await AggregateStore(store: store).load(StreamNames.payment("o1"), as: Payment.self).state
        #expect(payment.state == .charged(amount: 250, chargeId: "ledger-1"))
        try await deliver(.orderCancelled(cancelled), position: 3)
        #expect(gateway.refunds.withLock { $0 }.isEmpty)
        let recorded = try await store.readStream(StreamNames.payment("o1"), from: 1)
        #expect(recorded.map(\.type) == [PaymentRequested.typeName, PaymentProcessed.typeName, PaymentRefunded.typeName])
        let refund = try #require(recorded.last)
        try await service.handle(refund)
        try await service.handle(refund)
        #expect(gateway.refunds.withLock { $0 } == ["ledger-1"])
    }

    /// A token the api sealed reaches the gateway opened, and only with the payment service's own
    /// key for that very order: another key, or the sealed token copied onto another order, is
    /// declined as unreadable without asking the gateway; the log never holds the token in clear.
    @Test func aSealedPaymentTokenOpensOnlyInThePaymentServiceForItsOrder() async throws {
        let keys = PaymentTokenSealing.generateKeyPair()
        let sealer = try PaymentTokenSealer(publicKey: keys.publicKey)
        let other = try PaymentTokenOpener(privateKey: PaymentTokenSealing.generateKeyPair().privateKey)
        let sealed = try sealer.seal("tok_ok", orderId: "o1")
        #expect(PaymentTokenSealing.isSealed(sealed) && !sealed.contains("tok_ok"))
        #expect(try sealer.seal("tok_ok", orderId: "o1") != sealed, "a fresh encapsulated key per seal")
        #expect(try PaymentTokenOpener(privateKey: keys.privateKey).open(sealed, orderId: "o1") == "tok_ok")
        #expect(try PaymentTokenOpener(privateKey: keys.privateKey).open(sealed, orderId: "o2") == nil)
        #expect(other.open(sealed, orderId: "o1") == nil)
        #expect(other.open("tok_plain", orderId: "o1") == "tok_plain", "a token stored before sealing is used as it is")

        for (opener, orderId, charged) in [(try PaymentTokenOpener(privateKey: keys.privateKey), "o1", true), (other, "o1", false)] {
            let store = InMemoryEventStore()
            let gateway = LedgerGateway()
            let service = PaymentService(store: store, gateway: gateway, paymentTokens: opener)
            let placed = OrderPlaced(
                orderId: orderId, customerId: "c", currency: "EUR", lines: [], total: 250, paymentToken: sealed, placedAt: Date())
            try await service.handle(TestEvents.recorded(.orderPlaced(placed), stream: "order-o1", version: 1, position: 1, correlation: "o1"))
            let reserved = StockReserved(orderId: orderId, lines: [], total: 250)
            try await service.handle(
                TestEvents.recorded(.stockReserved(reserved), stream: "reservation-o1", version: 1, position: 2, correlation: "o1"))
            let recorded = try await store.readStream(StreamNames.payment(orderId), from: 1)
            #expect(!recorded.contains { String(decoding: $0.data, as: UTF8.self).contains("tok_ok") })
            if charged {
                #expect(gateway.charges.withLock { $0 }.map(\.token) == ["tok_ok"])
                #expect(recorded.map(\.type) == [PaymentRequested.typeName, PaymentProcessed.typeName])
            } else {
                #expect(gateway.chargeCalls.withLock { $0 } == 0)
                let failed = try #require(recorded.last)
                #expect(failed.type == PaymentFailed.typeName && String(decoding: failed.data, as: UTF8.self).contains("PAYMENT_TOKEN_UNREADABLE"))
            }
        }
    }

    /// While the pipeline is down (broker, relay, log) the deadline does not count: an order placed
    /// just before a 70 s outage is cancelled only once it has had 60 s of a working pipeline.
    /// A batch's notifications go out in one call of the channel; each is sent once per order and
    /// outcome however often its event arrives (a repeat in the batch, the whole batch again after a
    /// crash), and an order both completed and cancelled gets both, recorded in that order.
    @Test func aBatchOfOrderEndingsSendsEachNotificationOnceInOneCall() async throws {
        let store = InMemoryEventStore()
        let sender = CountingSender()
        let service = NotificationService(store: store, sender: sender, vault: PersonalDataVault(keys: InMemoryCustomerKeyStore()))
        func ended(_ event: DomainEvent, order: String, position: Int64) throws -> RecordedEvent {
            try TestEvents.recorded(event, stream: "order-\(order)", version: position, position: position, correlation: order)
        }
        let completed = DomainEvent.orderCompleted(OrderCompleted(orderId: "o1", customerId: "c1", total: 100, completedAt: Date()))
        let declined = DomainEvent.orderCancelled(OrderCancelled(orderId: "o2", customerId: "c2", reason: .paymentDeclined, cancelledAt: Date()))
        let refunded = DomainEvent.orderCancelled(OrderCancelled(orderId: "o1", customerId: "c1", reason: .customerRequest, cancelledAt: Date()))
        let batch = [
            try ended(completed, order: "o1", position: 1), try ended(declined, order: "o2", position: 2),
            try ended(completed, order: "o1", position: 1), try ended(refunded, order: "o1", position: 3),
        ]
        try await service.handle(batch: batch)
        try await service.handle(batch: batch)
        #expect(sender.calls.withLock { $0 } == [["o1:COMPLETED", "o2:CANCELLED", "o1:CANCELLED"]])
        let o1 = try await store.readStream(StreamNames.notification("o1"), from: 1).map(\.type)
        let o2 = try await store.readStream(StreamNames.notification("o2"), from: 1).map(\.type)
        #expect(o1 == [NotificationSent.typeName, NotificationSent.typeName])
        #expect(o2 == [NotificationSent.typeName])
        let outcomes = try await store.readStream(StreamNames.notification("o1"), from: 1).compactMap { event -> String? in
            guard case .notificationSent(let sent) = try event.domainEventForHandler() else { return nil }
            return sent.outcome.rawValue
        }
        #expect(outcomes == ["COMPLETED", "CANCELLED"])
    }

    @Test func theDeadlineDoesNotCountWhileThePipelineIsDown() async throws {
        let store = InMemoryEventStore()
        let commands = OrderCommands(store: store)
        let order = try await commands.placeOrder(
            .init(customerId: "c", currency: "EUR", lines: [OrderLine(sku: "S", quantity: 1, unitPrice: 5)], paymentToken: "tok_ok"),
            actor: "c")
        let watcher = SagaDeadlineWatcher(store: store, settings: .init(deadline: .seconds(60), settle: .seconds(10)), logger: Logger(label: "test"))
        let start = Date()
        #expect(try await watcher.sweep(now: start, pipelineHealthy: true) == 0)
        #expect(try await watcher.sweep(now: start.addingTimeInterval(30), pipelineHealthy: false) == 0)
        #expect(try await watcher.sweep(now: start.addingTimeInterval(65), pipelineHealthy: false) == 0)
        // Back after 70 s down, and settled 10 s later: no pipeline time has passed for the order yet.
        #expect(try await watcher.sweep(now: start.addingTimeInterval(70), pipelineHealthy: true) == 0)
        #expect(try await watcher.sweep(now: start.addingTimeInterval(80), pipelineHealthy: true) == 0)
        #expect(try await watcher.sweep(now: start.addingTimeInterval(135), pipelineHealthy: true) == 0)
        #expect(try await watcher.sweep(now: start.addingTimeInterval(141), pipelineHealthy: true) == 1)
        let (state, _) = try await commands.loadOrder(order.orderId)
        #expect(state.cancellationReason == .deadlineExceeded)
    }

    @Test func atRestTheDeadlineWatcherStopsSweeping() async throws {
        let store = InMemoryEventStore()
        let commands = OrderCommands(store: store)
        let watcher = SagaDeadlineWatcher(
            store: store, settings: .init(deadline: .seconds(60), inFlightInterval: .seconds(1)), logger: Logger(label: "test"))
        /// One turn of the watcher's loop: whether it sweeps (and asks the broker and the groups).
        func turn() async throws -> Bool {
            let sweeps = watcher.mayHaveOpenStreams(head: try await store.latestPosition())
            if sweeps { try await watcher.sweep(now: Date(), pipelineHealthy: true) }
            return sweeps
        }
        /// Lets the in-flight count fall due again.
        func later() async throws { try await Task.sleep(for: .milliseconds(1_100)) }
        #expect(try await turn(), "nothing counted yet")
        #expect(try await !turn(), "no order open and the log still")
        let order = try await commands.placeOrder(
            .init(customerId: "c", currency: "EUR", lines: [OrderLine(sku: "S", quantity: 1, unitPrice: 5)], paymentToken: "tok_ok"),
            actor: "c")
        #expect(try await turn(), "the log moved since the count")
        try await later()
        #expect(try await turn(), "the log moved since the count")
        #expect(try await turn(), "the order is in flight")
        _ = try await commands.cancelOrder(order.orderId, actor: "c")
        #expect(try await turn(), "the log moved, and the last count found the order in flight")
        try await later()
        #expect(try await turn(), "the count is due")
        #expect(try await !turn(), "the order ended and the log is still")
        try await later()
        #expect(try await turn(), "at rest it still sweeps every in-flight interval")
        // A pause not yet settled keeps the watcher sweeping, open orders or not.
        try await watcher.sweep(now: Date(), pipelineHealthy: false)
        #expect(watcher.mayHaveOpenStreams(head: try await store.latestPosition()))
    }

    @Test func aReaderRestsOnTheAppendSignalFromItsFirstEmptyRead() {
        let start = ContinuousClock.now
        func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }
        var rest = SignalledRest(readInterval: .seconds(2), quietAfter: .seconds(5), now: start)
        var lastFound = start - .seconds(5)
        #expect(rest.mayLeaveLogUnread(generation: nil, lastFound: lastFound, now: at(0)) == nil, "not listening yet: read")
        rest.willRead(generation: nil, now: at(0))
        #expect(rest.mayLeaveLogUnread(generation: 0, lastFound: lastFound, now: at(10)) == nil, "listening now: read once more")
        rest.willRead(generation: 0, now: at(10))
        #expect(rest.mayLeaveLogUnread(generation: 0, lastFound: lastFound, now: at(20)) == .milliseconds(1_990), "rest until 2 s after it")
        #expect(rest.mayLeaveLogUnread(generation: 1, lastFound: lastFound, now: at(1_000)) == nil, "an append: read at once")
        rest.willRead(generation: 1, now: at(1_000))
        lastFound = at(1_000)
        rest.willRead(generation: 1, now: at(1_020))
        #expect(rest.mayLeaveLogUnread(generation: 1, lastFound: lastFound, now: at(1_040)) == nil, "just found events: keep reading")
        rest.willRead(generation: 1, now: at(6_000))
        #expect(rest.mayLeaveLogUnread(generation: 1, lastFound: lastFound, now: at(6_100)) == .milliseconds(1_900), "quiet for 5 s: rest")
        #expect(rest.mayLeaveLogUnread(generation: 1, lastFound: lastFound, now: at(8_100)) == nil, "a read is due every 2 s")
    }

    @Test func thePipelineClockSubtractsEveryPause() {
        var clock = PipelineClock()
        let start = Date(timeIntervalSince1970: 1_000_000)
        clock.tick(at: start, healthy: true)
        clock.tick(at: start.addingTimeInterval(10), healthy: false)  // down since the tick before
        clock.tick(at: start.addingTimeInterval(20), healthy: true)
        clock.tick(at: start.addingTimeInterval(30), healthy: true)
        #expect(clock.paused(from: start, to: start.addingTimeInterval(30)) == 20)
        #expect(clock.paused(from: start.addingTimeInterval(15), to: start.addingTimeInterval(30)) == 5)
        // 10 s of deadline by t+30: 10 s of pipeline time are t+20...t+30, so the cutoff is t+20.
        #expect(clock.cutoff(now: start.addingTimeInterval(30), deadline: 10) == start.addingTimeInterval(20))
        // 15 s: 10 after the pause and 5 before it, which ended at t+0.
        #expect(clock.cutoff(now: start.addingTimeInterval(30), deadline: 15) == start.addingTimeInterval(-5))
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

/// A notification channel that keeps what each call was asked to send.
final class CountingSender: NotificationSender {
    let calls = Mutex<[[String]]>([])
    /// Everything sent, in order, with whom it went to.
    let sent = Mutex<[OutgoingNotification]>([])

    func send(all notifications: [OutgoingNotification]) async throws {
        self.calls.withLock { $0.append(notifications.map { "\($0.notification.orderId):\($0.notification.outcome.rawValue)" }) }
        self.sent.withLock { $0 += notifications }
    }

    func sent(to orderId: String) -> [OutgoingNotification] {
        self.sent.withLock { $0.filter { $0.notification.orderId == orderId } }
    }
}

/// A gateway other than the simulated one: numbers its charges, keeps what it was asked, and is
/// idempotent like a real one (per order id for a charge, per charge id for a refund).
final class LedgerGateway: PaymentGateway {
    let charges = Mutex<[ChargeRequest]>([])
    let chargeCalls = Mutex(0)
    let refunds = Mutex<[String]>([])

    func charge(_ request: ChargeRequest) async throws -> PaymentDecision {
        self.chargeCalls.withLock { $0 += 1 }
        return self.charges.withLock { charges in
            if let index = charges.firstIndex(where: { $0.orderId == request.orderId }) { return .approved(chargeId: "ledger-\(index + 1)") }
            charges.append(request)
            return .approved(chargeId: "ledger-\(charges.count)")
        }
    }

    func refund(chargeId: String, amount: MinorUnits) async throws {
        self.refunds.withLock { if !$0.contains(chargeId) { $0.append(chargeId) } }
    }
}
