import Logging
import OrderlyEventStore
import ServiceLifecycle

/// Publishes the event log to Kafka in log order. The checkpoint moves only after every delivery
/// report of a batch succeeded; after any failure the relay starts again from the checkpoint, so a
/// crash or a broker outage loses nothing (consumers may see duplicates, which they drop).
public struct EventRelay: Service {
    public struct Settings: Sendable {
        public var topic: String
        public var checkpointName: String
        public var batchSize: Int
        public var idleDelay: Duration
        public var retryDelay: Duration

        public init(
            topic: String = "order-events", checkpointName: String = "relay", batchSize: Int = 1000,
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
    let settings: Settings
    let logger: Logger

    public init(store: any EventStore, producer: KafkaProducer, settings: Settings = Settings(), logger: Logger) {
        self.store = store
        self.producer = producer
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.relayUntilFailure()
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
        while !Task.isCancelled {
            let moved = try await self.publishBatch(after: &cursor)
            if !moved { try await Task.sleep(for: self.settings.idleDelay) }
        }
    }

    /// Publishes one batch after `cursor` and stores the new checkpoint; false when there was nothing new.
    @discardableResult
    public func publishBatch(after cursor: inout LogCursor) async throws -> Bool {
        let events = try await self.store.readAll(after: cursor, limit: self.settings.batchSize)
        guard let last = events.last else { return false }
        try await self.producer.send(events.map { EventMessageCodec.message(for: $0, topic: self.settings.topic) })
        try await self.store.saveCheckpoint(self.settings.checkpointName, last.cursor)
        cursor = last.cursor
        self.logger.debug("relayed events", metadata: ["count": "\(events.count)", "event.position": "\(last.position)"])
        return true
    }
}
