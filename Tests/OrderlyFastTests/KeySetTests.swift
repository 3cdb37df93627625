import Foundation
import JWTKit
import OrderlyAPI
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
}
