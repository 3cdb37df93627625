import Foundation
import OrderlyDomain
import OrderlyEventStore
import Synchronization

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
/// decision instead of its whole history, and an update none when its decision is made on the cached
/// state and its append finds the version unchanged. The cache is only a shortcut: streams are append-only with
/// dense versions, so "cached state + the events after its version" is exactly the fold of all.
/// Snapshots are the same shortcut kept in the store, for what the cache does not hold (a process
/// that just started, a cache that started over): a `SnapshotAggregate` loads from its stream's
/// snapshot and the events after it, and every `snapshotEvery` events a new snapshot is saved, off
/// the caller's path. So a load costs at most that many events, however long the stream.
public struct AggregateStore: Sendable {
    public let store: any EventStore
    let maxAttempts: Int
    let cache: StateCache
    let locks = StreamLocks()
    /// Nil: no snapshots are loaded or saved (every load folds from the start).
    let snapshotEvery: Int64?
    /// The version of the newest snapshot known per stream (loaded or saved here).
    let snapshotted: SnapshotVersions

    public init(store: any EventStore, maxAttempts: Int = 20, cachedStreams: Int = 10_000, snapshotEvery: Int64? = 500) {
        self.store = store
        self.maxAttempts = maxAttempts
        self.cache = StateCache(capacity: cachedStreams)
        self.snapshotEvery = snapshotEvery
        self.snapshotted = SnapshotVersions(capacity: cachedStreams)
    }

    /// Events read per query while folding: each read stays well inside the store's statement bound.
    static let foldPage = 10_000

    /// The aggregate's current state and the stream version it reflects (0: no stream).
    public func load<State: Aggregate>(_ stream: String, as type: State.Type = State.self) async throws -> (state: State, version: Int64) {
        try await self.load(stream, as: type, trustingSnapshot: true)
    }

    /// The aggregate as this process last knew it (cached, or learnt from the topic) when `answers`
    /// says that settles the caller's question whatever may have come after it; otherwise the stream
    /// as stored, or, with `assumingNew` and nothing known, an empty state (a stream not yet written).
    /// For what a state that is behind cannot get wrong: a fact that never changes once set (when an
    /// order was placed), a state that never goes back (a reservation known to be reserved names its
    /// lines; what may follow makes committing them a no-op), or a guard before a step whose effect is
    /// idempotent (a gateway call keyed by the order) and whose recording goes through `update`, which
    /// expects the version it decided on and decides again on a conflict. Saves a round trip per guard.
    public func lastKnown<State: Aggregate>(
        _ stream: String, as type: State.Type = State.self, assumingNew: Bool = false, whenIt answers: (State) -> Bool = { _ in true }
    ) async throws -> State {
        if let (state, _) = self.cache.get(stream, as: State.self) {
            if answers(state) { return state }
        } else if assumingNew {
            return State()
        }
        return try await self.load(stream, as: type).state
    }

    /// Folds `event` (decoded from `recorded`, an event received from the topic) into its stream's
    /// cached state when it is the next version there (or the stream's first event), so that a later
    /// update decides without reading the stream. Only a shortcut, like the cache: an event that does
    /// not follow on is passed over, and an update still expects the version it decided on.
    public func learn<State: Aggregate>(_ event: DomainEvent, recorded: RecordedEvent, as type: State.Type) {
        let cached = self.cache.get(recorded.streamID, as: State.self)
        guard (cached?.1 ?? 0) == recorded.streamVersion - 1 else { return }
        var state = cached?.0 ?? State()
        state.apply(event)
        self.cache.put(recorded.streamID, state: state, version: recorded.streamVersion)
    }

    /// `load`; without `trustingSnapshot`, a stored snapshot is passed over (the stream is folded
    /// from its start).
    private func load<State: Aggregate>(_ stream: String, as type: State.Type, trustingSnapshot: Bool) async throws -> (
        state: State, version: Int64
    ) {
        var (state, version): (State, Int64)
        if let cached = self.cache.get(stream, as: State.self) {
            (state, version) = cached
        } else if trustingSnapshot, let snapshot = await self.snapshot(of: stream, as: State.self) {
            (state, version) = snapshot
        } else {
            (state, version) = (State(), 0)
        }
        let start = version
        while true {
            let recorded = try await self.store.readStream(stream, from: version + 1, limit: Self.foldPage)
            for event in recorded {
                do {
                    state.apply(try EventCodec.decode(EncodedEvent(type: event.type, schemaVersion: event.schemaVersion, data: event.data)))
                } catch {
                    throw UnreadableEvent(stream: stream, reason: "\(error)")
                }
                version = event.streamVersion
            }
            if recorded.count < Self.foldPage { break }
        }
        if version > start {
            self.cache.put(stream, state: state, version: version)
            self.snapshotIfDue(stream, state: state, version: version)
        } else if version == 0 {
            // No stream yet: remembered too, so the update that usually follows (the stream's first
            // events) need not read it again; its append expects no stream, which a conflict corrects.
            self.cache.put(stream, state: state, version: 0)
        }
        return (state, version)
    }

    /// The stream's snapshot if the store keeps one this aggregate can read: of its schema and
    /// decodable (anything else, or a store that does not answer, means folding from the start).
    private func snapshot<State: Aggregate>(of stream: String, as type: State.Type) async -> (State, Int64)? {
        guard self.snapshotEvery != nil, let snapshots = self.store as? any SnapshotStore, let readable = State.self as? any SnapshotAggregate.Type,
            let snapshot = try? await snapshots.loadSnapshot(of: stream), snapshot.schema == readable.snapshotSchema,
            let state = try? Self.decode(readable, from: snapshot.state) as? State
        else { return nil }
        self.snapshotted.raise(stream, to: snapshot.streamVersion)
        return (state, snapshot.streamVersion)
    }

    /// Saves a snapshot in the background once the stream has grown `snapshotEvery` events past the
    /// newest one known. A failed save is only a later snapshot.
    private func snapshotIfDue<State: Aggregate>(_ stream: String, state: State, version: Int64) {
        guard let every = self.snapshotEvery, let snapshots = self.store as? any SnapshotStore, let savable = state as? any SnapshotAggregate,
            version - self.snapshotted.version(of: stream) >= every, let encoded = try? Self.encode(savable)
        else { return }
        self.snapshotted.raise(stream, to: version)
        let snapshot = StreamSnapshot(streamID: stream, schema: type(of: savable).snapshotSchema, streamVersion: version, state: encoded)
        Task { try? await snapshots.saveSnapshot(snapshot) }
    }

    private static func encode(_ state: some SnapshotAggregate) throws -> [UInt8] {
        Array(try JSONEncoder().encode(state))
    }

    private static func decode<Snapshot: SnapshotAggregate>(_ type: Snapshot.Type, from bytes: [UInt8]) throws -> Snapshot {
        try JSONDecoder().decode(type, from: Data(bytes))
    }

    /// Loads `stream`, asks `decide` for new events and appends them expecting the version it decided
    /// on. Returns nil when the decision was to append nothing.
    /// With an idempotency key, a repeat of the same request returns the first append's result.
    /// With `likelyNew` (the event that calls for the update starts the stream: an order's payment on
    /// its placement), a stream this process knows nothing of is not read first: the decision is made
    /// on an empty state, as on a cached one, and its append expects no stream.
    /// `causes` says which metadata each appended event carries (by default all `metadata`).
    @discardableResult
    public func update<State: Aggregate>(
        _ stream: String, as type: State.Type = State.self, metadata: EventMetadata, idempotency: IdempotencyKey? = nil,
        likelyNew: Bool = false, causes: Causes = .shared, decide: (State) throws -> [DomainEvent]
    ) async throws -> AppendResult? {
        // Writers of one stream in this process take turns: on a busy aggregate they would otherwise
        // mostly conflict with each other. Other processes are still met by the expected version.
        await self.locks.lock(stream)
        do {
            let result = try await self.decideAndAppend(
                stream, as: type, metadata: metadata, idempotency: idempotency, likelyNew: likelyNew, causes: causes, decide: decide)
            await self.locks.unlock(stream)
            return result
        } catch {
            await self.locks.unlock(stream)
            throw error
        }
    }

    private func decideAndAppend<State: Aggregate>(
        _ stream: String, as type: State.Type, metadata: EventMetadata, idempotency: IdempotencyKey?, likelyNew: Bool, causes: Causes,
        decide: (State) throws -> [DomainEvent]
    ) async throws -> AppendResult? {
        var attempt = 1
        // The first decision is made on the cached state without reading the stream: if it calls for
        // events, they are appended expecting the cached version, so they stand only if nothing came
        // after it (a conflict reads the stream and decides again). A decision of nothing is not
        // trusted on it: the cache may be behind another process's appends that call for events
        // (a reservation another inventory replica made, then released here), so it is made again on
        // the stream as stored; so is a refusal. This saves a round trip to the store on most updates.
        // A stream most likely new and not cached is treated the same way, as an empty state.
        var fromCache = true
        var trustingSnapshot = true
        while true {
            var state: State
            var version: Int64
            if fromCache, let cached = self.cache.get(stream, as: State.self) {
                (state, version) = cached
            } else if fromCache, likelyNew {
                (state, version) = (State(), 0)
            } else {
                fromCache = false
                (state, version) = try await self.load(stream, as: State.self, trustingSnapshot: trustingSnapshot)
            }
            let decided: [DomainEvent]
            do {
                decided = try decide(state)
            } catch {
                // Refused on a state that may be behind (an order this process saw missing, since
                // placed elsewhere): only the stream as stored can refuse.
                guard fromCache else { throw error }
                fromCache = false
                continue
            }
            guard !decided.isEmpty else {
                if fromCache {
                    fromCache = false
                    continue
                }
                return nil
            }
            var newEvents: [NewEvent] = []
            for event in decided {
                var eventMetadata = metadata
                switch causes {
                case .shared: break
                case .chained: if let previous = newEvents.last { eventMetadata.causationId = previous.id.uuidString.lowercased() }
                case .each(let metadataOf): eventMetadata = metadataOf(event) ?? metadata
                }
                newEvents.append(try NewEvent(event, metadata: eventMetadata))
            }
            do {
                var result = try await self.store.append(
                    newEvents, to: stream, expecting: version == 0 ? .noStream : .exact(version), idempotency: idempotency)
                // A replayed key appended nothing now: the cache learns the stream on the next load.
                guard !result.isReplay else { return result }
                result.lastEventId = newEvents.last?.id
                for event in decided { state.apply(event) }
                self.cache.put(stream, state: state, version: result.streamVersion)
                self.snapshotIfDue(stream, state: state, version: result.streamVersion)
                return result
            } catch EventStoreError.wrongExpectedVersion(_, _, let actual) where attempt < self.maxAttempts {
                // Someone else appended to this aggregate meanwhile: decide again on the new history.
                attempt += 1
                fromCache = false
                if actual < version {
                    // The state is ahead of the log: a snapshot (or a state cached from it) of a log
                    // since truncated or restored from an older backup. The stream is folded whole.
                    self.cache.forget(stream)
                    self.snapshotted.forget(stream)
                    trustingSnapshot = false
                }
            }
        }
    }
}

/// Which metadata (cause, correlation, trace) each event of one append carries.
public enum Causes: Sendable {
    /// Every event the update's metadata.
    case shared
    /// Steps taken one after another: each event after the first names the one before it as its cause.
    case chained
    /// Each event its own, as given (nil: the update's metadata): events with different causes
    /// recorded together.
    case each(@Sendable (DomainEvent) -> EventMetadata?)
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

    /// Names the event `result` appended last as the cause (unchanged when nothing was appended).
    public mutating func causedBy(_ result: AppendResult?) {
        if let id = result?.lastEventId { self.causationId = id.uuidString.lowercased() }
    }
}

extension RecordedEvent {
    /// Metadata for an event this one caused: same correlation (the order), caused by this event,
    /// in the same trace (the consumer set the event's `traceparent` to its handling span), whichever
    /// task the handler appends it from.
    public func causing(actor: String) -> EventMetadata {
        EventMetadata(
            correlationId: self.metadata.correlationId, causationId: self.id.uuidString.lowercased(), actor: actor,
            traceparent: self.metadata.traceparent)
    }
}
