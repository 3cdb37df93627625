import CRdKafka
import Foundation

/// Topic administration through librdkafka's admin API.
public enum KafkaAdmin {
    /// Creates the topic with `partitions` partitions; an existing topic is left as it is.
    public static func ensureTopic(
        _ name: String, partitions: Int32, replicationFactor: Int32 = 1, configuration: KafkaConfiguration,
        timeout: Duration = .seconds(15)
    ) async throws {
        let handle = try KafkaHandle.make(type: RD_KAFKA_PRODUCER, configuration: configuration, defaults: [:])
        let milliseconds = Int32(timeout.components.seconds * 1000)
        try await runBlocking(on: DispatchQueue.global()) {
            var errorText = [CChar](repeating: 0, count: 512)
            guard let topic = rd_kafka_NewTopic_new(name, partitions, replicationFactor, &errorText, errorText.count) else {
                throw KafkaError(code: -1, message: "NewTopic \(name): \(KafkaHandle.text(errorText))")
            }
            defer { rd_kafka_NewTopic_destroy(topic) }
            guard let queue = rd_kafka_queue_new(handle.pointer) else {
                throw KafkaError(code: -1, message: "rd_kafka_queue_new failed")
            }
            defer { rd_kafka_queue_destroy(queue) }
            var topics: [OpaquePointer?] = [topic]
            rd_kafka_CreateTopics(handle.pointer, &topics, 1, nil, queue)
            guard let event = rd_kafka_queue_poll(queue, milliseconds) else {
                throw KafkaError(code: -1, message: "no answer to CreateTopics \(name) within \(timeout)", isRetriable: true)
            }
            defer { rd_kafka_event_destroy(event) }
            let requestError = rd_kafka_event_error(event)
            guard requestError == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(
                    code: requestError.rawValue, message: "CreateTopics \(name): \(KafkaHandle.describe(requestError))",
                    isRetriable: true)
            }
            guard let result = rd_kafka_event_CreateTopics_result(event) else {
                throw KafkaError(code: -1, message: "CreateTopics \(name): unexpected event")
            }
            var count = 0
            guard let results = rd_kafka_CreateTopics_result_topics(result, &count), count > 0, let first = results[0] else {
                throw KafkaError(code: -1, message: "CreateTopics \(name): empty result")
            }
            let code = rd_kafka_topic_result_error(first)
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR || code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS else {
                throw KafkaError(code: code.rawValue, message: "CreateTopics \(name): \(KafkaHandle.describe(code))")
            }
        }
    }
}
