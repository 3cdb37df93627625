import Foundation
import Logging
import OrderlyContracts
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import OrderlyServices
import Synchronization
import Testing

/// The whole saga with delivery on the in-memory store: every service reads every event in log
/// order, as their consumer groups do, until nothing new is appended. The same flows run on the
/// real servers in `DeliveryTests`.
final class InMemorySaga: Sendable {
    /// Counts its stream reads: what the services read to decide is part of what is tested.
    let store = CountingEventStore(InMemoryEventStore())
    let keys = InMemoryCustomerKeyStore()
    let sender = CountingSender()
    let handlers: [any EventHandler]
    let commands: OrderCommands
    let cursor = Mutex(LogCursor.start)

    /// `notifying: false` leaves the notification service out (a test hands it events itself).
    init(carrierAdvances: Bool = true, carrier: (any Carrier)? = nil, carrierTimeLimit: Duration = .seconds(10), notifying: Bool = true) {
        let vault = PersonalDataVault(keys: self.keys)
        self.commands = OrderCommands(store: self.store, vault: vault)
        let sender = self.sender
        let notification: [any EventHandler] = notifying ? [NotificationService(store: self.store, sender: sender, vault: vault)] : []
        self.handlers =
            [
                InventoryService(store: self.store), PaymentService(store: self.store, gateway: SimulatedPaymentGateway()),
                OrderService(store: self.store),
            ]
            + notification
            + [
                DeliveryService(
                    store: self.store, vault: vault, carrier: carrier ?? SimulatedCarrier(advancesByItself: carrierAdvances),
                    carrierTimeLimit: carrierTimeLimit)
            ]
    }

    /// Hands every new event to every service until the log stops growing.
    func settle() async throws {
        while true {
            let events = try await self.store.readAll(after: self.cursor.withLock { $0 }, limit: 1000)
            guard let last = events.last else { return }
            for event in events {
                for handler in self.handlers { try await handler.handle(event) }
            }
            self.cursor.withLock { $0 = last.cursor }
        }
    }

    /// Every event again from the start, as after a crash before any offset was committed.
    func redeliverEverything() async throws {
        self.cursor.withLock { $0 = .start }
        try await self.settle()
    }

    /// An order of `customer`: with their name, email and an address at `postalCode`; without any
    /// personal data when `postalCode` is nil, unless `namedWithoutAddress` (name and email only).
    func place(customer: String, postalCode: String?, quantity: Int = 2, namedWithoutAddress: Bool = false) async throws -> String {
        let address = postalCode.map { ShippingAddress(line1: "1 Main St", city: "Springfield", postalCode: $0, country: "US") }
        let details = CustomerDetails(name: "Ada", email: "ada@example.com")
        let personal =
            address.map { PersonalData(customer: details, shippingAddress: $0) }
            ?? (namedWithoutAddress ? PersonalData(customer: details, shippingAddress: nil) : nil)
        let input = OrderCommands.PlaceOrderInput(
            customerId: customer, currency: "EUR", lines: [OrderLine(sku: "SKU-1", quantity: quantity, unitPrice: 500)], paymentToken: "tok_ok",
            personalData: personal)
        return try await self.commands.placeOrder(input, actor: customer).orderId
    }

    func types(_ stream: String) async throws -> [String] {
        try await self.store.readStream(stream, from: 1).map(\.type)
    }

    func stock() async throws -> Stock {
        try await AggregateStore(store: self.store).load(StreamNames.stock("SKU-1"), as: Stock.self).state
    }
}

/// A carrier whose booking never answers (until it is cancelled).
struct SilentCarrier: Carrier {
    let name = "SILENT"
    func book(_ booking: ShipmentBooking) async throws -> CarrierBooking {
        try await Task.sleep(for: .seconds(3600))
        return .refused(reason: "NEVER")
    }
    func updates(trackingNumber: String, address: ShippingAddress?, at now: Date) -> [CarrierUpdate] { [] }
    func cancel(orderId: String) async throws {}
}

/// A carrier whose bookings wait until the test opens its gate, then are accepted (the simulated
/// carrier's refused postal code is refused at once); it remembers which orders' bookings were withdrawn.
final class GatedCarrier: Carrier {
    let name = "GATED"
    private let open = Mutex(false)
    private let withdrawn = Mutex<[String]>([])
    private let asked = Mutex(0)

    var cancelled: [String] { self.withdrawn.withLock { $0 } }
    var bookingsAsked: Int { self.asked.withLock { $0 } }
    func openGate() { self.open.withLock { $0 = true } }

    func book(_ booking: ShipmentBooking) async throws -> CarrierBooking {
        if booking.address.postalCode == SimulatedCarrier.refusedPostalCode { return .refused(reason: ShipmentFailureReason.addressRefused) }
        self.asked.withLock { $0 += 1 }
        while !self.open.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        return .accepted(carrier: self.name, trackingNumber: "GATED-\(booking.orderId)")
    }
    func updates(trackingNumber: String, address: ShippingAddress?, at now: Date) -> [CarrierUpdate] { [] }
    func cancel(orderId: String) async throws { self.withdrawn.withLock { $0.append(orderId) } }
}

@Suite struct DeliveryFlowTests {
    /// A saga whose carrier holds bookings until told, settling in the background, and an order of
    /// customer c1 whose booking the carrier is holding.
    static func anOrderWhoseBookingWaits() async throws -> (saga: InMemorySaga, carrier: GatedCarrier, order: String, settling: Task<Void, any Error>)
    {
        let carrier = GatedCarrier()
        let saga = InMemorySaga(carrier: carrier)
        _ = try await saga.commands.restock(sku: "SKU-1", quantity: 10, unitPrice: 500, actor: "staff")
        let order = try await saga.place(customer: "c1", postalCode: "10115")
        let settling = Task { try await saga.settle() }
        while carrier.bookingsAsked == 0 { try await Task.sleep(for: .milliseconds(10)) }
        return (saga, carrier, order, settling)
    }

    /// A booking that hangs must not hold the delivery service's consumer for good: past its time
    /// limit it fails as transient (the event is handled again later) and nothing is recorded.
    @Test(.timeLimit(.minutes(1))) func aCarrierThatDoesNotAnswerIsGivenUpOnAtItsTimeLimit() async throws {
        let saga = InMemorySaga(carrier: SilentCarrier(), carrierTimeLimit: .milliseconds(200))
        _ = try await saga.commands.restock(sku: "SKU-1", quantity: 10, unitPrice: 500, actor: "staff")
        let order = try await saga.place(customer: "c1", postalCode: "10115")
        let started = ContinuousClock.now
        await #expect(throws: TimeLimitExceeded.self) { try await saga.settle() }
        #expect(ContinuousClock.now - started < .seconds(5), "the booking was waited for past its limit")
        #expect(try await saga.types(StreamNames.shipment(order)) == ["ShipmentRequested"])

        // Still unbooked past the booking deadline: the delivery service's watcher fails the
        // shipment, and the failure is compensated like any other (refund, stock back, customer told).
        let watcher = SagaDeadlineWatcher(
            store: saga.store, settings: .init(deadline: .seconds(600)), workflow: .shipmentBooking, logger: Logger(label: "test"))
        #expect(try await watcher.sweep(now: Date().addingTimeInterval(300)) == 0, "failed before its deadline")
        #expect(try await watcher.sweep(now: Date().addingTimeInterval(601)) == 1)
        #expect(try await watcher.sweep(now: Date().addingTimeInterval(602)) == 0, "failed twice")
        try await saga.settle()
        #expect(try await saga.types(StreamNames.shipment(order)) == ["ShipmentRequested", "ShipmentFailed"])
        let failed = try await saga.store.readStream(StreamNames.shipment(order), from: 1).last
        guard case .shipmentFailed(let payload)? = try failed?.domainEventForHandler() else {
            Issue.record("the shipment did not fail")
            return
        }
        #expect(payload.reason == ShipmentFailureReason.bookingDeadlineExceeded)
        #expect(try await saga.types(StreamNames.payment(order)).last == "PaymentRefunded")
        #expect(try await saga.stock().onHand == 10)
        let notified = try await AggregateStore(store: saga.store).load(StreamNames.notification(order), as: Notifications.self).state
        #expect(notified.hasSent(.shipmentFailed))
    }

    /// The carrier accepts a booking only after the booking deadline has failed the shipment (and
    /// the order was refunded): the acceptance records nothing and the booking is withdrawn at the
    /// carrier, so what was refunded is not shipped; the failure, handled, withdraws it again (for a
    /// booking whose answer a crash lost), which a carrier takes as the same cancellation.
    @Test(.timeLimit(.minutes(1))) func aBookingAcceptedAfterTheDeadlineFailedTheShipmentIsWithdrawn() async throws {
        let (saga, carrier, order, settling) = try await Self.anOrderWhoseBookingWaits()
        let watcher = SagaDeadlineWatcher(
            store: saga.store, settings: .init(deadline: .seconds(600)), workflow: .shipmentBooking, logger: Logger(label: "test"))
        #expect(try await watcher.sweep(now: Date().addingTimeInterval(601)) == 1)
        #expect(carrier.cancelled.isEmpty, "withdrawn before the carrier answered")
        carrier.openGate()
        try await settling.value
        try await saga.settle()
        #expect(try await saga.types(StreamNames.shipment(order)) == ["ShipmentRequested", "ShipmentFailed"])
        #expect(try await saga.types(StreamNames.payment(order)).last == "PaymentRefunded")
        #expect(carrier.cancelled == [order, order], "\(carrier.cancelled)")
        // Other failures were never booked at the carrier: nothing to withdraw.
        let refused = try await saga.place(customer: "c1", postalCode: SimulatedCarrier.refusedPostalCode)
        try await saga.settle()
        #expect(try await saga.types(StreamNames.shipment(refused)) == ["ShipmentRequested", "ShipmentFailed"])
        #expect(carrier.cancelled == [order, order], "\(carrier.cancelled)")
    }

    /// The customer is forgotten while the carrier is being asked: the carrier's acceptance is not
    /// recorded as a dispatch (the parcel had not left as far as the log knows), the shipment fails
    /// as erased and is refunded, and the booking is withdrawn at the carrier, at once and again when
    /// its failure is handled (a carrier takes that as the same cancellation).
    @Test(.timeLimit(.minutes(1))) func aCustomerForgottenWhileTheCarrierIsAskedIsNotDispatchedAndTheBookingIsWithdrawn() async throws {
        let (saga, carrier, order, settling) = try await Self.anOrderWhoseBookingWaits()
        _ = try await saga.keys.forget("c1", by: "admin")
        carrier.openGate()
        try await settling.value
        try await saga.settle()
        #expect(try await saga.types(StreamNames.shipment(order)) == ["ShipmentRequested", "ShipmentFailed"])
        let failed = try #require(try await saga.store.readStream(StreamNames.shipment(order), from: 1).last)
        #expect(String(decoding: failed.data, as: UTF8.self).contains(ShipmentFailureReason.personalDataErased))
        #expect(try await saga.types(StreamNames.payment(order)).last == "PaymentRefunded")
        #expect(try await saga.stock().onHand == 10)
        #expect(carrier.cancelled == [order, order], "\(carrier.cancelled)")

        // Forgotten before the delivery service got to it: whatever an earlier try (its answer lost
        // to a crash or the time limit) may have booked is withdrawn too.
        let unbooked = try await saga.place(customer: "c2", postalCode: "10115")
        _ = try await saga.keys.forget("c2", by: "admin")
        try await saga.settle()
        #expect(try await saga.types(StreamNames.shipment(unbooked)) == ["ShipmentRequested", "ShipmentFailed"])
        #expect(carrier.cancelled == [order, order, unbooked], "\(carrier.cancelled)")
    }

    /// With delivery too, the services decide on what they last wrote, learnt from the topic or know
    /// to be new: a delivered order costs the five services two stream reads (the inventory's look at
    /// the reservation before it reserves, the delivery service's at the shipment before it books);
    /// before, the delivery service read its shipment stream before each step and the order for its
    /// address: eight reads for this order (checked with the service of the commit before).
    @Test func aDeliveredOrderCostsTheFiveServicesTwoStreamReads() async throws {
        let saga = InMemorySaga()
        _ = try await saga.commands.restock(sku: "SKU-1", quantity: 10, unitPrice: 500, actor: "staff")
        // A first order warms the services up (the stock stream is read once); the second is counted.
        _ = try await saga.place(customer: "c1", postalCode: "10115")
        try await saga.settle()
        let order = try await saga.place(customer: "c1", postalCode: "10115")
        let readsBefore = saga.store.streamReads
        try await saga.settle()
        #expect(saga.store.streamReads - readsBefore == 2, "stream reads for one order: \(saga.store.streamReads - readsBefore)")
        #expect(try await saga.types(StreamNames.shipment(order)) == ["ShipmentRequested", "ShipmentDispatched", "ShipmentDelivered"])
    }

    @Test func aPaidOrderWithAnAddressIsDispatchedAndDeliveredAndTheCustomerToldEachStep() async throws {
        let saga = InMemorySaga()
        _ = try await saga.commands.restock(sku: "SKU-1", quantity: 10, unitPrice: 500, actor: "staff")
        let order = try await saga.place(customer: "c1", postalCode: "10115")
        try await saga.settle()
        #expect(try await saga.types(StreamNames.shipment(order)) == ["ShipmentRequested", "ShipmentDispatched", "ShipmentDelivered"])
        // Each step names the one before it as its cause, the first the order's completion.
        let steps = try await saga.store.readStream(StreamNames.shipment(order), from: 1)
        try #require(steps.count == 3)
        let completed = try #require(try await saga.store.readStream(StreamNames.order(order), from: 1).last { $0.type == "OrderCompleted" })
        let causes = steps.map(\.metadata.causationId)
        #expect(causes == [completed.id, steps[0].id, steps[1].id].map { $0.uuidString.lowercased() })
        // The carrier's answer and the delivery it reported by itself went in one append (one time of
        // recording for both); the request before the booking in one of its own.
        #expect(steps[1].recordedAt == steps[2].recordedAt && steps[0].recordedAt != steps[1].recordedAt)
        let shipment = try await AggregateStore(store: saga.store).load(StreamNames.shipment(order), as: Shipment.self).state
        #expect(shipment.status == .delivered && shipment.carrier == "SIMULATED" && shipment.trackingNumber == "SIM-\(order)")
        #expect(
            try await saga.types(StreamNames.notification(order)) == ["NotificationSent", "NotificationSent", "NotificationSent"])
        let notified = try await AggregateStore(store: saga.store).load(StreamNames.notification(order), as: Notifications.self).state
        #expect(notified.sent == ["COMPLETED", "DISPATCHED", "DELIVERED"])
        // Each went to the customer the order names, opened from its sealed data; a channel that
        // keeps a record is given the sealed form to keep.
        let sealed = try await saga.commands.loadOrder(order).order.personalData
        let sent = saga.sender.sent(to: order)
        #expect(sent.map(\.notification.outcome) == [.completed, .dispatched, .delivered])
        #expect(sent.allSatisfy { $0.recipient == .customer(CustomerDetails(name: "Ada", email: "ada@example.com")) }, "\(sent)")
        #expect(sealed != nil && sent.allSatisfy { $0.sealedRecipient == sealed })
        #expect(sent.allSatisfy { !$0.notification.message.contains("ada@example.com") && $0.notification.withheld == nil })
        #expect(try await saga.types(StreamNames.payment(order)) == ["PaymentRequested", "PaymentProcessed"])
        #expect(try await saga.stock().onHand == 8)
        // Every event delivered again (a crash before any offset was committed) changes nothing.
        let before = try await saga.store.latestPosition()
        try await saga.redeliverEverything()
        #expect(try await saga.store.latestPosition() == before)
    }

    /// A batch that holds several of an order's steps (a parcel's dispatch and delivery come
    /// together) records its notifications in one append, each caused by the event that called for it.
    @Test func anOrdersNotificationsOfOneBatchAreRecordedInOneAppendEachCausedByItsEvent() async throws {
        let saga = InMemorySaga(notifying: false)
        _ = try await saga.commands.restock(sku: "SKU-1", quantity: 10, unitPrice: 500, actor: "staff")
        let order = try await saga.place(customer: "c1", postalCode: "10115")
        try await saga.settle()
        let log = try await saga.store.readAll(after: .start, limit: 1000)
        let notifications = NotificationService(store: saga.store, sender: saga.sender, vault: PersonalDataVault(keys: saga.keys))
        try await notifications.handle(batch: log)
        let recorded = try await saga.store.readStream(StreamNames.notification(order), from: 1)
        try #require(recorded.count == 3)
        let byType = Dictionary(grouping: log.filter { $0.metadata.correlationId == order }, by: \.type)
        let causes = try ["OrderCompleted", "ShipmentDispatched", "ShipmentDelivered"].map { type in
            try #require(byType[type]?.first).id.uuidString.lowercased()
        }
        #expect(recorded.map(\.metadata.causationId) == causes)
        #expect(Set(recorded.map(\.recordedAt)).count == 1, "one append for the three")
        #expect(saga.sender.sent(to: order).map(\.notification.outcome) == [.completed, .dispatched, .delivered])
        // The same batch again records nothing more.
        try await notifications.handle(batch: log)
        #expect(try await saga.store.readStream(StreamNames.notification(order), from: 1).count == 3)
    }

    @Test(arguments: [
        ("00000", ["ShipmentRequested", "ShipmentFailed"], ShipmentFailureReason.addressRefused),
        ("99999", ["ShipmentRequested", "ShipmentDispatched", "ShipmentFailed"], ShipmentFailureReason.undeliverable),
    ])
    func aFailedShipmentIsRefundedItsUnitsReturnAndTheCustomerIsTold(postalCode: String, shipment: [String], reason: String) async throws {
        let saga = InMemorySaga()
        _ = try await saga.commands.restock(sku: "SKU-1", quantity: 10, unitPrice: 500, actor: "staff")
        let order = try await saga.place(customer: "c1", postalCode: postalCode, quantity: 3)
        try await saga.settle()
        #expect(try await saga.types(StreamNames.shipment(order)) == shipment)
        let failed = try #require(try await saga.store.readStream(StreamNames.shipment(order), from: 1).last)
        #expect(String(decoding: failed.data, as: UTF8.self).contains(reason))
        #expect(try await saga.types(StreamNames.payment(order)) == ["PaymentRequested", "PaymentProcessed", "PaymentRefunded"])
        #expect(try await saga.types(StreamNames.reservation(order)) == ["StockReserved", "StockReturned"])
        let stock = try await saga.stock()
        #expect(stock.onHand == 10 && stock.available == 10, "the 3 sold units are back on the shelf")
        let notified = try await AggregateStore(store: saga.store).load(StreamNames.notification(order), as: Notifications.self).state
        #expect(notified.hasSent(.shipmentFailed))
        // The order's own status keeps meaning paid.
        #expect(try await saga.commands.loadOrder(order).order.status == .completed)
        let before = try await saga.store.latestPosition()
        try await saga.redeliverEverything()
        #expect(try await saga.store.latestPosition() == before, "compensation happens once")
        #expect(try await saga.stock().onHand == 10)
    }

    /// The order's shipment was skipped for want of an address, and the order stays paid: no refund,
    /// its 2 units stay sold (of 10).
    static func expectSkippedWithNothingCompensated(_ order: String, in saga: InMemorySaga) async throws {
        #expect(try await saga.types(StreamNames.shipment(order)) == ["ShipmentSkipped"])
        let skipped = try #require(try await saga.store.readStream(StreamNames.shipment(order), from: 1).first)
        #expect(String(decoding: skipped.data, as: UTF8.self).contains("NO_SHIPPING_ADDRESS"))
        #expect(try await saga.types(StreamNames.payment(order)) == ["PaymentRequested", "PaymentProcessed"])
        #expect(try await saga.stock().onHand == 8)
    }

    @Test func anOrderWithoutAnAddressIsSkippedWithAReasonAndNothingIsCompensated() async throws {
        let saga = InMemorySaga()
        _ = try await saga.commands.restock(sku: "SKU-1", quantity: 10, unitPrice: 500, actor: "staff")
        let order = try await saga.place(customer: "c1", postalCode: nil)
        try await saga.settle()
        try await Self.expectSkippedWithNothingCompensated(order, in: saga)
        // Placed without personal data: the confirmation goes to the channel with no recipient.
        #expect(saga.sender.sent(to: order).map(\.recipient) == [.unaddressed])
    }

    @Test func aCustomerForgottenBeforeTheParcelLeftIsNotShippedToAndIsRefunded() async throws {
        let saga = InMemorySaga()
        _ = try await saga.commands.restock(sku: "SKU-1", quantity: 10, unitPrice: 500, actor: "staff")
        let order = try await saga.place(customer: "c1", postalCode: "10115")
        _ = try await saga.keys.forget("c1", by: "admin")
        try await saga.settle()
        #expect(try await saga.types(StreamNames.shipment(order)) == ["ShipmentRequested", "ShipmentFailed"])
        let failed = try #require(try await saga.store.readStream(StreamNames.shipment(order), from: 1).last)
        #expect(String(decoding: failed.data, as: UTF8.self).contains(ShipmentFailureReason.personalDataErased))
        #expect(try await saga.types(StreamNames.payment(order)) == ["PaymentRequested", "PaymentProcessed", "PaymentRefunded"])
        #expect(try await saga.stock().onHand == 10)
        // Nothing is written to a forgotten customer: each notification is recorded as withheld, once.
        #expect(saga.sender.sent(to: order).isEmpty, "\(saga.sender.sent(to: order))")
        let recorded = try await saga.store.readStream(StreamNames.notification(order), from: 1).compactMap { event -> NotificationSent? in
            guard case .notificationSent(let sent) = try event.domainEventForHandler() else { return nil }
            return sent
        }
        #expect(recorded.map(\.outcome) == [.completed, .shipmentFailed])
        #expect(recorded.allSatisfy { $0.withheld == NotificationWithheld.personalDataErased })
        let before = try await saga.store.latestPosition()
        try await saga.redeliverEverything()
        #expect(try await saga.store.latestPosition() == before)
        #expect(saga.sender.sent(to: order).isEmpty)
    }

    /// An order placed with the customer's name and email but no address is skipped by delivery,
    /// also when the customer was forgotten before delivery got to it: the sealed data says (in the
    /// clear, and nothing personal) that it holds no address, so the erasure changes nothing about the
    /// order (no failure, no refund, the stock stays sold).
    @Test func aForgottenCustomersOrderWithoutAnAddressIsStillSkippedNotRefunded() async throws {
        let saga = InMemorySaga()
        _ = try await saga.commands.restock(sku: "SKU-1", quantity: 10, unitPrice: 500, actor: "staff")
        let order = try await saga.place(customer: "c1", postalCode: nil, namedWithoutAddress: true)
        _ = try await saga.keys.forget("c1", by: "admin")
        try await saga.settle()
        try await Self.expectSkippedWithNothingCompensated(order, in: saga)
    }

    /// A carrier that reports through the api: each update once by its id, a resent one changes
    /// nothing, one that contradicts the shipment is refused, and an order without a shipment has
    /// none to update.
    @Test func carrierUpdatesAreRecordedOnceAndContradictionsRefused() async throws {
        let saga = InMemorySaga(carrierAdvances: false)
        _ = try await saga.commands.restock(sku: "SKU-1", quantity: 10, unitPrice: 500, actor: "staff")
        let order = try await saga.place(customer: "c1", postalCode: "10115")
        try await saga.settle()
        #expect(try await saga.types(StreamNames.shipment(order)) == ["ShipmentRequested", "ShipmentDispatched"])
        // A dispatch restated as recorded changes nothing; one under another tracking number contradicts it.
        let shipment = try await AggregateStore(store: saga.store).load(StreamNames.shipment(order), as: Shipment.self).state
        let carrier = try #require(shipment.carrier)
        let trackingNumber = try #require(shipment.trackingNumber)
        let restated = CarrierUpdate(eventId: "evt-0", kind: .dispatched(carrier: carrier, trackingNumber: trackingNumber), occurredAt: Date())
        #expect(try await saga.commands.recordCarrierUpdate(restated, orderId: order, actor: "carrier").recorded == false)
        let otherParcel = CarrierUpdate(
            eventId: "evt-00", kind: .dispatched(carrier: carrier, trackingNumber: trackingNumber + "-2"), occurredAt: Date())
        await #expect(throws: ShipmentUpdateError.conflict(orderId: order, status: .dispatched)) {
            try await saga.commands.recordCarrierUpdate(otherParcel, orderId: order, actor: "carrier")
        }
        let delivered = CarrierUpdate(eventId: "evt-1", kind: .delivered, occurredAt: Date())
        let first = try await saga.commands.recordCarrierUpdate(delivered, orderId: order, actor: "carrier")
        #expect(first.recorded && first.status == .delivered)
        let again = try await saga.commands.recordCarrierUpdate(delivered, orderId: order, actor: "carrier")
        #expect(!again.recorded && again.status == .delivered)
        let sameFactNewId = CarrierUpdate(eventId: "evt-2", kind: .delivered, occurredAt: Date())
        #expect(try await saga.commands.recordCarrierUpdate(sameFactNewId, orderId: order, actor: "carrier").recorded == false)
        let lost = CarrierUpdate(eventId: "evt-3", kind: .failed(reason: "LOST"), occurredAt: Date())
        await #expect(throws: ShipmentUpdateError.conflict(orderId: order, status: .delivered)) {
            try await saga.commands.recordCarrierUpdate(lost, orderId: order, actor: "carrier")
        }
        await #expect(throws: ShipmentUpdateError.noShipment(orderId: "nope")) {
            try await saga.commands.recordCarrierUpdate(delivered, orderId: "nope", actor: "carrier")
        }
        try await saga.settle()
        #expect(try await saga.types(StreamNames.shipment(order)) == ["ShipmentRequested", "ShipmentDispatched", "ShipmentDelivered"])
        let notified = try await AggregateStore(store: saga.store).load(StreamNames.notification(order), as: Notifications.self).state
        #expect(notified.hasSent(.delivered))
    }

    @Test func theShipmentAggregateHasOneEndAndTheStockTakesAnOrderBackOnce() throws {
        var shipment = Shipment()
        let now = Date()
        let requested = shipment.request(orderId: "o", customerId: "c", hasShippingAddress: true, at: now)
        for event in requested { shipment.apply(event) }
        #expect(shipment.request(orderId: "o", customerId: "c", hasShippingAddress: true, at: now).isEmpty, "requested once")
        #expect(throws: ShipmentUpdateError.conflict(orderId: "o", status: .requested)) {
            try shipment.record(CarrierUpdate(eventId: "d", kind: .delivered, occurredAt: now))
        }
        for event in shipment.record(.accepted(carrier: "X", trackingNumber: "T1"), at: now) { shipment.apply(event) }
        #expect(shipment.status == .dispatched && shipment.record(.accepted(carrier: "X", trackingNumber: "T2"), at: now).isEmpty)
        for event in try shipment.record(CarrierUpdate(eventId: "f", kind: .failed(reason: "LOST"), occurredAt: now)) { shipment.apply(event) }
        #expect(shipment.status == .failed)
        #expect(throws: ShipmentUpdateError.conflict(orderId: "o", status: .failed)) {
            try shipment.record(CarrierUpdate(eventId: "d", kind: .delivered, occurredAt: now))
        }

        var stock = Stock()
        stock.apply(.stockRestocked(StockRestocked(sku: "S", quantity: 5, unitPrice: 100)))
        stock.apply(.stockItemReserved(StockItemReserved(sku: "S", orderId: "o", quantity: 2)))
        // Not committed yet: taking back releases the reservation.
        #expect(stock.takeBack(2, for: "o") == [.stockItemReleased(StockItemReleased(sku: "S", orderId: "o", quantity: 2))])
        stock.apply(.stockItemCommitted(StockItemCommitted(sku: "S", orderId: "o", quantity: 2)))
        let back = stock.takeBack(2, for: "o")
        #expect(back == [.stockItemReturned(StockItemReturned(sku: "S", orderId: "o", quantity: 2))])
        for event in back { stock.apply(event) }
        #expect(stock.onHand == 5 && stock.takeBack(2, for: "o").isEmpty)
    }
}
