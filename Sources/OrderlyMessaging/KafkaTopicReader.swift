import CRdKafka
import Foundation

/// Reads the newest messages of a topic without joining a consumer group: partitions are assigned
/// directly from their watermarks, nothing is committed and no group is left behind in the broker.
/// For looking (the dead letters an operator lists), not for consuming.
public enum KafkaTopicReader {
    /// Up to `limit` of the newest messages of each partition of `topic`, oldest first by broker
    /// time; none when the topic does not exist. Gives up after `timeout` with what it has read.
    public static func newest(
        _ topic: String, limit: Int, configuration: KafkaConfiguration, timeout: Duration = .seconds(5)
    ) async throws -> [KafkaRecord] {
        let queue = DispatchQueue(label: "orderly-kafka-reader")
        return try await runBlocking(on: queue) {
            let handle = try KafkaHandle.make(
                type: RD_KAFKA_CONSUMER, configuration: configuration,
                defaults: [
                    // librdkafka's consumer wants a group id even to assign; with assign and no
                    // commit it never joins or creates the group on the broker.
                    "group.id": "orderly-reader-\(UUID().uuidString.lowercased())",
                    "enable.auto.commit": "false", "enable.auto.offset.store": "false", "enable.partition.eof": "false",
                ])
            let waitMs = Int32(timeout.components.seconds * 1000)
            guard let marks = try handle.watermarks(of: topic, timeoutMilliseconds: waitMs) else { return [] }
            var ends: [Int32: Int64] = [:]
            guard let list = rd_kafka_topic_partition_list_new(Int32(marks.count)) else {
                throw KafkaError(code: -1, message: "rd_kafka_topic_partition_list_new failed")
            }
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for (partition, mark) in marks where mark.high > mark.low {
                let element = rd_kafka_topic_partition_list_add(list, topic, partition)
                element?.pointee.offset = max(mark.low, mark.high - Int64(max(limit, 1)))
                ends[partition] = mark.high
            }
            if ends.isEmpty { return [] }
            rd_kafka_poll_set_consumer(handle.pointer)
            let code = rd_kafka_assign(handle.pointer, list)
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(code: code.rawValue, message: "assign \(topic): \(KafkaHandle.describe(code))", isRetriable: true)
            }
            defer { rd_kafka_assign(handle.pointer, nil) }
            var records: [KafkaRecord] = []
            let deadline = ContinuousClock.now + timeout
            while !ends.isEmpty, ContinuousClock.now < deadline {
                guard let message = rd_kafka_consumer_poll(handle.pointer, 100) else { continue }
                defer { rd_kafka_message_destroy(message) }
                guard message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
                let record = KafkaConsumer.copy(message)
                records.append(record)
                if let end = ends[record.partition], record.offset >= end - 1 { ends[record.partition] = nil }
            }
            return records.sorted { ($0.timestampMs ?? 0, $0.partition, $0.offset) < ($1.timestampMs ?? 0, $1.partition, $1.offset) }
        }
    }
}
