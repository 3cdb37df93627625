import Foundation
import OrderlyDomain
import OrderlyEventStore

// The contract between whatever delivers events (the Kafka consumer, a rebuild reading the log, a
// test) and what reacts to them (the saga services, the projections). Only the process assembly
// knows which transport feeds which handler, so neither side depends on the other's libraries.

public enum EventHandling {
    /// How many orders' events a handler works on at once by default (see `EventHandler.handle(batch:)`):
    /// `ORDERLY_CONCURRENT_ORDERS`, 48 unless set (16 left the inventory service seconds behind at
    /// 100 orders/s: its per-stock-stream turns and round trips wait, they do not use CPU).
    public static let concurrentOrders: Int = {
        let configured = ProcessInfo.processInfo.environment["ORDERLY_CONCURRENT_ORDERS"].flatMap { Int($0) } ?? 48
        return min(max(configured, 1), 256)
    }()
}

/// Thrown by a handler for an event that can never succeed (unreadable, against the rules): the
/// consumer sends it to the dead-letter topic with `reason` and moves on. Any other error is taken as
/// transient and retried.
public struct PoisonEvent: Error, Sendable, CustomStringConvertible {
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { self.reason }
}

extension RecordedEvent {
    /// The domain event inside, for a handler: nil for a type this version of Orderly does not know
    /// (other systems may share the topic); a known type that does not decode is a `PoisonEvent`.
    public func domainEventForHandler(upcasters: UpcasterChain = .standard) throws -> DomainEvent? {
        do {
            return try EventCodec.decodeIfKnown(type: self.type, schemaVersion: self.schemaVersion, data: self.data, upcasters: upcasters)
        } catch {
            throw PoisonEvent(reason: "cannot read \(self.type) v\(self.schemaVersion): \(error)")
        }
    }
}

/// Reacts to events. `handle` returns only once its effect is durable; it should itself be idempotent
/// (a version-guarded write, an idempotency key), because after a crash an event can arrive again.
public protocol EventHandler: Sendable {
    func handle(_ event: RecordedEvent) async throws
    /// Handles several events (in log order) as one unit, for handlers that can write them together.
    /// A `PoisonEvent` from here makes the consumer fall back to one event at a time, to find the
    /// culprit. By default: one at a time.
    func handle(batch events: [RecordedEvent]) async throws
    /// Handles a batch together with the Kafka partition each event came from, for handlers whose
    /// idempotency is kept per partition (in a partition, the relay's log order holds). By default:
    /// `handle(batch:)`.
    func handle(delivered events: [DeliveredEvent]) async throws
}

/// An event as a consumer received it: the event and the partition it came from.
public struct DeliveredEvent: Sendable, Equatable {
    public var event: RecordedEvent
    public var partition: Int32

    public init(event: RecordedEvent, partition: Int32) {
        self.event = event
        self.partition = partition
    }
}

extension EventHandler {
    public func handle(delivered events: [DeliveredEvent]) async throws {
        try await self.handle(batch: events.map(\.event))
    }

    /// By default, events of different orders (correlation ids: the Kafka key) are handled
    /// concurrently, up to `EventHandling.concurrentOrders` at a time, and each order's events one
    /// after another, in log order: order within an order is what the saga relies on, and the
    /// handlers' optimistic concurrency takes care of aggregates that orders share (a SKU's stock).
    public func handle(batch events: [RecordedEvent]) async throws {
        var byOrder: [String: [RecordedEvent]] = [:]
        var orders: [String] = []
        for event in events {
            let key = event.metadata.correlationId ?? event.streamID
            if byOrder[key] == nil { orders.append(key) }
            byOrder[key, default: []].append(event)
        }
        let sequences = byOrder
        _ = try await concurrently(orders, limit: EventHandling.concurrentOrders) { order in
            // Each event under its consumer span (`TraceContext`), so what handling it appends continues its trace.
            for event in sequences[order] ?? [] { try await TraceContext.withParent(event.metadata.traceparent) { try await self.handle(event) } }
        }
    }
}

/// `work` over `items`, at most `limit` at a time; the results in the items' order.
public func concurrently<Item: Sendable, Result: Sendable>(
    _ items: [Item], limit: Int, _ work: @escaping @Sendable (Item) async throws -> Result
) async throws -> [Result] {
    try await withThrowingTaskGroup(of: (Int, Result).self) { group in
        var results: [Result?] = Array(repeating: nil, count: items.count)
        var next = 0
        func startNext() {
            guard next < items.count else { return }
            let index = next
            let item = items[index]
            next += 1
            group.addTask { (index, try await work(item)) }
        }
        for _ in 0..<max(1, limit) { startNext() }
        while let (index, result) = try await group.next() {
            results[index] = result
            startNext()
        }
        return results.compactMap { $0 }
    }
}
