import Logging
import OrderlyEventStore
import OrderlyMessaging
import ServiceLifecycle

/// Consumes the event topic in a consumer group and applies each event to the read models. Offsets
/// are committed only after MongoDB acknowledged the writes, and each write is version-guarded, so a
/// crash between the two replays events harmlessly.
public struct Projector: Service {
    let consumer: KafkaConsumer
    let client: MongoClient
    let logger: Logger
    let maxBatch: Int

    public init(consumer: KafkaConsumer, client: MongoClient, logger: Logger, maxBatch: Int = 500) {
        self.consumer = consumer
        self.client = client
        self.logger = logger
        self.maxBatch = maxBatch
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                var records: [KafkaRecord] = []
                while records.count < self.maxBatch, let record = try await self.consumer.poll(timeout: .milliseconds(records.isEmpty ? 100 : 0)) {
                    records.append(record)
                }
                guard !records.isEmpty else { continue }
                try await self.applyWithRetry(records)
                try await self.consumer.commit(records)
            }
        }
        await self.consumer.close()
    }

    private func applyWithRetry(_ records: [KafkaRecord]) async throws {
        var delay = Duration.milliseconds(100)
        while true {
            do {
                try await self.apply(records)
                return
            } catch let error as MongoError {
                // The server is down or busy: nothing is committed, so retrying is safe.
                self.logger.warning("projection write failed; retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    func apply(_ records: [KafkaRecord]) async throws {
        let orders = self.client.collection(OrdersProjection.collection)
        for record in records {
            let event: RecordedEvent
            let write: ProjectionWrite?
            do {
                event = try EventMessageCodec.event(from: record)
                write = try OrdersProjection.write(for: event)
            } catch {
                // A message we cannot read can never succeed; log it loudly and move on.
                self.logger.error(
                    "unreadable event skipped",
                    metadata: ["error": "\(error)", "kafka.partition": "\(record.partition)", "kafka.offset": "\(record.offset)"])
                continue
            }
            guard let write else { continue }
            let outcome = try await orders.upsert(filter: write.filter, update: write.update)
            self.logger.debug(
                "projected event",
                metadata: [
                    "order.id": "\(event.metadata.correlationId ?? "")", "event.type": "\(event.type)",
                    "event.position": "\(event.position)", "outcome": "\(outcome)",
                ])
        }
    }
}
