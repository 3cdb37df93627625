extension Duration {
    /// The duration in seconds, as Foundation's time arithmetic wants it.
    public var timeInterval: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }
}

extension Duration {
    /// The duration in whole nanoseconds, as metrics timers take it.
    public var nanoseconds: Int64 {
        self.components.seconds * 1_000_000_000 + self.components.attoseconds / 1_000_000_000
    }
}
