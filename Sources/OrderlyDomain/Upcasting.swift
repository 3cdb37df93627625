import Foundation

/// Turns one stored schema version of an event type into the next. Events are immutable, so an
/// older shape stays in the log for ever; every reader (services, projections, rebuilds, exports,
/// the events API) sees the current shape because `EventCodec` runs the chain on read.
public struct Upcaster: Sendable {
    public var type: String
    /// The version this upcaster reads; it produces `fromVersion + 1`.
    public var fromVersion: Int
    public var upcast: @Sendable (Data) throws -> Data

    public init(type: String, fromVersion: Int, upcast: @escaping @Sendable (Data) throws -> Data) {
        self.type = type
        self.fromVersion = fromVersion
        self.upcast = upcast
    }

    /// Every upcaster Orderly has. Add one here whenever a payload's `schemaVersion` is raised.
    public static let all: [Upcaster] = [OrderPlacedUpcaster.fromVersion1, OrderPlacedUpcaster.fromVersion2]
}

/// The upcasters a reader applies, one per type and version they read. `standard` is this build's;
/// a test can bring one more (an upcaster "added in the next release").
public struct UpcasterChain: Sendable {
    public static let standard = UpcasterChain(Upcaster.all)

    private let steps: [String: Upcaster]

    public init(_ upcasters: [Upcaster]) {
        self.steps = Dictionary(upcasters.map { ("\($0.type)/\($0.fromVersion)", $0) }, uniquingKeysWith: { _, later in later })
    }

    func step(from version: Int, of type: String) -> Upcaster? {
        self.steps["\(type)/\(version)"]
    }
}

/// OrderPlaced version 1 (until November 2026): the gateway token sat at the top level as
/// `paymentToken`; version 2 nests it under `payment` with its method.
enum OrderPlacedUpcaster {
    /// The version 1 shape, exactly as it was stored.
    struct Version1: Decodable {
        var orderId: String
        var customerId: String
        var currency: String
        var lines: [OrderLine]
        var total: MinorUnits
        var paymentToken: String
        var placedAt: Date
    }

    static let fromVersion1 = Upcaster(type: OrderPlaced.typeName, fromVersion: 1) { data in
        let old = try EventCodec.makeDecoder().decode(Version1.self, from: data)
        let current = OrderPlaced(
            orderId: old.orderId, customerId: old.customerId, currency: old.currency, lines: old.lines, total: old.total,
            payment: PaymentDetails(method: "card", token: old.paymentToken), placedAt: old.placedAt)
        return try EventCodec.makeEncoder().encode(current)
    }

    /// Version 3 only added the optional `personalData`: a version 2 payload already reads as one
    /// without personal data (delivery skips such orders, saying why).
    static let fromVersion2 = Upcaster(type: OrderPlaced.typeName, fromVersion: 2) { data in data }
}
