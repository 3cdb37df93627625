import Foundation
import OrderlyDomain
import OrderlyEventStore
import Synchronization

/// Where each aggregate's events live. One stream per aggregate instance.
public enum StreamNames {
    public static func order(_ orderId: String) -> String { "order-\(orderId)" }
    public static func stock(_ sku: String) -> String { "stock-\(sku)" }
    public static func reservation(_ orderId: String) -> String { "reservation-\(orderId)" }
    public static func payment(_ orderId: String) -> String { "payment-\(orderId)" }
    public static func notification(_ orderId: String) -> String { "notification-\(orderId)" }
    /// Every stream that belongs to one order (stock streams are shared by many orders).
    public static func ofOrder(_ orderId: String) -> [String] {
        [order(orderId), reservation(orderId), payment(orderId), notification(orderId)]
    }
}

/// A stored event whose type or shape the domain does not know, in a stream it owns.
public struct UnreadableEvent: Error, Sendable, CustomStringConvertible {
    public var stream: String
    public var reason: String
    public var description: String { "stream \(self.stream) holds an unreadable event: \(self.reason)" }
}

/// Loads aggregates by folding their streams and appends their decisions with optimistic
/// concurrency: the append expects the version the decision was made on, and a conflict reloads and
/// decides again. Every service and command handler goes through it.
///
/// Folded states are cached in memory with their version, and a load reads only the events after
/// it: a busy aggregate (one SKU's stock, thousands of reservations long) costs one short read per
/// decision instead of its whole history. The cache is only a shortcut: streams are append-only with
/// dense versions, so "cached state + the events after its version" is exactly the fold of all.
public struct AggregateStore: Sendable {
    public let store: any EventStore
    let maxAttempts: Int
    let cache: StateCache
    let locks = StreamLocks()

    public init(store: any EventStore, maxAttempts: Int = 20, cachedStreams: Int = 10_000) {
        self.store = store
        self.maxAttempts = maxAttempts
        self.cache = StateCache(capacity: cachedStreams)
    }

    /// The aggregate's current state and the stream version it reflects (0: no stream).
    public func load<State: Aggregate>(_ stream: String, as type: State.Type = State.self) async throws -> (state: State, version: Int64) {
        var (state, version) = self.cache.get(stream, as: State.self) ?? (State(), 0)
        let recorded = try await self.store.readStream(stream, from: version + 1)
        for event in recorded {
            do {
                state.apply(try EventCodec.decode(EncodedEvent(type: event.type, schemaVersion: event.schemaVersion, data: event.data)))
            } catch {
                throw UnreadableEvent(stream: stream, reason: "\(error)")
            }
            version = event.streamVersion
        }
        if !recorded.isEmpty { self.cache.put(stream, state: state, version: version) }
        return (state, version)
    }

    /// Loads `stream`, asks `decide` for new events and appends them expecting the version it decided
    /// on. Returns nil when the decision was to append nothing.
    /// With an idempotency key, a repeat of the same request returns the first append's result.
    @discardableResult
    public func update<State: Aggregate>(
        _ stream: String, as type: State.Type = State.self, metadata: EventMetadata, idempotency: IdempotencyKey? = nil,
        decide: (State) throws -> [DomainEvent]
    ) async throws -> AppendResult? {
        // Writers of one stream in this process take turns: on a busy aggregate they would otherwise
        // mostly conflict with each other. Other processes are still met by the expected version.
        await self.locks.lock(stream)
        do {
            let result = try await self.decideAndAppend(stream, as: type, metadata: metadata, idempotency: idempotency, decide: decide)
            await self.locks.unlock(stream)
            return result
        } catch {
            await self.locks.unlock(stream)
            throw error
        }
    }

    private func decideAndAppend<State: Aggregate>(
        _ stream: String, as type: State.Type, metadata: EventMetadata, idempotency: IdempotencyKey?,
        decide: (State) throws -> [DomainEvent]
    ) async throws -> AppendResult? {
        var attempt = 1
        while true {
            var (state, version) = try await self.load(stream, as: State.self)
            let decided = try decide(state)
            guard !decided.isEmpty else { return nil }
            let newEvents = try decided.map { try NewEvent($0, metadata: metadata) }
            do {
                let result = try await self.store.append(
                    newEvents, to: stream, expecting: version == 0 ? .noStream : .exact(version), idempotency: idempotency)
                // A replayed key appended nothing now: the cache learns the stream on the next load.
                guard !result.isReplay else { return result }
                for event in decided { state.apply(event) }
                self.cache.put(stream, state: state, version: result.streamVersion)
                return result
            } catch EventStoreError.wrongExpectedVersion where attempt < self.maxAttempts {
                // Someone else appended to this aggregate meanwhile: decide again on the new history.
                attempt += 1
            }
        }
    }
}

/// One lock per stream name, for async callers: waiters are resumed one at a time, in arrival order.
actor StreamLocks {
    /// A locked stream has an entry; its value is who waits for it.
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func lock(_ stream: String) async {
        guard self.waiters[stream] != nil else {
            self.waiters[stream] = []
            return
        }
        await withCheckedContinuation { continuation in
            self.waiters[stream, default: []].append(continuation)
        }
    }

    func unlock(_ stream: String) {
        guard var queue = self.waiters[stream] else { return }
        if queue.isEmpty {
            self.waiters[stream] = nil
        } else {
            let next = queue.removeFirst()
            self.waiters[stream] = queue
            next.resume()
        }
    }
}

/// Folded aggregate states by stream, with the version each reflects. Bounded: when full it starts
/// over (states are rebuilt from the log on demand).
final class StateCache: Sendable {
    private struct Entry: @unchecked Sendable {
        // Only ever holds values of `Aggregate` types, which are Sendable.
        var state: Any
        var version: Int64
    }

    private let entries = Mutex<[String: Entry]>([:])
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func get<State: Aggregate>(_ stream: String, as type: State.Type) -> (State, Int64)? {
        self.entries.withLock { entries in
            guard let entry = entries[stream], let state = entry.state as? State else { return nil }
            return (state, entry.version)
        }
    }

    func put<State: Aggregate>(_ stream: String, state: State, version: Int64) {
        self.entries.withLock { entries in
            if let existing = entries[stream], existing.version >= version { return }
            if entries.count >= self.capacity, entries[stream] == nil { entries.removeAll(keepingCapacity: true) }
            entries[stream] = Entry(state: state, version: version)
        }
    }
}

extension NewEvent {
    /// A domain event in the form the event store appends.
    public init(_ event: DomainEvent, metadata: EventMetadata) throws {
        let encoded = try EventCodec.encode(event)
        self.init(type: encoded.type, schemaVersion: encoded.schemaVersion, data: encoded.data, metadata: metadata)
    }
}

extension EventMetadata {
    /// The same metadata, with the Kafka key set to `key` (for streams that many orders share).
    public func keyed(by key: String) -> EventMetadata {
        var metadata = self
        metadata.partitionKey = key
        return metadata
    }
}

extension RecordedEvent {
    /// Metadata for an event this one caused: same correlation (the order), caused by this event.
    public func causing(actor: String) -> EventMetadata {
        EventMetadata(correlationId: self.metadata.correlationId, causationId: self.id.uuidString.lowercased(), actor: actor)
    }
}
