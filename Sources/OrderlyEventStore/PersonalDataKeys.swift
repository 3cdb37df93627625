import Crypto
import Foundation
import Logging
import OrderlyDomain
import PostgresNIO
import Synchronization

/// One of a customer's data keys: 32 bytes of key material, named by `id` in what it sealed.
public struct CustomerDataKey: Sendable, Equatable {
    public var id: UUID
    public var material: Data

    public init(id: UUID, material: Data) {
        self.id = id
        self.material = material
    }

    /// A new random key.
    public static func generate() -> CustomerDataKey {
        CustomerDataKey(id: UUID(), material: SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) })
    }
}

/// That a customer's personal data was erased.
public struct CustomerErasure: Sendable, Equatable {
    public var customerId: String
    public var erasedBy: String
    /// Keys deleted by the latest erasure (0: there was nothing left to erase).
    public var keysDeleted: Int

    public init(customerId: String, erasedBy: String, keysDeleted: Int) {
        self.customerId = customerId
        self.erasedBy = erasedBy
        self.keysDeleted = keysDeleted
    }
}

/// Where customers' data keys live, apart from the log (PostgreSQL here; a KMS could take its place).
public protocol CustomerKeyStore: Sendable {
    /// The customer's key in use, made on first use (also after an erasure: new orders get a new key).
    func sealingKey(for customerId: String) async throws -> CustomerDataKey
    /// The key named `id`, or nil once it was deleted.
    func key(id: UUID) async throws -> CustomerDataKey?
    /// Deletes every key of the customer and records the erasure. Repeating it is harmless.
    func forget(_ customerId: String, by actor: String) async throws -> CustomerErasure
    /// The latest erasure of the customer's data, if any.
    func erasure(of customerId: String) async throws -> CustomerErasure?
}

/// Seals personal data with the customer's key and opens it again; once the key is deleted, what it
/// sealed reads as `.erased`. The customer id and key id are authenticated with the ciphertext, so
/// sealed data copied onto another customer's order does not open.
public struct PersonalDataVault: Sendable {
    let keys: any CustomerKeyStore

    public init(keys: any CustomerKeyStore) {
        self.keys = keys
    }

    public func seal(_ data: PersonalData, customerId: String) async throws -> SealedPersonalData {
        let key = try await self.keys.sealingKey(for: customerId)
        let plaintext = try JSONEncoder().encode(data)
        let box = try AES.GCM.seal(plaintext, using: SymmetricKey(data: key.material), authenticating: Self.context(customerId, key.id))
        guard let combined = box.combined else { throw PersonalDataError.unreadable(keyId: key.id.uuidString) }
        return SealedPersonalData(
            keyId: key.id.uuidString.lowercased(), sealed: combined.base64EncodedString(), holdsShippingAddress: data.shippingAddress != nil)
    }

    public func open(_ sealed: SealedPersonalData, customerId: String) async throws -> UnsealedPersonalData {
        guard let keyId = UUID(uuidString: sealed.keyId), let combined = Data(base64Encoded: sealed.sealed) else {
            throw PersonalDataError.unreadable(keyId: sealed.keyId)
        }
        guard let key = try await self.keys.key(id: keyId) else { return .erased }
        do {
            let box = try AES.GCM.SealedBox(combined: combined)
            let plaintext = try AES.GCM.open(box, using: SymmetricKey(data: key.material), authenticating: Self.context(customerId, keyId))
            return .available(try JSONDecoder().decode(PersonalData.self, from: plaintext))
        } catch {
            throw PersonalDataError.unreadable(keyId: sealed.keyId)
        }
    }

    /// Deletes the customer's keys (see `CustomerKeyStore.forget`).
    public func forget(_ customerId: String, by actor: String) async throws -> CustomerErasure {
        try await self.keys.forget(customerId, by: actor)
    }

    static func context(_ customerId: String, _ keyId: UUID) -> Data {
        Data("orderly-personal-data\u{0}\(customerId)\u{0}\(keyId.uuidString.lowercased())".utf8)
    }
}

public enum PersonalDataError: Error, Equatable, CustomStringConvertible {
    /// Sealed data that its key does not open (tampered with, or another customer's).
    case unreadable(keyId: String)

    public var description: String {
        switch self {
        case .unreadable(let keyId): "sealed personal data that key \(keyId) does not open"
        }
    }
}

/// The key store in memory, for the fast tier (same contract as the PostgreSQL one).
public final class InMemoryCustomerKeyStore: CustomerKeyStore {
    struct State {
        var inUse: [String: CustomerDataKey] = [:]
        var owners: [UUID: String] = [:]
        var erasures: [String: CustomerErasure] = [:]
    }

    let state = Mutex(State())

    public init() {}

    public func sealingKey(for customerId: String) async throws -> CustomerDataKey {
        self.state.withLock { state in
            if let key = state.inUse[customerId] { return key }
            let key = CustomerDataKey.generate()
            state.inUse[customerId] = key
            state.owners[key.id] = customerId
            return key
        }
    }

    public func key(id: UUID) async throws -> CustomerDataKey? {
        self.state.withLock { state in
            guard let owner = state.owners[id], let key = state.inUse[owner], key.id == id else { return nil }
            return key
        }
    }

    public func forget(_ customerId: String, by actor: String) async throws -> CustomerErasure {
        self.state.withLock { state in
            let deleted = state.inUse.removeValue(forKey: customerId) == nil ? 0 : 1
            let erasure = CustomerErasure(customerId: customerId, erasedBy: actor, keysDeleted: deleted)
            state.erasures[customerId] = erasure
            return erasure
        }
    }

    public func erasure(of customerId: String) async throws -> CustomerErasure? {
        self.state.withLock { $0.erasures[customerId] }
    }
}

/// The key store in PostgreSQL (`customer_data_keys`, `customer_erasures`; migration 0010), in the
/// event store's database but not in the log: deleting a row is what erasure means.
public struct PostgresCustomerKeyStore: CustomerKeyStore {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public func sealingKey(for customerId: String) async throws -> CustomerDataKey {
        let fresh = CustomerDataKey.generate()
        // Two first orders of one customer at once: one key wins, both use it.
        let rows = try await self.client.query(
            """
            WITH made AS (
                INSERT INTO customer_data_keys (key_id, customer_id, material)
                VALUES (\(fresh.id), \(customerId), \(fresh.material))
                ON CONFLICT (customer_id) DO NOTHING
                RETURNING key_id, material)
            SELECT key_id, material FROM made
            UNION ALL
            SELECT key_id, material FROM customer_data_keys WHERE customer_id = \(customerId)
            LIMIT 1
            """, logger: self.logger)
        for try await (id, material) in rows.decode((UUID, Data).self) {
            return CustomerDataKey(id: id, material: material)
        }
        // Lost the race to a first use committed while this statement ran: its snapshot could not
        // see the winner's key, a new statement can (the contract test caught this).
        let winner = try await self.client.query(
            "SELECT key_id, material FROM customer_data_keys WHERE customer_id = \(customerId)", logger: self.logger)
        for try await (id, material) in winner.decode((UUID, Data).self) {
            return CustomerDataKey(id: id, material: material)
        }
        throw PostgresCustomerKeyStoreError.noKey(customerId: customerId)
    }

    public func key(id: UUID) async throws -> CustomerDataKey? {
        let rows = try await self.client.query("SELECT material FROM customer_data_keys WHERE key_id = \(id)", logger: self.logger)
        for try await material in rows.decode(Data.self) { return CustomerDataKey(id: id, material: material) }
        return nil
    }

    public func forget(_ customerId: String, by actor: String) async throws -> CustomerErasure {
        let rows = try await self.client.query(
            """
            WITH deleted AS (DELETE FROM customer_data_keys WHERE customer_id = \(customerId) RETURNING 1)
            INSERT INTO customer_erasures (customer_id, erased_by, keys_deleted)
            SELECT \(customerId), \(actor), count(*) FROM deleted
            ON CONFLICT (customer_id) DO UPDATE
            SET erased_at = now(), erased_by = EXCLUDED.erased_by, keys_deleted = EXCLUDED.keys_deleted
            RETURNING keys_deleted
            """, logger: self.logger)
        var deleted = 0
        for try await count in rows.decode(Int.self) { deleted = count }
        return CustomerErasure(customerId: customerId, erasedBy: actor, keysDeleted: deleted)
    }

    public func erasure(of customerId: String) async throws -> CustomerErasure? {
        let rows = try await self.client.query(
            "SELECT erased_by, keys_deleted FROM customer_erasures WHERE customer_id = \(customerId)", logger: self.logger)
        for try await (by, deleted) in rows.decode((String, Int).self) {
            return CustomerErasure(customerId: customerId, erasedBy: by, keysDeleted: deleted)
        }
        return nil
    }
}

enum PostgresCustomerKeyStoreError: Error {
    case noKey(customerId: String)
}

/// A key store that remembers the keys it was asked for, so that serving a page of orders does not
/// ask PostgreSQL once per order. A deleted key never comes back (ids are never reused), so a miss
/// is remembered for good; a key found is trusted for `ttl` only: that is how long another process
/// that erased the customer may still see it opened here. `forget` through this store takes effect
/// here at once (a lookup still reading when it comes keeps nothing).
public final class CachedCustomerKeyStore: CustomerKeyStore {
    struct Cached {
        var key: CustomerDataKey?
        var until: ContinuousClock.Instant
    }

    struct Entries {
        var keys: [UUID: Cached] = [:]
        /// Moved on by every `forget`: a lookup that began before one must not put back what it read.
        var erasures = 0
    }

    let store: any CustomerKeyStore
    let ttl: Duration
    let capacity: Int
    let cache = Mutex(Entries())

    public init(_ store: any CustomerKeyStore, ttl: Duration = .seconds(10), capacity: Int = 10_000) {
        self.store = store
        self.ttl = ttl
        self.capacity = capacity
    }

    public func sealingKey(for customerId: String) async throws -> CustomerDataKey {
        try await self.store.sealingKey(for: customerId)
    }

    public func key(id: UUID) async throws -> CustomerDataKey? {
        let now = ContinuousClock.now
        let (cached, erasures) = self.cache.withLock { ($0.keys[id], $0.erasures) }
        if let cached, cached.key == nil || now < cached.until { return cached.key }
        let key = try await self.store.key(id: id)
        self.cache.withLock { cache in
            // Read before an erasure that has since cleared the cache: not kept (it may be the erased key).
            guard cache.erasures == erasures else { return }
            // Bounded the simple way: a full cache starts over (a miss costs one primary-key read).
            if cache.keys.count >= self.capacity { cache.keys.removeAll(keepingCapacity: true) }
            cache.keys[id] = Cached(key: key, until: now + self.ttl)
        }
        return key
    }

    public func forget(_ customerId: String, by actor: String) async throws -> CustomerErasure {
        let erasure = try await self.store.forget(customerId, by: actor)
        // Which cached keys were this customer's is not known here; erasures are rare: drop them all,
        // and lookups still reading (possibly the erased key) keep nothing.
        self.cache.withLock { cache in
            cache.keys.removeAll()
            cache.erasures += 1
        }
        return erasure
    }

    public func erasure(of customerId: String) async throws -> CustomerErasure? {
        try await self.store.erasure(of: customerId)
    }
}
