import Foundation
import OrderlyContracts
import OrderlyEventStore
import Synchronization
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

    /// A lookup that read the key just before this store's own `forget` cleared the cache does not put
    /// it back: from the erasure's answer on, this process reads the key as erased.
    @Test func aLookupInFlightDuringAnErasureDoesNotKeepTheErasedKey() async throws {
        let slow = SlowKeyStore(InMemoryCustomerKeyStore())
        let cached = CachedCustomerKeyStore(slow, ttl: .seconds(3600))
        let key = try await cached.sealingKey(for: "c-1")
        slow.holding.withLock { $0 = true }
        let lookup = Task { try await cached.key(id: key.id) }
        while !slow.reading.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
        _ = try await cached.forget("c-1", by: "admin")
        slow.holding.withLock { $0 = false }
        #expect(try await lookup.value == key, "the lookup read the key before the erasure")
        #expect(try await cached.key(id: key.id) == nil, "the erased key was kept by the lookup in flight")
    }
}

/// A key store whose `key(id:)` reads the key, then waits while `holding` is set.
final class SlowKeyStore: CustomerKeyStore {
    let inner: any CustomerKeyStore
    let holding = Mutex(false)
    let reading = Mutex(false)

    init(_ inner: any CustomerKeyStore) {
        self.inner = inner
    }

    func sealingKey(for customerId: String) async throws -> CustomerDataKey { try await self.inner.sealingKey(for: customerId) }
    func key(id: UUID) async throws -> CustomerDataKey? {
        let key = try await self.inner.key(id: id)
        self.reading.withLock { $0 = true }
        while self.holding.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
        return key
    }
    func forget(_ customerId: String, by actor: String) async throws -> CustomerErasure { try await self.inner.forget(customerId, by: actor) }
    func erasure(of customerId: String) async throws -> CustomerErasure? { try await self.inner.erasure(of: customerId) }
}
