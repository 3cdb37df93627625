/// Money is always integer minor units (cents): never floating point.
public typealias MinorUnits = Int64
