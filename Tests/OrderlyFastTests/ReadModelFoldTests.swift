import Foundation
import OrderlyDomain
import OrderlyEventStore
import OrderlyServices
import Testing

@testable import OrderlyReadModels

/// The read models' pure parts: definitions, hand-written time and JSON, folds.
@Suite struct ReadModelFoldTests {
    /// This checkout's root (the projection definitions live there).
    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    @Test func everyReadModelHasADefinitionListingTheEventsItApplies() async throws {
        // Throws when a definition is missing or lists other events than the code applies.
        let pairs = try ReadModelCatalog.definitions(from: Self.repositoryRoot + "/projections")
        #expect(pairs.map { $0.0.name }.sorted() == ["customer_orders", "inventory", "orders", "sales_daily"])
        for (projection, definition) in pairs { #expect(definition.collection == projection.name) }
    }

    @Test func handMadeUTCTimesEqualFoundations() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        var generator = SystemRandomNumberGenerator()
        // Random times, plus a run of them around 2001-01-01 (Foundation's reference date), where a
        // Date's fraction is held most finely.
        let nearReference = (0..<10_000).map { _ in
            Date(timeIntervalSinceReferenceDate: Double.random(in: -3_000_000..<3_000_000, using: &generator))
        }
        let anywhere = (0..<5000).map { _ in Date(timeIntervalSince1970: Double.random(in: 0..<4_102_444_800, using: &generator)) }
        for date in nearReference + anywhere {
            let foundations = date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            if UTCTime.iso8601(date) != foundations {
                // Allowed only where the time sits within a float rounding of a millisecond boundary:
                // UTCTime reads the 1970 interval (see `milliseconds`), Foundation the 2001 one, and
                // there the two round apart (about 1 time in 60,000, measured; a flaky failure before).
                let milliseconds = date.timeIntervalSince1970 * 1000
                #expect(abs(milliseconds - milliseconds.rounded()) < 0.001, "\(UTCTime.iso8601(date)) vs \(foundations)")
            }
            // The projector gets an event's time from PostgreSQL and, live, from a Kafka header holding
            // the 1970 interval as text (EventMessageCodec): both must write the same text.
            let viaHeader = Date(timeIntervalSince1970: Double(String(date.timeIntervalSince1970)) ?? 0)
            #expect(UTCTime.iso8601(viaHeader) == UTCTime.iso8601(date), "\(date.timeIntervalSinceReferenceDate)")
            let parts = calendar.dateComponents([.year, .month, .day], from: date)
            let number = Int64((parts.year ?? 0) * 10000 + (parts.month ?? 0) * 100 + (parts.day ?? 0))
            #expect(UTCTime.day(date).number == number)
            #expect(UTCTime.day(date).text == String(UTCTime.iso8601(date).prefix(10)))
            let text = UTCTime.iso8601(date)
            let parsed = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            #expect(UTCTime.parse(text) == parsed, "\(text)")
        }
    }

    @Test func theOrderViewsHandWrittenJSONEqualsCodables() throws {
        let full = OrderView(
            orderId: "o-\"1\\", customerId: "c-\u{1}é/€", status: "CANCELLED", currency: "EUR",
            lines: [OrderLine(sku: "S-1", quantity: 2, unitPrice: 1299), OrderLine(sku: "S-2", quantity: 1, unitPrice: -5)], total: 2593,
            placedAt: "2026-11-23T09:00:00.000Z", updatedAt: "2026-11-23T09:00:01.000Z",
            timeline: [OrderView.TimelineEntry(type: "OrderPlaced", at: "2026-11-23T09:00:00.000Z", position: 9_007_199_254_740_993)],
            cancellationReason: "PAYMENT_DECLINED", payment: OrderView.PaymentView(status: "DECLINED", amount: 2593, reason: "CARD_DECLINED"),
            notified: ["CANCELLED"],
            fulfilment: OrderView.FulfilmentView(
                status: "FAILED", carrier: "SIMULATED", trackingNumber: "SIM-o-1", reason: "UNDELIVERABLE", requestedAt: "2026-11-23T09:00:01.000Z",
                dispatchedAt: "2026-11-23T09:00:02.000Z", failedAt: "2026-11-23T09:00:03.000Z", updatedAt: "2026-11-23T09:00:03.000Z"), version: 3,
            position: 12, applied: ["order": 3, "payment": 2], revision: 7,
            statusChangedAt: "2026-11-23T09:00:02.000Z", fulfilmentChangedAt: "2026-11-23T09:00:03.100Z", pageKey: "k2026-11-23T09:00:00.000Z|o-1",
            placedAtMs: 1_795_424_400_000,
            personalData: SealedPersonalData(keyId: "5f0c1d2e-0000-4000-8000-000000000001", sealed: "q83v+/==", holdsShippingAddress: false))
        var bare = full
        bare.personalData = nil
        (bare.cancellationReason, bare.payment, bare.notified, bare.applied, bare.revision) = (nil, nil, nil, nil, nil)
        bare.fulfilment = nil
        (bare.statusChangedAt, bare.pageKey, bare.placedAtMs, bare.lines, bare.timeline) = (nil, nil, nil, [], [])
        bare.fulfilmentChangedAt = nil
        for view in [full, bare] {
            var writer = JSONWriter()
            view.write(to: &writer)
            let hand = Data(writer.bytes)
            #expect(try JSONDecoder().decode(OrderView.self, from: hand) == view)
            let handObject = try JSONSerialization.jsonObject(with: hand) as? NSDictionary
            let codableObject = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(view)) as? NSDictionary
            #expect(handObject == codableObject, "\(String(decoding: hand, as: UTF8.self))")
        }
        // What the api opens per request is never written to the read model.
        var opened = full
        opened.customer = CustomerDetails(name: "Ada", email: "ada@example.org")
        opened.shippingAddress = ShippingAddress(line1: "1 Main St", city: "London", postalCode: "N1", country: "GB")
        opened.personalDataErased = true
        var writer = JSONWriter()
        opened.write(to: &writer)
        let stored = String(decoding: writer.bytes, as: UTF8.self)
        for field in ["customer\"", "shippingAddress", "personalDataErased", "Ada", "London"] {
            #expect(!stored.contains(field), "\(field) in \(stored)")
        }
        #expect(stored.contains("\"personalData\":{\"keyId\""))
    }

    /// Two orders of one customer recorded at the same instant, delivered from two partitions in the
    /// opposite of log order (as after a PostgreSQL outage, when waiting commands commit together):
    /// the last order is the one later in the log, as a fresh fold of the log finds it.
    @Test func theLastOrderOfACustomerFollowsTheLogNotArrivalOrder() throws {
        let at = Date()
        func placed(_ order: String, position: Int64) throws -> (DomainEvent, RecordedEvent) {
            let event = DomainEvent.orderPlaced(
                OrderPlaced(
                    orderId: order, customerId: "c-pg", currency: "EUR", lines: [OrderLine(sku: "S", quantity: 1, unitPrice: 100)], total: 100,
                    paymentToken: "tok_ok", placedAt: at))
            let new = try NewEvent(event, metadata: EventMetadata(correlationId: order))
            let recorded = RecordedEvent(
                id: new.id, streamID: "order-\(order)", streamVersion: 1, position: position, transactionID: UInt64(position), type: new.type,
                schemaVersion: new.schemaVersion, data: new.data, metadata: new.metadata, recordedAt: at)
            return (event, recorded)
        }
        let earlier = try placed("o-earlier", position: 10)
        let later = try placed("o-later", position: 11)
        let afterLater = try #require(
            CustomerOrdersProjection.apply(later.0, recorded: later.1, source: "p1", to: nil, id: "c-pg", now: at))
        let afterBoth = try #require(
            CustomerOrdersProjection.apply(earlier.0, recorded: earlier.1, source: "p2", to: afterLater, id: "c-pg", now: at))
        #expect(afterBoth.lastOrderId == "o-later")
        #expect(afterBoth.lastOrderPosition == 11)
        #expect(afterBoth.ordersPlaced == 2)
    }
    /// A notification withheld because the customer was forgotten told no one: the order's
    /// `notified` lists only the ones that went out.
    @Test func aWithheldNotificationIsNotListedAsNotified() throws {
        let at = Date()
        func recorded(_ event: DomainEvent, stream: String, version: Int64, position: Int64) throws -> RecordedEvent {
            let new = try NewEvent(event, metadata: EventMetadata(correlationId: "o-w"))
            return RecordedEvent(
                id: new.id, streamID: stream, streamVersion: version, position: position, transactionID: UInt64(position), type: new.type,
                schemaVersion: new.schemaVersion, data: new.data, metadata: new.metadata, recordedAt: at)
        }
        let placed = DomainEvent.orderPlaced(
            OrderPlaced(
                orderId: "o-w", customerId: "c-w", currency: "EUR", lines: [OrderLine(sku: "S", quantity: 1, unitPrice: 100)], total: 100,
                paymentToken: "tok_ok", placedAt: at))
        let sent = DomainEvent.notificationSent(NotificationSent(orderId: "o-w", customerId: "c-w", outcome: .completed, message: "paid"))
        let withheld = DomainEvent.notificationSent(
            NotificationSent(
                orderId: "o-w", customerId: "c-w", outcome: .shipmentFailed, message: "failed", withheld: NotificationWithheld.personalDataErased))
        var view = try #require(
            OrdersProjection.apply(
                placed, recorded: try recorded(placed, stream: "order-o-w", version: 1, position: 1), source: "t", to: nil, id: "o-w", now: at))
        view = try #require(
            OrdersProjection.apply(
                sent, recorded: try recorded(sent, stream: "notification-o-w", version: 1, position: 2), source: "t", to: view, id: "o-w", now: at))
        view = try #require(
            OrdersProjection.apply(
                withheld, recorded: try recorded(withheld, stream: "notification-o-w", version: 2, position: 3), source: "t", to: view, id: "o-w",
                now: at))
        #expect(view.notified == ["COMPLETED"])
    }
}
