import Foundation
import Logging
import OrderlyDomain
import OrderlyEventStore
import OrderlyMessaging

/// Applies events to the MongoDB read models. Run by an `EventConsumer`, which commits offsets only
/// after `handle` returns. Each order document remembers the last version applied from each of its
/// streams, so an event that comes again after a crash changes nothing; a write expects the revision
/// it read, so two projector instances during a rebalance cannot overwrite each other.
public struct Projector: EventHandler {
    let orders: MongoCollection
    let logger: Logger

    public init(client: MongoClient, logger: Logger) {
        self.orders = client.collection(OrdersProjection.collection)
        self.logger = logger
    }

    public func handle(_ event: RecordedEvent) async throws {
        let domainEvent: DomainEvent
        do {
            guard let decoded = try EventCodec.decodeIfKnown(type: event.type, schemaVersion: event.schemaVersion, data: event.data) else { return }
            domainEvent = decoded
        } catch {
            throw PoisonEvent(reason: "the orders projection cannot read \(event.type) v\(event.schemaVersion): \(error)")
        }
        guard let orderID = OrdersProjection.orderID(of: domainEvent) else { return }
        while true {
            let current = try await self.orders.findOne(["_id": .string(orderID)], as: OrderView.self)
            guard let next = OrdersProjection.apply(domainEvent, recorded: event, to: current, now: Date()) else {
                if current == nil {
                    self.logger.warning("event for an order not yet projected", metadata: ["order.id": "\(orderID)", "event.type": "\(event.type)"])
                }
                return
            }
            let write = try OrdersProjection.write(next)
            if try await self.orders.upsert(filter: write.filter, update: write.update) == .applied { return }
            // Another writer moved the document on: read it again and re-apply (or find it applied).
        }
    }
}
