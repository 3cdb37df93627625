import Foundation
import OrderlyDomain
import OrderlyHandling

/// The dead-letter topic as operators read it: the newest dead letters, decoded from the headers
/// `EventConsumer` writes (`dlq-reason`, `dlq-group`, `dlq-source`) and the relay's own.
public enum DeadLetterTopic {
    /// Up to `limit` newest dead letters (per partition, then the newest `limit` of all), oldest first.
    public static func newest(_ topic: String, limit: Int, configuration: KafkaConfiguration) async throws -> [DeadLetter] {
        try await self.newestRecords(topic, limit: limit, configuration: configuration).map(\.letter)
    }

    /// The same, each with the message as it sits in the topic (what a redrive republishes).
    public static func newestRecords(
        _ topic: String, limit: Int, configuration: KafkaConfiguration
    ) async throws -> [(letter: DeadLetter, record: KafkaRecord)] {
        let records = try await KafkaTopicReader.newest(topic, limit: limit, configuration: configuration)
        return records.suffix(limit).map { (Self.deadLetter($0), $0) }
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

/// Republishes dead letters to the topic they came from, once a fix (an upcaster, a corrected
/// handler) makes them readable. Each goes back with its key, value and event headers, marked for
/// the group that set it aside: the other groups skip it (they handled the event the first time) and
/// that group takes it past its repeat check (`EventConsumer.admit`); its handler's idempotency makes
/// a second redrive of the same letter harmless.
public enum DeadLetterRedrive {
    /// The consumer group a redriven message is for.
    public static let groupHeader = "redrive-group"
    /// `topic/partition/offset` of the dead letter it was made from.
    public static let ofHeader = "redrive-of"

    public enum Refusal: Error, CustomStringConvertible {
        case noSource(partition: Int32, offset: Int64)

        public var description: String {
            switch self {
            case .noSource(let partition, let offset):
                "the dead letter at \(partition)/\(offset) does not say which topic it came from (no dlq-source header)"
            }
        }
    }

    /// The message that puts `record` (read from `deadLetterTopic`) back where it came from.
    public static func message(for letter: DeadLetter, record: KafkaRecord) throws -> KafkaOutgoingMessage {
        guard let source = letter.source, let topic = source.split(separator: "/").first.map(String.init), !topic.isEmpty else {
            throw Refusal.noSource(partition: letter.partition, offset: letter.offset)
        }
        let kept = record.headers.filter { !$0.0.hasPrefix("dlq-") && !$0.0.hasPrefix("redrive-") }
        return KafkaOutgoingMessage(
            topic: topic, key: record.key, value: record.value,
            headers: kept + [
                (Self.groupHeader, Array(letter.group.utf8)), (Self.ofHeader, Array("\(record.topic)/\(record.partition)/\(record.offset)".utf8)),
            ])
    }

    /// Publishes the messages and returns once the broker has every one of them.
    public static func publish(_ messages: [KafkaOutgoingMessage], configuration: KafkaConfiguration) async throws {
        guard !messages.isEmpty else { return }
        let producer = try KafkaProducer(configuration: configuration, createsTopics: false)
        do {
            try await producer.send(messages)
        } catch {
            await producer.shutdown()
            throw error
        }
        await producer.shutdown()
    }
}
