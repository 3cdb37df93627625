/// A command that breaks a domain rule. `field` names the offending input as the client sent it
/// (`lines[1].quantity`), so an API can point at it.
public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let field: String
    public let reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(self.field): \(self.reason)" }
}
