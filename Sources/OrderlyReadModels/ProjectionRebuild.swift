import Foundation
import Logging
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling

/// How far a rebuild is: log positions replayed of the log's position when it looked.
public struct RebuildProgress: Sendable, Equatable {
    public enum Phase: String, Sendable {
        case replaying, switching, done
    }

    public var phase: Phase
    public var position: Int64
    public var target: Int64
    public var events: Int
}

public struct RebuildReport: Sendable, Equatable {
    public var collection: String
    public var previousCollection: String
    public var events: Int
    public var unreadable: Int
    public var rebuiltThrough: LogCursor
    public var seconds: Double
}

/// Rebuilds a read model from the event store into a new collection while the live projector keeps
/// the current one up to date, then switches readers and the live projector over:
/// 1. replay the whole log into `<collection>_v<version>_<time>` (progress in the state document);
/// 2. ask live projectors to hold still (`pauseUntilMs`) and wait until each has said so;
/// 3. take the events the log gained meanwhile, then, before the pause runs out, write the new
///    collection and `rebuiltThrough` into the state in one guarded write.
/// Events live projectors meet afterwards are either in the log before `rebuiltThrough` (passed over)
/// or after it (applied as usual), so nothing is lost or counted twice. A rebuild that dies leaves the
/// old collection in place; the next one takes its half-built collection over and starts again.
public struct ProjectionRebuilder<P: ReadModelProjection>: Sendable {
    let store: any EventStore
    let client: MongoClient
    let catalog: ProjectionCatalog
    let definition: ProjectionDefinition
    let logger: Logger
    let batchSize: Int
    let owner = UUID().uuidString
    /// How long live projectors hold still at most, and how long to wait for them to say so.
    let pauseLength: Int64 = 15_000
    let pauseAckTimeout: Duration = .seconds(10)

    public init(
        _ projection: P.Type, definition: ProjectionDefinition, store: any EventStore, client: MongoClient, logger: Logger, batchSize: Int = 2000
    ) {
        self.store = store
        self.client = client
        self.catalog = ProjectionCatalog(client: client)
        self.definition = definition
        self.logger = logger
        self.batchSize = batchSize
    }

    public func rebuild(progress: @escaping @Sendable (RebuildProgress) -> Void = { _ in }) async throws -> RebuildReport {
        let started = ContinuousClock.now
        var state = try await self.catalog.ensureState(self.definition)
        if let running = state.rebuild, ProjectionCatalog.nowMs() - running.heartbeatMs < ProjectionCatalog.rebuildOwnerTimeoutMs {
            throw ProjectionError(message: "a rebuild of \(P.name) into \(running.collection) is running (owner \(running.owner))")
        }
        if let abandoned = state.rebuild {
            self.logger.notice("taking over an abandoned rebuild", metadata: ["collection": "\(abandoned.collection)"])
            try await self.client.collection(abandoned.collection).drop()
        }
        let collection = "\(self.definition.collection)_v\(self.definition.version)_\(ProjectionCatalog.nowMs())"
        let target = try await self.store.latestPosition()
        var rebuild = ProjectionState.Rebuild(
            collection: collection, version: self.definition.version, owner: self.owner, heartbeatMs: ProjectionCatalog.nowMs(),
            startedAt: UTCTime.iso8601(Date()), position: 0, target: target)
        state = try await self.update(state) { $0.rebuild = rebuild }
        let destination = self.client.collection(collection)
        try await self.definition.ensureIndexes(self.client, in: collection)

        var cursor = LogCursor.start
        var counts = (events: 0, unreadable: 0)
        var lastReport = ContinuousClock.now
        // 1. The whole log, then whatever it gained meanwhile, until a read comes back empty.
        func catchUp(_ phase: RebuildProgress.Phase) async throws {
            while true {
                let batch = try await self.store.readAll(after: cursor, limit: self.batchSize)
                guard let last = batch.last else { return }
                var sourced: [SourcedEvent] = []
                for recorded in batch {
                    do {
                        if let item = try P.sourced(recorded, source: SourcedEvent.logSource) { sourced.append(item) }
                    } catch {
                        // The live consumer dead-letters such an event; the rebuild cannot, so it counts and skips it.
                        counts.unreadable += 1
                        self.logger.error("skipping an unreadable event", metadata: ["position": "\(recorded.position)", "error": "\(error)"])
                    }
                }
                try await P.apply(sourced, to: destination)
                counts.events += batch.count
                cursor = last.cursor
                rebuild.position = last.position
                if ContinuousClock.now - lastReport > .seconds(1) {
                    lastReport = .now
                    rebuild.target = max(rebuild.target, try await self.store.latestPosition())
                    rebuild.heartbeatMs = ProjectionCatalog.nowMs()
                    let current = rebuild
                    state = try await self.update(state) { $0.rebuild = current }
                    progress(RebuildProgress(phase: phase, position: rebuild.position, target: rebuild.target, events: counts.events))
                }
            }
        }
        try await catchUp(.replaying)

        for attempt in 1...5 {
            // 2. Live projectors hold still.
            let pauseUntil = ProjectionCatalog.nowMs() + self.pauseLength
            rebuild.pauseUntilMs = pauseUntil
            rebuild.heartbeatMs = ProjectionCatalog.nowMs()
            let pausing = rebuild
            state = try await self.update(state) { $0.rebuild = pausing }
            progress(RebuildProgress(phase: .switching, position: rebuild.position, target: rebuild.target, events: counts.events))
            let deadline = ContinuousClock.now + self.pauseAckTimeout
            var waitingFor = try await self.catalog.unpausedInstances(projection: P.name, for: collection)
            while !waitingFor.isEmpty, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                waitingFor = try await self.catalog.unpausedInstances(projection: P.name, for: collection)
            }
            if waitingFor.isEmpty {
                // 3. The last events, then the switch, while the pause still holds.
                try await catchUp(.switching)
                if ProjectionCatalog.nowMs() < pauseUntil - 1000 {
                    let old = state.collection
                    let dropLater = state.previousCollection
                    let through = cursor
                    state = try await self.update(state) { next in
                        next.collection = collection
                        next.version = self.definition.version
                        next.rebuiltThrough = through
                        next.previousCollection = old
                        next.rebuild = nil
                    }
                    if let dropLater, dropLater != collection, dropLater != old { try await self.client.collection(dropLater).drop() }
                    progress(RebuildProgress(phase: .done, position: rebuild.position, target: rebuild.target, events: counts.events))
                    return RebuildReport(
                        collection: collection, previousCollection: old, events: counts.events, unreadable: counts.unreadable,
                        rebuiltThrough: through, seconds: (ContinuousClock.now - started).timeInterval)
                }
            }
            self.logger.warning(
                "live projectors did not hold still in time; letting them go on and trying again",
                metadata: ["attempt": "\(attempt)", "waiting.for": "\(waitingFor)"])
            rebuild.pauseUntilMs = nil
            let resumed = rebuild
            state = try await self.update(state) { $0.rebuild = resumed }
            try await Task.sleep(for: .seconds(2))
            try await catchUp(.replaying)
        }
        throw ProjectionError(message: "could not switch \(P.name) over: live projectors did not hold still")
    }

    /// Writes `change` of `state`, expecting nobody else wrote it since (a second rebuild would).
    func update(_ state: ProjectionState, _ change: (inout ProjectionState) -> Void) async throws -> ProjectionState {
        var next = state
        change(&next)
        guard try await self.catalog.replace(state, with: next) else {
            throw ProjectionError(message: "the state of \(P.name) changed under the rebuild (another rebuild?)")
        }
        next.revision = state.revision + 1
        return next
    }
}

/// One way the live read model differs from a fresh fold of the log.
public struct ProjectionDifference: Sendable, Equatable, CustomStringConvertible {
    public var documentID: String
    /// nil: the whole document (missing or unexpected).
    public var field: String?
    public var expected: String
    public var actual: String

    public var description: String {
        "\(self.documentID)\(self.field.map { ".\($0)" } ?? ""): expected \(self.expected), found \(self.actual)"
    }
}

/// Compares a read model's live collection with a fresh fold of the event store, in memory.
/// Documents that differ are looked at again a few times, with the events the log gained meanwhile,
/// so a projector that is merely a moment behind is not reported.
public struct ProjectionVerifier<P: ReadModelProjection>: Sendable {
    let store: any EventStore
    let client: MongoClient
    let logger: Logger

    public init(_ projection: P.Type, store: any EventStore, client: MongoClient, logger: Logger) {
        self.store = store
        self.client = client
        self.logger = logger
    }

    public func verify(rounds: Int = 4) async throws -> (documents: Int, differences: [ProjectionDifference]) {
        let collection = try await ActiveCollections(client: self.client).collection(P.name)
        var folded: [String: P.View] = [:]
        var cursor = LogCursor.start
        func foldNewEvents() async throws {
            while true {
                let batch = try await self.store.readAll(after: cursor, limit: 5000)
                guard let last = batch.last else { return }
                let sourced = batch.compactMap { try? P.sourced($0, source: SourcedEvent.logSource) }
                _ = P.fold(sourced, into: &folded, now: Date())
                cursor = last.cursor
            }
        }
        try await foldNewEvents()
        var stored: [String: P.View] = [:]
        for view in try await collection.find([:], as: P.View.self) { stored[view.documentID] = view }
        var differences = try self.compare(Set(folded.keys).union(stored.keys), folded: folded, stored: stored)
        for _ in 1..<max(rounds, 1) where !differences.isEmpty {
            try await Task.sleep(for: .seconds(1))
            try await foldNewEvents()
            let ids = Set(differences.map(\.documentID))
            for id in ids { stored[id] = nil }
            for view in try await collection.find(["_id": ["$in": .array(ids.map { .string($0) })]], as: P.View.self) {
                stored[view.documentID] = view
            }
            differences = try self.compare(ids, folded: folded, stored: stored)
        }
        return (max(folded.count, stored.count), differences.sorted { ($0.documentID, $0.field ?? "") < ($1.documentID, $1.field ?? "") })
    }

    func compare(_ ids: Set<String>, folded: [String: P.View], stored: [String: P.View]) throws -> [ProjectionDifference] {
        var differences: [ProjectionDifference] = []
        for id in ids {
            switch (folded[id], stored[id]) {
            case (nil, nil):
                continue
            case (let expected?, nil):
                differences.append(ProjectionDifference(documentID: id, expected: try Self.text(expected), actual: "no document"))
            case (nil, let actual?):
                differences.append(ProjectionDifference(documentID: id, expected: "no document", actual: try Self.text(actual)))
            case (let expected?, let actual?):
                let (want, have) = (try Self.fields(expected), try Self.fields(actual))
                for field in Set(want.keys).union(have.keys).sorted() where want[field] != have[field] {
                    differences.append(
                        ProjectionDifference(documentID: id, field: field, expected: want[field] ?? "absent", actual: have[field] ?? "absent"))
                }
            }
        }
        return differences
    }

    /// The view's fields as canonical JSON texts (keys sorted), without the ones a fold cannot reproduce.
    static func fields(_ view: P.View) throws -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let object = try JSONSerialization.jsonObject(with: try encoder.encode(view)) as? [String: Any] else { return [:] }
        var fields: [String: String] = [:]
        for (key, value) in object where !P.unverifiedFields.contains(key) {
            let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
            fields[key] = String(decoding: data, as: UTF8.self)
        }
        return fields
    }

    static func text(_ view: P.View) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(view), as: UTF8.self)
    }
}
