import Foundation
import OrderlyDomain
import OrderlyEventStore
import OrderlyServices
import Testing

@Suite struct OrderCommandsTests {
    let input = OrderCommands.PlaceOrderInput(
        customerId: "c-1", currency: "EUR", lines: [OrderLine(sku: "SKU-1", quantity: 2, unitPrice: 1299)], paymentToken: "tok_ok")

    @Test(arguments: StoreKind.allCases)
    func aPlacedOrderLoadsBackByFoldingItsStream(kind: StoreKind) async throws {
        try await kind.withStore { store in
            let commands = OrderCommands(store: store)
            let placed = try await commands.placeOrder(self.input, actor: "c-1")
            let (order, version) = try await commands.loadOrder(placed.orderId)
            #expect(order.status == .placed)
            #expect(order.total == 2598)
            #expect(order.customerId == "c-1")
            #expect(version == 1)
            let events = try await store.readStream(OrderCommands.streamID(forOrder: placed.orderId), from: 1)
            #expect(events.first?.metadata.correlationId == placed.orderId)
            #expect(events.first?.metadata.actor == "c-1")
            #expect(events.first?.metadata.causationId != nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func repeatingACommandWithItsKeyPlacesOneOrder(kind: StoreKind) async throws {
        try await kind.withStore { store in
            let commands = OrderCommands(store: store)
            let first = try await commands.placeOrder(self.input, actor: "c-1", idempotencyKey: "abc")
            let second = try await commands.placeOrder(self.input, actor: "c-1", idempotencyKey: "abc")
            #expect(second.orderId == first.orderId)
            #expect(second.position == first.position)
            #expect(second.isReplay)
            var changed = self.input
            changed.lines[0].quantity = 3
            await #expect(throws: EventStoreError.idempotencyKeyReused(key: "orders.place:c-1:abc")) {
                try await commands.placeOrder(changed, actor: "c-1", idempotencyKey: "abc")
            }
            // The order's stream read in full: the repeat appended nothing.
            #expect(try await store.readStream(StreamNames.order(first.orderId), from: 1, limit: 100).count == 1)
        }
    }
}
