import Foundation
import Logging
import Metrics
import OrderlyEventStore
import ServiceLifecycle
import Synchronization

/// Publishes the event log to Kafka in log order. The checkpoint moves only after every delivery
/// report of a batch succeeded; after any failure the relay starts again from the checkpoint, so a
/// crash or a broker outage loses nothing (consumers may see duplicates, which they drop). Only the
/// holder of the leader lock relays; other instances stand by and take over when it dies.
public struct EventRelay: Service {
    public struct Settings: Sendable {
        public var topic: String
        public var checkpointName: String
        public var batchSize: Int
        public var idleDelay: Duration
        public var retryDelay: Duration
        /// Which events to publish: everything for the live relay; a replay for a new consumer group
        /// publishes only from a position on.
        public var filter: EventFilter

        public init(
            topic: String = "order-events", checkpointName: String = "relay", batchSize: Int = 5000,
            idleDelay: Duration = .milliseconds(20), retryDelay: Duration = .seconds(1), filter: EventFilter = .all
        ) {
            self.filter = filter
            self.topic = topic
            self.checkpointName = checkpointName
            self.batchSize = batchSize
            self.idleDelay = idleDelay
            self.retryDelay = retryDelay
        }
    }

    let store: any EventStore
    let producer: KafkaProducer
    let leaderLock: any LeaderLock
    let settings: Settings
    let logger: Logger
    let metrics = RelayMetrics()

    public init(
        store: any EventStore, producer: KafkaProducer, leaderLock: any LeaderLock = SoleLeader(), settings: Settings = Settings(),
        logger: Logger
    ) {
        self.store = store
        self.producer = producer
        self.leaderLock = leaderLock
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.leaderLock.whileLeader { try await self.relayUntilFailure() }
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("relay failed; restarting from the checkpoint", metadata: ["error": "\(error)"])
                    try await Task.sleep(for: self.settings.retryDelay)
                }
            }
        }
        await self.producer.shutdown()
    }

    private func relayUntilFailure() async throws {
        let cursor = try await self.store.loadCheckpoint(self.settings.checkpointName)
        self.logger.info("relay starting", metadata: ["checkpoint": "\(cursor)", "topic": "\(self.settings.topic)"])
        try await self.publish(from: cursor, stoppingAfter: nil)
    }

    /// Publishes from the checkpoint on until it has caught up with the log, under the leader lock,
    /// then returns how many events went out (a replay for a new consumer group). Run again, it
    /// resumes from its checkpoint.
    public func catchUp() async throws -> Int {
        let published = Mutex(0)
        try await self.leaderLock.whileLeader {
            let cursor = try await self.store.loadCheckpoint(self.settings.checkpointName)
            self.logger.info("catching up", metadata: ["checkpoint": "\(cursor)", "topic": "\(self.settings.topic)"])
            let count = try await self.publish(from: cursor, stoppingAfter: nil, untilCaughtUp: true)
            published.withLock { $0 = count }
        }
        await self.producer.shutdown()
        return published.withLock { $0 }
    }

    /// Publishes the log from `cursor` on, batch after batch, until cancelled (or, given a count, once
    /// at least that many events went out; or, if asked, once a read finds nothing new); returns how
    /// many it published. The next batch is read while the current one waits for its delivery
    /// reports; the checkpoint still moves only after them.
    @discardableResult
    public func publish(from start: LogCursor, stoppingAfter count: Int?, untilCaughtUp: Bool = false) async throws -> Int {
        let store = self.store
        let limit = self.settings.batchSize
        let filter = self.settings.filter
        var cursor = start
        var published = 0
        var prefetch: Task<[RecordedEvent], any Error>?
        defer { prefetch?.cancel() }
        var lastLagCheck = ContinuousClock.now - .seconds(10)
        while !Task.isCancelled {
            if let count, published >= count { break }
            let events: [RecordedEvent]
            if let prefetched = prefetch {
                events = try await prefetched.value
            } else {
                events = try await store.readAll(after: cursor, limit: limit, matching: filter)
            }
            prefetch = nil
            if let last = events.last {
                let next = last.cursor
                prefetch = Task { try await store.readAll(after: next, limit: limit, matching: filter) }
                try await self.send(events)
                cursor = next
                published += events.count
            }
            if ContinuousClock.now - lastLagCheck >= .seconds(1) {
                lastLagCheck = ContinuousClock.now
                let head = try await store.latestPosition()
                self.metrics.lagPositions.record(max(0, head - cursor.position))
                if events.isEmpty { self.metrics.lagSeconds.record(0) }
            }
            if events.isEmpty {
                if untilCaughtUp { break }
                try await Task.sleep(for: self.settings.idleDelay)
            }
        }
        return published
    }

    /// Publishes `events`, waits for every delivery report, then stores the checkpoint after the last.
    private func send(_ events: [RecordedEvent]) async throws {
        guard let last = events.last else { return }
        try await self.producer.send(events.map { EventMessageCodec.message(for: $0, topic: self.settings.topic) })
        try await self.store.saveCheckpoint(self.settings.checkpointName, last.cursor)
        self.metrics.published.increment(by: events.count)
        self.metrics.lagSeconds.record(max(0, Date().timeIntervalSince(last.recordedAt)))
        self.logger.debug("relayed events", metadata: ["count": "\(events.count)", "event.position": "\(last.position)"])
    }

}

/// Events published, and how far the relay trails the log (in positions and in seconds).
struct RelayMetrics: Sendable {
    let published = Counter(label: "orderly_relay_events_published_total")
    let lagPositions = Gauge(label: "orderly_relay_lag_positions")
    let lagSeconds = Gauge(label: "orderly_relay_lag_seconds")
}
