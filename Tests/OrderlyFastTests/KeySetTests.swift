import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import OrderlyAPI
import Synchronization
import Testing

/// Tokens from an identity provider: public keys from a JSON Web Key Set file, chosen by `kid`,
/// rotated without a restart, and `aud` checked when the api has an audience. Keys are made here.
@Suite struct KeySetTests {
    struct ProviderClaims: JWTPayload {
        var sub: SubjectClaim
        var role: String
        var iss: IssuerClaim
        var exp: ExpirationClaim
        var aud: AudienceClaim?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// An identity provider: signing keys by kid, and the key set it publishes.
    struct Provider {
        var keys: [String: ES256PrivateKey] = [:]

        func jwks(_ kids: [String]) -> String {
            let entries = kids.compactMap { kid -> String? in
                guard let parameters = self.keys[kid]?.parameters else { return nil }
                return #"{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"\#(kid)","x":"\#(parameters.x)","y":"\#(parameters.y)"}"#
            }
            return #"{"keys":[\#(entries.joined(separator: ","))]}"#
        }

        func token(kid: String, audience: [String]? = nil, issuer: String = "https://idp.example") async throws -> String {
            let collection = JWTKeyCollection()
            guard let key = self.keys[kid] else { throw TestFailure() }
            await collection.add(ecdsa: key, kid: JWKIdentifier(string: kid))
            let claims = ProviderClaims(
                sub: SubjectClaim(value: "staff-7"), role: "staff", iss: IssuerClaim(value: issuer),
                exp: ExpirationClaim(value: Date().addingTimeInterval(600)), aud: audience.map { AudienceClaim(value: $0) })
            return try await collection.sign(claims, kid: JWKIdentifier(string: kid))
        }
    }

    struct TestFailure: Error {}

    static func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func keysAreChosenByKidAndRotateWithoutARestart() async throws {
        let provider = Provider(keys: ["k1": ES256PrivateKey(), "k2": ES256PrivateKey()])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.write(provider.jwks(["k1"]), to: path)
        let authority = try await TokenAuthority.keySet(
            file: path, issuer: "https://idp.example", refreshAtMost: .zero, maximumAge: .milliseconds(300))

        let principal = try await authority.verify(try await provider.token(kid: "k1"))
        #expect(principal == Principal(subject: "staff-7", role: .staff))
        await #expect(throws: AuthError.self) { try await authority.verify(try await provider.token(kid: "k2")) }
        await #expect(throws: AuthError.self) {
            try await authority.verify(try await provider.token(kid: "k1", issuer: "https://another.example"))
        }

        // The provider adds k2: a token naming it makes the set be read again, and it verifies.
        try Self.write(provider.jwks(["k1", "k2"]), to: path)
        #expect(try await authority.verify(try await provider.token(kid: "k2")).subject == "staff-7")
        // It withdraws k1: once the set is older than its maximum age, k1's tokens no longer verify.
        try Self.write(provider.jwks(["k2"]), to: path)
        try await Task.sleep(for: .milliseconds(400))
        await #expect(throws: AuthError.self) { try await authority.verify(try await provider.token(kid: "k1")) }
        #expect(try await authority.verify(try await provider.token(kid: "k2")).role == .staff)
    }

    @Test func theAudienceIsCheckedWhenTheApiHasOne() async throws {
        let provider = Provider(keys: ["k1": ES256PrivateKey()])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.write(provider.jwks(["k1"]), to: path)
        var authority = try await TokenAuthority.keySet(file: path, issuer: "https://idp.example")
        authority.audience = "orderly-api"
        #expect(try await authority.verify(try await provider.token(kid: "k1", audience: ["orderly-api", "other"])).subject == "staff-7")
        await #expect(throws: AuthError.self) { try await authority.verify(try await provider.token(kid: "k1")) }
        await #expect(throws: AuthError.self) { try await authority.verify(try await provider.token(kid: "k1", audience: ["billing"])) }
        // Without an audience configured, aud is not required.
        authority.audience = nil
        #expect(try await authority.verify(try await provider.token(kid: "k1")).subject == "staff-7")
    }

    @Test func aMissingOrBrokenKeySetStopsTheStart() async throws {
        await #expect(throws: AuthError.self) { try await TokenAuthority.keySet(file: "/no/such/jwks.json", issuer: "x") }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.write(#"{"keys":[{"kty":"EC","crv":"P-256","x":"bad","y":"bad"}]}"#, to: path)
        await #expect(throws: AuthError.self) { try await TokenAuthority.keySet(file: path, issuer: "x") }
    }
    /// The provider's JWKS URL, served here over real HTTP on loopback: keys are chosen by kid and
    /// rotate without a restart; while the provider fails, the keys last read stay in use (a token
    /// signed with a known key verifies, one naming an unknown key is refused, nothing hangs); it
    /// must answer at start; plain http elsewhere than this machine is refused.
    @Test func keysComeFromTheProvidersURLAndSurviveItsOutage() async throws {
        let provider = Provider(keys: ["k1": ES256PrivateKey(), "k2": ES256PrivateKey()])
        let published = Mutex<(status: HTTPResponse.Status, body: String)>((.ok, provider.jwks(["k1"])))
        let fetches = Atomic<Int>(0)
        let router = Router()
        router.get("/.well-known/jwks.json") { _, _ -> Response in
            fetches.add(1, ordering: .relaxed)
            let (status, body) = published.withLock { $0 }
            return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let url = "http://127.0.0.1:\(client.port ?? 0)/.well-known/jwks.json"
            let authority = try await TokenAuthority.keySet(url: url, issuer: "https://idp.example", refreshAtMost: .zero, maximumAge: .seconds(60))
            #expect(try await authority.verify(try await provider.token(kid: "k1")).subject == "staff-7")
            await #expect(throws: AuthError.self) { try await authority.verify(try await provider.token(kid: "k2")) }
            // The provider adds k2: a token naming it makes the set be fetched again.
            published.withLock { $0.body = provider.jwks(["k1", "k2"]) }
            #expect(try await authority.verify(try await provider.token(kid: "k2")).role == .staff)
            // The provider fails: known keys keep working, an unknown one is refused at once.
            published.withLock { $0 = (.internalServerError, "down") }
            let before = fetches.load(ordering: .relaxed)
            #expect(try await authority.verify(try await provider.token(kid: "k1")).subject == "staff-7")
            var stranger = provider
            stranger.keys["k3"] = ES256PrivateKey()
            let started = ContinuousClock.now
            await #expect(throws: AuthError.self) { try await authority.verify(try await stranger.token(kid: "k3")) }
            #expect(ContinuousClock.now - started < .seconds(3))
            #expect(fetches.load(ordering: .relaxed) > before, "an unknown kid did not make the set be fetched again")
            // A provider that fails at start stops the start with a clear error.
            await #expect(throws: AuthError.self) { try await TokenAuthority.keySet(url: url, issuer: "x") }
        }
        await #expect(throws: AuthError.self) { try await TokenAuthority.keySet(url: "http://idp.example/jwks.json", issuer: "x") }
        await #expect(throws: AuthError.self) { try await TokenAuthority.keySet(url: "not a url", issuer: "x") }
        // Nothing listens there: refused within the fetch timeout (3 s; the HTTP client retries a refused
        // connection until then), not hung.
        let started = ContinuousClock.now
        await #expect(throws: AuthError.self) { try await TokenAuthority.keySet(url: "http://127.0.0.1:9/jwks.json", issuer: "x") }
        #expect(ContinuousClock.now - started < .seconds(4))
    }
}
