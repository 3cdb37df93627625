import Foundation

/// What the payment service asks a gateway to charge: the order's reserved total, with the token the
/// customer gave. The order id is the idempotency key: asking again decides the same way.
public struct ChargeRequest: Sendable, Equatable {
    public var orderId: String
    public var amount: MinorUnits
    public var currency: String
    public var token: String

    public init(orderId: String, amount: MinorUnits, currency: String, token: String) {
        self.orderId = orderId
        self.amount = amount
        self.currency = currency
        self.token = token
    }
}

/// A gateway's answer to a `ChargeRequest`.
public enum PaymentDecision: Sendable, Equatable {
    case approved(chargeId: String)
    case declined(reason: String)
}

/// The Payment aggregate of one order (`payment-<orderId>`). Charged at most once; refunded only
/// after a charge; after a void nothing is charged.
public struct Payment: Aggregate, Equatable {
    public enum State: Sendable, Equatable {
        case none
        case requested(currency: String, token: String)
        case charged(amount: MinorUnits, chargeId: String)
        case failed
        case refunded
        case voided
    }

    public private(set) var state: State = .none

    public init() {}

    public mutating func apply(_ event: DomainEvent) {
        switch event {
        case .paymentRequested(let requested): self.state = .requested(currency: requested.currency, token: requested.paymentToken)
        case .paymentProcessed(let processed): self.state = .charged(amount: processed.amount, chargeId: processed.chargeId)
        case .paymentFailed: self.state = .failed
        case .paymentRefunded: self.state = .refunded
        case .paymentVoided: self.state = .voided
        default: break
        }
    }

    /// Records how the order will pay, once.
    public func request(_ placed: OrderPlaced) -> [DomainEvent] {
        guard self.state == .none else { return [] }
        return [.paymentRequested(PaymentRequested(orderId: placed.orderId, currency: placed.currency, paymentToken: placed.payment.token))]
    }

    /// Stock is reserved: what to charge, unless already decided or voided.
    public func chargeRequest(for reserved: StockReserved) -> ChargeRequest? {
        guard case .requested(let currency, let token) = self.state else { return nil }
        return ChargeRequest(orderId: reserved.orderId, amount: reserved.total, currency: currency, token: token)
    }

    /// Records the gateway's decision on `request`. A charge approved after the order was cancelled
    /// (the void came while the gateway was deciding) is recorded and refunded at once.
    public func record(_ decision: PaymentDecision, of request: ChargeRequest) -> [DomainEvent] {
        switch (self.state, decision) {
        case (.requested, .approved(let chargeId)):
            [.paymentProcessed(PaymentProcessed(orderId: request.orderId, amount: request.amount, currency: request.currency, chargeId: chargeId))]
        case (.requested, .declined(let reason)):
            [.paymentFailed(PaymentFailed(orderId: request.orderId, amount: request.amount, reason: reason))]
        case (.voided, .approved(let chargeId)):
            [
                .paymentProcessed(
                    PaymentProcessed(orderId: request.orderId, amount: request.amount, currency: request.currency, chargeId: chargeId)),
                .paymentRefunded(PaymentRefunded(orderId: request.orderId, amount: request.amount, chargeId: chargeId)),
            ]
        default:
            []
        }
    }

    /// The order was cancelled: refund a charge, or make sure none will happen.
    public func compensate(orderId: String) -> [DomainEvent] {
        switch self.state {
        case .charged(let amount, let chargeId):
            [.paymentRefunded(PaymentRefunded(orderId: orderId, amount: amount, chargeId: chargeId))]
        case .none, .requested:
            [.paymentVoided(PaymentVoided(orderId: orderId))]
        case .failed, .refunded, .voided:
            []
        }
    }
}

/// The notifications already sent for one order (`notification-<orderId>`).
public struct Notifications: Aggregate, Equatable {
    public private(set) var sent: Set<String> = []

    public init() {}

    public mutating func apply(_ event: DomainEvent) {
        if case .notificationSent(let sent) = event { self.sent.insert(sent.outcome.rawValue) }
    }

    public func hasSent(_ outcome: NotificationOutcome) -> Bool { self.sent.contains(outcome.rawValue) }

    /// What the customer is told. `reason`: why an order was cancelled or its shipment failed.
    public static func message(for outcome: NotificationOutcome, orderId: String, reason: String? = nil) -> String {
        switch outcome {
        case .completed: "Your order \(orderId) is confirmed and paid."
        case .cancelled: "Your order \(orderId) was cancelled (\(reason ?? "CANCELLED"))."
        case .dispatched: "Your order \(orderId) is on its way."
        case .delivered: "Your order \(orderId) was delivered."
        case .shipmentFailed: "Your order \(orderId) could not be delivered (\(reason ?? "FAILED")); it is refunded."
        }
    }
}
