import Foundation
import OrderlyDomain
import OrderlyHandling

/// The dead-letter topic as operators read it: the newest dead letters, decoded from the headers
/// `EventConsumer` writes (`dlq-reason`, `dlq-group`, `dlq-source`) and the relay's own.
public enum DeadLetterTopic {
    /// Up to `limit` newest dead letters (per partition, then the newest `limit` of all), oldest first.
    public static func newest(_ topic: String, limit: Int, configuration: KafkaConfiguration) async throws -> [DeadLetter] {
        let records = try await KafkaTopicReader.newest(topic, limit: limit, configuration: configuration)
        return records.suffix(limit).map(Self.deadLetter)
    }

    static func deadLetter(_ record: KafkaRecord) -> DeadLetter {
        DeadLetter(
            partition: record.partition, offset: record.offset,
            deadLetteredAt: record.timestampMs.map { UTCTime.iso8601(Date(timeIntervalSince1970: Double($0) / 1000)) },
            reason: record.header("dlq-reason") ?? "unknown", group: record.header("dlq-group") ?? "unknown", source: record.header("dlq-source"),
            eventId: record.header("event-id"), eventType: record.header("event-type"), streamId: record.header("stream-id"),
            position: record.header("position").flatMap { Int64($0) }, value: String(decoding: record.value, as: UTF8.self))
    }
}
