extension Duration {
    /// The duration in seconds, as Foundation's time arithmetic wants it.
    public var timeInterval: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }
}
