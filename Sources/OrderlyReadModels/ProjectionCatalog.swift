import Foundation
import OrderlyDomain
import OrderlyEventStore
import Synchronization

/// Where a read model lives now, and any rebuild under way: one document per projection in the
/// `projections` collection. Readers and projectors follow `collection`; a rebuild builds another
/// collection and switches `collection` over in one write once it has caught up, so a reader sees
/// either the old complete model or the new complete one, never a half-built one.
public struct ProjectionState: Codable, Sendable, Equatable {
    public struct Rebuild: Codable, Sendable, Equatable {
        public var collection: String
        public var version: Int
        public var owner: String
        /// The owner's last sign of life (ms since 1970): a rebuild whose owner went quiet is taken over.
        public var heartbeatMs: Int64
        public var startedAt: String
        public var position: Int64
        public var target: Int64
        /// Until when live projectors must hold still (ms since 1970) while the rebuild takes the
        /// last events and switches over; nil while it replays.
        public var pauseUntilMs: Int64?
    }

    public var name: String
    public var version: Int
    public var collection: String
    /// Everything up to here in the log is in `collection` (the last rebuild's end): live
    /// projectors pass over such events.
    public var rebuiltThrough: LogCursor?
    /// The collection before the last switch, kept until the next rebuild (readers that looked the
    /// name up just before the switch may still read it).
    public var previousCollection: String?
    public var rebuild: Rebuild?
    public var revision: Int64

    /// How long past `pauseUntilMs` a live projector still holds: a rebuild switches only before
    /// `pauseUntilMs`, so the margin keeps a slow switch and a resuming projector apart.
    static let pauseGraceMs: Int64 = 2000

    /// The rebuild live projectors must hold still for at `nowMs`, if any.
    public func pause(atMs nowMs: Int64) -> Rebuild? {
        guard let rebuild, let until = rebuild.pauseUntilMs, nowMs < until + Self.pauseGraceMs else { return nil }
        return rebuild
    }
}

/// Reads and writes the projections' state and the live projectors' heartbeats.
public struct ProjectionCatalog: Sendable {
    public static let stateCollection = "projections"
    public static let instanceCollection = "projection_instances"
    /// A live projector that has not beaten for this long is taken for gone.
    static let instanceTimeoutMs: Int64 = 5000
    /// A rebuild whose owner has not beaten for this long is taken over by the next one.
    static let rebuildOwnerTimeoutMs: Int64 = 10_000

    let states: MongoCollection
    let instances: MongoCollection

    public init(client: MongoClient) {
        self.states = client.collection(Self.stateCollection)
        self.instances = client.collection(Self.instanceCollection)
    }

    public func state(_ name: String) async throws -> ProjectionState? {
        try await self.states.findOne(["_id": .string(name)], as: ProjectionState.self)
    }

    /// The projection's state, made on first use: the definition's version in the collection the
    /// definition names.
    public func ensureState(_ definition: ProjectionDefinition) async throws -> ProjectionState {
        if let state = try await self.state(definition.name) { return state }
        let initial = ProjectionState(name: definition.name, version: definition.version, collection: definition.collection, revision: 1)
        guard case .object(let fields) = try Document.from(initial) else { throw ProjectionError(message: "state is not an object") }
        // Two processes may start at once: only the first insert counts.
        _ = try await self.states.upsert(filter: ["_id": .string(definition.name)], update: ["$setOnInsert": .object(fields)])
        guard let state = try await self.state(definition.name) else { throw ProjectionError(message: "no state for \(definition.name)") }
        return state
    }

    /// The states of several projections in one read (made on first use, as `ensureState`), by name.
    public func ensureStates(_ definitions: [ProjectionDefinition]) async throws -> [String: ProjectionState] {
        let names = definitions.map { Document.string($0.name) }
        var states: [String: ProjectionState] = [:]
        for state in try await self.states.find(["_id": ["$in": .array(names)]], as: ProjectionState.self) { states[state.name] = state }
        for definition in definitions where states[definition.name] == nil { states[definition.name] = try await self.ensureState(definition) }
        return states
    }

    /// Replaces the state if it still has `expected`'s revision; false when someone else wrote it since.
    public func replace(_ expected: ProjectionState, with next: ProjectionState) async throws -> Bool {
        var next = next
        next.revision = expected.revision + 1
        guard case .object(let fields) = try Document.from(next) else { throw ProjectionError(message: "state is not an object") }
        var unset: [(String, Document)] = []
        if next.rebuild == nil { unset.append(("rebuild", "")) }
        if next.previousCollection == nil { unset.append(("previousCollection", "")) }
        if next.rebuiltThrough == nil { unset.append(("rebuiltThrough", "")) }
        var update: [(String, Document)] = [("$set", .object(fields))]
        if !unset.isEmpty { update.append(("$unset", .object(unset))) }
        let outcome = try await self.states.upsert(
            filter: ["_id": .string(expected.name), "revision": .int(expected.revision)], update: .object(update))
        return outcome == .applied
    }

    /// A live projector's sign of life for one projection, whether it holds still for a rebuild
    /// (that rebuild's collection), and the newest event it applied (for the lag operators see).
    public struct Beat: Sendable {
        public var projection: String
        public var instance: String
        public var pausedFor: String?
        public var applied: AppliedEvent?
    }

    /// Heartbeats in one write (a projector beats for every model it keeps).
    public func heartbeats(_ beats: [Beat]) async throws {
        guard !beats.isEmpty else { return }
        let now = Self.nowMs()
        let writes: [(filter: Document, update: Document)] = beats.map { beat in
            var fields: [(String, Document)] = [
                ("projection", .string(beat.projection)), ("heartbeatMs", .int(now)), ("pausedFor", beat.pausedFor.map { .string($0) } ?? .null),
            ]
            if let applied = beat.applied {
                fields.append(("appliedPosition", .int(applied.position)))
                fields.append(("appliedRecordedAtMs", .int(applied.recordedAtMs)))
            }
            return (["_id": .string("\(beat.projection)/\(beat.instance)")], ["$set": .object(fields)])
        }
        _ = try await self.instances.bulkUpsert(writes)
    }

    /// The live projectors of `projection` that beat lately and do not hold still for `collection`.
    public func unpausedInstances(projection: String, for collection: String) async throws -> [String] {
        let recent = Self.nowMs() - Self.instanceTimeoutMs
        let documents = try await self.instances.find(["projection": .string(projection), "heartbeatMs": ["$gt": .int(recent)]])
        return documents.compactMap { document in
            if case .string(collection)? = document["pausedFor"] { return nil }
            if case .string(let id)? = document["_id"] { return id }
            return "?"
        }
    }

    /// The live projectors of `projection` that beat lately, each with the newest event it applied.
    public func recentHeartbeats(projection: String) async throws -> [Heartbeat] {
        let recent = Self.nowMs() - Self.instanceTimeoutMs
        return try await self.instances.find(["projection": .string(projection), "heartbeatMs": ["$gt": .int(recent)]]).map { document in
            guard case .int(let position)? = document["appliedPosition"], case .int(let at)? = document["appliedRecordedAtMs"] else {
                return Heartbeat(applied: nil)
            }
            return Heartbeat(applied: AppliedEvent(position: position, recordedAtMs: at))
        }
    }

    static func nowMs() -> Int64 { UTCTime.milliseconds(Date()) }
}

/// The newest event a live projector applied: its log position and when it was appended.
public struct AppliedEvent: Sendable, Equatable {
    public var position: Int64
    public var recordedAtMs: Int64
}

/// A live projector's last sign of life, as `recentHeartbeats` reads it.
public struct Heartbeat: Sendable, Equatable {
    public var applied: AppliedEvent?
}

/// The collection each read model lives in now, for readers: looked up in the catalog and kept for
/// a moment (a rebuild keeps the collection it switched away from until the next one, so a reader
/// that still holds the old name reads a complete, slightly older model).
public final class ActiveCollections: Sendable {
    let client: MongoClient
    let catalog: ProjectionCatalog
    let maxAge: Duration
    private let cache = Mutex<[String: (collection: String, at: ContinuousClock.Instant)]>([:])

    public init(client: MongoClient, maxAge: Duration = .milliseconds(500)) {
        self.client = client
        self.catalog = ProjectionCatalog(client: client)
        self.maxAge = maxAge
    }

    /// The live collection of `projection` (named like the projection until a projector records otherwise).
    public func collection(_ projection: String) async throws -> MongoCollection {
        let now = ContinuousClock.now
        if let cached = self.cache.withLock({ $0[projection] }), now - cached.at < self.maxAge {
            return self.client.collection(cached.collection)
        }
        let name = try await self.catalog.state(projection)?.collection ?? projection
        self.cache.withLock { $0[projection] = (name, now) }
        return self.client.collection(name)
    }
}
