import Foundation
import Logging
import Metrics
import OrderlyEventStore
import ServiceLifecycle

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

        public init(
            topic: String = "order-events", checkpointName: String = "relay", batchSize: Int = 5000,
            idleDelay: Duration = .milliseconds(20), retryDelay: Duration = .seconds(1)
        ) {
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
        var cursor = try await self.store.loadCheckpoint(self.settings.checkpointName)
        self.logger.info("relay starting", metadata: ["checkpoint": "\(cursor)", "topic": "\(self.settings.topic)"])
        var lastLagCheck = ContinuousClock.now - .seconds(10)
        while !Task.isCancelled {
            let moved = try await self.publishBatch(after: &cursor) > 0
            if ContinuousClock.now - lastLagCheck >= .seconds(1) {
                lastLagCheck = ContinuousClock.now
                let head = try await self.store.latestPosition()
                self.metrics.lagPositions.record(max(0, head - cursor.position))
                if !moved { self.metrics.lagSeconds.record(0) }
            }
            if !moved { try await Task.sleep(for: self.settings.idleDelay) }
        }
    }

    /// Publishes one batch after `cursor` and stores the new checkpoint; returns how many events it published.
    @discardableResult
    public func publishBatch(after cursor: inout LogCursor) async throws -> Int {
        let events = try await self.store.readAll(after: cursor, limit: self.settings.batchSize)
        guard let last = events.last else { return 0 }
        try await self.producer.send(events.map { EventMessageCodec.message(for: $0, topic: self.settings.topic) })
        try await self.store.saveCheckpoint(self.settings.checkpointName, last.cursor)
        cursor = last.cursor
        self.metrics.published.increment(by: events.count)
        self.metrics.lagSeconds.record(max(0, Date().timeIntervalSince(last.recordedAt)))
        self.logger.debug("relayed events", metadata: ["count": "\(events.count)", "event.position": "\(last.position)"])
        return events.count
    }
}

/// Events published, and how far the relay trails the log (in positions and in seconds).
struct RelayMetrics: Sendable {
    let published = Counter(label: "orderly_relay_events_published_total")
    let lagPositions = Gauge(label: "orderly_relay_lag_positions")
    let lagSeconds = Gauge(label: "orderly_relay_lag_seconds")
}
