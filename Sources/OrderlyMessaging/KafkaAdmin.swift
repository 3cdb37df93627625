import CRdKafka
import Foundation

/// Topic administration through librdkafka's admin API.
public enum KafkaAdmin {
    /// Creates the topic with `partitions` partitions, `replicationFactor` copies of each and the
    /// topic settings in `topicConfig` (e.g. `min.insync.replicas`); an existing topic is left as it is.
    public static func ensureTopic(
        _ name: String, partitions: Int32, replicationFactor: Int32 = 1, topicConfig: [String: String] = [:],
        configuration: KafkaConfiguration, timeout: Duration = .seconds(15)
    ) async throws {
        let handle = try KafkaHandle.make(type: RD_KAFKA_PRODUCER, configuration: configuration, defaults: [:])
        let milliseconds = Int32(timeout.components.seconds * 1000)
        try await runBlocking(on: DispatchQueue.global()) {
            var errorText = [CChar](repeating: 0, count: 512)
            guard let topic = rd_kafka_NewTopic_new(name, partitions, replicationFactor, &errorText, errorText.count) else {
                throw KafkaError(code: -1, message: "NewTopic \(name): \(KafkaHandle.text(errorText))")
            }
            defer { rd_kafka_NewTopic_destroy(topic) }
            for (key, value) in topicConfig.sorted(by: { $0.key < $1.key }) {
                let code = rd_kafka_NewTopic_set_config(topic, key, value)
                guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError(code: code.rawValue, message: "topic setting \(key)=\(value): \(KafkaHandle.describe(code))")
                }
            }
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
                let detail = rd_kafka_topic_result_error_string(first).map { String(cString: $0) } ?? KafkaHandle.describe(code)
                throw KafkaError(code: code.rawValue, message: "CreateTopics \(name) (replication factor \(replicationFactor)): \(detail)")
            }
        }
    }

    /// A topic as the cluster describes it: partitions, copies of each, and its settings.
    public struct TopicDescription: Sendable, Equatable {
        public var partitions: Int32
        public var replicationFactor: Int32
        public var config: [String: String]
    }

    /// Describes `name`; nil when the cluster has no such topic.
    public static func describeTopic(
        _ name: String, configuration: KafkaConfiguration, timeout: Duration = .seconds(10)
    ) async throws -> TopicDescription? {
        // Asking about a topic must not make it.
        let handle = try KafkaHandle.make(type: RD_KAFKA_PRODUCER, configuration: configuration, defaults: ["allow.auto.create.topics": "false"])
        let milliseconds = Int32(timeout.components.seconds * 1000)
        return try await runBlocking(on: DispatchQueue.global()) {
            guard let layout = try handle.layout(of: name, timeoutMilliseconds: milliseconds) else { return nil }
            return TopicDescription(
                partitions: layout.partitions, replicationFactor: layout.replicas,
                config: try Self.topicConfig(name, handle: handle, milliseconds: milliseconds))
        }
    }

    /// The topic's settings (DescribeConfigs), name to value.
    static func topicConfig(_ name: String, handle: KafkaHandle, milliseconds: Int32) throws -> [String: String] {
        guard let resource = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name) else {
            throw KafkaError(code: -1, message: "rd_kafka_ConfigResource_new failed")
        }
        defer { rd_kafka_ConfigResource_destroy(resource) }
        guard let queue = rd_kafka_queue_new(handle.pointer) else { throw KafkaError(code: -1, message: "rd_kafka_queue_new failed") }
        defer { rd_kafka_queue_destroy(queue) }
        var resources: [OpaquePointer?] = [resource]
        rd_kafka_DescribeConfigs(handle.pointer, &resources, 1, nil, queue)
        guard let event = rd_kafka_queue_poll(queue, milliseconds) else {
            throw KafkaError(code: -1, message: "no answer to DescribeConfigs \(name)", isRetriable: true)
        }
        defer { rd_kafka_event_destroy(event) }
        let requestError = rd_kafka_event_error(event)
        guard requestError == RD_KAFKA_RESP_ERR_NO_ERROR, let result = rd_kafka_event_DescribeConfigs_result(event) else {
            throw KafkaError(code: requestError.rawValue, message: "DescribeConfigs \(name): \(KafkaHandle.describe(requestError))")
        }
        var count = 0
        guard let described = rd_kafka_DescribeConfigs_result_resources(result, &count), count > 0, let first = described[0] else {
            return [:]
        }
        var entryCount = 0
        guard let entries = rd_kafka_ConfigResource_configs(first, &entryCount) else { return [:] }
        var config: [String: String] = [:]
        for index in 0..<entryCount {
            guard let entry = entries[index], let entryName = rd_kafka_ConfigEntry_name(entry) else { continue }
            config[String(cString: entryName)] = rd_kafka_ConfigEntry_value(entry).map { String(cString: $0) }
        }
        return config
    }
}
