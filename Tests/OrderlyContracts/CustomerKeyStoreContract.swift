import Foundation
import OrderlyDomain
import OrderlyEventStore
import Testing

/// What every customer key store must do (the PostgreSQL one and the in-memory one), seen through
/// the vault that seals and opens personal data with it.
public enum CustomerKeyStoreContract {
    static let ada = PersonalData(
        customer: CustomerDetails(name: "Ada Lovelace", email: "ada@example.org"),
        shippingAddress: ShippingAddress(line1: "12 St James's Square", city: "London", postalCode: "SW1Y 4JH", country: "GB"))
    static let grace = PersonalData(customer: CustomerDetails(name: "Grace Hopper", email: "grace@example.org"))

    /// Sealed data hides every field, opens again with the customer's key, and reads as erased once
    /// the customer is forgotten, for that customer only; a new order after it gets a new key.
    public static func sealedDataOpensUntilTheCustomerIsForgotten(_ keys: any CustomerKeyStore) async throws {
        let vault = PersonalDataVault(keys: keys)
        let customer = "c-\(UUID().uuidString.prefix(8))"
        let other = "c-\(UUID().uuidString.prefix(8))"
        let first = try await vault.seal(Self.ada, customerId: customer)
        let second = try await vault.seal(Self.ada, customerId: customer)
        let others = try await vault.seal(Self.grace, customerId: other)
        let stored = String(decoding: try JSONEncoder().encode(first), as: UTF8.self)
        for plain in ["Ada", "ada@example.org", "Square", "London", "SW1Y"] { #expect(!stored.contains(plain), "\(plain) readable in \(stored)") }
        #expect(first.keyId == second.keyId, "one key in use per customer")
        #expect(first.sealed != second.sealed, "a fresh nonce per seal")
        #expect(others.keyId != first.keyId)
        #expect(try await vault.open(first, customerId: customer) == .available(Self.ada))
        #expect(try await keys.erasure(of: customer) == nil)

        let erasure = try await keys.forget(customer, by: "admin-1")
        #expect(erasure == CustomerErasure(customerId: customer, erasedBy: "admin-1", keysDeleted: 1))
        #expect(try await keys.erasure(of: customer) == erasure)
        #expect(try await vault.open(first, customerId: customer) == .erased)
        #expect(try await vault.open(second, customerId: customer) == .erased)
        #expect(try await vault.open(others, customerId: other) == .available(Self.grace), "another customer's data is untouched")

        let again = try await keys.forget(customer, by: "admin-2")
        #expect(again.keysDeleted == 0, "nothing left to erase")

        let later = try await vault.seal(Self.grace, customerId: customer)
        #expect(later.keyId != first.keyId)
        #expect(try await vault.open(later, customerId: customer) == .available(Self.grace))
        #expect(try await vault.open(first, customerId: customer) == .erased, "a new key does not bring old data back")
    }

    /// Sealed data copied onto another customer's order, or changed, does not open.
    public static func sealedDataOpensOnlyAsItWasSealed(_ keys: any CustomerKeyStore) async throws {
        let vault = PersonalDataVault(keys: keys)
        let customer = "c-\(UUID().uuidString.prefix(8))"
        let sealed = try await vault.seal(Self.ada, customerId: customer)
        await #expect(throws: PersonalDataError.unreadable(keyId: sealed.keyId)) {
            try await vault.open(sealed, customerId: "someone-else")
        }
        var bytes = try #require(Data(base64Encoded: sealed.sealed))
        bytes[bytes.count / 2] ^= 0x01
        let tampered = SealedPersonalData(keyId: sealed.keyId, sealed: bytes.base64EncodedString())
        await #expect(throws: PersonalDataError.unreadable(keyId: sealed.keyId)) {
            try await vault.open(tampered, customerId: customer)
        }
    }

    /// A customer's first orders placed at once share one key.
    public static func concurrentFirstUsesShareOneKey(_ keys: any CustomerKeyStore) async throws {
        let customer = "c-\(UUID().uuidString.prefix(8))"
        let ids = try await withThrowingTaskGroup(of: UUID.self) { group in
            for _ in 0..<8 { group.addTask { try await keys.sealingKey(for: customer).id } }
            return try await group.reduce(into: Set<UUID>()) { $0.insert($1) }
        }
        #expect(ids.count == 1)
    }
}
