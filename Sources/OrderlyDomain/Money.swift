/// Money is always integer minor units (cents): never floating point.
public typealias MinorUnits = Int64

/// Bounds the domain enforces on every command, so that a total can never overflow.
public enum Limits {
    public static let maxLinesPerOrder = 100
    public static let maxQuantity = 10_000
    public static let maxRestockQuantity = 1_000_000
    public static let maxUnitPrice: MinorUnits = 100_000_000
    public static let maxIdentifierLength = 64
}

extension Duration {
    /// The duration in seconds, as Foundation's time arithmetic wants it.
    public var timeInterval: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }
}
