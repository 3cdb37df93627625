import OrderlyContracts
import OrderlyEventStore
import OrderlyProcesses
import OrderlyReadModels
import Testing

/// The read-model contract over the real document server, fed by the projections' own writes (the
/// fast tier runs it over the in-memory models: `InMemoryReadModelContractTests`).
@Suite struct MongoReadModelContractTests {
    static func side() async throws -> ReadSide {
        let settings = try await TestServers.isolatedSettings()
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let collections = ActiveCollections(client: mongo)
        return ReadSide(
            orders: MongoOrderReadModel(collections: collections), inventory: MongoInventoryReadModel(collections: collections),
            sales: MongoSalesReadModel(collections: collections)
        ) { events in
            try await Self.write(OrdersProjection.self, events, to: mongo)
            try await Self.write(InventoryProjection.self, events, to: mongo)
            try await Self.write(CustomerOrdersProjection.self, events, to: mongo)
            try await Self.write(SalesDailyProjection.self, events, to: mongo)
        }
    }

    static func write<P: ReadModelProjection>(_: P.Type, _ events: [RecordedEvent], to mongo: MongoClient) async throws {
        let sourced = try events.compactMap { try P.sourced($0, source: SourcedEvent.logSource) }
        try await P.apply(sourced, to: mongo.collection(P.name))
    }

    @Test func anOrderReadsBackAsItsEventsLeftIt() async throws { try await ReadModelContract.anOrderReadsBackAsItsEventsLeftIt(Self.side()) }
    @Test func ordersPageNewestFirstAndFilter() async throws { try await ReadModelContract.ordersPageNewestFirstAndFilter(Self.side()) }
    @Test func stockFollowsItsEvents() async throws { try await ReadModelContract.stockFollowsItsEvents(Self.side()) }
    @Test func customersAndDaysAddUp() async throws { try await ReadModelContract.customersAndDaysAddUp(Self.side()) }
    @Test func parcelsInTransitAreCountedByTheirDispatchTime() async throws {
        try await ReadModelContract.parcelsInTransitAreCountedByTheirDispatchTime(Self.side())
    }
}
