import Foundation
import OrderlyDomain
import Testing

@Suite struct OrderDecisionTests {
    static let command = PlaceOrder(
        orderId: "o-1", customerId: "c-1", currency: "EUR",
        lines: [OrderLine(sku: "SKU-1", quantity: 2, unitPrice: 1299), OrderLine(sku: "SKU-2", quantity: 1, unitPrice: 500)],
        paymentToken: "tok_ok")
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func placingComputesTheTotalInMinorUnits() throws {
        let events = try Order().place(Self.command, at: Self.now)
        guard case .orderPlaced(let placed) = events.first else {
            Issue.record("expected OrderPlaced, got \(events)")
            return
        }
        #expect(events.count == 1)
        #expect(placed.total == 2 * 1299 + 500)
        #expect(placed.placedAt == Self.now)
        #expect(Order.fold(events).status == .placed)
    }

    @Test func anOrderCannotBePlacedTwice() throws {
        let order = Order.fold(try Order().place(Self.command, at: Self.now))
        #expect(throws: ValidationError.self) { try order.place(Self.command, at: Self.now) }
    }

    static let brokenCommands: [(String, @Sendable (inout PlaceOrder) -> Void)] = [
        ("lines[0].quantity", { $0.lines[0].quantity = 0 }),
        ("lines[0].quantity", { $0.lines[0].quantity = -3 }),
        ("lines[1].unitPrice", { $0.lines[1].unitPrice = 0 }),
        ("lines[1].unitPrice", { $0.lines[1].unitPrice = Limits.maxUnitPrice + 1 }),
        ("currency", { $0.currency = "eur" }),
        ("customerId", { $0.customerId = "" }),
        ("customerId", { $0.customerId = "has space" }),
        ("lines", { $0.lines = [] }),
        ("lines[1].sku", { $0.lines[1].sku = "SKU-1" }),
        ("paymentToken", { $0.paymentToken = String(repeating: "x", count: 65) }),
    ]

    @Test(arguments: 0..<Self.brokenCommands.count)
    func invalidCommandsNameTheField(index: Int) {
        let (field, breakIt) = Self.brokenCommands[index]
        var command = Self.command
        breakIt(&command)
        let error = #expect(throws: ValidationError.self) { try Order().place(command, at: Self.now) }
        #expect(error?.field == field)
    }

    @Test func eventsRoundTripThroughTheCodec() throws {
        let events = try Order().place(Self.command, at: Self.now)
        for event in events {
            let encoded = try EventCodec.encode(event)
            #expect(encoded.type == "OrderPlaced")
            #expect(encoded.schemaVersion == 3)
            #expect(try EventCodec.decode(encoded) == event)
        }
    }

    @Test func unknownTypesAndVersionsAreReportedNotGuessed() {
        #expect(throws: EventDecodingError.unknownType("Nope")) {
            try EventCodec.decode(EncodedEvent(type: "Nope", schemaVersion: 1, data: Data("{}".utf8)))
        }
        #expect(throws: EventDecodingError.unsupportedSchemaVersion(type: "OrderPlaced", version: 9)) {
            try EventCodec.decode(EncodedEvent(type: "OrderPlaced", schemaVersion: 9, data: Data("{}".utf8)))
        }
    }
}

@Suite struct SagaDomainTests {
    @Test func stockReservesAtTheCatalogPriceAndNeverBelowZero() throws {
        var stock = Stock.fold(try Stock.restock(sku: "S", quantity: 3, unitPrice: 500))
        guard case .reserve(let events) = stock.reserve(OrderLine(sku: "S", quantity: 2, unitPrice: 500), for: "o1") else {
            Issue.record("two of three units should reserve")
            return
        }
        events.forEach { stock.apply($0) }
        #expect(stock.available == 1)
        #expect(stock.reserve(OrderLine(sku: "S", quantity: 2, unitPrice: 500), for: "o1") == .alreadyReserved)
        #expect(stock.reserve(OrderLine(sku: "S", quantity: 2, unitPrice: 500), for: "o2") == .refuse(.outOfStock))
        #expect(stock.reserve(OrderLine(sku: "S", quantity: 1, unitPrice: 499), for: "o3") == .refuse(.priceChanged))
        #expect(Stock().reserve(OrderLine(sku: "X", quantity: 1, unitPrice: 1), for: "o4") == .refuse(.outOfStock))
        stock.release(for: "o1").forEach { stock.apply($0) }
        #expect(stock.available == 3)
        #expect(stock.release(for: "o1").isEmpty)
        #expect(throws: ValidationError.self) { try Stock.restock(sku: "S", quantity: 0, unitPrice: 1) }
    }

    @Test func aPaymentIsChargedOnceAndRefundedOnlyAfterACharge() {
        let placed = OrderPlaced(
            orderId: "o", customerId: "c", currency: "EUR", lines: [], total: 100, paymentToken: "tok_ok", placedAt: Date())
        let reserved = StockReserved(orderId: "o", lines: [], total: 100)
        var payment = Payment.fold(Payment().request(placed))
        #expect(Payment().compensate(orderId: "o") == [.paymentVoided(PaymentVoided(orderId: "o"))])
        let request = ChargeRequest(orderId: "o", amount: 100, currency: "EUR", token: "tok_ok")
        #expect(payment.chargeRequest(for: reserved) == request)
        payment.record(.approved(chargeId: "ch_1"), of: request).forEach { payment.apply($0) }
        #expect(payment.state == .charged(amount: 100, chargeId: "ch_1"))
        #expect(payment.chargeRequest(for: reserved) == nil)
        #expect(payment.record(.approved(chargeId: "ch_2"), of: request).isEmpty)
        #expect(payment.request(placed).isEmpty)
        payment.compensate(orderId: "o").forEach { payment.apply($0) }
        #expect(payment.state == .refunded)
        #expect(payment.compensate(orderId: "o").isEmpty)
        var declined = Payment.fold(Payment().request(placed))
        declined.record(.declined(reason: "CARD_DECLINED"), of: request).forEach { declined.apply($0) }
        #expect(declined.state == .failed)
        #expect(declined.compensate(orderId: "o").isEmpty)
        // Voided before the gateway answered: nothing more is asked, and an approval that comes
        // anyway is recorded and given back.
        var voided = Payment.fold(Payment().request(placed))
        voided.compensate(orderId: "o").forEach { voided.apply($0) }
        #expect(voided.chargeRequest(for: reserved) == nil)
        #expect(voided.record(.declined(reason: "CARD_DECLINED"), of: request).isEmpty)
        #expect(
            voided.record(.approved(chargeId: "ch_3"), of: request) == [
                .paymentProcessed(PaymentProcessed(orderId: "o", amount: 100, currency: "EUR", chargeId: "ch_3")),
                .paymentRefunded(PaymentRefunded(orderId: "o", amount: 100, chargeId: "ch_3")),
            ])
    }

    @Test func anOrderEndsOnce() throws {
        let order = Order.fold(
            try Order().place(
                PlaceOrder(
                    orderId: "o", customerId: "c", currency: "EUR", lines: [OrderLine(sku: "S", quantity: 1, unitPrice: 5)], paymentToken: "t"),
                at: Date()))
        #expect(Order().complete(charged: 5, at: Date()).isEmpty)
        var ended = order
        order.complete(charged: 5, at: Date()).forEach { ended.apply($0) }
        #expect(ended.status == .completed)
        #expect(ended.cancel(because: .customerRequest, at: Date()).isEmpty)
        #expect(ended.complete(charged: 5, at: Date()).isEmpty)
        #expect(EventCodec.decodeIfKnownTypeRoundTrips(order.cancel(because: .outOfStock, at: Date(timeIntervalSince1970: 1_800_000_000.5))))
    }
}

extension EventCodec {
    /// Every event survives encode then decode unchanged.
    static func decodeIfKnownTypeRoundTrips(_ events: [DomainEvent]) -> Bool {
        events.allSatisfy { event in
            guard let encoded = try? encode(event) else { return false }
            return (try? decode(encoded)) == event
        }
    }
}

@Suite struct IdentifierTests {
    /// Version and variant bits as RFC 9562 has them, and no two alike.
    @Test func randomAndTimeOrderedIDsAreWellFormedAndDistinct() {
        let random = (0..<10_000).map { _ in Identifiers.random() }
        let ordered = (0..<10_000).map { _ in Identifiers.timeOrdered() }
        #expect(Set(random).count == random.count)
        #expect(Set(ordered).count == ordered.count)
        for (ids, version) in [(random, UInt8(4)), (ordered, UInt8(7))] {
            for id in ids {
                #expect(id.uuid.6 >> 4 == version)
                #expect(id.uuid.8 >> 6 == 0b10)
            }
        }
        // Foundation reads them back from their text.
        #expect(random.allSatisfy { UUID(uuidString: $0.uuidString) == $0 })
    }

    /// A version 7 id starts with its millisecond timestamp, so ids made later sort after earlier ones.
    @Test func timeOrderedIDsCarryTheirMillisecondAndSortByIt() {
        let date = Date(timeIntervalSince1970: 1_800_000_000.123)
        let id = Identifiers.timeOrdered(at: date)
        let bytes = [id.uuid.0, id.uuid.1, id.uuid.2, id.uuid.3, id.uuid.4, id.uuid.5]
        let milliseconds = bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(milliseconds == 1_800_000_000_123)
        let later = Identifiers.timeOrdered(at: date.addingTimeInterval(0.002))
        #expect(id.uuidString < later.uuidString)
    }
}
