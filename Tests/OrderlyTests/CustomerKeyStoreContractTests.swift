import OrderlyContracts
import OrderlyEventStore
import PostgresNIO
import Testing

/// The customer key store contract against PostgreSQL (a fresh, migrated database per test), plus
/// what only the database can show: an erased key is gone from the table, not flagged.
@Suite struct PostgresCustomerKeyStoreContractTests {
    func withKeys(_ body: @escaping @Sendable (PostgresCustomerKeyStore, PostgresClient) async throws -> Void) async throws {
        let settings = try await TestServers.isolatedSettings()
        try await TestServers.withPostgres(settings) { client in
            try await body(PostgresCustomerKeyStore(client: client, logger: TestServers.logger), client)
        }
    }

    @Test func sealedDataOpensUntilTheCustomerIsForgotten() async throws {
        try await self.withKeys { keys, _ in try await CustomerKeyStoreContract.sealedDataOpensUntilTheCustomerIsForgotten(keys) }
    }
    @Test func sealedDataOpensOnlyAsItWasSealed() async throws {
        try await self.withKeys { keys, _ in try await CustomerKeyStoreContract.sealedDataOpensOnlyAsItWasSealed(keys) }
    }
    @Test func concurrentFirstUsesShareOneKey() async throws {
        try await self.withKeys { keys, _ in try await CustomerKeyStoreContract.concurrentFirstUsesShareOneKey(keys) }
    }
    @Test func forgettingDeletesTheKeyMaterial() async throws {
        try await self.withKeys { keys, client in
            let key = try await keys.sealingKey(for: "c-forget")
            _ = try await keys.forget("c-forget", by: "admin")
            let rows = try await client.query("SELECT count(*) FROM customer_data_keys WHERE key_id = \(key.id)", logger: TestServers.logger)
            var left = -1
            for try await count in rows.decode(Int.self) { left = count }
            #expect(left == 0)
        }
    }
}
