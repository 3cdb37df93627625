import Foundation
import Logging
import OrderlyDomain
import OrderlyEventStore
import OrderlyMessaging

/// Applies events to the MongoDB read models. Run by an `EventConsumer`, which commits offsets only
/// after a handle call returns. Each order document remembers the last version applied from each of
/// its streams, so an event that comes again after a crash changes nothing; a write expects the
/// revision it read, so two projector instances during a rebalance cannot overwrite each other.
///
/// A batch from the consumer becomes one read of the documents it touches and one unordered bulk
/// write of each changed document, however many events it holds for that order.
public struct Projector: EventHandler {
    let orders: MongoCollection
    let inventory: MongoCollection
    let logger: Logger

    public init(client: MongoClient, logger: Logger) {
        self.orders = client.collection(OrdersProjection.collection)
        self.inventory = client.collection(InventoryProjection.collection)
        self.logger = logger
    }

    public func handle(_ event: RecordedEvent) async throws {
        if InventoryProjection.handledTypes.contains(event.type) { return try await self.applyToInventory(event) }
        guard let (orderID, domainEvent) = try Self.decode(event) else { return }
        while true {
            let current = try await self.orders.findOne(["_id": .string(orderID)], as: OrderView.self)
            guard let next = OrdersProjection.apply(domainEvent, recorded: event, to: current, now: Date()) else {
                if current == nil { self.warnUnplaced(orderID, event) }
                return
            }
            let write = try OrdersProjection.write(next, replacing: current)
            if try await self.orders.upsert(filter: write.filter, update: write.update) == .applied { return }
            // Another writer moved the document on: read it again and re-apply (or find it applied).
        }
    }

    public func handle(batch events: [RecordedEvent]) async throws {
        // Stock events one by one, in order: each expects its SKU's previous version.
        for event in events where InventoryProjection.handledTypes.contains(event.type) { try await self.applyToInventory(event) }
        var eventsByOrder: [String: [(DomainEvent, RecordedEvent)]] = [:]
        var orderIDs: [String] = []
        for event in events {
            guard let (orderID, domainEvent) = try Self.decode(event) else { continue }
            if eventsByOrder[orderID] == nil { orderIDs.append(orderID) }
            eventsByOrder[orderID, default: []].append((domainEvent, event))
        }
        guard !orderIDs.isEmpty else { return }
        var current: [String: OrderView] = [:]
        for document in try await self.orders.find(["_id": ["$in": .array(orderIDs.map { .string($0) })]]) {
            let view = try JSONDecoder().decode(OrderView.self, from: try document.jsonData())
            current[view.orderId] = view
        }
        let now = Date()
        var writes: [(orderID: String, write: ProjectionWrite)] = []
        for orderID in orderIDs {
            var view = current[orderID]
            var changed = false
            for (domainEvent, event) in eventsByOrder[orderID] ?? [] {
                if let next = OrdersProjection.apply(domainEvent, recorded: event, to: view, now: now) {
                    view = next
                    changed = true
                } else if view == nil {
                    self.warnUnplaced(orderID, event)
                }
            }
            if changed, let view { writes.append((orderID, try OrdersProjection.write(view, replacing: current[orderID]))) }
        }
        let rejected = try await self.orders.bulkUpsert(writes.map { ($0.write.filter, $0.write.update) })
        // A rejected write met a document another writer had moved on: redo that order event by event.
        for index in rejected.sorted() {
            for (_, event) in eventsByOrder[writes[index].orderID] ?? [] { try await self.handle(event) }
        }
    }

    func applyToInventory(_ event: RecordedEvent) async throws {
        guard let domainEvent = try event.domainEventForHandler(),
            let write = InventoryProjection.write(for: domainEvent, version: event.streamVersion)
        else { return }
        // `.alreadyApplied`: a repeat; the version guard kept it from counting twice.
        _ = try await self.inventory.upsert(filter: write.filter, update: write.update)
    }

    /// The order an event is about and the event itself; nil for events the read model ignores.
    static func decode(_ event: RecordedEvent) throws -> (String, DomainEvent)? {
        // Events this read model does not apply (a SKU's stock) are skipped before parsing.
        guard OrdersProjection.handledTypes.contains(event.type) else { return nil }
        guard let domainEvent = try event.domainEventForHandler() else { return nil }
        guard let orderID = OrdersProjection.orderID(of: domainEvent) else { return nil }
        return (orderID, domainEvent)
    }

    func warnUnplaced(_ orderID: String, _ event: RecordedEvent) {
        self.logger.warning("event for an order not yet projected", metadata: ["order.id": "\(orderID)", "event.type": "\(event.type)"])
    }
}
