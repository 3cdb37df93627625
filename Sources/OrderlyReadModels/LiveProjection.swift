import Foundation
import Logging
import Metrics
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import ServiceLifecycle
import Synchronization

/// Keeps one read model up to date from Kafka: the handler of that projection's own consumer group
/// (its own checkpoint), and a service that watches the projection's state. Every update is
/// idempotent (see each projection's `apply`) and a write expects the revision it read, so redelivery
/// after a crash and two instances during a rebalance change nothing twice.
///
/// During a rebuild's switch-over it holds still: the watcher closes the gate, waits for the batch in
/// hand, tells the rebuild so (heartbeat `pausedFor`), and opens again on the new collection. Events
/// the rebuild already took from the log (up to `rebuiltThrough`) are passed over.
public final class LiveProjection<P: ReadModelProjection>: EventHandler, Service {
    let client: MongoClient
    public let definition: ProjectionDefinition
    let instance: String
    let logger: Logger
    let gate = ProjectionGate()
    let metrics: ProjectionMetrics
    /// What this projector wrote last, so a batch need not read back the orders in flight.
    let written = WrittenViews<P.View>()
    /// The newest event applied (highest position), told in each heartbeat: the lag operators see.
    let newestApplied = Mutex<AppliedEvent?>(nil)

    public init(_ projection: P.Type, definition: ProjectionDefinition, client: MongoClient, logger: Logger) {
        self.client = client
        self.definition = definition
        self.instance = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(UUID().uuidString.prefix(8))"
        self.logger = logger
        self.metrics = ProjectionMetrics(projection: P.name)
    }

    public func handle(delivered events: [DeliveredEvent]) async throws {
        let target = try await self.gate.enter()
        defer { self.gate.leave() }
        var sourced: [SourcedEvent] = []
        for delivered in events {
            if let through = target.rebuiltThrough, delivered.event.cursor <= through { continue }
            if let item = try P.sourced(delivered.event, source: SourcedEvent.source(partition: delivered.partition)) { sourced.append(item) }
        }
        let documents = try await P.apply(sourced, to: self.client.collection(target.collection), cache: self.written)
        self.metrics.applied.increment(by: Int64(sourced.count))
        self.metrics.documentsWritten.increment(by: Int64(documents))
        let now = Date()
        for item in sourced {
            self.metrics.handledAfter.recordNanoseconds(max(0, Int64(now.timeIntervalSince(item.recorded.recordedAt) * 1e9)))
        }
        if let last = events.last { self.metrics.lagSeconds.record(max(0, Date().timeIntervalSince(last.event.recordedAt))) }
        if let newest = events.max(by: { $0.event.position < $1.event.position }) {
            let applied = AppliedEvent(position: newest.event.position, recordedAtMs: UTCTime.milliseconds(newest.event.recordedAt))
            self.newestApplied.withLock { current in
                if (current?.position ?? 0) < applied.position { current = applied }
            }
        }
    }

    /// The consumer always hands over batches with their partitions; a lone event (tests, tools) counts as its own source.
    public func handle(_ event: RecordedEvent) async throws {
        try await self.handle(delivered: [DeliveredEvent(event: event, partition: -1)])
    }

    /// Watches the projection's state on its own (a projector watches all its models at once: see
    /// `ProjectionWatcher`).
    public func run() async throws {
        try await ProjectionWatcher(watching: [self], client: self.client, logger: self.logger).run()
    }

    /// Follows one look at the projection's state: opens the gate on its collection, or closes it
    /// and holds still for a rebuild's switch-over. Returns the heartbeat due, if any.
    public func follow(_ state: ProjectionState, watch: inout ProjectionWatch) async throws -> ProjectionCatalog.Beat? {
        var beat: ProjectionCatalog.Beat?
        if let rebuild = state.pause(atMs: ProjectionCatalog.nowMs()) {
            try await self.gate.closeAndDrain()
            if watch.held != rebuild.collection {
                self.logger.notice("holding still while a rebuild switches over", metadata: ["projection": "\(P.name)"])
            }
            watch.held = rebuild.collection
            beat = ProjectionCatalog.Beat(projection: P.name, instance: self.instance, pausedFor: rebuild.collection)
        } else {
            self.gate.open(ProjectionGate.Target(collection: state.collection, rebuiltThrough: state.rebuiltThrough))
            watch.held = nil
            if ContinuousClock.now - watch.lastBeat >= .seconds(1) {
                beat = ProjectionCatalog.Beat(
                    projection: P.name, instance: self.instance, pausedFor: nil, applied: self.newestApplied.withLock { $0 })
            }
        }
        self.metrics.rebuildPosition.record(state.rebuild?.position ?? 0)
        self.metrics.rebuildTarget.record(state.rebuild?.target ?? 0)
        return beat
    }
}

/// A live projection as its watcher sees it.
public protocol WatchedProjection: Sendable {
    var definition: ProjectionDefinition { get }
    func follow(_ state: ProjectionState, watch: inout ProjectionWatch) async throws -> ProjectionCatalog.Beat?
}

extension LiveProjection: WatchedProjection {}

/// Watches the states of the live projections a projector keeps: one read of every state and one
/// write of every heartbeat per look (a watcher per model made eight document-server calls a second
/// at rest, 2026-12-05).
public struct ProjectionWatcher: Service {
    let projections: [any WatchedProjection]
    let catalog: ProjectionCatalog
    let logger: Logger

    public init(watching projections: [any WatchedProjection], client: MongoClient, logger: Logger) {
        self.projections = projections
        self.catalog = ProjectionCatalog(client: client)
        self.logger = logger
    }

    public func run() async throws {
        _ = await repeatUntilShutdown(
            "reading the projections' state", logger: self.logger, retryDelay: .seconds(1),
            state: [ProjectionWatch](repeating: ProjectionWatch(), count: self.projections.count)
        ) { watches in
            let states = try await self.catalog.ensureStates(self.projections.map(\.definition))
            var beats: [(index: Int, beat: ProjectionCatalog.Beat)] = []
            var rebuilding = false
            for (index, projection) in self.projections.enumerated() {
                guard let state = states[projection.definition.name] else { continue }
                if let beat = try await projection.follow(state, watch: &watches[index]) { beats.append((index, beat)) }
                rebuilding = rebuilding || state.rebuild != nil || watches[index].held != nil
            }
            try await self.catalog.heartbeats(beats.map(\.beat))
            for (index, _) in beats { watches[index].lastBeat = .now }
            // Four times a second while a rebuild runs (how soon its request to hold still is
            // answered; it waits 10 s for that), once a second otherwise (a rebuild's start is
            // seen within a second, long before it asks): an idle projector costs less.
            return .after(rebuilding ? .milliseconds(250) : .seconds(1))
        }
    }
}

/// What the projection watcher carries from one look to the next, per projection.
public struct ProjectionWatch: Sendable {
    var lastBeat = ContinuousClock.now - .seconds(10)
    /// The rebuild's collection this projector holds still for, if any.
    var held: String?
}

/// Lets batches through to one collection, or holds them (closed until the watcher first looked).
final class ProjectionGate: Sendable {
    struct Target: Sendable, Equatable {
        var collection: String
        var rebuiltThrough: LogCursor?
    }

    private struct Status {
        var target: Target?
        var inFlight = 0
    }

    private let status = Mutex(Status())

    /// Waits until the gate is open; returns where to write. Every `enter` is paired with a `leave`.
    func enter() async throws -> Target {
        while true {
            let target: Target? = self.status.withLock { status in
                guard let target = status.target else { return nil }
                status.inFlight += 1
                return target
            }
            if let target { return target }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func leave() {
        self.status.withLock { $0.inFlight -= 1 }
    }

    func open(_ target: Target) {
        self.status.withLock { $0.target = target }
    }

    /// Closes the gate and returns once no batch is inside.
    func closeAndDrain() async throws {
        self.status.withLock { $0.target = nil }
        while self.status.withLock({ $0.inFlight }) > 0 { try await Task.sleep(for: .milliseconds(10)) }
    }
}

/// Per projection: events applied, documents written (what the document server does for them: a
/// batch writes each document it changed once), lag, each event's time from its append to being
/// applied here (the projections share one consumer group, whose own timings cover them all), and a
/// rebuild's progress (position reached and target).
struct ProjectionMetrics: Sendable {
    let applied: Counter
    let documentsWritten: Counter
    let handledAfter: Timer
    let lagSeconds: Gauge
    let rebuildPosition: Gauge
    let rebuildTarget: Gauge

    init(projection: String) {
        let dimensions = [("projection", projection)]
        self.applied = Counter(label: "orderly_projection_events_applied_total", dimensions: dimensions)
        self.documentsWritten = Counter(label: "orderly_projection_documents_written_total", dimensions: dimensions)
        self.lagSeconds = Gauge(label: "orderly_projection_lag_seconds", dimensions: dimensions)
        self.handledAfter = Timer(label: "orderly_projection_handled_after_append_seconds", dimensions: dimensions)
        self.rebuildPosition = Gauge(label: "orderly_projection_rebuild_position", dimensions: dimensions)
        self.rebuildTarget = Gauge(label: "orderly_projection_rebuild_target_position", dimensions: dimensions)
    }
}
