import Foundation
import Logging
import OrderlyDomain
import OrderlyEventStore

/// A read model as operators see it (`GET /projections`, the console): its definition, where it
/// lives, how far behind the log its live projectors are, and any rebuild or verify under way.
public struct ProjectionStatus: Codable, Sendable, Equatable {
    public struct Rebuild: Codable, Sendable, Equatable {
        public var collection: String
        public var version: Int
        public var startedAt: String
        public var position: Int64
        public var target: Int64
        /// Whether its owner beat lately; a stale rebuild is taken over by the next one.
        public var active: Bool
    }

    public struct Lag: Codable, Sendable, Equatable {
        /// Positions between the log's head and the newest event a live projector applied.
        public var events: Int64
        /// How old the newest applied event was when it was applied, or 0 when caught up.
        public var seconds: Double
    }

    public var name: String
    public var definitionVersion: Int
    /// The version and collection readers use now; nil before a projector first started.
    public var liveVersion: Int?
    public var collection: String?
    public var rebuild: Rebuild?
    /// Live projectors that beat within the last few seconds.
    public var projectors: Int
    /// Nil when no live projector is running.
    public var lag: Lag?
    public var verification: VerificationStatus?
}

/// The last `verify` started from the api, kept in the document server so every api replica answers
/// the same.
public struct VerificationStatus: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        /// Under way (see `heartbeatMs`); `abandoned` when its process went away.
        case running, passed, failed, abandoned, error
    }

    public var state: State
    public var startedAt: String
    public var finishedAt: String?
    public var documents: Int?
    public var differences: Int?
    /// The first few differences, as `orderly projections verify` prints them.
    public var examples: [String]?
    public var error: String?
    public var heartbeatMs: Int64
}

public enum ProjectionAdministrationError: Error, Sendable, Equatable {
    case unknownProjection(String, known: [String])
    case busy(String)
}

/// Lists the read models, and starts rebuilds and verifies in the background of the process that
/// asks (the api): their progress is in the catalog (rebuild) and in `projection_verifications`
/// (verify), so any replica can report it. A process that stops mid-way leaves a rebuild that the
/// next one takes over, and a verify that reads as `abandoned`.
public final class ProjectionAdministration: Sendable {
    public static let verificationCollection = "projection_verifications"
    /// A running verify beats this often; one silent for 4 beats is taken for abandoned.
    static let verificationBeat: Duration = .seconds(2)
    static let verificationTimeoutMs: Int64 = 8000
    static let examplesKept = 20

    let client: MongoClient
    let catalog: ProjectionCatalog
    let store: any EventStore
    let definitions: [(any ReadModelProjection.Type, ProjectionDefinition)]
    let logger: Logger

    public init(client: MongoClient, store: any EventStore, definitions: [(any ReadModelProjection.Type, ProjectionDefinition)], logger: Logger) {
        self.client = client
        self.catalog = ProjectionCatalog(client: client)
        self.store = store
        self.definitions = definitions
        self.logger = logger
    }

    public var names: [String] { self.definitions.map { $0.1.name } }

    public func statuses() async throws -> [ProjectionStatus] {
        let head = try await self.store.latestPosition()
        var statuses: [ProjectionStatus] = []
        for (_, definition) in self.definitions { statuses.append(try await self.status(definition, head: head)) }
        return statuses
    }

    public func status(_ name: String) async throws -> ProjectionStatus {
        try await self.status(try self.named(name).1, head: try await self.store.latestPosition())
    }

    func status(_ definition: ProjectionDefinition, head: Int64) async throws -> ProjectionStatus {
        let now = ProjectionCatalog.nowMs()
        let state = try await self.catalog.state(definition.name)
        let beats = try await self.catalog.recentHeartbeats(projection: definition.name)
        var lag: ProjectionStatus.Lag?
        if let newest = beats.compactMap(\.applied).max(by: { $0.position < $1.position }) {
            let behind = max(0, head - newest.position)
            lag = .init(events: behind, seconds: behind == 0 ? 0 : max(0, Double(now - newest.recordedAtMs) / 1000))
        } else if !beats.isEmpty {
            // Running but nothing applied since it started: behind by whatever the log holds past the rebuild.
            lag = .init(events: max(0, head - (state?.rebuiltThrough?.position ?? 0)), seconds: 0)
        }
        return ProjectionStatus(
            name: definition.name, definitionVersion: definition.version, liveVersion: state?.version, collection: state?.collection,
            rebuild: state?.rebuild.map {
                .init(
                    collection: $0.collection, version: $0.version, startedAt: $0.startedAt, position: $0.position, target: $0.target,
                    active: now - $0.heartbeatMs < ProjectionCatalog.rebuildOwnerTimeoutMs)
            },
            projectors: beats.count, lag: lag, verification: try await self.verification(definition.name))
    }

    /// Starts a rebuild in the background; refused while another one's owner is alive.
    public func startRebuild(_ name: String) async throws -> ProjectionStatus {
        let (projection, definition) = try self.named(name)
        if let running = try await self.catalog.state(name)?.rebuild,
            ProjectionCatalog.nowMs() - running.heartbeatMs < ProjectionCatalog.rebuildOwnerTimeoutMs
        {
            throw ProjectionAdministrationError.busy("a rebuild of \(name) into \(running.collection) is under way")
        }
        let (client, store, logger) = (self.client, self.store, self.logger)
        let started = AsyncStream<Void>.makeStream()
        Task {
            await Self.rebuild(projection, definition: definition, store: store, client: client, logger: logger) { started.continuation.finish() }
        }
        // Answer once the rebuild is in the catalog, so the status the caller gets shows it.
        for await _ in started.stream {}
        return try await self.status(name)
    }

    static func rebuild<P: ReadModelProjection>(
        _ projection: P.Type, definition: ProjectionDefinition, store: any EventStore, client: MongoClient, logger: Logger,
        started: @escaping @Sendable () -> Void
    ) async {
        do {
            let report = try await ProjectionRebuilder(projection, definition: definition, store: store, client: client, logger: logger)
                .rebuild { _ in started() }
            logger.notice(
                "rebuild finished", metadata: ["projection": "\(P.name)", "collection": "\(report.collection)", "events": "\(report.events)"])
        } catch {
            logger.error("rebuild failed", metadata: ["projection": "\(P.name)", "error": "\(error)"])
        }
        started()
    }

    /// Starts a verify in the background; refused while one is running.
    public func startVerify(_ name: String) async throws -> VerificationStatus {
        let (projection, _) = try self.named(name)
        if let current = try await self.verification(name), current.state == .running {
            throw ProjectionAdministrationError.busy("a verify of \(name) started at \(current.startedAt) is under way")
        }
        let status = VerificationStatus(
            state: .running, startedAt: UTCTime.iso8601(Date()), heartbeatMs: ProjectionCatalog.nowMs())
        try await self.record(name, status)
        Task { await self.verify(projection, status: status) }
        return status
    }

    func verify<P: ReadModelProjection>(_ projection: P.Type, status: VerificationStatus) async {
        var status = status
        let running = status
        let beat = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: Self.verificationBeat)
                var beating = running
                beating.heartbeatMs = ProjectionCatalog.nowMs()
                try await self.record(P.name, beating)
            }
        }
        do {
            let result = try await ProjectionVerifier(projection, store: self.store, client: self.client, logger: self.logger).verify()
            status.state = result.differences.isEmpty ? .passed : .failed
            status.documents = result.documents
            status.differences = result.differences.count
            status.examples = result.differences.prefix(Self.examplesKept).map(\.description)
        } catch {
            status.state = .error
            status.error = "\(error)"
        }
        beat.cancel()
        _ = await beat.result
        status.finishedAt = UTCTime.iso8601(Date())
        status.heartbeatMs = ProjectionCatalog.nowMs()
        do {
            try await self.record(P.name, status)
        } catch {
            self.logger.error("could not record a verify's outcome", metadata: ["projection": "\(P.name)", "error": "\(error)"])
        }
    }

    /// The last verify started from an api, if any.
    public func verification(_ name: String) async throws -> VerificationStatus? {
        _ = try self.named(name)
        let collection = self.client.collection(Self.verificationCollection)
        guard var status = try await collection.findOne(["_id": .string(name)], as: VerificationStatus.self) else { return nil }
        if status.state == .running, ProjectionCatalog.nowMs() - status.heartbeatMs > Self.verificationTimeoutMs { status.state = .abandoned }
        return status
    }

    func record(_ name: String, _ status: VerificationStatus) async throws {
        guard case .object(let fields) = try Document.from(status) else { throw ProjectionError(message: "status is not an object") }
        var unset: [(String, Document)] = []
        for field in ["finishedAt", "documents", "differences", "examples", "error"] where !fields.contains(where: { $0.0 == field }) {
            unset.append((field, ""))
        }
        var update: [(String, Document)] = [("$set", .object(fields))]
        if !unset.isEmpty { update.append(("$unset", .object(unset))) }
        _ = try await self.client.collection(Self.verificationCollection).upsert(filter: ["_id": .string(name)], update: .object(update))
    }

    func named(_ name: String) throws -> (any ReadModelProjection.Type, ProjectionDefinition) {
        guard let found = self.definitions.first(where: { $0.1.name == name }) else {
            throw ProjectionAdministrationError.unknownProjection(name, known: self.names)
        }
        return found
    }
}
