import Foundation

/// What a client asks for when placing an order, before validation.
public struct PlaceOrder: Sendable, Equatable {
    public var orderId: String
    public var customerId: String
    public var currency: String
    public var lines: [OrderLine]
    /// As the client sent it: what the rules check.
    public var paymentToken: String
    /// The same token sealed for the payment service (I/O done by the caller), stored in its place.
    public var sealedPaymentToken: String?
    /// Already sealed with the customer's data key (sealing is I/O; the domain only carries it).
    /// Check the plain form with `PersonalData.validate()` before sealing.
    public var personalData: SealedPersonalData?

    public init(
        orderId: String, customerId: String, currency: String, lines: [OrderLine], paymentToken: String,
        personalData: SealedPersonalData? = nil
    ) {
        self.orderId = orderId
        self.customerId = customerId
        self.currency = currency
        self.lines = lines
        self.paymentToken = paymentToken
        self.personalData = personalData
    }
}

public enum OrderStatus: String, Codable, Sendable {
    case placed = "PLACED"
    case stockReserved = "STOCK_RESERVED"
    case paid = "PAID"
    case completed = "COMPLETED"
    case cancelled = "CANCELLED"
}

/// The Order aggregate: its state is a fold of its own events, and its decisions read only that state.
/// Its own status is PLACED, COMPLETED or CANCELLED; the read model adds the saga's steps in between.
public struct Order: Aggregate, Equatable {
    public private(set) var orderId: String?
    public private(set) var customerId: String?
    public private(set) var currency: String?
    public private(set) var status: OrderStatus?
    public private(set) var lines: [OrderLine] = []
    public private(set) var total: MinorUnits = 0
    public private(set) var placedAt: Date?
    public private(set) var cancellationReason: CancellationReason?
    /// As placed: sealed (delivery opens it to ship).
    public private(set) var personalData: SealedPersonalData?

    public init() {}

    public var isTerminal: Bool { self.status == .completed || self.status == .cancelled }

    public mutating func apply(_ event: DomainEvent) {
        switch event {
        case .orderPlaced(let placed):
            self.orderId = placed.orderId
            self.customerId = placed.customerId
            self.currency = placed.currency
            self.status = .placed
            self.lines = placed.lines
            self.total = placed.total
            self.placedAt = placed.placedAt
            self.personalData = placed.personalData
        case .orderCompleted:
            self.status = .completed
        case .orderCancelled(let cancelled):
            self.status = .cancelled
            self.cancellationReason = cancelled.reason
        default:
            break
        }
    }

    /// Decides whether an order can be placed; returns the events to append.
    public func place(_ command: PlaceOrder, at now: Date) throws(ValidationError) -> [DomainEvent] {
        if self.status != nil {
            throw ValidationError(field: "orderId", reason: "an order with this id already exists")
        }
        try Self.validate(command)
        let total = command.lines.reduce(MinorUnits(0)) { $0 + $1.subtotal }
        return [
            .orderPlaced(
                OrderPlaced(
                    orderId: command.orderId, customerId: command.customerId, currency: command.currency,
                    lines: command.lines, total: total, paymentToken: command.sealedPaymentToken ?? command.paymentToken, placedAt: now,
                    personalData: command.personalData
                )
            )
        ]
    }

    /// Payment went through: complete, unless the order already ended (a cancel won the race; the
    /// payment service refunds on that cancel).
    public func complete(charged amount: MinorUnits, at now: Date) -> [DomainEvent] {
        guard let orderId, let customerId, self.status == .placed else { return [] }
        return [.orderCompleted(OrderCompleted(orderId: orderId, customerId: customerId, total: amount, currency: self.currency, completedAt: now))]
    }

    /// Cancels an order that has not ended yet; an ended one stays as it is (nothing to append).
    public func cancel(because reason: CancellationReason, at now: Date) -> [DomainEvent] {
        guard let orderId, let customerId, self.status == .placed else { return [] }
        return [.orderCancelled(OrderCancelled(orderId: orderId, customerId: customerId, reason: reason, cancelledAt: now))]
    }

    /// The command's rules, without a decision: lets a caller refuse bad input before doing I/O for it.
    public static func validate(_ command: PlaceOrder) throws(ValidationError) {
        try IdentifierRules.check(command.orderId, field: "orderId")
        try IdentifierRules.check(command.customerId, field: "customerId")
        let isCurrencyCode =
            command.currency.count == 3 && command.currency.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) }
        if !isCurrencyCode {
            throw ValidationError(field: "currency", reason: "must be a three-letter ISO 4217 code such as EUR")
        }
        try IdentifierRules.check(command.paymentToken, field: "paymentToken")
        if command.lines.isEmpty {
            throw ValidationError(field: "lines", reason: "must contain at least one line")
        }
        if command.lines.count > Limits.maxLinesPerOrder {
            throw ValidationError(field: "lines", reason: "must contain at most \(Limits.maxLinesPerOrder) lines")
        }
        var seen = Set<String>()
        for (index, line) in command.lines.enumerated() {
            try IdentifierRules.check(line.sku, field: "lines[\(index)].sku")
            if !seen.insert(line.sku).inserted {
                throw ValidationError(field: "lines[\(index)].sku", reason: "appears more than once; combine the quantities")
            }
            if line.quantity < 1 || line.quantity > Limits.maxQuantity {
                throw ValidationError(field: "lines[\(index)].quantity", reason: "must be between 1 and \(Limits.maxQuantity)")
            }
            if line.unitPrice < 1 || line.unitPrice > Limits.maxUnitPrice {
                throw ValidationError(
                    field: "lines[\(index)].unitPrice", reason: "must be between 1 and \(Limits.maxUnitPrice) minor units")
            }
        }
    }
}
