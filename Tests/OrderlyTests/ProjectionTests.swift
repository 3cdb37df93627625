import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import OrderlyDomain
import OrderlyEventStore
import OrderlyProcesses
import OrderlyReadModels
import OrderlyServices
import PostgresNIO
import Testing

/// The read models against the real servers: counting models under repeats, verify, rebuilds while
/// orders keep coming, a projector killed mid-run, and the query routes.
@Suite struct ProjectionTests {
    /// Every read model's differences from a fresh fold of the test's log.
    static func differences(_ settings: Settings) async throws -> [String: [ProjectionDifference]] {
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        return try await TestServers.withPostgres(settings) { client in
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            var all: [String: [ProjectionDifference]] = [:]
            for projection in ReadModelCatalog.projections {
                all[projection.name] = try await Self.verify(projection, store: store, mongo: mongo)
            }
            return all
        }
    }

    static func verify<P: ReadModelProjection>(_ projection: P.Type, store: any EventStore, mongo: MongoClient) async throws
        -> [ProjectionDifference]
    {
        try await ProjectionVerifier(projection, store: store, client: mongo, logger: TestServers.logger).verify().differences
    }

    @Test func countingModelsCountEachEventOnceThroughRepeatsFromEverySource() async throws {
        // Six orders of two customers in an in-memory log; each order's events travel in "its" partition.
        let store = InMemoryEventStore()
        for index in 0..<6 {
            let order = "o-\(index)"
            let customer = "c-\(index % 2)"
            var events: [DomainEvent] = [
                .orderPlaced(
                    OrderPlaced(
                        orderId: order, customerId: customer, currency: "EUR",
                        lines: [OrderLine(sku: "S", quantity: 1, unitPrice: 100 * Int64(index + 1))],
                        total: 100 * Int64(index + 1), paymentToken: "tok_ok", placedAt: Date()))
            ]
            if index % 3 == 0 {
                events.append(
                    .orderCompleted(
                        OrderCompleted(orderId: order, customerId: customer, total: 100 * Int64(index + 1), currency: "EUR", completedAt: Date())))
            } else if index % 3 == 1 {
                events.append(.orderCancelled(OrderCancelled(orderId: order, customerId: customer, reason: .paymentDeclined, cancelledAt: Date())))
            }
            for event in events {
                _ = try await store.append(
                    [try NewEvent(event, metadata: EventMetadata(correlationId: order))], to: "order-\(order)", expecting: .any)
            }
        }
        let log = try await store.readAll(after: .start, limit: 100)
        let partitions = log.map { Int32($0.metadata.correlationId?.last?.wholeNumberValue ?? 0) % 2 }
        // Partition 0 delivered, then partition 1, then partition 0 again from the start (a consumer
        // that crashed before committing), in batches of different sizes.
        var deliveries: [[(RecordedEvent, Int32)]] = []
        let zero = zip(log, partitions).filter { $0.1 == 0 }
        let one = zip(log, partitions).filter { $0.1 == 1 }
        deliveries.append(Array(zero.prefix(3)))
        deliveries.append(Array(one))
        deliveries.append(Array(zero))
        deliveries.append(Array(zero.suffix(2)) + Array(one.prefix(2)))

        let mongo = try MongoClient(uri: TestServers.settings.mongoURI, database: TestServers.uniqueName("counting_test"))
        for delivery in deliveries {
            for projection in [CustomerOrdersProjection.self, SalesDailyProjection.self] as [any ReadModelProjection.Type] {
                try await Self.deliver(projection, delivery, mongo: mongo)
            }
        }
        let customers = MongoSalesReadModel(collections: ActiveCollections(client: mongo))
        let first = try #require(try await customers.customerSummary(customerId: "c-0"))
        // c-0 has o-0 (completed, 100), o-2 (open), o-4 (cancelled).
        #expect([first.ordersPlaced, first.ordersCompleted, first.ordersCancelled, first.ordersOpen] == [3, 1, 1, 1])
        #expect(first.spent == ["EUR": 100])
        #expect(first.lastOrderId == "o-4")
        let second = try #require(try await customers.customerSummary(customerId: "c-1"))
        // c-1 has o-1 (cancelled), o-3 (completed, 400), o-5 (open).
        #expect([second.ordersPlaced, second.ordersCompleted, second.ordersCancelled] == [3, 1, 1])
        #expect(second.spent == ["EUR": 400])
        let today = UTCTime.day(Date()).number
        let days = try await customers.dailySales(from: today - 1, to: today + 1)
        #expect(days.count == 1)
        #expect(days.first.map { [$0.placed, $0.completed, $0.cancelled] } == [6, 2, 2])
        #expect(days.first?.revenue == ["EUR": 500])

        // A fresh fold of the log agrees; a tampered document and a lost one are reported.
        #expect(try await Self.verify(CustomerOrdersProjection.self, store: store, mongo: mongo) == [])
        #expect(try await Self.verify(SalesDailyProjection.self, store: store, mongo: mongo) == [])
        _ = try await mongo.collection("customer_orders").upsert(filter: ["_id": "c-1"], update: ["$set": ["ordersPlaced": 99]])
        _ = try await mongo.collection("sales_daily").drop()
        let tampered = try await Self.verify(CustomerOrdersProjection.self, store: store, mongo: mongo)
        #expect(tampered.map(\.documentID) == ["c-1"] && tampered.first?.field == "ordersPlaced")
        #expect(tampered.first?.expected == "3" && tampered.first?.actual == "99")
        let lost = try await Self.verify(SalesDailyProjection.self, store: store, mongo: mongo)
        #expect(lost.count == 1 && lost.first?.actual == "no document")
        try await mongo.dropDatabase()
    }

    static func deliver<P: ReadModelProjection>(_ projection: P.Type, _ delivery: [(RecordedEvent, Int32)], mongo: MongoClient) async throws {
        let sourced = try delivery.compactMap { try P.sourced($0.0, source: SourcedEvent.source(partition: $0.1)) }
        try await P.apply(sourced, to: mongo.collection(P.name))
    }

    @Test func aRebuildDuringLiveOrdersLosesNothingAndReadersNeverSeeItHalfBuilt() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger)
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        try await app.test(.live) { client in
            try await client.restock("SKU-RB", quantity: 10_000, unitPrice: 100)
            var orders: [String] = []
            for index in 0..<30 {
                orders.append(try await client.place([("SKU-RB", 1, 100)], token: index % 4 == 0 ? "tok_declined" : "tok_ok", customer: "c-rb"))
            }
            let first = try #require(orders.first)
            _ = try await client.waitForOutcomes(Array(orders.prefix(5)))
            let before = try #require(try await TestServers.eventually { try await client.summary("c-rb") })

            // Orders keep coming while both rebuilds run, and readers keep reading.
            let placing = Task {
                var more: [(id: String, at: ContinuousClock.Instant)] = []
                for index in 0..<40 {
                    more.append(
                        (try await client.place([("SKU-RB", 1, 100)], token: index % 4 == 0 ? "tok_declined" : "tok_ok", customer: "c-rb"), .now))
                    try await Task.sleep(for: .milliseconds(30))
                }
                return more
            }
            let reading = Task {
                var lowest = before.ordersPlaced
                var misses = 0
                var regressions = 0
                let stop = ContinuousClock.now + .seconds(120)
                while !Task.isCancelled, ContinuousClock.now < stop {
                    guard let order = try? await client.order(first), !Task.isCancelled else {
                        if !Task.isCancelled { misses += 1 }
                        continue
                    }
                    _ = order
                    if let summary = try? await client.summary("c-rb") {
                        if summary.ordersPlaced < lowest { regressions += 1 }
                        lowest = max(lowest, summary.ordersPlaced)
                    } else if !Task.isCancelled {
                        misses += 1
                    }
                    try? await Task.sleep(for: .milliseconds(10))
                }
                return (misses, regressions)
            }
            let definitions = try ReadModelCatalog.definitions(from: TestServers.repositoryRoot + "/projections")
            let rebuildStarted = ContinuousClock.now
            let reports = try await TestServers.withPostgres(settings) { postgres in
                let store = PostgresEventStore(client: postgres, logger: TestServers.logger)
                var reports: [RebuildReport] = []
                for (projection, definition) in definitions where ["orders", "customer_orders"].contains(projection.name) {
                    reports.append(try await Self.rebuild(projection, definition: definition, store: store, mongo: mongo))
                }
                return reports
            }
            let rebuildEnded = ContinuousClock.now
            let more = try await placing.value
            orders += more.map(\.id)
            #expect(more.contains { $0.at > rebuildStarted && $0.at < rebuildEnded }, "no order was placed while the rebuilds ran")
            try await Task.sleep(for: .milliseconds(300))
            reading.cancel()
            let (misses, regressions) = await reading.value
            #expect(misses == 0, "a reader found no order or summary during the rebuild")
            #expect(regressions == 0, "a reader saw the customer's count go down (a half-built model)")
            #expect(reports.count == 2 && reports.allSatisfy { $0.events > 0 })

            // Both now live in their new collections, and every order made it there.
            let catalog = ProjectionCatalog(client: mongo)
            for report in reports {
                let state = try #require(try await catalog.state(report.collection.hasPrefix("orders") ? "orders" : "customer_orders"))
                #expect(state.collection == report.collection && state.rebuiltThrough != nil && state.rebuild == nil)
            }
            let outcomes = try await client.waitForOutcomes(orders, timeout: .seconds(90))
            #expect(outcomes.count == 70)
            // The customers' model has its own consumer group: it may be a moment behind the orders'.
            let summary = try #require(
                try await TestServers.eventually { () -> CustomerOrdersView? in
                    let summary = try await client.summary("c-rb")
                    return summary?.ordersPlaced == 70 && summary?.ordersOpen == 0 ? summary : nil
                }, "the customer's summary never counted all 70 orders as ended")
            #expect(summary.ordersCompleted == Int64(outcomes.values.filter { $0.status == "COMPLETED" }.count))
            // While the projectors still run: verify looks again at a document a projector is merely behind on.
            let differences = try await Self.differences(settings)
            #expect(differences.values.flatMap { $0 } == [], "\(differences)")
        }

        // Raising a definition's version rebuilds that read model on its own.
        let definitions = try ReadModelCatalog.definitions(from: TestServers.repositoryRoot + "/projections")
        var sales = try #require(definitions.first { $0.0.name == "sales_daily" }?.1)
        sales.version += 1
        let raised = sales
        try await TestServers.withPostgres(settings) { postgres in
            let rebuilder = ProjectionRebuilder(
                SalesDailyProjection.self, definition: raised, store: PostgresEventStore(client: postgres, logger: TestServers.logger),
                client: mongo, logger: TestServers.logger)
            let state = try await whileRunning(RebuildOnNewVersion(rebuilder: rebuilder, logger: TestServers.logger)) {
                try await TestServers.eventually { () -> ProjectionState? in
                    let state = try await ProjectionCatalog(client: mongo).state("sales_daily")
                    return state?.version == raised.version ? state : nil
                }
            }
            #expect(state?.collection.hasPrefix("sales_daily_v\(raised.version)_") == true)
        }
        #expect(try await Self.differences(settings)["sales_daily"] == [])
        try await mongo.dropDatabase()
    }

    static func rebuild<P: ReadModelProjection>(_ projection: P.Type, definition: ProjectionDefinition, store: any EventStore, mongo: MongoClient)
        async throws -> RebuildReport
    {
        try await ProjectionRebuilder(projection, definition: definition, store: store, client: mongo, logger: TestServers.logger, batchSize: 50)
            .rebuild()
    }

    @Test func aProjectorKilledMidRunLeavesEveryReadModelEqualToAFreshFold() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger, projector: false)
        try await app.test(.live) { client in
            let projector = try ChildProcess.orderly(["project"], settings: settings)
            try await client.restock("SKU-KP", quantity: 10_000, unitPrice: 100)
            var orders: [String] = []
            for index in 0..<40 {
                orders.append(
                    try await client.place([("SKU-KP", 2, 100)], token: index % 5 == 0 ? "tok_declined" : "tok_ok", customer: "c-\(index % 4)"))
            }
            // SIGKILL once it has written some orders, with more on their way, then start another.
            _ = try await TestServers.eventually(interval: .milliseconds(20)) { try await client.order(orders[5]) }
            projector.kill()
            await projector.process.exited()
            for index in 0..<20 { orders.append(try await client.place([("SKU-KP", 1, 100)], token: "tok_ok", customer: "c-\(index % 4)")) }
            let restarted = try ChildProcess.orderly(["project"], settings: settings)
            let outcomes = try await client.waitForOutcomes(orders, timeout: .seconds(120))
            #expect(outcomes.count == 60, "\(restarted.output.suffix(2000))")
            // Each read model has its own consumer group: the customers' may be a moment behind the orders'.
            let placed = try await TestServers.eventually { () -> Int64? in
                let total = try await (0..<4).asyncMap { try await client.summary("c-\($0)")?.ordersPlaced ?? 0 }.reduce(0, +)
                return total == 60 ? total : nil
            }
            #expect(placed == 60)
            let differences = try await Self.differences(settings)
            #expect(differences.values.flatMap { $0 } == [], "\(differences)")
            restarted.stop()
        }
    }

    @Test func salesAndCustomerRoutesAnswerAndRejectBadQueries() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger)
        try await app.test(.live) { client in
            try await client.restock("SKU-Q", quantity: 100, unitPrice: 250)
            let orders = [
                try await client.place([("SKU-Q", 2, 250)], token: "tok_ok", customer: "c-q"),
                try await client.place([("SKU-Q", 1, 250)], token: "tok_declined", customer: "c-q"),
            ]
            _ = try await client.waitForOutcomes(orders)
            let summary = try await TestServers.eventually { () -> CustomerOrdersView? in
                let summary = try await client.summary("c-q")
                return summary?.ordersOpen == 0 && summary?.ordersPlaced == 2 ? summary : nil
            }
            #expect(summary?.spent == ["EUR": 500] && summary?.ordersCancelled == 1)
            let today = UTCTime.day(Date()).text
            let sales = try await TestServers.eventually { () -> String? in
                let response = try await client.send(uri: "/sales/daily?from=\(today)&to=\(today)", method: .get)
                let body = String(buffer: response.body)
                return response.status == .ok && body.contains(#""completed":1"#) && body.contains(#""cancelled":1"#) ? body : nil
            }
            #expect(sales?.contains(#""revenue":{"EUR":500}"#) == true, "\(sales ?? "")")
            for (uri, field) in [
                ("/sales/daily?from=2026-13-01", "from"), ("/sales/daily?from=2026-11-23&to=2026-11-01", "from"),
                ("/sales/daily?from=2020-01-01&to=2026-01-01", "to"), ("/sales/daily?to=yesterday", "to"),
            ] {
                let response = try await client.send(uri: uri, method: .get)
                #expect(response.status == .badRequest, "\(uri)")
                #expect(String(buffer: response.body).contains(#""field":"\#(field)""#), "\(uri): \(String(buffer: response.body))")
            }
            let unknown = try await client.send(uri: "/customers/nobody/summary", method: .get)
            #expect(unknown.status == .notFound && unknown.headers[.contentType] == "application/problem+json")
        }
    }
}

extension TestClientProtocol {
    func summary(_ customer: String) async throws -> CustomerOrdersView? {
        let response = try await self.send(uri: "/customers/\(customer)/summary", method: .get)
        guard response.status == .ok else { return nil }
        return try JSONDecoder().decode(CustomerOrdersView.self, from: Data(response.body.readableBytesView))
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
