import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import OrderlyAPI
import OrderlyDomain
import OrderlyEventStore
import OrderlyProcesses
import OrderlyReadModels
import OrderlyServices
import PostgresNIO
import Testing

/// Delivery on the real servers (PostgreSQL, the broker, the document server): every outcome of the
/// simulated carrier, the carrier's route, and the delivery service killed mid-flight.
@Suite struct DeliveryTests {
    static func body(customer: String, postalCode: String?, sku: String, quantity: Int = 1, unitPrice: Int = 400) -> String {
        var text =
            #"{"customerId":"\#(customer)","currency":"EUR","paymentToken":"tok_ok","lines":[{"sku":"\#(sku)","quantity":\#(quantity),"unitPrice":\#(unitPrice)}]"#
        if let postalCode {
            text += #","customer":{"name":"Ada Lovelace","email":"ada@example.org"},"#
            text += #""shippingAddress":{"line1":"1 Main St","city":"Springfield","postalCode":"\#(postalCode)","country":"US"}"#
        }
        return text + "}"
    }

    static func json(_ response: TestResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]) ?? [:]
    }

    static func place(_ client: some TestClientProtocol, customer: String, postalCode: String?, sku: String, quantity: Int = 1) async throws
        -> String
    {
        let response = try await client.send(
            uri: "/orders", method: .post, body: ByteBuffer(string: body(customer: customer, postalCode: postalCode, sku: sku, quantity: quantity)),
            as: .customer, subject: customer)
        #expect(response.status == .accepted, "\(String(buffer: response.body))")
        return try #require(json(response)["orderId"] as? String)
    }

    /// Waits until each order's fulfilment satisfies `done`; returns the views.
    static func waitForFulfilment(
        _ client: some TestClientProtocol, _ ids: [String], timeout: Duration = .seconds(60), done: @Sendable (OrderView) -> Bool
    ) async throws -> [String: OrderView] {
        var views: [String: OrderView] = [:]
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for id in ids where views[id] == nil {
                if let view = try await client.order(id), done(view) { views[id] = view }
            }
            if views.count == ids.count { return views }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("\(ids.count - views.count) of \(ids.count) orders did not reach their fulfilment in time")
        return views
    }

    /// The simulated carrier's rules end to end: a deliverable address is delivered (and the customer
    /// told at dispatch and delivery, the day's sales count it), a refused or undeliverable one fails
    /// and is refunded with its units back on the shelf, an order without an address is skipped with
    /// its reason, one whose booking is never answered fails at the booking deadline and is refunded;
    /// the order's status stays COMPLETED throughout.
    @Test func everyDeliveryOutcomeEndsAsTheCarriersRulesSay() async throws {
        var configured = try await TestServers.isolatedSettings()
        configured.shipmentBookingDeadline = .seconds(4)
        configured.shipmentSweepInterval = .milliseconds(500)
        let settings = configured
        let app = try await Processes.dev(settings, logger: TestServers.logger)
        try await app.test(.live) { client in
            try await client.restock("SKU-DL", quantity: 20, unitPrice: 400)
            let delivered = try await Self.place(client, customer: "c-dl", postalCode: "10115", sku: "SKU-DL")
            let refused = try await Self.place(client, customer: "c-dl", postalCode: SimulatedCarrier.refusedPostalCode, sku: "SKU-DL", quantity: 3)
            let undeliverable = try await Self.place(
                client, customer: "c-dl", postalCode: SimulatedCarrier.undeliverablePostalCode, sku: "SKU-DL", quantity: 2)
            let noAddress = try await Self.place(client, customer: "c-dl", postalCode: nil, sku: "SKU-DL")
            let unanswered = try await Self.place(client, customer: "c-dl", postalCode: SimulatedCarrier.unansweredPostalCode, sku: "SKU-DL")
            let ends: Set<String> = ["DELIVERED", "FAILED", "SKIPPED"]
            let views = try await Self.waitForFulfilment(client, [delivered, refused, undeliverable, noAddress, unanswered]) { view in
                guard let fulfilment = view.fulfilment, ends.contains(fulfilment.status) else { return false }
                // A failed one also waits for its refund.
                return fulfilment.status != "FAILED" || view.payment?.status == "REFUNDED"
            }
            for view in views.values { #expect(view.status == "COMPLETED", "\(view.orderId) is \(view.status)") }
            let shipped = try #require(views[delivered]?.fulfilment)
            #expect(shipped.status == "DELIVERED" && shipped.carrier == "SIMULATED" && shipped.trackingNumber == "SIM-\(delivered)")
            #expect(shipped.dispatchedAt != nil && shipped.deliveredAt != nil)
            #expect(views[delivered]?.payment?.status == "CHARGED")
            #expect(views[refused]?.fulfilment?.status == "FAILED" && views[refused]?.fulfilment?.reason == "ADDRESS_REFUSED")
            #expect(views[refused]?.fulfilment?.dispatchedAt == nil)
            #expect(views[undeliverable]?.fulfilment?.reason == "UNDELIVERABLE" && views[undeliverable]?.fulfilment?.dispatchedAt != nil)
            #expect(views[noAddress]?.fulfilment?.status == "SKIPPED" && views[noAddress]?.fulfilment?.reason == "NO_SHIPPING_ADDRESS")
            #expect(views[noAddress]?.payment?.status == "CHARGED")
            #expect(views[unanswered]?.fulfilment?.reason == "BOOKING_DEADLINE_EXCEEDED" && views[unanswered]?.payment?.status == "REFUNDED")
            // The customer hears of every step.
            let told = try await TestServers.eventually { () -> [String: OrderView]? in
                var found: [String: OrderView] = [:]
                for id in [delivered, refused, undeliverable] {
                    guard let view = try await client.order(id) else { return nil }
                    found[id] = view
                }
                let complete =
                    Set(found[delivered]?.notified ?? []) == ["COMPLETED", "DISPATCHED", "DELIVERED"]
                    && Set(found[refused]?.notified ?? []) == ["COMPLETED", "SHIPMENT_FAILED"]
                    && Set(found[undeliverable]?.notified ?? []) == ["COMPLETED", "DISPATCHED", "SHIPMENT_FAILED"]
                return complete ? found : nil
            }
            #expect(told != nil, "not every step was notified")
            // 20 restocked; 1 delivered and 1 skipped order keep theirs; the 6 of the failed ones are back.
            // The returned units reach the inventory read model after the refund reached the order's.
            var stock: [String: Any] = [:]
            let restored = try await TestServers.eventually { () -> Bool? in
                stock = Self.json(try await client.send(uri: "/inventory/SKU-DL", method: .get, as: .staff))
                return stock["onHand"] as? Int == 18 && stock["available"] as? Int == 18 ? true : nil
            }
            #expect(restored == true, "\(stock)")
            let today = UTCTime.day(Date()).text
            let sales = try await TestServers.eventually { () -> [String: Any]? in
                let page = Self.json(try await client.send(uri: "/sales/daily?from=\(today)&to=\(today)", method: .get, as: .staff))
                let day = (page["days"] as? [[String: Any]])?.first
                return day?["delivered"] as? Int == 1 ? day : nil
            }
            #expect(sales?["completed"] as? Int == 5, "\(String(describing: sales))")
        }
        #expect(try await SagaLog.load(settings).violations() == [])
    }

    /// The carrier's route: role `carrier` only, each update once by its id (a resent one answers
    /// 200 and records nothing), contradictions refused (409), an order without a shipment 404, bad
    /// input 400/422 naming the field. The delivery service is killed (SIGKILL) while it books a
    /// backlog and restarted: every paid order is dispatched exactly once, and a customer forgotten
    /// before their parcel left is not shipped to and is refunded.
    @Test func carrierUpdatesThroughTheApiAndADeliveryServiceKilledMidFlight() async throws {
        var configured = try await TestServers.isolatedSettings()
        configured.simulatedCarrierAdvances = false
        let settings = configured
        // Everything but delivery in process; delivery as its own process, to kill.
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [.order, .inventory, .payment, .notification])
        try await app.test(.live) { client in
            try await client.restock("SKU-DK", quantity: 1000, unitPrice: 400)
            var orders: [String] = []
            for index in 0..<150 { orders.append(try await Self.place(client, customer: "c-dk-\(index % 10)", postalCode: "10115", sku: "SKU-DK")) }
            let forgotten = try await Self.place(client, customer: "c-gone", postalCode: "10115", sku: "SKU-DK")
            _ = try await client.waitForOutcomes(orders + [forgotten], timeout: .seconds(120))
            let erased = try await client.send(uri: "/customers/c-gone/personal-data", method: .delete, as: .admin, subject: "dpo")
            #expect(erased.status == .accepted)

            let extra = ["ORDERLY_SIMULATED_CARRIER_ADVANCES": "false"]
            let first = try ChildProcess.orderly(["service", "delivery"], settings: settings, extra: extra)
            let progress = try await TestServers.eventually(timeout: .seconds(60), interval: .milliseconds(5)) { () -> Int? in
                let dispatched = try await SagaLog.count(settings, type: "ShipmentDispatched")
                return dispatched > 0 ? dispatched : nil
            }
            first.kill()
            await first.process.exited()
            #expect(try #require(progress) < orders.count, "the delivery service finished before it could be killed")
            let second = try ChildProcess.orderly(["service", "delivery"], settings: settings, extra: extra)
            let views = try await Self.waitForFulfilment(client, orders + [forgotten], timeout: .seconds(90)) { view in
                view.fulfilment?.status == "DISPATCHED" || (view.fulfilment?.status == "FAILED" && view.payment?.status == "REFUNDED")
            }
            second.stop()
            for order in orders { #expect(views[order]?.fulfilment?.status == "DISPATCHED", "\(order)") }
            #expect(views[forgotten]?.fulfilment?.reason == "PERSONAL_DATA_ERASED")
            #expect(try await SagaLog.count(settings, type: "ShipmentDispatched") == orders.count)
            #expect(try await SagaLog.count(settings, type: "ShipmentRequested") == orders.count + 1)
            // Every parcel is on its way (this carrier reports nothing by itself): all count as in
            // transit, which is what the api's overdue gauge counts once they are old enough.
            let readModels = MongoOrderReadModel(client: try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase))
            #expect(try await readModels.shipmentsInTransit(dispatchedBefore: Date()) == orders.count)
            #expect(try await readModels.shipmentsInTransit(dispatchedBefore: Date().addingTimeInterval(-3_600)) == 0)

            // The carrier reports through the api.
            let order = orders[0]
            func update(_ body: String, as role: Role = .carrier, order: String = order) async throws -> TestResponse {
                try await client.send(uri: "/shipments/\(order)/events", method: .post, body: ByteBuffer(string: body), as: role, subject: "simpost")
            }
            let deliveredBody = #"{"eventId":"evt-1","type":"DELIVERED","occurredAt":"2026-12-04T10:00:00Z"}"#
            #expect(try await update(deliveredBody, as: .staff).status == .forbidden)
            #expect(try await update(deliveredBody, as: .customer).status == .forbidden)
            let first201 = try await update(deliveredBody)
            #expect(first201.status == .created, "\(String(buffer: first201.body))")
            #expect(Self.json(first201)["status"] as? String == "DELIVERED" && Self.json(first201)["recorded"] as? Bool == true)
            let resent = try await update(deliveredBody)
            #expect(resent.status == .ok && Self.json(resent)["recorded"] as? Bool == false)
            let contradiction = try await update(#"{"eventId":"evt-2","type":"FAILED","reason":"LOST"}"#)
            #expect(contradiction.status == .conflict && (Self.json(contradiction)["type"] as? String)?.hasSuffix("/shipment-state-conflict") == true)
            #expect(try await update(deliveredBody, order: "no-such-order").status == .notFound)
            let noReason = try await update(#"{"eventId":"evt-3","type":"FAILED"}"#, order: orders[1])
            #expect(noReason.status == .unprocessableContent && Self.json(noReason)["field"] as? String == "reason")
            let badType = try await update(#"{"eventId":"evt-3","type":"TELEPORTED"}"#, order: orders[1])
            #expect(badType.status == .unprocessableContent && Self.json(badType)["field"] as? String == "type")
            #expect(try await update(#"{"eventId":"evt-3","type":"DELIVERED","colour":"red"}"#, order: orders[1]).status == .badRequest)
            #expect(try await update("{not json", order: orders[1]).status == .badRequest)
            let lost = try await update(#"{"eventId":"evt-4","type":"FAILED","reason":"LOST_IN_TRANSIT"}"#, order: orders[1])
            #expect(lost.status == .created)

            let after = try await Self.waitForFulfilment(client, [order, orders[1]]) { view in
                view.fulfilment?.status == "DELIVERED" || (view.fulfilment?.status == "FAILED" && view.payment?.status == "REFUNDED")
            }
            #expect(after[order]?.fulfilment?.deliveredAt == "2026-12-04T10:00:00.000Z")
            #expect(after[orders[1]]?.fulfilment?.reason == "LOST_IN_TRANSIT")
            #expect(try await readModels.shipmentsInTransit(dispatchedBefore: Date()) == orders.count - 2)
            _ = try await SagaLog.waitForShelf(settings, sku: "SKU-DK", onHand: 1000 - 151 + 2)
        }
        let log = try await SagaLog.load(settings)
        #expect(log.violations() == [])
        // 151 sold, 2 came back (the forgotten customer's and the lost parcel).
        #expect(log.stock("SKU-DK").onHand == 1000 - 151 + 2)
    }
}
