import OrderlyContracts
import OrderlyReadModels
import Testing

/// The read-model contract over the in-memory models (the same contract runs over MongoDB in the
/// integration tier: `MongoReadModelContractTests`).
@Suite struct InMemoryReadModelContractTests {
    static func side() -> ReadSide {
        let models = InMemoryReadModels()
        return ReadSide(orders: models, inventory: models, sales: models) { try models.apply($0) }
    }

    @Test func anOrderReadsBackAsItsEventsLeftIt() async throws { try await ReadModelContract.anOrderReadsBackAsItsEventsLeftIt(Self.side()) }
    @Test func ordersPageNewestFirstAndFilter() async throws { try await ReadModelContract.ordersPageNewestFirstAndFilter(Self.side()) }
    @Test func stockFollowsItsEvents() async throws { try await ReadModelContract.stockFollowsItsEvents(Self.side()) }
    @Test func customersAndDaysAddUp() async throws { try await ReadModelContract.customersAndDaysAddUp(Self.side()) }
    @Test func parcelsInTransitAreCountedByTheirDispatchTime() async throws {
        try await ReadModelContract.parcelsInTransitAreCountedByTheirDispatchTime(Self.side())
    }
}
