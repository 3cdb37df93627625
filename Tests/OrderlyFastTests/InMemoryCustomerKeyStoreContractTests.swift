import OrderlyContracts
import OrderlyEventStore
import Testing

@Suite struct InMemoryCustomerKeyStoreContractTests {
    @Test func sealedDataOpensUntilTheCustomerIsForgotten() async throws {
        try await CustomerKeyStoreContract.sealedDataOpensUntilTheCustomerIsForgotten(InMemoryCustomerKeyStore())
    }
    @Test func sealedDataOpensOnlyAsItWasSealed() async throws {
        try await CustomerKeyStoreContract.sealedDataOpensOnlyAsItWasSealed(InMemoryCustomerKeyStore())
    }
    @Test func concurrentFirstUsesShareOneKey() async throws {
        try await CustomerKeyStoreContract.concurrentFirstUsesShareOneKey(InMemoryCustomerKeyStore())
    }
}

/// The same contract through the cache the api and services use.
@Suite struct CachedCustomerKeyStoreContractTests {
    @Test func sealedDataOpensUntilTheCustomerIsForgotten() async throws {
        try await CustomerKeyStoreContract.sealedDataOpensUntilTheCustomerIsForgotten(CachedCustomerKeyStore(InMemoryCustomerKeyStore()))
    }
    @Test func sealedDataOpensOnlyAsItWasSealed() async throws {
        try await CustomerKeyStoreContract.sealedDataOpensOnlyAsItWasSealed(CachedCustomerKeyStore(InMemoryCustomerKeyStore()))
    }
    @Test func concurrentFirstUsesShareOneKey() async throws {
        try await CustomerKeyStoreContract.concurrentFirstUsesShareOneKey(CachedCustomerKeyStore(InMemoryCustomerKeyStore()))
    }

    /// A key erased by another process stays usable here for the cache's time only, then reads as erased.
    @Test func aKeyErasedElsewhereExpiresFromTheCache() async throws {
        let shared = InMemoryCustomerKeyStore()
        let cached = CachedCustomerKeyStore(shared, ttl: .milliseconds(100))
        let key = try await shared.sealingKey(for: "c-1")
        #expect(try await cached.key(id: key.id) == key)
        _ = try await shared.forget("c-1", by: "admin")
        #expect(try await cached.key(id: key.id) == key, "within its time the cache answers without asking the store")
        try await Task.sleep(for: .milliseconds(150))
        #expect(try await cached.key(id: key.id) == nil)
    }
}
