import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import OrderlyContracts
import OrderlyDomain
import OrderlyEventStore
import OrderlyProcesses
import Testing

@testable import OrderlyReadModels

/// The read side over HTTP: listing with filters and cursor pages, read-your-writes, and the
/// projection's definition.
@Suite struct QueryTests {
    @Test func theInventoryModelCountsEachStockEventOnce() async throws {
        let mongo = try MongoClient(uri: TestServers.settings.mongoURI, database: TestServers.uniqueName("inventory_test"))
        let inventory = mongo.collection(InventoryProjection.name)
        let events: [DomainEvent] = [
            .stockRestocked(StockRestocked(sku: "S", quantity: 10, unitPrice: 250)),
            .stockItemReserved(StockItemReserved(sku: "S", orderId: "o1", quantity: 3)),
            .stockItemReserved(StockItemReserved(sku: "S", orderId: "o2", quantity: 2)),
            .stockItemReleased(StockItemReleased(sku: "S", orderId: "o2", quantity: 2)),
            .stockItemCommitted(StockItemCommitted(sku: "S", orderId: "o1", quantity: 3)),
        ]
        func apply(_ index: Int) async throws -> Int {
            let recorded = try TestEvents.recorded(events[index], stream: "stock-S", version: Int64(index + 1), position: Int64(index + 1))
            return try await InventoryProjection.apply([SourcedEvent(event: events[index], recorded: recorded, source: "p0")], to: inventory)
        }
        for index in events.indices {
            #expect(try await apply(index) == 1)
            // Delivered again (after a crash, before the commit): no second effect.
            #expect(try await apply(index) == 0)
            if index > 0 { #expect(try await apply(index - 1) == 0) }
        }
        let view = try #require(try await MongoInventoryReadModel(client: mongo).stock(sku: "S"))
        let stock = Stock.fold(events)
        #expect([view.onHand, view.reserved, view.available, view.version] == [7, 0, 7, 5])
        #expect(view.unitPrice == 250)
        #expect(view.onHand == Int64(stock.onHand) && view.available == Int64(stock.available))
        try await mongo.dropDatabase()
    }

    /// The live projector keeps what it wrote and does not read it back; another writer (a second
    /// projector during a rebalance) that moved a document on must not be overwritten with the stale
    /// copy: its guarded write is refused, the document read and folded again.
    @Test func aProjectorsRememberedDocumentsNeverOverwriteAnotherWritersChange() async throws {
        let mongo = try MongoClient(uri: TestServers.settings.mongoURI, database: TestServers.uniqueName("written_views_test"))
        let orders = mongo.collection(OrdersProjection.name)
        func sourced(_ event: DomainEvent, version: Int64) throws -> [SourcedEvent] {
            let recorded = try TestEvents.recorded(event, stream: "order-o-1", version: version, position: version, correlation: "o-1")
            return try [recorded].compactMap { try OrdersProjection.sourced($0, source: "p0") }
        }
        let placed = try sourced(
            .orderPlaced(
                OrderPlaced(
                    orderId: "o-1", customerId: "c-1", currency: "EUR", lines: [OrderLine(sku: "S", quantity: 1, unitPrice: 100)], total: 100,
                    paymentToken: "tok_ok", placedAt: Date())), version: 1)
        let requested = try sourced(.paymentRequested(PaymentRequested(orderId: "o-1", currency: "EUR", paymentToken: "tok_ok")), version: 2)
        let cancelled = try sourced(
            .orderCancelled(OrderCancelled(orderId: "o-1", customerId: "c-1", reason: .customerRequest, cancelledAt: Date())), version: 3)
        let remembered = WrittenViews<OrderView>()
        #expect(try await OrdersProjection.apply(placed, to: orders, cache: remembered) == 1)
        // Another writer, with no memory of ours, moves the document on.
        #expect(try await OrdersProjection.apply(requested, to: orders) == 1)
        // Ours still remembers revision 1: the write is refused, read again, and both changes stay.
        #expect(try await OrdersProjection.apply(cancelled, to: orders, cache: remembered) == 1)
        let view = try #require(try await MongoOrderReadModel(client: mongo).order(id: "o-1"))
        #expect(view.timeline.map(\.type) == ["OrderPlaced", "PaymentRequested", "OrderCancelled"])
        #expect(view.status == "CANCELLED")
        #expect(view.revision == 3)
        // What it remembers now is what is stored: a repeat changes nothing.
        #expect(try await OrdersProjection.apply(cancelled, to: orders, cache: remembered) == 0)
        // And it is not read back: with the stored document gone, the next event still lands on the
        // remembered one (read from the collection, nothing would be there to fold it into).
        try await orders.drop()
        let notified = try sourced(
            .notificationSent(NotificationSent(orderId: "o-1", customerId: "c-1", outcome: .cancelled, message: "cancelled")), version: 4)
        #expect(try await OrdersProjection.apply(notified, to: orders) == 0)
        #expect(try await OrdersProjection.apply(notified, to: orders, cache: remembered) == 1)
        let unread = try #require(try await MongoOrderReadModel(client: mongo).order(id: "o-1"))
        #expect(unread.timeline.map(\.type) == ["OrderPlaced", "PaymentRequested", "OrderCancelled", "NotificationSent"])
        try await mongo.dropDatabase()
    }

    @Test func orderDocumentsWrittenBeforeTheSagaKeepWorking() async throws {
        let mongo = try MongoClient(uri: TestServers.settings.mongoURI, database: TestServers.uniqueName("upgrade_test"))
        let orders = mongo.collection(OrdersProjection.name)
        // The shape session 1's projector wrote: no applied versions, no revision, no page key.
        _ = try await orders.upsert(
            filter: ["_id": "o-old"],
            update: [
                "$set": [
                    "orderId": "o-old", "customerId": "c-old", "status": "PLACED", "currency": "EUR",
                    "lines": [["sku": "S", "quantity": 1, "unitPrice": 100]], "total": 100, "placedAt": "2026-11-22T10:00:00.000Z",
                    "updatedAt": "2026-11-22T10:00:00.000Z", "timeline": [["type": "OrderPlaced", "at": "2026-11-22T10:00:00.000Z", "position": 1]],
                    "version": 1, "position": 1,
                ]
            ])
        func recorded(_ event: DomainEvent, version: Int64, position: Int64) throws -> RecordedEvent {
            try TestEvents.recorded(event, stream: "order-o-old", version: version, position: position, correlation: "o-old")
        }
        let placedAgain = try recorded(
            .orderPlaced(
                OrderPlaced(
                    orderId: "o-old", customerId: "c-old", currency: "EUR", lines: [OrderLine(sku: "S", quantity: 1, unitPrice: 100)], total: 100,
                    paymentToken: "tok_ok", placedAt: Date())), version: 1, position: 1)
        let cancelled = try recorded(
            .orderCancelled(OrderCancelled(orderId: "o-old", customerId: "c-old", reason: .customerRequest, cancelledAt: Date())), version: 2,
            position: 2)
        let sourced = try [placedAgain, cancelled].compactMap { try OrdersProjection.sourced($0, source: "p0") }
        #expect(try await OrdersProjection.apply(sourced, to: orders) == 1)
        #expect(try await OrdersProjection.apply(Array(sourced.suffix(1)), to: orders) == 0)
        let view = try #require(try await MongoOrderReadModel(client: mongo).order(id: "o-old"))
        #expect(view.status == "CANCELLED")
        #expect(view.timeline.map(\.type) == ["OrderPlaced", "OrderCancelled"])
        #expect(view.revision == 1)
        #expect(view.applied == ["order": 2])
        #expect(try await MongoOrderReadModel(client: mongo).orders(matching: OrderQuery(customerId: "c-old")).items.map(\.orderId) == ["o-old"])
        try await mongo.dropDatabase()
    }

    @Test func pagesNeitherRepeatNorSkipWhileOrdersArePlaced() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [])
        try await app.test(.live) { client in
            var before: [String] = []
            for index in 0..<30 { before.append(try await client.place([("SKU-1", 1, 100)], token: "tok_ok", customer: "c-\(index % 3)")) }
            // Every one of them in the read model (the projector applies Kafka partitions side by side,
            // so the last order placed can be there before an earlier one).
            for order in before { _ = try await TestServers.eventually { try await client.order(order) } }
            // The indexes of the definition exist once the projector runs (beside `_id`'s; the document
            // server here names indexes its own way, so they are counted, not named).
            let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
            let indexes = try await mongo.collection(OrdersProjection.name).indexNames()
            let definition = try #require(try ProjectionDefinition.loadAll(from: TestServers.repositoryRoot + "/projections")["orders"])
            #expect(indexes.count == definition.indexes.count + 1, "\(indexes)")

            // Page through with 7 a page while 20 more orders are placed.
            let placing = Task {
                for _ in 0..<20 { _ = try await client.place([("SKU-1", 1, 100)], token: "tok_ok", customer: "c-new") }
            }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await client.page("/orders?limit=7" + (cursor.map { "&cursor=\($0)" } ?? ""))
                seen += page.items.map(\.orderId)
                #expect(page.items.count <= 7)
                cursor = page.nextCursor
                pages += 1
                try await Task.sleep(for: .milliseconds(30))
            } while cursor != nil && pages < 50
            try await placing.value
            #expect(Set(seen).count == seen.count, "a page repeated an order")
            #expect(Set(before).isSubset(of: Set(seen)), "paging skipped \(Set(before).subtracting(seen).count) orders")

            // Filters: one customer, newest first; a time window; a status.
            let mine = try await client.page("/orders?customerId=c-1&limit=200")
            #expect(mine.items.count == 10)
            #expect(mine.items.allSatisfy { $0.customerId == "c-1" })
            #expect(mine.items.map(\.placedAt) == mine.items.map(\.placedAt).sorted(by: >))
            let middle = try #require(mine.items.dropFirst(4).first).placedAt
            let window = try await client.page("/orders?customerId=c-1&to=\(middle)&limit=200")
            #expect(window.items.count == 5)
            #expect(window.items.allSatisfy { $0.placedAt < middle })
            let from = try await client.page("/orders?customerId=c-1&from=\(middle)&limit=200")
            #expect(from.items.count == 5)
            #expect(try await client.page("/orders?status=COMPLETED").items.isEmpty)
            #expect(try await client.page("/orders?status=PLACED&limit=200").items.count >= 30)

            for (query, field) in [
                ("limit=0", "limit"), ("limit=abc", "limit"), ("status=LOST", "status"), ("from=yesterday", "from"), ("cursor=%21%21", "cursor"),
            ] {
                let response = try await client.send(uri: "/orders?\(query)", method: .get)
                #expect(response.status == .badRequest, "\(query)")
                #expect(String(buffer: response.body).contains(#""field":"\#(field)""#), "\(query)")
                #expect(String(buffer: response.body).contains("invalid-query"), "\(query)")
            }
        }
    }

    @Test func aQueryCanWaitForTheCommandItFollows() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [])
        try await app.test(.live) { client in
            // Once the projector has joined its group (the first order shows up)...
            let first = try await client.place([("S", 1, 100)], token: "tok_ok")
            _ = try await TestServers.eventually { try await client.order(first) }
            let body = #"{"customerId":"c-ryw","currency":"EUR","lines":[{"sku":"S","quantity":1,"unitPrice":100}],"paymentToken":"tok_ok"}"#
            let placed = try await client.send(uri: "/orders", method: .post, body: ByteBuffer(string: body))
            let result = try JSONDecoder().decode(PlacedOrder.self, from: Data(placed.body.readableBytesView))
            // No polling on the client's side: the query waits for the position.
            let response = try await client.send(uri: "/orders/\(result.orderId)?minPosition=\(result.position)", method: .get)
            #expect(response.status == .ok)
            let view = try JSONDecoder().decode(OrderView.self, from: Data(response.body.readableBytesView))
            #expect(view.orderId == result.orderId)
            #expect(view.position >= result.position)

            let started = ContinuousClock.now
            let behind = try await client.send(uri: "/orders/\(result.orderId)?minPosition=\(result.position + 1000)&wait=1", method: .get)
            #expect(behind.status == .preconditionFailed)
            #expect(behind.headers[.retryAfter] == "1")
            #expect(String(buffer: behind.body).contains("read-model-behind"))
            #expect(ContinuousClock.now - started >= .seconds(1))
            let tooLong = try await client.send(uri: "/orders/\(result.orderId)?minPosition=1&wait=60", method: .get)
            #expect(tooLong.status == .badRequest)
            // Found by the fuzz run: `wait` without `minPosition` was ignored instead of refused.
            let ignored = try await client.send(uri: "/orders/\(result.orderId)?wait=6", method: .get)
            #expect(ignored.status == .badRequest)
        }
    }
}

extension TestClientProtocol {
    func page(_ uri: String) async throws -> OrderPage {
        let response = try await self.send(uri: uri, method: .get)
        #expect(response.status == .ok, "\(uri): \(String(buffer: response.body))")
        return try JSONDecoder().decode(OrderPage.self, from: Data(response.body.readableBytesView))
    }
}
