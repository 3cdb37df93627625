import Foundation
import OrderlyDomain
import OrderlyEventStore
import OrderlyReadModels
import OrderlyServices
import Testing

/// The read side a contract runs over: the three query ports and how events reach them (the
/// projections' MongoDB writes, or the in-memory models' fold).
public struct ReadSide: Sendable {
    public var orders: any OrderReadModel
    public var inventory: any InventoryReadModel
    public var sales: any SalesReadModel
    public var feed: @Sendable ([RecordedEvent]) async throws -> Void

    public init(
        orders: any OrderReadModel, inventory: any InventoryReadModel, sales: any SalesReadModel,
        feed: @escaping @Sendable ([RecordedEvent]) async throws -> Void
    ) {
        self.orders = orders
        self.inventory = inventory
        self.sales = sales
        self.feed = feed
    }
}

/// What a query client relies on from the read models, whichever store holds them: run over the
/// MongoDB models (integration tier) and the in-memory ones (fast tier).
public enum ReadModelContract {
    /// A log of events made by hand, positions in order.
    struct Log {
        var events: [RecordedEvent] = []

        mutating func add(_ event: DomainEvent, stream: String, version: Int64, order: String, at: Date) throws {
            let position = Int64(self.events.count + 1)
            self.events.append(try TestEvents.recorded(event, stream: stream, version: version, position: position, correlation: order, at: at))
        }

        mutating func place(_ order: String, customer: String, total: MinorUnits, at: Date) throws {
            let line = OrderLine(sku: "SKU-\(order)", quantity: 1, unitPrice: total)
            try self.add(
                .orderPlaced(
                    OrderPlaced(
                        orderId: order, customerId: customer, currency: "EUR", lines: [line], total: total, paymentToken: "tok_ok", placedAt: at)),
                stream: StreamNames.order(order), version: 1, order: order, at: at)
        }

        mutating func complete(_ order: String, customer: String, total: MinorUnits, at: Date) throws {
            try self.add(
                .orderCompleted(OrderCompleted(orderId: order, customerId: customer, total: total, currency: "EUR", completedAt: at)),
                stream: StreamNames.order(order), version: 2, order: order, at: at)
        }

        mutating func cancel(_ order: String, customer: String, at: Date) throws {
            try self.add(
                .orderCancelled(OrderCancelled(orderId: order, customerId: customer, reason: .customerRequest, cancelledAt: at)),
                stream: StreamNames.order(order), version: 2, order: order, at: at)
        }
    }

    static let start = Date(timeIntervalSince1970: 1_795_000_000)

    /// An order is found by id with its status, total and timeline; an unknown id is nil; applying the
    /// same events again changes nothing.
    public static func anOrderReadsBackAsItsEventsLeftIt(_ side: ReadSide) async throws {
        var log = Log()
        try log.place("o-1", customer: "c-1", total: 1500, at: Self.start)
        try log.add(
            .paymentProcessed(PaymentProcessed(orderId: "o-1", amount: 1500, currency: "EUR", chargeId: "ch_o-1")),
            stream: StreamNames.payment("o-1"), version: 2, order: "o-1", at: Self.start.addingTimeInterval(1))
        try log.complete("o-1", customer: "c-1", total: 1500, at: Self.start.addingTimeInterval(2))
        try await side.feed(log.events)
        try await side.feed(log.events)
        let order = try #require(try await side.orders.order(id: "o-1"))
        #expect(order.status == "COMPLETED")
        #expect(order.customerId == "c-1")
        #expect(order.total == 1500)
        #expect(order.payment?.status == "CHARGED")
        #expect(order.timeline.map(\.type) == [OrderPlaced.typeName, PaymentProcessed.typeName, OrderCompleted.typeName])
        #expect(order.position == 3)
        #expect(try await side.orders.order(id: "o-unknown") == nil)
    }

    /// Orders come newest first, a page at a time: following the cursors gives every matching order
    /// once; filters by customer, status and placing time narrow the same way.
    public static func ordersPageNewestFirstAndFilter(_ side: ReadSide) async throws {
        var log = Log()
        for index in 0..<7 {
            let customer = index % 2 == 0 ? "c-even" : "c-odd"
            try log.place("o-\(index)", customer: customer, total: 100 * MinorUnits(index + 1), at: Self.start.addingTimeInterval(Double(index * 60)))
        }
        try log.cancel("o-2", customer: "c-even", at: Self.start.addingTimeInterval(600))
        try await side.feed(log.events)

        var seen: [String] = []
        var cursor: OrderCursor?
        var pages = 0
        repeat {
            let page = try await side.orders.orders(matching: OrderQuery(limit: 3, after: cursor))
            seen += page.items.map(\.orderId)
            cursor = try page.nextCursor.map { try #require(OrderCursor(token: $0)) }
            pages += 1
        } while cursor != nil && pages < 10
        #expect(seen == ["o-6", "o-5", "o-4", "o-3", "o-2", "o-1", "o-0"])
        #expect(pages == 3)

        let even = try await side.orders.orders(matching: OrderQuery(customerId: "c-even"))
        #expect(even.items.map(\.orderId) == ["o-6", "o-4", "o-2", "o-0"])
        #expect(even.nextCursor == nil)
        let cancelled = try await side.orders.orders(matching: OrderQuery(status: "CANCELLED"))
        #expect(cancelled.items.map(\.orderId) == ["o-2"])
        let from = Int64((Self.start.timeIntervalSince1970 + 120) * 1000)
        let before = Int64((Self.start.timeIntervalSince1970 + 300) * 1000)
        let window = try await side.orders.orders(matching: OrderQuery(placedFrom: from, placedBefore: before))
        #expect(window.items.map(\.orderId) == ["o-4", "o-3", "o-2"])
        let none = try await side.orders.orders(matching: OrderQuery(customerId: "c-nobody"))
        #expect(none.items.isEmpty && none.nextCursor == nil)
    }

    /// A parcel counts as in transit from its dispatch until it is delivered or failed, and only if it
    /// left before the time asked about: what the overdue gauge counts.
    public static func parcelsInTransitAreCountedByTheirDispatchTime(_ side: ReadSide) async throws {
        var log = Log()
        let dispatched = Self.start.addingTimeInterval(60)
        for (index, order) in ["o-on-way", "o-late", "o-arrived", "o-lost", "o-booked"].enumerated() {
            try log.place(order, customer: "c-ship", total: 500, at: Self.start)
            try log.complete(order, customer: "c-ship", total: 500, at: Self.start.addingTimeInterval(1))
            let shipment = StreamNames.shipment(order)
            try log.add(
                .shipmentRequested(ShipmentRequested(orderId: order, customerId: "c-ship", requestedAt: Self.start.addingTimeInterval(2))),
                stream: shipment, version: 1, order: order, at: Self.start.addingTimeInterval(2))
            guard order != "o-booked" else { continue }
            // "o-on-way" left later than the others.
            let left = order == "o-on-way" ? dispatched.addingTimeInterval(3_600) : dispatched.addingTimeInterval(Double(index))
            try log.add(
                .shipmentDispatched(
                    ShipmentDispatched(orderId: order, customerId: "c-ship", carrier: "SIMULATED", trackingNumber: "SIM-\(order)", dispatchedAt: left)
                ),
                stream: shipment, version: 2, order: order, at: left)
        }
        try log.add(
            .shipmentDelivered(ShipmentDelivered(orderId: "o-arrived", customerId: "c-ship", deliveredAt: dispatched.addingTimeInterval(600))),
            stream: StreamNames.shipment("o-arrived"), version: 3, order: "o-arrived", at: dispatched.addingTimeInterval(600))
        try log.add(
            .shipmentFailed(
                ShipmentFailed(orderId: "o-lost", customerId: "c-ship", reason: "LOST_IN_TRANSIT", failedAt: dispatched.addingTimeInterval(600))),
            stream: StreamNames.shipment("o-lost"), version: 3, order: "o-lost", at: dispatched.addingTimeInterval(600))
        try await side.feed(log.events)
        try await side.feed(log.events)
        // Before anything left: none. After "o-late" left but before "o-on-way": one. After both: two.
        #expect(try await side.orders.shipmentsInTransit(dispatchedBefore: dispatched) == 0)
        #expect(try await side.orders.shipmentsInTransit(dispatchedBefore: dispatched.addingTimeInterval(60)) == 1)
        #expect(try await side.orders.shipmentsInTransit(dispatchedBefore: dispatched.addingTimeInterval(7_200)) == 2)
        // The one number the count filters on: set while on the way, gone once it arrived or was lost.
        let onWay = try await side.orders.order(id: "o-on-way")?.inTransitSinceMs
        #expect(onWay == UTCTime.milliseconds(dispatched.addingTimeInterval(3_600)))
        #expect(try await side.orders.order(id: "o-arrived")?.inTransitSinceMs == nil)
        #expect(try await side.orders.order(id: "o-lost")?.inTransitSinceMs == nil)
        #expect(try await side.orders.order(id: "o-booked")?.inTransitSinceMs == nil)
    }

    /// A SKU's stock follows its restocks, reservations, releases and sales; an unknown SKU is nil.
    public static func stockFollowsItsEvents(_ side: ReadSide) async throws {
        var log = Log()
        let stream = StreamNames.stock("SKU-A")
        try log.add(
            .stockRestocked(StockRestocked(sku: "SKU-A", quantity: 10, unitPrice: 250)), stream: stream, version: 1, order: "SKU-A", at: Self.start)
        try log.add(
            .stockItemReserved(StockItemReserved(sku: "SKU-A", orderId: "o-1", quantity: 3)), stream: stream, version: 2, order: "o-1", at: Self.start
        )
        try log.add(
            .stockItemReserved(StockItemReserved(sku: "SKU-A", orderId: "o-2", quantity: 2)), stream: stream, version: 3, order: "o-2", at: Self.start
        )
        try log.add(
            .stockItemReleased(StockItemReleased(sku: "SKU-A", orderId: "o-2", quantity: 2)), stream: stream, version: 4, order: "o-2", at: Self.start
        )
        try log.add(
            .stockItemCommitted(StockItemCommitted(sku: "SKU-A", orderId: "o-1", quantity: 3)), stream: stream, version: 5, order: "o-1",
            at: Self.start)
        try await side.feed(Array(log.events.prefix(3)))
        try await side.feed(log.events)
        let stock = try #require(try await side.inventory.stock(sku: "SKU-A"))
        #expect(stock.onHand == 7)
        #expect(stock.reserved == 0)
        #expect(stock.available == 7)
        #expect(stock.unitPrice == 250)
        #expect(stock.version == 5)
        #expect(try await side.inventory.stock(sku: "SKU-B") == nil)
    }

    /// A customer's counts and spend, and each day's placed, completed, cancelled and revenue, within
    /// the days asked for, oldest first.
    public static func customersAndDaysAddUp(_ side: ReadSide) async throws {
        var log = Log()
        let day = 86_400.0
        try log.place("o-1", customer: "c-1", total: 1000, at: Self.start)
        try log.complete("o-1", customer: "c-1", total: 1000, at: Self.start.addingTimeInterval(10))
        try log.place("o-2", customer: "c-1", total: 500, at: Self.start.addingTimeInterval(day))
        try log.cancel("o-2", customer: "c-1", at: Self.start.addingTimeInterval(day + 10))
        try log.place("o-3", customer: "c-1", total: 700, at: Self.start.addingTimeInterval(2 * day))
        try log.place("o-4", customer: "c-2", total: 300, at: Self.start.addingTimeInterval(2 * day))
        try log.complete("o-4", customer: "c-2", total: 300, at: Self.start.addingTimeInterval(2 * day + 5))
        try await side.feed(log.events)
        try await side.feed(log.events)

        let summary = try #require(try await side.sales.customerSummary(customerId: "c-1"))
        #expect(summary.ordersPlaced == 3)
        #expect(summary.ordersCompleted == 1)
        #expect(summary.ordersCancelled == 1)
        #expect(summary.ordersOpen == 1)
        #expect(summary.spent == ["EUR": 1000])
        #expect(summary.lastOrderId == "o-3")
        #expect(try await side.sales.customerSummary(customerId: "c-nobody") == nil)

        let first = UTCTime.day(Self.start).number
        let third = UTCTime.day(Self.start.addingTimeInterval(2 * day)).number
        let days = try await side.sales.dailySales(from: first, to: third)
        #expect(days.map(\.placed) == [1, 1, 2])
        #expect(days.map(\.completed) == [1, 0, 1])
        #expect(days.map(\.cancelled) == [0, 1, 0])
        #expect(days.map(\.revenue) == [["EUR": 1000], [:], ["EUR": 300]])
        let lastTwo = try await side.sales.dailySales(from: UTCTime.day(Self.start.addingTimeInterval(day)).number, to: third)
        #expect(lastTwo.map(\.dayNumber) == days.suffix(2).map(\.dayNumber))
    }
}
