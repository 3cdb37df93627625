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
