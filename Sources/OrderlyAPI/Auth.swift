import Foundation
import HTTPTypes
import Hummingbird
import JWTKit
import NIOCore
import OrderlyDomain

/// Who may do what. A customer acts on their own orders only; staff restock and read every order;
/// analysts read the event history; admin may do everything.
public enum Role: String, Codable, Sendable, CaseIterable {
    case customer, staff, analyst, admin
}

/// The caller, from a verified bearer token.
public struct Principal: Sendable, Equatable {
    public var subject: String
    public var role: Role

    public init(subject: String, role: Role) {
        self.subject = subject
        self.role = role
    }

    /// Whether the caller may see or act on that customer's orders: the customer themselves, or
    /// any role above customer that got past the route's role check.
    public func mayActFor(customer: String) -> Bool {
        self.role != .customer || self.subject == customer
    }
}

/// The claims Orderly signs and checks: subject, role, issuer, expiry (and when it was issued).
struct OrderlyClaims: JWTPayload {
    var sub: SubjectClaim
    var role: String
    var iss: IssuerClaim
    var exp: ExpirationClaim
    var iat: IssuedAtClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try self.exp.verifyNotExpired()
    }
}

public enum AuthError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A token that is malformed, badly signed, expired, from another issuer or with an unknown role.
    /// The reason is for the client; it never repeats the token.
    case invalidToken(String)
    case misconfigured(String)

    public var description: String {
        switch self {
        case .invalidToken(let reason): "invalid token: \(reason)"
        case .misconfigured(let reason): reason
        }
    }
}

/// Signs and verifies Orderly's JWTs: HS256 with a shared secret, or RS256 / ES256 with a PEM key file
/// (a private key signs and verifies; a public key only verifies). Keys come from the environment or
/// a file, never from code, and are never logged.
public struct TokenAuthority: Sendable {
    let keys: JWTKeyCollection
    public let issuer: String
    /// HS256, RS256 or ES256.
    public let algorithm: String

    /// HS256. The secret must be at least 32 bytes (RFC 7518 §3.2: no shorter than the hash).
    public static func hmac(secret: String, issuer: String) async throws(AuthError) -> TokenAuthority {
        guard secret.utf8.count >= 32 else { throw .misconfigured("the JWT secret must be at least 32 bytes") }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return TokenAuthority(keys: keys, issuer: issuer, algorithm: "HS256")
    }

    /// RS256 or ES256, whichever the PEM holds (EC P-256 or RSA; private or public key).
    public static func keyFile(path: String, issuer: String) async throws(AuthError) -> TokenAuthority {
        guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .misconfigured("cannot read the JWT key file \(path)")
        }
        let keys = JWTKeyCollection()
        if let key = try? ES256PrivateKey(pem: pem) {
            await keys.add(ecdsa: key)
            return TokenAuthority(keys: keys, issuer: issuer, algorithm: "ES256")
        }
        if let key = try? ES256PublicKey(pem: pem) {
            await keys.add(ecdsa: key)
            return TokenAuthority(keys: keys, issuer: issuer, algorithm: "ES256")
        }
        if let key = try? Insecure.RSA.PrivateKey(pem: pem) {
            await keys.add(rsa: key, digestAlgorithm: .sha256)
            return TokenAuthority(keys: keys, issuer: issuer, algorithm: "RS256")
        }
        if let key = try? Insecure.RSA.PublicKey(pem: pem) {
            await keys.add(rsa: key, digestAlgorithm: .sha256)
            return TokenAuthority(keys: keys, issuer: issuer, algorithm: "RS256")
        }
        throw .misconfigured("the JWT key file \(path) holds no EC P-256 or RSA (2048 bits or more) key in PEM form")
    }

    /// A signed token for `subject` with `role`, valid for `lifetime`.
    public func mint(subject: String, role: Role, lifetime: Duration, now: Date = Date()) async throws(AuthError) -> String {
        let claims = OrderlyClaims(
            sub: SubjectClaim(value: subject), role: role.rawValue, iss: IssuerClaim(value: self.issuer),
            exp: ExpirationClaim(value: now.addingTimeInterval(lifetime.timeInterval)), iat: IssuedAtClaim(value: now))
        do {
            return try await self.keys.sign(claims)
        } catch {
            throw AuthError.misconfigured("this key cannot sign tokens (a public key only verifies): \(String(describing: error).prefix(200))")
        }
    }

    public func verify(_ token: String) async throws(AuthError) -> Principal {
        let claims: OrderlyClaims
        do {
            claims = try await self.keys.verify(token, as: OrderlyClaims.self)
        } catch let error as JWTError {
            throw .invalidToken(Self.reason(error))
        } catch {
            throw .invalidToken("the token could not be read")
        }
        guard claims.iss.value == self.issuer else { throw .invalidToken("the token was issued by someone else") }
        guard let role = Role(rawValue: claims.role) else { throw .invalidToken("the token's role is not one of customer, staff, analyst, admin") }
        guard !claims.sub.value.isEmpty else { throw .invalidToken("the token has no subject") }
        return Principal(subject: claims.sub.value, role: role)
    }

    private static func reason(_ error: JWTError) -> String {
        switch error.errorType {
        case .claimVerificationFailure: "the token has expired"
        case .signatureVerificationFailed: "the token's signature does not verify"
        case .malformedToken: "the token is malformed"
        default: "the token could not be verified"
        }
    }
}

/// Reads `Authorization: Bearer <token>` and verifies it. No header: the request goes on without a
/// caller (routes that need one answer 401). A bad token: 401 at once, whatever the route.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = OrderlyRequestContext
    let authority: TokenAuthority?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { return try await next(request, context) }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw Self.invalid("the Authorization header must be 'Bearer <token>'")
        }
        guard let authority = self.authority else {
            throw Self.invalid("this server has no token key configured, so it accepts no tokens")
        }
        var context = context
        do {
            context.principal = try await authority.verify(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        } catch {
            throw Self.invalid(error.description)
        }
        return try await next(request, context)
    }

    static func invalid(_ detail: String) -> Problem {
        var problem = Problem(status: .unauthorized, type: "invalid-token", title: "Invalid token", detail: detail, field: "Authorization")
        problem.headers[.wwwAuthenticate] = "Bearer error=\"invalid_token\""
        return problem
    }
}
