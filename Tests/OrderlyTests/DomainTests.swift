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
        guard case .placed(let placed) = events.first else {
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
            #expect(encoded.schemaVersion == 1)
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
