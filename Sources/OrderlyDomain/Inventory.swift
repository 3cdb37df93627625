import Foundation

/// The Stock aggregate of one SKU (`stock-<sku>`): units on hand, the catalog price, and what each
/// order has reserved. Available = on hand - reserved, and it never goes below zero: a reservation
/// that does not fit is refused.
public struct Stock: SnapshotAggregate, Equatable {
    /// Its stream grows with every order of the SKU: loads start from a snapshot.
    public static let snapshotSchema = "Stock/2"

    public private(set) var sku: String?
    public private(set) var onHand: Int = 0
    public private(set) var unitPrice: MinorUnits?
    /// Units reserved per order id.
    public private(set) var reservations: [String: Int] = [:]
    /// Orders whose sold units came back (their shipment failed): taken back once. Only failed
    /// shipments land here, so it stays small.
    public private(set) var returned: Set<String> = []

    public init() {}

    public var reserved: Int { self.reservations.values.reduce(0, +) }
    public var available: Int { self.onHand - self.reserved }

    public mutating func apply(_ event: DomainEvent) {
        switch event {
        case .stockRestocked(let restocked):
            self.sku = restocked.sku
            self.onHand += restocked.quantity
            self.unitPrice = restocked.unitPrice
        case .stockItemReserved(let reserved):
            self.sku = reserved.sku
            self.reservations[reserved.orderId, default: 0] += reserved.quantity
        case .stockItemReleased(let released):
            self.reservations[released.orderId] = nil
        case .stockItemCommitted(let committed):
            self.reservations[committed.orderId] = nil
            self.onHand -= committed.quantity
        case .stockItemReturned(let returned):
            self.onHand += returned.quantity
            self.returned.insert(returned.orderId)
        default:
            break
        }
    }

    public enum ReservationDecision: Sendable, Equatable {
        case reserve([DomainEvent])
        /// This order already holds its units (a repeat after a crash): nothing to append.
        case alreadyReserved
        case refuse(CancellationReason)
    }

    /// Reserves a line for an order at the catalog price. The client's price must equal the catalog's:
    /// the server never trusts a client's price.
    public func reserve(_ line: OrderLine, for orderId: String) -> ReservationDecision {
        if self.reservations[orderId] != nil { return .alreadyReserved }
        guard let unitPrice, line.unitPrice == unitPrice else {
            return self.unitPrice == nil ? .refuse(.outOfStock) : .refuse(.priceChanged)
        }
        guard line.quantity <= self.available else { return .refuse(.outOfStock) }
        return .reserve([.stockItemReserved(StockItemReserved(sku: line.sku, orderId: orderId, quantity: line.quantity))])
    }

    /// Releases what an order holds, if anything.
    public func release(for orderId: String) -> [DomainEvent] {
        guard let sku, let quantity = self.reservations[orderId] else { return [] }
        return [.stockItemReleased(StockItemReleased(sku: sku, orderId: orderId, quantity: quantity))]
    }

    /// Turns an order's reservation into a sale, if it still holds one.
    public func commit(for orderId: String) -> [DomainEvent] {
        guard let sku, let quantity = self.reservations[orderId] else { return [] }
        return [.stockItemCommitted(StockItemCommitted(sku: sku, orderId: orderId, quantity: quantity))]
    }

    /// Takes back an order's units after its shipment failed: sold units return to the shelf once; units
    /// still reserved (the sale was never committed) are released instead.
    public func takeBack(_ quantity: Int, for orderId: String) -> [DomainEvent] {
        guard let sku else { return [] }
        if self.reservations[orderId] != nil { return self.release(for: orderId) }
        guard !self.returned.contains(orderId) else { return [] }
        return [.stockItemReturned(StockItemReturned(sku: sku, orderId: orderId, quantity: quantity))]
    }

    /// Staff add units and set the catalog price.
    public static func restock(sku: String, quantity: Int, unitPrice: MinorUnits) throws(ValidationError) -> [DomainEvent] {
        try IdentifierRules.check(sku, field: "sku")
        if quantity < 1 || quantity > Limits.maxRestockQuantity {
            throw ValidationError(field: "quantity", reason: "must be between 1 and \(Limits.maxRestockQuantity)")
        }
        if unitPrice < 1 || unitPrice > Limits.maxUnitPrice {
            throw ValidationError(field: "unitPrice", reason: "must be between 1 and \(Limits.maxUnitPrice) minor units")
        }
        return [.stockRestocked(StockRestocked(sku: sku, quantity: quantity, unitPrice: unitPrice))]
    }
}

/// The inventory service's decision for one order (`reservation-<orderId>`): reserved, refused,
/// released again, or returned after a failed shipment. One decision per order, guarded by the stream's expected version.
public struct Reservation: Aggregate, Equatable {
    public enum State: Sendable, Equatable {
        case undecided
        case reserved([OrderLine])
        case failed
        case released
        case returned
    }

    public private(set) var state: State = .undecided

    public init() {}

    public mutating func apply(_ event: DomainEvent) {
        switch event {
        case .stockReserved(let reserved): self.state = .reserved(reserved.lines)
        case .stockReservationFailed: self.state = .failed
        case .stockReleased: self.state = .released
        case .stockReturned: self.state = .returned
        default: break
        }
    }
}
