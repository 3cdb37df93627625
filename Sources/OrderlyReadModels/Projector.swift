import Logging
import OrderlyEventStore
import OrderlyMessaging

/// Applies events to the MongoDB read models. Run by an `EventConsumer`, which commits offsets only
/// after `handle` returns; every write is version-guarded, so an event that comes again after a crash
/// changes nothing.
public struct Projector: EventHandler {
    let orders: MongoCollection
    let logger: Logger

    public init(client: MongoClient, logger: Logger) {
        self.orders = client.collection(OrdersProjection.collection)
        self.logger = logger
    }

    public func handle(_ event: RecordedEvent) async throws {
        let write: ProjectionWrite?
        do {
            write = try OrdersProjection.write(for: event)
        } catch {
            throw PoisonEvent(reason: "the orders projection cannot read \(event.type) v\(event.schemaVersion): \(error)")
        }
        guard let write else { return }
        let outcome = try await self.orders.upsert(filter: write.filter, update: write.update)
        self.logger.debug("projected event", metadata: ["projection": "\(OrdersProjection.name)", "outcome": "\(outcome)"])
    }
}
