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
}

/// The customer was told the order's outcome (once per order and outcome).
public struct NotificationSent: EventPayload {
    public static let typeName = "NotificationSent"
    public var orderId: String
    public var customerId: String?
    public var outcome: NotificationOutcome
    public var message: String

    public init(orderId: String, customerId: String?, outcome: NotificationOutcome, message: String) {
        self.orderId = orderId
        self.customerId = customerId
        self.outcome = outcome
        self.message = message
    }

    public var asEvent: DomainEvent { .notificationSent(self) }
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

    /// Every payload type, for decoding by type name.
    static let payloadTypes: [any EventPayload.Type] = [
        OrderPlaced.self, OrderCompleted.self, OrderCancelled.self, StockRestocked.self, StockItemReserved.self,
        StockItemReleased.self, StockItemCommitted.self, StockReserved.self, StockReservationFailed.self, StockReleased.self,
        PaymentRequested.self, PaymentProcessed.self, PaymentFailed.self, PaymentRefunded.self, PaymentVoided.self,
        NotificationSent.self,
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
