/// Bounds the domain enforces on every command, so that a total can never overflow.
public enum Limits {
    public static let maxLinesPerOrder = 100
    public static let maxQuantity = 10_000
    public static let maxRestockQuantity = 1_000_000
    public static let maxUnitPrice: MinorUnits = 100_000_000
    public static let maxIdentifierLength = 64
}
