import Foundation

/// The simulated payment gateway. Its rules are deterministic and documented (README) so every path
/// of the saga can be driven from the REST api, and a repeat after a crash decides the same way:
/// - a total above 1,000,000 minor units is declined whatever the token;
/// - `tok_ok` is approved; `tok_declined` and every other token are declined.
public enum PaymentGateway {
    public static let approveLimit: MinorUnits = 1_000_000

    public enum Decision: Sendable, Equatable {
        case approved
        case declined(reason: String)
    }

    public static func decide(token: String, amount: MinorUnits) -> Decision {
        if amount > self.approveLimit { return .declined(reason: "AMOUNT_LIMIT_EXCEEDED") }
        switch token {
        case "tok_ok": return .approved
        case "tok_declined": return .declined(reason: "CARD_DECLINED")
        default: return .declined(reason: "UNKNOWN_TOKEN")
        }
    }
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

    /// Stock is reserved: charge the reserved total, unless already decided or voided.
    public func charge(_ reserved: StockReserved) -> [DomainEvent] {
        guard case .requested(let currency, let token) = self.state else { return [] }
        switch PaymentGateway.decide(token: token, amount: reserved.total) {
        case .approved:
            // Derived from the order id, so a repeated decision names the same charge.
            let chargeId = "ch_\(reserved.orderId)"
            return [.paymentProcessed(PaymentProcessed(orderId: reserved.orderId, amount: reserved.total, currency: currency, chargeId: chargeId))]
        case .declined(let reason):
            return [.paymentFailed(PaymentFailed(orderId: reserved.orderId, amount: reserved.total, reason: reason))]
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

    public static func message(for outcome: NotificationOutcome, orderId: String, reason: CancellationReason?) -> String {
        switch outcome {
        case .completed: "Your order \(orderId) is confirmed and paid."
        case .cancelled: "Your order \(orderId) was cancelled (\(reason?.rawValue ?? "CANCELLED"))."
        }
    }
}
