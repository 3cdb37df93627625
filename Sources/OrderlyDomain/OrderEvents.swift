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

/// A customer placed an order. Version 1 of this event's schema.
public struct OrderPlaced: Codable, Sendable, Equatable {
    public var orderId: String
    public var customerId: String
    public var currency: String
    public var lines: [OrderLine]
    public var total: MinorUnits
    public var paymentToken: String
    public var placedAt: Date

    public init(
        orderId: String, customerId: String, currency: String, lines: [OrderLine], total: MinorUnits,
        paymentToken: String, placedAt: Date
    ) {
        self.orderId = orderId
        self.customerId = customerId
        self.currency = currency
        self.lines = lines
        self.total = total
        self.paymentToken = paymentToken
        self.placedAt = placedAt
    }
}

/// Every fact about an order, as the domain sees it. The stored form (type name, schema version,
/// JSON data) is produced by `EventCodec`.
public enum OrderEvent: Sendable, Equatable {
    case placed(OrderPlaced)

    public var typeName: String {
        switch self {
        case .placed: "OrderPlaced"
        }
    }
}
