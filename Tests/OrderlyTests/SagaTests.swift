import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import OrderlyContracts
import OrderlyDomain
import OrderlyEventStore
import OrderlyMessaging
import OrderlyProcesses
import OrderlyReadModels
import OrderlyServices
import PostgresNIO
import Testing

/// The saga through every real part: HTTP, PostgreSQL, the relay, the broker, the four services, the
/// projector and MongoDB. Each test checks the invariants over the whole event log at the end.
@Suite struct SagaTests {
    @Test func everyPathEndsInItsOwnTerminalState() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger)
        try await app.test(.live) { client in
            try await client.restock("SKU-A", quantity: 2000, unitPrice: 1000)
            try await client.restock("SKU-P", quantity: 5, unitPrice: 500)
            // A retried restock with the same Idempotency-Key adds its units once.
            let key = try #require(HTTPField.Name("Idempotency-Key"))
            for _ in 0..<2 {
                let again = try await client.send(
                    uri: "/inventory/SKU-P/restock", method: .post, headers: [key: "restock-p-1"],
                    body: ByteBuffer(string: #"{"quantity":3,"unitPrice":500}"#))
                #expect(again.status == .accepted)
            }
            let happy = try await client.place([("SKU-A", 2, 1000)], token: "tok_ok")
            let declined = try await client.place([("SKU-A", 1, 1000)], token: "tok_declined")
            let overLimit = try await client.place([("SKU-A", 1001, 1000)], token: "tok_ok")
            let unknownSKU = try await client.place([("SKU-NONE", 1, 1000)], token: "tok_ok")
            let tooMany = try await client.place([("SKU-A", 1, 1000), ("SKU-P", 9, 500)], token: "tok_ok")
            let wrongPrice = try await client.place([("SKU-A", 1, 999)], token: "tok_ok")

            let views = try await client.waitForOutcomes([happy, declined, overLimit, unknownSKU, tooMany, wrongPrice])
            #expect(views[happy]?.status == "COMPLETED")
            #expect(views[happy]?.payment?.status == "CHARGED")
            #expect(views[happy]?.payment?.amount == 2000)
            #expect(views[happy]?.timeline.map(\.type).contains("StockReserved") == true)
            for (order, reason) in [
                (declined, "PAYMENT_DECLINED"), (overLimit, "PAYMENT_DECLINED"), (unknownSKU, "OUT_OF_STOCK"), (tooMany, "OUT_OF_STOCK"),
                (wrongPrice, "PRICE_CHANGED"),
            ] {
                #expect(views[order]?.status == "CANCELLED", "\(reason)")
                #expect(views[order]?.cancellationReason == reason)
            }
            #expect(views[declined]?.payment?.status == "DECLINED")
            #expect(views[overLimit]?.payment?.reason == "AMOUNT_LIMIT_EXCEEDED")

            // A finished order cannot be cancelled; an unknown one is not found.
            let late = try await client.send(uri: "/orders/\(happy)/cancel", method: .post)
            #expect(late.status == .conflict)
            #expect(String(buffer: late.body).contains("order-ended"))
            let unknown = try await client.send(uri: "/orders/no-such-order/cancel", method: .post)
            #expect(unknown.status == .notFound)
            // The inventory read model ends where a fold of the SKU's stream ends.
            _ = try await SagaLog.waitForShelf(settings, sku: "SKU-A", onHand: 1998)
            let log = try await SagaLog.load(settings)
            for sku in ["SKU-A", "SKU-P"] {
                let expected = log.stock(sku)
                let view = try await TestServers.eventually { () -> InventoryView? in
                    let response = try await client.send(uri: "/inventory/\(sku)", method: .get)
                    guard response.status == .ok else { return nil }
                    let view = try JSONDecoder().decode(InventoryView.self, from: Data(response.body.readableBytesView))
                    return view.version == Int64(log.streams[StreamNames.stock(sku)]?.count ?? 0) ? view : nil
                }
                #expect(view?.onHand == Int64(expected.onHand), "\(sku)")
                #expect(view?.reserved == Int64(expected.reserved), "\(sku)")
                #expect(view?.available == Int64(expected.available), "\(sku)")
                #expect(view?.unitPrice == expected.unitPrice, "\(sku)")
            }
            let noStock = try await client.send(uri: "/inventory/SKU-NONE", method: .get)
            #expect(noStock.status == .notFound)
            let badRestock = try await client.send(
                uri: "/inventory/SKU-A/restock", method: .post, body: ByteBuffer(string: #"{"quantity":-1,"unitPrice":10}"#))
            #expect(badRestock.status == .unprocessableContent)
        }
        let log = try await SagaLog.load(settings)
        #expect(log.violations() == [])
        // Only the completed order's units left the shelf; everything else was released.
        let stock = log.stock("SKU-A")
        #expect(stock.onHand == 1998)
        #expect(stock.reserved == 0)
        #expect(log.stock("SKU-P").available == 8)
        #expect(try await SagaLog.notifications(settings) == 6)
    }

    @Test func aCustomerCancelAfterTheChargeIsRefundedAndReleased() async throws {
        let settings = try await TestServers.isolatedSettings()
        // No order service: the saga stops at PAID, so the cancel certainly comes after the charge.
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [.inventory, .payment, .notification])
        try await app.test(.live) { client in
            try await client.restock("SKU-C", quantity: 3, unitPrice: 700)
            let order = try await client.place([("SKU-C", 2, 700)], token: "tok_ok")
            let paid = try await TestServers.eventually { try await client.order(order).flatMap { $0.status == "PAID" ? $0 : nil } }
            #expect(paid?.payment?.status == "CHARGED")
            let cancel = try await client.send(uri: "/orders/\(order)/cancel", method: .post)
            #expect(cancel.status == .accepted)
            let views = try await client.waitForOutcomes([order]) { $0.payment?.status == "REFUNDED" }
            #expect(views[order]?.status == "CANCELLED")
            #expect(views[order]?.cancellationReason == "CUSTOMER_REQUEST")
            #expect(views[order]?.payment?.amount == 1400)
        }
        let log = try await SagaLog.load(settings)
        #expect(log.violations() == [])
        #expect(log.stock("SKU-C").available == 3)
    }

    @Test func aSagaPastItsDeadlineIsCancelledAndCompensated() async throws {
        var settings = try await TestServers.isolatedSettings()
        settings.sagaDeadline = .seconds(2)
        settings.sagaSweepInterval = .milliseconds(200)
        // No payment service: the saga stalls after the stock is reserved.
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [.order, .inventory, .notification])
        let order = try await app.test(.live) { client in
            try await client.restock("SKU-D", quantity: 4, unitPrice: 300)
            let order = try await client.place([("SKU-D", 4, 300)], token: "tok_ok")
            let views = try await client.waitForOutcomes([order])
            #expect(views[order]?.status == "CANCELLED")
            #expect(views[order]?.cancellationReason == "DEADLINE_EXCEEDED")
            return order
        }
        let log = try await SagaLog.load(settings)
        #expect(log.violations() == [])
        // Reserved, then given back (the reservation may even land after the cancel, if the inventory
        // service joined its group late: the release follows it either way).
        let released = try await TestServers.eventually { () -> Bool? in
            let log = try await SagaLog.load(settings)
            let reservation = (log.streams[StreamNames.reservation(order)] ?? []).map(\.typeName)
            return reservation == ["StockReserved", "StockReleased"] && log.stock("SKU-D").available == 4 ? true : nil
        }
        #expect(released == true, "the stock of the expired order was not released")
    }

    /// The broker frozen for longer than the saga deadline: orders in flight wait for our own
    /// pipeline, they are not stuck, so none is cancelled for its deadline; all complete once the
    /// broker is back.
    @Test func aBrokerOutageLongerThanTheDeadlineCancelsNoOrder() async throws {
        var settings = try await TestServers.isolatedSettings()
        let broker = PrivateBroker()
        try broker.start()
        settings.kafka.brokers = broker.brokers
        // Short beside the outage; the groups' rejoining after it is covered by the settle time.
        settings.sagaDeadline = .seconds(8)
        settings.sagaSweepInterval = .milliseconds(200)
        let app = try await Processes.dev(settings, logger: TestServers.logger)
        try await app.test(.live) { client in
            try await client.restock("SKU-F", quantity: 100, unitPrice: 250)
            let first = try await client.place([("SKU-F", 1, 250)], token: "tok_ok")
            _ = try await client.waitForOutcomes([first])
            broker.freeze()
            var orders: [String] = []
            for _ in 0..<5 { orders.append(try await client.place([("SKU-F", 1, 250)], token: "tok_ok")) }
            // Twice the deadline.
            try await Task.sleep(for: .seconds(20))
            broker.thaw()
            let views = try await client.waitForOutcomes(orders, timeout: .seconds(90))
            for order in orders {
                #expect(views[order]?.status == "COMPLETED", "\(order): \(views[order]?.status ?? "?") \(views[order]?.cancellationReason ?? "")")
            }
        }
        #expect(try await SagaLog.load(settings).violations() == [])
    }

    /// A saga service (payment) down for longer than the deadline: its consumer group falls behind
    /// the topic, so the orders waiting for it wait for the pipeline and are not cancelled for their
    /// deadline; all complete once it is back.
    @Test func aPaymentServiceDownLongerThanTheDeadlineCancelsNoOrder() async throws {
        var isolated = try await TestServers.isolatedSettings()
        // Beside the outage below: the deadline stops counting within about 5 s of a group falling
        // behind (it compares with what the topic held 5 s before).
        isolated.sagaDeadline = .seconds(10)
        isolated.sagaSweepInterval = .milliseconds(200)
        let settings = isolated
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [.order, .inventory, .notification])
        try await app.test(.live) { client in
            try await client.restock("SKU-G", quantity: 100, unitPrice: 250)
            let payment = try ChildProcess.orderly(["service", "payment"], settings: settings)
            let first = try await client.place([("SKU-G", 1, 250)], token: "tok_ok")
            _ = try await client.waitForOutcomes([first])
            payment.kill()
            await payment.process.exited()
            var orders: [String] = []
            for _ in 0..<3 { orders.append(try await client.place([("SKU-G", 1, 250)], token: "tok_ok")) }
            // Two and a half deadlines.
            try await Task.sleep(for: .seconds(25))
            let restarted = try ChildProcess.orderly(["service", "payment"], settings: settings)
            let views = try await client.waitForOutcomes(orders, timeout: .seconds(90))
            for order in orders {
                #expect(views[order]?.status == "COMPLETED", "\(order): \(views[order]?.status ?? "?") \(views[order]?.cancellationReason ?? "")")
            }
            restarted.stop()
        }
        #expect(try await SagaLog.load(settings).violations() == [])
    }

    /// The broker dies and comes back empty (no topics, no messages, no group offsets) while orders
    /// are in flight and consumers are running: the log is the truth, so the relay republishes it and
    /// every consumer group reads the topic again from its start, dropping what it already applied.
    /// Every order ends once, nothing is charged twice, and new orders flow as before.
    @Test func aBrokerThatComesBackEmptyLosesNoOrderAndDoublesNothing() async throws {
        var isolated = try await TestServers.isolatedSettings()
        let broker = PrivateBroker()
        try broker.start()
        isolated.kafka.brokers = broker.brokers
        let settings = isolated
        let app = try await Processes.dev(settings, logger: TestServers.logger)
        try await app.test(.live) { client in
            try await client.restock("SKU-E", quantity: 1000, unitPrice: 250)
            var before: [String] = []
            for _ in 0..<20 { before.append(try await client.place([("SKU-E", 1, 250)], token: "tok_ok")) }
            _ = try await client.waitForOutcomes(before)
            // Orders placed just before the loss are in flight: some of their events were delivered
            // to the old broker, some never will be.
            var inFlight: [String] = []
            for _ in 0..<10 { inFlight.append(try await client.place([("SKU-E", 1, 250)], token: "tok_ok")) }
            try await broker.restartEmpty()
            var after: [String] = []
            for _ in 0..<10 { after.append(try await client.place([("SKU-E", 1, 250)], token: "tok_ok")) }
            let views = try await client.waitForOutcomes(before + inFlight + after, timeout: .seconds(120))
            for order in before + inFlight + after {
                #expect(views[order]?.status == "COMPLETED", "\(order): \(views[order]?.status ?? "?") \(views[order]?.cancellationReason ?? "")")
            }
            _ = try await SagaLog.waitForShelf(settings, sku: "SKU-E", onHand: 960)
        }
        let log = try await SagaLog.load(settings)
        #expect(log.violations() == [])
        #expect(log.stock("SKU-E").onHand == 960)
    }

    @Test func fiftyOrdersRaceForTheLastTenUnitsAndExactlyTenComplete() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger)
        try await app.test(.live) { client in
            try await client.restock("SKU-LAST", quantity: 10, unitPrice: 2500)
            // Placed ten at a time: the test client sends over one connection, one request after
            // another, and gives up on a request after 20 s; fifty at once, each answered only once
            // its commit is flushed, came close to that on a loaded machine. The race is the
            // services': every order is placed well before the first reservations are decided.
            var orders: [String] = []
            for _ in 0..<5 {
                orders += try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<10 {
                        group.addTask { try await client.place([("SKU-LAST", 1, 2500)], token: "tok_ok") }
                    }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
            }
            let views = try await client.waitForOutcomes(orders, timeout: .seconds(120))
            let completed = views.values.filter { $0.status == "COMPLETED" }
            let cancelled = views.values.filter { $0.status == "CANCELLED" && $0.cancellationReason == "OUT_OF_STOCK" }
            #expect(completed.count == 10)
            #expect(cancelled.count == 40)
            _ = try await SagaLog.waitForShelf(settings, sku: "SKU-LAST", onHand: 0)
        }
        let log = try await SagaLog.load(settings)
        #expect(log.violations() == [])
        #expect(log.stock("SKU-LAST").onHand == 0)
        #expect(log.stock("SKU-LAST").reserved == 0)
        // The SKU's stock events, written on behalf of 50 orders, travel under the SKU's own key: a
        // reader of the topic gets them in stream order.
        let stockEvents = try await TestServers.withPostgres(settings) { client in
            try await PostgresEventStore(client: client, logger: TestServers.logger).readStream(StreamNames.stock("SKU-LAST"), from: 1)
        }
        #expect(stockEvents.count == 21)  // the restock, then 10 reservations and 10 sales
        let received = try await consumeTopic(settings.topic, configuration: settings.kafka, until: Set(stockEvents.map(\.id)))
        expectComplete(received.filter { $0.streamID == StreamNames.stock("SKU-LAST") }, expected: stockEvents)
    }

    @Test func aPaymentServiceKilledMidSagaFinishesTheSagasOnRestart() async throws {
        let settings = try await TestServers.isolatedSettings()
        // The order and payment services run as processes of their own, like in production.
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [.inventory, .notification])
        let opsPort = TestPorts.next()
        let orderService = try ChildProcess.orderly(["service", "order"], settings: settings, extra: ["ORDERLY_OPS_PORT": "\(opsPort)"])
        try await app.test(.live) { client in
            try await client.restock("SKU-K", quantity: 1000, unitPrice: 100)
            let payment = try ChildProcess.orderly(["service", "payment"], settings: settings)
            var orders: [String] = []
            for _ in 0..<20 { orders.append(try await client.place([("SKU-K", 1, 100)], token: "tok_ok")) }
            // Kill it (SIGKILL, no cleanup) once it has charged some orders.
            let charged = try await TestServers.eventually(interval: .milliseconds(20)) { () -> Bool? in
                try await SagaLog.count(settings, type: "PaymentProcessed") > 0 ? true : nil
            }
            #expect(charged == true, "the payment service never charged:\n\(payment.output)")
            payment.kill()
            await payment.process.exited()
            for _ in 0..<10 { orders.append(try await client.place([("SKU-K", 1, 100)], token: "tok_ok")) }
            let restarted = try ChildProcess.orderly(["service", "payment"], settings: settings)
            let views = try await client.waitForOutcomes(orders, timeout: .seconds(120))
            #expect(views.values.filter { $0.status == "COMPLETED" }.count == 30, "\(restarted.output.suffix(2000))")
            _ = try await SagaLog.waitForShelf(settings, sku: "SKU-K", onHand: 970)
            restarted.stop()
        }
        // The order service measured every saga and reports what is in flight. The in-flight gauge
        // is counted again every 10 s by the deadline sweep, so it may trail the last completion.
        let metrics = try await TestServers.eventually { () -> String? in
            guard let text = try? await httpGet("http://127.0.0.1:\(opsPort)/metrics") else { return nil }
            let measured = text.contains(#"orderly_saga_duration_seconds_count{outcome="completed",reason=""} 30"#)
            return measured && text.contains("orderly_sagas_in_flight 0") ? text : nil
        }
        let latest = (try? await httpGet("http://127.0.0.1:\(opsPort)/metrics")) ?? orderService.output
        #expect(metrics != nil, "saga duration missing or sagas still in flight:\n\(latest)")
        #expect(metrics?.contains("orderly_sagas_past_deadline 0") == true)
        orderService.stop()
        let log = try await SagaLog.load(settings)
        #expect(log.violations() == [])
        #expect(try await SagaLog.count(settings, type: "PaymentProcessed") == 30)
        #expect(log.stock("SKU-K").onHand == 970)
    }
}

struct PlacedOrder: Decodable {
    var orderId: String
    var position: Int64
}

extension TestClientProtocol {
    func restock(_ sku: String, quantity: Int, unitPrice: Int) async throws {
        let response = try await self.send(
            uri: "/inventory/\(sku)/restock", method: .post, body: ByteBuffer(string: #"{"quantity":\#(quantity),"unitPrice":\#(unitPrice)}"#))
        #expect(response.status == .accepted, "\(String(buffer: response.body))")
    }

    /// Places an order; returns its id.
    func place(_ lines: [(String, Int, Int)], token: String, customer: String = "c-saga") async throws -> String {
        let lineText = lines.map { #"{"sku":"\#($0.0)","quantity":\#($0.1),"unitPrice":\#($0.2)}"# }.joined(separator: ",")
        let body = #"{"customerId":"\#(customer)","currency":"EUR","lines":[\#(lineText)],"paymentToken":"\#(token)"}"#
        let response = try await self.send(uri: "/orders", method: .post, body: ByteBuffer(string: body))
        #expect(response.status == .accepted, "\(String(buffer: response.body))")
        return try JSONDecoder().decode(PlacedOrder.self, from: Data(response.body.readableBytesView)).orderId
    }

    func order(_ id: String) async throws -> OrderView? {
        let response = try await self.send(uri: "/orders/\(id)", method: .get)
        guard response.status == .ok else { return nil }
        return try JSONDecoder().decode(OrderView.self, from: Data(response.body.readableBytesView))
    }

    /// Waits until every order has ended, its customer has been notified, and `also` holds.
    func waitForOutcomes(
        _ ids: [String], timeout: Duration = .seconds(60), also: @Sendable (OrderView) -> Bool = { _ in true }
    ) async throws -> [String: OrderView] {
        var views: [String: OrderView] = [:]
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for id in ids where views[id] == nil {
                if let view = try await self.order(id), ["COMPLETED", "CANCELLED"].contains(view.status),
                    view.notified?.isEmpty == false, also(view)
                {
                    views[id] = view
                }
            }
            if views.count == ids.count { return views }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("\(ids.count - views.count) of \(ids.count) orders did not reach their outcome in time")
        return views
    }
}

/// The whole event log of a test, and the saga's invariants checked over it.
struct SagaLog {
    var streams: [String: [DomainEvent]]

    static func load(_ settings: Settings) async throws -> SagaLog {
        try await TestServers.withPostgres(settings) { client in
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            // The whole log: as many events as the table holds now, not just up to the first empty
            // read (a transaction elsewhere in the cluster can hold the tailing horizon for a moment,
            // and the invariants were then checked on part of the log).
            var committed: Int64 = 0
            for try await count in try await client.query("SELECT count(*) FROM events", logger: TestServers.logger).decode(Int64.self) {
                committed = count
            }
            var streams: [String: [DomainEvent]] = [:]
            var read: Int64 = 0
            for event in try await readVisible(store, count: Int(committed), limit: 1000) {
                let decoded = try EventCodec.decode(EncodedEvent(type: event.type, schemaVersion: event.schemaVersion, data: event.data))
                streams[event.streamID, default: []].append(decoded)
                read += 1
            }
            #expect(read >= committed, "the saga log was read in part: \(read) of \(committed) events")
            return SagaLog(streams: streams)
        }
    }

    static func count(_ settings: Settings, type: String) async throws -> Int {
        try await TestServers.withPostgres(settings) { client in
            var total = 0
            for try await count in try await client.query("SELECT count(*) FROM events WHERE event_type = \(type)", logger: TestServers.logger)
                .decode(Int.self)
            {
                total = count
            }
            return total
        }
    }

    /// Messages the recording sender holds: one per order and outcome, however often it was asked.
    static func notifications(_ settings: Settings) async throws -> Int64 {
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.notificationsDatabase)
        return try await mongo.collection(RecordingNotificationSender.collection).count()
    }

    func stock(_ sku: String) -> Stock { Stock.fold(self.streams[StreamNames.stock(sku)] ?? []) }

    /// Waits (inside the test's run) until the SKU's stock stream has `onHand` units and none
    /// reserved, and returns the last stock read. The inventory service takes a sold unit off the
    /// shelf (StockItemCommitted) only after the order completed, and returns a failed shipment's
    /// units after its refund: a test that stops its processes as soon as the outcomes are seen
    /// would stop some of those appends midway (they happen on the next start).
    static func waitForShelf(_ settings: Settings, sku: String, onHand: Int) async throws -> Stock {
        var last = Stock()
        _ = try await TestServers.eventually { () -> Bool? in
            last = try await SagaLog.load(settings).stock(sku)
            return last.onHand == onHand && last.reserved == 0 ? true : nil
        }
        #expect(last.onHand == onHand && last.reserved == 0, "\(sku): \(last)")
        return last
    }

    /// Every broken rule, in words: each order ends exactly once; a completed order was charged once
    /// and not refunded; nothing is refunded without a charge; stock never goes below zero; at most one
    /// notification per order and outcome.
    func violations() -> [String] {
        var found: [String] = []
        for (stream, events) in self.streams {
            let types = events.map(\.typeName)
            func count(_ type: String) -> Int { types.filter { $0 == type }.count }
            if stream.hasPrefix("order-") {
                let terminal = count(OrderCompleted.typeName) + count(OrderCancelled.typeName)
                if terminal != 1 { found.append("\(stream) has \(terminal) terminal events") }
                let orderID = String(stream.dropFirst("order-".count))
                let payments = (self.streams[StreamNames.payment(orderID)] ?? []).map(\.typeName)
                // A completed order keeps its one charge, unless its shipment failed (then it is refunded).
                let shipmentFailed = (self.streams[StreamNames.shipment(orderID)] ?? []).contains { $0.typeName == ShipmentFailed.typeName }
                if count(OrderCompleted.typeName) == 1
                    && (payments.filter { $0 == PaymentProcessed.typeName }.count != 1
                        || payments.contains(PaymentRefunded.typeName) != shipmentFailed)
                {
                    found.append("\(stream) completed without exactly one kept charge (or a refund for its failed shipment): \(payments)")
                }
            } else if stream.hasPrefix("payment-") {
                if count(PaymentProcessed.typeName) > 1 { found.append("\(stream) charged \(count(PaymentProcessed.typeName)) times") }
                if count(PaymentRefunded.typeName) > count(PaymentProcessed.typeName) { found.append("\(stream) refunded without a charge") }
            } else if stream.hasPrefix("stock-") {
                var stock = Stock()
                for event in events {
                    stock.apply(event)
                    if stock.available < 0 || stock.onHand < 0 { found.append("\(stream) went below zero: \(stock)") }
                }
            } else if stream.hasPrefix("notification-") {
                let outcomes = events.compactMap { event -> String? in
                    if case .notificationSent(let sent) = event { sent.outcome.rawValue } else { nil }
                }
                if Set(outcomes).count != outcomes.count { found.append("\(stream) notified of one outcome twice: \(outcomes)") }
            } else if stream.hasPrefix("shipment-") {
                let ends = [ShipmentDelivered.typeName, ShipmentFailed.typeName, ShipmentSkipped.typeName].map(count).reduce(0, +)
                if ends > 1 { found.append("\(stream) has \(ends) ends: \(types)") }
                if count(ShipmentRequested.typeName) > 1 || count(ShipmentDispatched.typeName) > 1 {
                    found.append("\(stream) repeats a step: \(types)")
                }
                let orderEvents = (self.streams[StreamNames.order(String(stream.dropFirst("shipment-".count)))] ?? []).map(\.typeName)
                if !orderEvents.contains(OrderCompleted.typeName) { found.append("\(stream) shipped an order that was never paid") }
            }
        }
        return found
    }
}
