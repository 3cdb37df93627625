import Hummingbird
import HummingbirdCore
import NIOCore

/// The api's request context: Hummingbird's, plus the caller once a bearer token has been verified.
public struct OrderlyRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var principal: Principal?
    /// The client's address (rate limits without a token); turned into text only when needed.
    public let remoteAddress: SocketAddress?

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    public var clientAddress: String { self.remoteAddress?.ipAddress ?? "unknown" }

    /// The caller, if their role is one of `roles` (admin always is): 401 without a token, 403 with
    /// the wrong role.
    @discardableResult
    public func require(_ roles: Role...) throws -> Principal {
        guard let principal = self.principal else {
            var problem = Problem(
                status: .unauthorized, type: "unauthenticated", title: "Authentication required",
                detail: "send a bearer token in the Authorization header")
            problem.headers[.wwwAuthenticate] = "Bearer"
            throw problem
        }
        guard principal.role == .admin || roles.contains(principal.role) else {
            throw Problem(
                status: .forbidden, type: "forbidden", title: "Not allowed",
                detail: "the \(principal.role.rawValue) role may not do this; it needs \(roles.map(\.rawValue).joined(separator: " or "))")
        }
        return principal
    }
}
