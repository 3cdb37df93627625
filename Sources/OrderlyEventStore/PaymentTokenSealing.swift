import Crypto
import Foundation

/// The payment token is a secret for the payment service alone, not history: the api seals it with
/// the payment service's public key (HPKE, X25519 + ChaCha20-Poly1305) before the append, bound to
/// the order id, so the log, Kafka and exports hold only what the payment service's private key
/// opens. Stored tokens read `sealed:v1:<base64 of encapsulated key and ciphertext>`; a token stored
/// without the prefix (before sealing, or with no key configured) is used as it is.
public enum PaymentTokenSealing {
    static let prefix = "sealed:v1:"
    static let ciphersuite = HPKE.Ciphersuite.Curve25519_SHA256_ChachaPoly
    static let info = Data("orderly-payment-token".utf8)

    /// Whether a stored token is sealed (as opposed to kept as the client sent it).
    public static func isSealed(_ stored: String) -> Bool { stored.hasPrefix(Self.prefix) }

    /// A new key pair, base64 (raw 32-byte keys): the private one for the payment service
    /// (`ORDERLY_PAYMENT_TOKEN_PRIVATE_KEY`), the public one for the api (`…_PUBLIC_KEY`).
    public static func generateKeyPair() -> (privateKey: String, publicKey: String) {
        let key = Curve25519.KeyAgreement.PrivateKey()
        return (key.rawRepresentation.base64EncodedString(), key.publicKey.rawRepresentation.base64EncodedString())
    }

    /// The public key that belongs to a private key (base64 both).
    public static func publicKey(ofPrivateKey privateKey: String) throws -> String {
        try PaymentTokenOpener.privateKey(privateKey).publicKey.rawRepresentation.base64EncodedString()
    }
}

public struct PaymentTokenKeyError: Error, CustomStringConvertible {
    public var description: String
}

/// Seals payment tokens for the payment service (the api holds only the public key).
public struct PaymentTokenSealer: Sendable {
    let publicKey: Curve25519.KeyAgreement.PublicKey

    public init(publicKey base64: String) throws {
        guard let raw = Data(base64Encoded: base64), let key = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw) else {
            throw PaymentTokenKeyError(description: "the payment token public key is not a base64 X25519 key (32 bytes)")
        }
        self.publicKey = key
    }

    public func seal(_ token: String, orderId: String) throws -> String {
        var sender = try HPKE.Sender(recipientKey: self.publicKey, ciphersuite: PaymentTokenSealing.ciphersuite, info: PaymentTokenSealing.info)
        let ciphertext = try sender.seal(Data(token.utf8), authenticating: Data(orderId.utf8))
        return PaymentTokenSealing.prefix + (sender.encapsulatedKey + ciphertext).base64EncodedString()
    }
}

/// Opens payment tokens (the payment service's private key).
public struct PaymentTokenOpener: Sendable {
    let privateKey: Curve25519.KeyAgreement.PrivateKey

    public init(privateKey base64: String) throws {
        self.privateKey = try Self.privateKey(base64)
    }

    static func privateKey(_ base64: String) throws -> Curve25519.KeyAgreement.PrivateKey {
        guard let raw = Data(base64Encoded: base64), let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw) else {
            throw PaymentTokenKeyError(description: "the payment token private key is not a base64 X25519 key (32 bytes)")
        }
        return key
    }

    /// The token as the client sent it; nil when it is sealed and this key does not open it (another
    /// key, another order, or tampered with). An unsealed stored token is returned as it is.
    public func open(_ stored: String, orderId: String) -> String? {
        guard PaymentTokenSealing.isSealed(stored) else { return stored }
        guard let combined = Data(base64Encoded: String(stored.dropFirst(PaymentTokenSealing.prefix.count))), combined.count > 32 else {
            return nil
        }
        guard
            var recipient = try? HPKE.Recipient(
                privateKey: self.privateKey, ciphersuite: PaymentTokenSealing.ciphersuite, info: PaymentTokenSealing.info,
                encapsulatedKey: combined.prefix(32)),
            let plaintext = try? recipient.open(combined.dropFirst(32), authenticating: Data(orderId.utf8))
        else { return nil }
        return String(decoding: plaintext, as: UTF8.self)
    }
}
