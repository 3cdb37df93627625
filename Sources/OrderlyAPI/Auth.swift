import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import JWTKit
import NIOCore
import NIOHTTP1
import OrderlyDomain
import Synchronization

/// Who may do what. A customer acts on their own orders only; staff restock and read every order;
/// analysts read the event history; a carrier reports on shipments and nothing else; admin may do
/// everything.
public enum Role: String, Codable, Sendable, CaseIterable {
    case customer, staff, analyst, admin, carrier
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
    /// When it was issued; not every identity provider sets it.
    var iat: IssuedAtClaim?
    /// Who the token is for; checked when the api has an audience (`ORDERLY_JWT_AUDIENCE`).
    var aud: AudienceClaim?

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
    let source: KeySource
    public let issuer: String
    /// HS256, RS256 or ES256; `JWKS` for keys from a key set.
    public let algorithm: String
    /// When set, a token must name it in `aud` (and minted tokens carry it).
    public var audience: String?

    init(keys: JWTKeyCollection, issuer: String, algorithm: String) {
        self.source = .fixed(keys)
        self.issuer = issuer
        self.algorithm = algorithm
    }

    init(keySet: JWKSKeySet, issuer: String) {
        self.source = .keySet(keySet)
        self.issuer = issuer
        self.algorithm = "JWKS"
    }

    /// Public keys from a JSON Web Key Set file, as an identity provider publishes them (several,
    /// each with its `kid`, so keys can rotate): a token is checked with the key its header names.
    /// The file is read again when a token names a key it does not hold (at most every 5 s) and once
    /// a minute, so a key added or withdrawn by the provider counts without a restart.
    public static func keySet(
        file path: String, issuer: String, refreshAtMost: Duration = JWKSKeySet.minimumInterval, maximumAge: Duration = JWKSKeySet.maximumAge
    ) async throws(AuthError) -> TokenAuthority {
        try await self.keySet(at: .file(path), issuer: issuer, refreshAtMost: refreshAtMost, maximumAge: maximumAge)
    }

    /// The same from the provider's JWKS URL (`ORDERLY_JWKS_URL`). It must answer at start; later,
    /// while it does not, the keys last read stay in use.
    public static func keySet(
        url: String, issuer: String, refreshAtMost: Duration = JWKSKeySet.minimumInterval, maximumAge: Duration = JWKSKeySet.maximumAge
    ) async throws(AuthError) -> TokenAuthority {
        try await self.keySet(at: .url(try JWKSKeySet.checked(url)), issuer: issuer, refreshAtMost: refreshAtMost, maximumAge: maximumAge)
    }

    private static func keySet(
        at location: KeySetLocation, issuer: String, refreshAtMost: Duration, maximumAge: Duration
    ) async throws(AuthError) -> TokenAuthority {
        let keySet = JWKSKeySet(location: location, refreshAtMost: refreshAtMost, maximumAge: maximumAge)
        _ = try await keySet.keys(refresh: true)
        return TokenAuthority(keySet: keySet, issuer: issuer)
    }

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
            exp: ExpirationClaim(value: now.addingTimeInterval(lifetime.timeInterval)), iat: IssuedAtClaim(value: now),
            aud: self.audience.map { AudienceClaim(value: [$0]) })
        do {
            return try await self.source.keys(refresh: false).sign(claims)
        } catch {
            throw AuthError.misconfigured("this key cannot sign tokens (a public key only verifies): \(String(describing: error).prefix(200))")
        }
    }

    public func verify(_ token: String) async throws(AuthError) -> Principal {
        let claims: OrderlyClaims
        do {
            do {
                claims = try await self.source.keys(refresh: false).verify(token, as: OrderlyClaims.self)
            } catch let error as JWTError
                where self.source.isKeySet && (error.errorType == .unknownKID || error.errorType == .signatureVerificationFailed)
            {
                // Maybe a key the provider added since the set was read (a kid this collection does
                // not hold is tried with its default key): read the set again, once (at most every
                // few seconds, whoever sends tokens).
                claims = try await self.source.keys(refresh: true).verify(token, as: OrderlyClaims.self)
            }
        } catch let error as JWTError {
            throw .invalidToken(Self.reason(error))
        } catch let error as AuthError {
            throw error
        } catch {
            throw .invalidToken("the token could not be read")
        }
        guard claims.iss.value == self.issuer else { throw .invalidToken("the token was issued by someone else") }
        if let audience = self.audience {
            guard let aud = claims.aud, aud.value.contains(audience) else { throw .invalidToken("the token is not for this audience (\(audience))") }
        }
        guard let role = Role(rawValue: claims.role) else { throw .invalidToken("the token's role is not one of customer, staff, analyst, admin") }
        guard !claims.sub.value.isEmpty else { throw .invalidToken("the token has no subject") }
        return Principal(subject: claims.sub.value, role: role)
    }

    private static func reason(_ error: JWTError) -> String {
        switch error.errorType {
        case .claimVerificationFailure: "the token has expired"
        case .signatureVerificationFailed: "the token's signature does not verify"
        case .malformedToken: "the token is malformed"
        case .unknownKID: "the token names a key (kid) the key set does not hold"
        default: "the token could not be verified"
        }
    }
}

/// Where a token authority's keys come from: fixed at start, or a key set read again now and then.
enum KeySource: Sendable {
    case fixed(JWTKeyCollection)
    case keySet(JWKSKeySet)

    var isKeySet: Bool {
        if case .keySet = self { true } else { false }
    }

    func keys(refresh: Bool) async throws(AuthError) -> JWTKeyCollection {
        switch self {
        case .fixed(let keys): keys
        case .keySet(let file): try await file.keys(refresh: refresh)
        }
    }
}

/// Where an identity provider's JSON Web Key Set is read from.
public enum KeySetLocation: Sendable, CustomStringConvertible {
    /// A file (mounted from a Secret or written by a sidecar).
    case file(String)
    /// The provider's JWKS URL: https, or http to this machine only (a local provider, tests).
    case url(URL)

    public var description: String {
        switch self {
        case .file(let path): "the JWKS file \(path)"
        case .url(let url): "the JWKS URL \(url.absoluteString)"
        }
    }
}

/// An identity provider's key set and the keys last read from it. Read again when a token names a
/// key it does not hold (at most every `refreshAtMost`) and once `maximumAge` has passed; one read at
/// a time, whoever asks. If a read fails after a good one, the keys last read stay in use (an
/// unreachable provider must not lock every caller out; withdrawn keys go at the next good read).
public actor JWKSKeySet {
    let location: KeySetLocation
    /// Read again at most this often on demand (a token naming an unknown key), and at least this often.
    public static let minimumInterval: Duration = .seconds(5)
    public static let maximumAge: Duration = .seconds(60)
    /// A provider that does not answer within this is taken as down (the HTTP client retries a refused
    /// connection until then; a caller whose token names an unknown key may wait this long).
    static let fetchTimeout: Int64 = 3
    /// A key set larger than this is refused (no provider publishes one near it).
    static let largestKeySet = 1 << 20
    let refreshAtMost: Duration
    let maximumAge: Duration
    private var loaded: (keys: JWTKeyCollection, at: ContinuousClock.Instant)?
    private var lastAttempt: ContinuousClock.Instant?
    private var reading: Task<JWTKeyCollection, any Error>?

    init(location: KeySetLocation, refreshAtMost: Duration, maximumAge: Duration) {
        self.location = location
        self.refreshAtMost = refreshAtMost
        self.maximumAge = maximumAge
    }

    func keys(refresh: Bool) async throws(AuthError) -> JWTKeyCollection {
        let now = ContinuousClock.now
        if let current = self.loaded {
            let age = now - current.at
            if age < self.maximumAge && (!refresh || age < self.refreshAtMost) { return current.keys }
            if let last = self.lastAttempt, now - last < self.refreshAtMost { return current.keys }
        }
        let reading: Task<JWTKeyCollection, any Error>
        if let inFlight = self.reading {
            reading = inFlight
        } else {
            let location = self.location
            reading = Task { try await Self.read(location) }
            self.reading = reading
            self.lastAttempt = now
        }
        do {
            let keys = try await reading.value
            if self.reading == reading { self.reading = nil }
            self.loaded = (keys, ContinuousClock.now)
            return keys
        } catch {
            if self.reading == reading { self.reading = nil }
            if let current = self.loaded { return current.keys }
            throw (error as? AuthError) ?? .misconfigured("cannot read \(self.location): \(error)")
        }
    }

    private static func read(_ location: KeySetLocation) async throws(AuthError) -> JWTKeyCollection {
        let json: String
        switch location {
        case .file(let path):
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw .misconfigured("cannot read \(location)") }
            json = text
        case .url(let url):
            json = try await Self.fetch(url)
        }
        let keys = JWTKeyCollection()
        do {
            try await keys.add(jwksJSON: json)
        } catch {
            throw .misconfigured("\(location) is not a key set of usable keys, each with a kid (\(String(describing: error).prefix(200)))")
        }
        return keys
    }

    private static func fetch(_ url: URL) async throws(AuthError) -> String {
        do {
            var request = HTTPClientRequest(url: url.absoluteString)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(Self.fetchTimeout))
            guard response.status == .ok else {
                throw AuthError.misconfigured("\(KeySetLocation.url(url)) answered \(response.status.code)")
            }
            let body = try await response.body.collect(upTo: Self.largestKeySet)
            return String(buffer: body)
        } catch let error as AuthError {
            throw error
        } catch {
            throw .misconfigured("cannot read \(KeySetLocation.url(url)): \(String(describing: error).prefix(200))")
        }
    }

    /// Only https, or http to this machine: keys fetched in the clear could be anyone's.
    static func checked(_ text: String) throws(AuthError) -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased() else {
            throw .misconfigured("ORDERLY_JWKS_URL is not a URL: \(text)")
        }
        let local = ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host)
        guard scheme == "https" || (scheme == "http" && local) else {
            throw .misconfigured("ORDERLY_JWKS_URL must be https (http only to this machine): \(text)")
        }
        return url
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
