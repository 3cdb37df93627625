import Foundation

/// One line of an order. `unitPrice` is in minor units of the order's currency.
public struct OrderLine: Codable, Sendable, Equatable {
    public var sku: String
    public var quantity: Int
    public var unitPrice: MinorUnits

    public init(sku: String, quantity: Int, unitPrice: MinorUnits) {
        self.sku = sku
        self.quantity = quantity
        self.unitPrice = unitPrice
    }

    public var subtotal: MinorUnits { MinorUnits(self.quantity) * self.unitPrice }
}

/// A stored event's payload: its type name and schema version are what the event store records.
public protocol EventPayload: Codable, Sendable, Equatable {
    static var typeName: String { get }
    static var schemaVersion: Int { get }
    var asEvent: DomainEvent { get }
}

extension EventPayload {
    public static var schemaVersion: Int { 1 }
}

// MARK: - Order stream (`order-<orderId>`): written by the api and the order service.

/// How an order is to be paid. Only cards (a gateway token) so far; the method is named so that
/// other ways to pay can be added without another schema version.
public struct PaymentDetails: Codable, Sendable, Equatable {
    public var method: String
    public var token: String

    public init(method: String = "card", token: String) {
        self.method = method
        self.token = token
    }
}

/// A customer placed an order.
///
/// Schema version 3 adds `personalData`: the customer's name, email and shipping address, sealed
/// with the customer's data key (absent when the client sent none). Version 2 (until December 2026)
/// had no personal data and upcasts unchanged. Version 2 keeps the payment under `payment`
/// (`{"method": "card", "token": …}`); version 1, written until November 2026, had a top-level
/// `paymentToken`. `OrderPlacedUpcaster` turns stored older versions into this shape on every read.
public struct OrderPlaced: EventPayload {
    public static let typeName = "OrderPlaced"
    public static let schemaVersion = 3
    public var orderId: String
    public var customerId: String
    public var currency: String
    public var lines: [OrderLine]
    public var total: MinorUnits
    public var payment: PaymentDetails
    public var placedAt: Date
    public var personalData: SealedPersonalData?

    public init(
        orderId: String, customerId: String, currency: String, lines: [OrderLine], total: MinorUnits,
        payment: PaymentDetails, placedAt: Date, personalData: SealedPersonalData? = nil
    ) {
        self.orderId = orderId
        self.customerId = customerId
        self.currency = currency
        self.lines = lines
        self.total = total
        self.payment = payment
        self.placedAt = placedAt
        self.personalData = personalData
    }

    public init(
        orderId: String, customerId: String, currency: String, lines: [OrderLine], total: MinorUnits,
        paymentToken: String, placedAt: Date, personalData: SealedPersonalData? = nil
    ) {
        self.init(
            orderId: orderId, customerId: customerId, currency: currency, lines: lines, total: total,
            payment: PaymentDetails(token: paymentToken), placedAt: placedAt, personalData: personalData)
    }

    public var asEvent: DomainEvent { .orderPlaced(self) }
}

/// Stock was reserved and payment taken: the order is done. Terminal.
public struct OrderCompleted: EventPayload {
    public static let typeName = "OrderCompleted"
    public var orderId: String
    public var customerId: String
    public var total: MinorUnits
    /// The order's currency. Added after the first release: absent in older events (read models
    /// count those under "XXX", ISO 4217's "no currency").
    public var currency: String?
    public var completedAt: Date

    public init(orderId: String, customerId: String, total: MinorUnits, currency: String? = nil, completedAt: Date) {
        self.orderId = orderId
        self.customerId = customerId
        self.total = total
        self.currency = currency
        self.completedAt = completedAt
    }

    public var asEvent: DomainEvent { .orderCompleted(self) }
}

/// Why an order was cancelled; stable strings that clients may branch on.
public enum CancellationReason: String, Codable, Sendable, CaseIterable {
    case outOfStock = "OUT_OF_STOCK"
    case priceChanged = "PRICE_CHANGED"
    case paymentDeclined = "PAYMENT_DECLINED"
    case customerRequest = "CUSTOMER_REQUEST"
    case deadlineExceeded = "DEADLINE_EXCEEDED"
}

/// The order will not complete. Terminal; the inventory and payment services compensate on it.
public struct OrderCancelled: EventPayload {
    public static let typeName = "OrderCancelled"
    public var orderId: String
    public var customerId: String
    public var reason: CancellationReason
    public var cancelledAt: Date

    public init(orderId: String, customerId: String, reason: CancellationReason, cancelledAt: Date) {
        self.orderId = orderId
        self.customerId = customerId
        self.reason = reason
        self.cancelledAt = cancelledAt
    }

    public var asEvent: DomainEvent { .orderCancelled(self) }
}

// MARK: - Stock stream (`stock-<sku>`): written by staff restocks and the inventory service.

/// Staff added units and set the SKU's catalog price.
public struct StockRestocked: EventPayload {
    public static let typeName = "StockRestocked"
    public var sku: String
    public var quantity: Int
    public var unitPrice: MinorUnits

    public init(sku: String, quantity: Int, unitPrice: MinorUnits) {
        self.sku = sku
        self.quantity = quantity
        self.unitPrice = unitPrice
    }

    public var asEvent: DomainEvent { .stockRestocked(self) }
}

/// Units of one SKU set aside for an order (one per SKU and order).
public struct StockItemReserved: EventPayload {
    public static let typeName = "StockItemReserved"
    public var sku: String
    public var orderId: String
    public var quantity: Int

    public init(sku: String, orderId: String, quantity: Int) {
        self.sku = sku
        self.orderId = orderId
        self.quantity = quantity
    }

    public var asEvent: DomainEvent { .stockItemReserved(self) }
}

/// An order's reserved units are available again.
public struct StockItemReleased: EventPayload {
    public static let typeName = "StockItemReleased"
    public var sku: String
    public var orderId: String
    public var quantity: Int

    public init(sku: String, orderId: String, quantity: Int) {
        self.sku = sku
        self.orderId = orderId
        self.quantity = quantity
    }

    public var asEvent: DomainEvent { .stockItemReleased(self) }
}

/// An order's reserved units were sold: they leave the stock on hand.
public struct StockItemCommitted: EventPayload {
    public static let typeName = "StockItemCommitted"
    public var sku: String
    public var orderId: String
    public var quantity: Int

    public init(sku: String, orderId: String, quantity: Int) {
        self.sku = sku
        self.orderId = orderId
        self.quantity = quantity
    }

    public var asEvent: DomainEvent { .stockItemCommitted(self) }
}

// MARK: - Reservation stream (`reservation-<orderId>`): the inventory service's decision per order.

/// Every line of the order is reserved at the catalog price; `total` is what payment charges.
public struct StockReserved: EventPayload {
    public static let typeName = "StockReserved"
    public var orderId: String
    public var lines: [OrderLine]
    public var total: MinorUnits

    public init(orderId: String, lines: [OrderLine], total: MinorUnits) {
        self.orderId = orderId
        self.lines = lines
        self.total = total
    }

    public var asEvent: DomainEvent { .stockReserved(self) }
}

/// The order could not be reserved; nothing stays reserved for it.
public struct StockReservationFailed: EventPayload {
    public static let typeName = "StockReservationFailed"
    public var orderId: String
    public var reason: CancellationReason
    public var sku: String?

    public init(orderId: String, reason: CancellationReason, sku: String?) {
        self.orderId = orderId
        self.reason = reason
        self.sku = sku
    }

    public var asEvent: DomainEvent { .stockReservationFailed(self) }
}

/// Compensation: whatever was reserved for the order is released.
public struct StockReleased: EventPayload {
    public static let typeName = "StockReleased"
    public var orderId: String
    public var lines: [OrderLine]

    public init(orderId: String, lines: [OrderLine]) {
        self.orderId = orderId
        self.lines = lines
    }

    public var asEvent: DomainEvent { .stockReleased(self) }
}

// MARK: - Payment stream (`payment-<orderId>`): the payment service's record per order.

/// The order's payment details, kept until stock is reserved.
public struct PaymentRequested: EventPayload {
    public static let typeName = "PaymentRequested"
    public var orderId: String
    public var currency: String
    public var paymentToken: String

    public init(orderId: String, currency: String, paymentToken: String) {
        self.orderId = orderId
        self.currency = currency
        self.paymentToken = paymentToken
    }

    public var asEvent: DomainEvent { .paymentRequested(self) }
}

/// The gateway charged the order's total.
public struct PaymentProcessed: EventPayload {
    public static let typeName = "PaymentProcessed"
    public var orderId: String
    public var amount: MinorUnits
    public var currency: String
    public var chargeId: String

    public init(orderId: String, amount: MinorUnits, currency: String, chargeId: String) {
        self.orderId = orderId
        self.amount = amount
        self.currency = currency
        self.chargeId = chargeId
    }

    public var asEvent: DomainEvent { .paymentProcessed(self) }
}

/// The gateway declined; nothing was charged.
public struct PaymentFailed: EventPayload {
    public static let typeName = "PaymentFailed"
    public var orderId: String
    public var amount: MinorUnits
    public var reason: String

    public init(orderId: String, amount: MinorUnits, reason: String) {
        self.orderId = orderId
        self.amount = amount
        self.reason = reason
    }

    public var asEvent: DomainEvent { .paymentFailed(self) }
}

/// Compensation: a charge was paid back.
public struct PaymentRefunded: EventPayload {
    public static let typeName = "PaymentRefunded"
    public var orderId: String
    public var amount: MinorUnits
    public var chargeId: String

    public init(orderId: String, amount: MinorUnits, chargeId: String) {
        self.orderId = orderId
        self.amount = amount
        self.chargeId = chargeId
    }

    public var asEvent: DomainEvent { .paymentRefunded(self) }
}

/// The order was cancelled before any charge: none will be made.
public struct PaymentVoided: EventPayload {
    public static let typeName = "PaymentVoided"
    public var orderId: String

    public init(orderId: String) {
        self.orderId = orderId
    }

    public var asEvent: DomainEvent { .paymentVoided(self) }
}

// MARK: - Notification stream (`notification-<orderId>`).

/// What a notification tells the customer.
public enum NotificationOutcome: String, Codable, Sendable {
    case completed = "COMPLETED"
    case cancelled = "CANCELLED"
    case dispatched = "DISPATCHED"
    case delivered = "DELIVERED"
    case shipmentFailed = "SHIPMENT_FAILED"
}

/// The customer was told the order's outcome (once per order and outcome), or, with `withheld`,
/// the notification service dealt with it without writing to anyone.
public struct NotificationSent: EventPayload {
    public static let typeName = "NotificationSent"
    public var orderId: String
    public var customerId: String?
    public var outcome: NotificationOutcome
    /// What the customer is told. Never personal: the log keeps it in the clear.
    public var message: String
    /// Why nothing went out (`PERSONAL_DATA_ERASED`: the customer was forgotten, so there is no one
    /// to write to). Absent when the message went to the channel; events before it have none.
    public var withheld: String?

    public init(orderId: String, customerId: String?, outcome: NotificationOutcome, message: String, withheld: String? = nil) {
        self.orderId = orderId
        self.customerId = customerId
        self.outcome = outcome
        self.message = message
        self.withheld = withheld
    }

    public var asEvent: DomainEvent { .notificationSent(self) }
}

// MARK: - Shipment stream (`shipment-<orderId>`): the delivery service's and the carrier's record per order.

/// A paid order is to be shipped to the address it was placed with.
public struct ShipmentRequested: EventPayload {
    public static let typeName = "ShipmentRequested"
    public var orderId: String
    public var customerId: String
    public var requestedAt: Date

    public init(orderId: String, customerId: String, requestedAt: Date) {
        self.orderId = orderId
        self.customerId = customerId
        self.requestedAt = requestedAt
    }

    public var asEvent: DomainEvent { .shipmentRequested(self) }
}

/// A paid order that will not be shipped, and why (`NO_SHIPPING_ADDRESS`: placed before orders
/// carried an address, or without one). Nothing is compensated: the order stays as it is.
public struct ShipmentSkipped: EventPayload {
    public static let typeName = "ShipmentSkipped"
    public var orderId: String
    public var customerId: String
    public var reason: String

    public init(orderId: String, customerId: String, reason: String) {
        self.orderId = orderId
        self.customerId = customerId
        self.reason = reason
    }

    public var asEvent: DomainEvent { .shipmentSkipped(self) }
}

/// The carrier took the parcel: from here it can be tracked.
public struct ShipmentDispatched: EventPayload {
    public static let typeName = "ShipmentDispatched"
    public var orderId: String
    public var customerId: String
    public var carrier: String
    public var trackingNumber: String
    public var dispatchedAt: Date
    /// The carrier's id of the update this records; nil when the booking's answer recorded it.
    public var carrierEventId: String?

    public init(orderId: String, customerId: String, carrier: String, trackingNumber: String, dispatchedAt: Date, carrierEventId: String? = nil) {
        self.orderId = orderId
        self.customerId = customerId
        self.carrier = carrier
        self.trackingNumber = trackingNumber
        self.dispatchedAt = dispatchedAt
        self.carrierEventId = carrierEventId
    }

    public var asEvent: DomainEvent { .shipmentDispatched(self) }
}

/// The carrier delivered the parcel. Terminal.
public struct ShipmentDelivered: EventPayload {
    public static let typeName = "ShipmentDelivered"
    public var orderId: String
    public var customerId: String
    public var deliveredAt: Date
    public var carrierEventId: String?

    public init(orderId: String, customerId: String, deliveredAt: Date, carrierEventId: String? = nil) {
        self.orderId = orderId
        self.customerId = customerId
        self.deliveredAt = deliveredAt
        self.carrierEventId = carrierEventId
    }

    public var asEvent: DomainEvent { .shipmentDelivered(self) }
}

/// Why a shipment failed; stable strings that clients may branch on. A carrier may report reasons
/// of its own (one identifier each) beside these.
public enum ShipmentFailureReason {
    /// The carrier refused the address when the shipment was booked.
    public static let addressRefused = "ADDRESS_REFUSED"
    /// The customer was forgotten before the parcel left: there is no address to ship to.
    public static let personalDataErased = "PERSONAL_DATA_ERASED"
    /// The carrier could not deliver and the parcel came back.
    public static let undeliverable = "UNDELIVERABLE"
    /// No booking was recorded within the booking deadline (the carrier did not answer).
    public static let bookingDeadlineExceeded = "BOOKING_DEADLINE_EXCEEDED"
}

/// The order will not reach the customer. Terminal; the payment service refunds, the inventory
/// service takes the units back and the customer is told.
public struct ShipmentFailed: EventPayload {
    public static let typeName = "ShipmentFailed"
    public var orderId: String
    public var customerId: String
    public var reason: String
    public var failedAt: Date
    public var carrierEventId: String?

    public init(orderId: String, customerId: String, reason: String, failedAt: Date, carrierEventId: String? = nil) {
        self.orderId = orderId
        self.customerId = customerId
        self.reason = reason
        self.failedAt = failedAt
        self.carrierEventId = carrierEventId
    }

    public var asEvent: DomainEvent { .shipmentFailed(self) }
}

// MARK: - Stock taken back after a failed shipment.

/// Units sold to an order came back to the shelf (its shipment failed).
public struct StockItemReturned: EventPayload {
    public static let typeName = "StockItemReturned"
    public var sku: String
    public var orderId: String
    public var quantity: Int

    public init(sku: String, orderId: String, quantity: Int) {
        self.sku = sku
        self.orderId = orderId
        self.quantity = quantity
    }

    public var asEvent: DomainEvent { .stockItemReturned(self) }
}

/// Compensation for a failed shipment: the order's units are back in stock (on the reservation
/// stream: once per order).
public struct StockReturned: EventPayload {
    public static let typeName = "StockReturned"
    public var orderId: String
    public var lines: [OrderLine]

    public init(orderId: String, lines: [OrderLine]) {
        self.orderId = orderId
        self.lines = lines
    }

    public var asEvent: DomainEvent { .stockReturned(self) }
}

/// Every fact Orderly records, as the domain sees it. The stored form (type name, schema version,
/// JSON data) is produced by `EventCodec`.
public enum DomainEvent: Sendable, Equatable {
    case orderPlaced(OrderPlaced)
    case orderCompleted(OrderCompleted)
    case orderCancelled(OrderCancelled)
    case stockRestocked(StockRestocked)
    case stockItemReserved(StockItemReserved)
    case stockItemReleased(StockItemReleased)
    case stockItemCommitted(StockItemCommitted)
    case stockReserved(StockReserved)
    case stockReservationFailed(StockReservationFailed)
    case stockReleased(StockReleased)
    case paymentRequested(PaymentRequested)
    case paymentProcessed(PaymentProcessed)
    case paymentFailed(PaymentFailed)
    case paymentRefunded(PaymentRefunded)
    case paymentVoided(PaymentVoided)
    case notificationSent(NotificationSent)
    case shipmentRequested(ShipmentRequested)
    case shipmentSkipped(ShipmentSkipped)
    case shipmentDispatched(ShipmentDispatched)
    case shipmentDelivered(ShipmentDelivered)
    case shipmentFailed(ShipmentFailed)
    case stockItemReturned(StockItemReturned)
    case stockReturned(StockReturned)

    /// Every payload type, for decoding by type name.
    static let payloadTypes: [any EventPayload.Type] = [
        OrderPlaced.self, OrderCompleted.self, OrderCancelled.self, StockRestocked.self, StockItemReserved.self,
        StockItemReleased.self, StockItemCommitted.self, StockReserved.self, StockReservationFailed.self, StockReleased.self,
        PaymentRequested.self, PaymentProcessed.self, PaymentFailed.self, PaymentRefunded.self, PaymentVoided.self,
        NotificationSent.self, ShipmentRequested.self, ShipmentSkipped.self, ShipmentDispatched.self, ShipmentDelivered.self,
        ShipmentFailed.self, StockItemReturned.self, StockReturned.self,
    ]

    public var payload: any EventPayload {
        switch self {
        case .orderPlaced(let payload): payload
        case .orderCompleted(let payload): payload
        case .orderCancelled(let payload): payload
        case .stockRestocked(let payload): payload
        case .stockItemReserved(let payload): payload
        case .stockItemReleased(let payload): payload
        case .stockItemCommitted(let payload): payload
        case .stockReserved(let payload): payload
        case .stockReservationFailed(let payload): payload
        case .stockReleased(let payload): payload
        case .paymentRequested(let payload): payload
        case .paymentProcessed(let payload): payload
        case .paymentFailed(let payload): payload
        case .paymentRefunded(let payload): payload
        case .paymentVoided(let payload): payload
        case .notificationSent(let payload): payload
        case .shipmentRequested(let payload): payload
        case .shipmentSkipped(let payload): payload
        case .shipmentDispatched(let payload): payload
        case .shipmentDelivered(let payload): payload
        case .shipmentFailed(let payload): payload
        case .stockItemReturned(let payload): payload
        case .stockReturned(let payload): payload
        }
    }

    public var typeName: String { type(of: self.payload).typeName }
}

/// An aggregate: state folded from its own stream, one event at a time.
public protocol Aggregate: Sendable {
    init()
    mutating func apply(_ event: DomainEvent)
}

/// An aggregate whose folded state may be saved and loaded again (a snapshot), for streams that
/// grow long. `snapshotSchema` names the type and the version of its fold: change it whenever
/// `apply` or the stored fields change, and older snapshots are ignored.
public protocol SnapshotAggregate: Aggregate, Codable {
    static var snapshotSchema: String { get }
}

extension Aggregate {
    public static func fold(_ events: [DomainEvent]) -> Self {
        var state = Self()
        for event in events { state.apply(event) }
        return state
    }
}
