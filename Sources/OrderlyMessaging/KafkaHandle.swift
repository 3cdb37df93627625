import CRdKafka
import Foundation
import Logging

/// librdkafka's own log lines (broker connections failing, rebalances, …) go through swift-log, at
/// their syslog level, under `orderly.librdkafka`: in the process's JSON format, not raw on stderr.
private let librdkafkaLogger = Logger(label: "orderly.librdkafka")

private func logFromLibrdkafka(_ handle: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?, _ text: UnsafePointer<CChar>?) {
    let level: Logger.Level =
        switch level {
        case ...2: .critical
        case 3: .error
        case 4: .warning
        case 5: .notice
        case 6: .info
        default: .debug
        }
    librdkafkaLogger.log(
        level: level, "\(text.map { String(cString: $0) } ?? "")",
        metadata: [
            "kafka.facility": "\(facility.map { String(cString: $0) } ?? "")",
            "kafka.client": "\(handle.flatMap { rd_kafka_name($0) }.map { String(cString: $0) } ?? "")",
        ])
}

/// Owns one `rd_kafka_t`. librdkafka handles are thread-safe; this box only guarantees the handle is
/// destroyed exactly once, after its last user.
final class KafkaHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    /// Whatever the handle's callbacks point at (through the conf's opaque): kept alive until the handle is destroyed.
    private let callbackContext: (any Sendable & AnyObject)?

    /// Builds the handle. `configure` may set callbacks on the conf before the handle takes it.
    static func make(
        type: rd_kafka_type_t, configuration: KafkaConfiguration, defaults: [String: String],
        callbackContext: (any Sendable & AnyObject)? = nil, configure: (OpaquePointer) -> Void = { _ in }
    ) throws -> KafkaHandle {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(code: -1, message: "rd_kafka_conf_new failed") }
        var settings = defaults
        settings["bootstrap.servers"] = configuration.brokers
        if type == RD_KAFKA_CONSUMER {
            for (key, value) in configuration.consumerProperties { settings[key] = value }
        }
        if type == RD_KAFKA_PRODUCER {
            for (key, value) in configuration.producerProperties { settings[key] = value }
        }
        if let file = configuration.propertyFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(code: -1, message: "ORDERLY_KAFKA_CONFIG_FILE \(file) cannot be read")
            }
            do {
                for (key, value) in try KafkaConfiguration.parseProperties(String(decoding: data, as: UTF8.self), file: file) {
                    settings[key] = value
                }
            } catch {
                rd_kafka_conf_destroy(conf)
                throw error
            }
        }
        for (key, value) in configuration.properties { settings[key] = value }
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) {
            if rd_kafka_conf_set(conf, key, value, &errorText, errorText.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                // The property's name always; its value only when it is no secret (and librdkafka's
                // own text may quote the value, so then it is left out too).
                let shown = KafkaConfiguration.isSecret(key) ? "\(key) (value not shown)" : "\(key)=\(value): \(Self.text(errorText))"
                throw KafkaError(code: -1, message: "librdkafka property \(shown)")
            }
        }
        rd_kafka_conf_set_log_cb(conf, logFromLibrdkafka)
        configure(conf)
        // On success rd_kafka_new owns the conf; on failure it is still ours.
        guard let handle = rd_kafka_new(type, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(code: -1, message: "rd_kafka_new failed: \(Self.text(errorText))")
        }
        return KafkaHandle(pointer: handle, callbackContext: callbackContext)
    }

    private init(pointer: OpaquePointer, callbackContext: (any Sendable & AnyObject)?) {
        self.pointer = pointer
        self.callbackContext = callbackContext
    }

    /// `rd_kafka_destroy` waits for librdkafka's threads (and for a consumer never closed, leaves
    /// its group): it runs on a queue of its own, never on the thread that let the handle go (an
    /// event loop, maybe). The callbacks' context lives until it is done.
    deinit {
        let doomed = DoomedHandle(pointer: self.pointer, callbackContext: self.callbackContext)
        DispatchQueue.global().async { doomed.destroy() }
    }

    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func describe(_ code: rd_kafka_resp_err_t) -> String {
        String(cString: rd_kafka_err2str(code))
    }

    /// Asks the cluster for its metadata: proof that a broker answers.
    func ping(timeoutMilliseconds: Int32) throws {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let code = rd_kafka_metadata(self.pointer, 0, nil, &metadata, timeoutMilliseconds)
        if let metadata { rd_kafka_metadata_destroy(metadata) }
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: code.rawValue, message: Self.describe(code), isRetriable: true)
        }
    }
}

/// A handle on its way out, with what its callbacks point at.
private struct DoomedHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    let callbackContext: (any Sendable & AnyObject)?

    func destroy() {
        rd_kafka_destroy(self.pointer)
        withExtendedLifetime(self.callbackContext) {}
    }
}

extension KafkaHandle {
    /// How many partitions `topic` has, or nil when the broker says it has no such topic.
    func partitionCount(of topic: String, timeoutMilliseconds: Int32) throws -> Int32? {
        try self.layout(of: topic, timeoutMilliseconds: timeoutMilliseconds)?.partitions
    }

    /// How many partitions `topic` has and how many copies of each (its first partition's replica
    /// count), or nil when the broker says it has no such topic.
    func layout(of topic: String, timeoutMilliseconds: Int32) throws -> (partitions: Int32, replicas: Int32)? {
        guard let topicHandle = rd_kafka_topic_new(self.pointer, topic, nil) else {
            throw KafkaError(code: -1, message: "rd_kafka_topic_new \(topic) failed")
        }
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let code = rd_kafka_metadata(self.pointer, 0, topicHandle, &metadata, timeoutMilliseconds)
        defer { if let metadata { rd_kafka_metadata_destroy(metadata) } }
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata, metadata.pointee.topic_cnt > 0 else {
            throw KafkaError(code: code.rawValue, message: "metadata of \(topic): \(Self.describe(code))", isRetriable: true)
        }
        let answer = metadata.pointee.topics[0]
        if answer.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART { return nil }
        guard answer.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: answer.err.rawValue, message: "metadata of \(topic): \(Self.describe(answer.err))", isRetriable: true)
        }
        return (answer.partition_cnt, answer.partition_cnt > 0 ? answer.partitions[0].replica_cnt : 0)
    }

    /// Each partition's high watermark (the offset the next message will get), or nil when the
    /// broker says it has no such topic. Blocks: one round trip per partition.
    func highWatermarks(of topic: String, timeoutMilliseconds: Int32) throws -> [Int32: Int64]? {
        try self.watermarks(of: topic, timeoutMilliseconds: timeoutMilliseconds)?.mapValues(\.high)
    }

    /// Each partition's low (oldest offset still held) and high watermark, or nil when the broker
    /// says it has no such topic. Blocks: one round trip per partition.
    func watermarks(of topic: String, timeoutMilliseconds: Int32) throws -> [Int32: (low: Int64, high: Int64)]? {
        guard let partitions = try self.partitionCount(of: topic, timeoutMilliseconds: timeoutMilliseconds) else { return nil }
        var marks: [Int32: (low: Int64, high: Int64)] = [:]
        for partition in 0..<partitions {
            var low: Int64 = 0
            var high: Int64 = 0
            let code = rd_kafka_query_watermark_offsets(self.pointer, topic, partition, &low, &high, timeoutMilliseconds)
            if code == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART { return nil }
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(code: code.rawValue, message: "watermarks of \(topic)/\(partition): \(Self.describe(code))", isRetriable: true)
            }
            marks[partition] = (low, high)
        }
        return marks
    }

    /// Each partition's high watermark as a fetch answers it, at least `queried` (a consumer handle
    /// made with `enable.partition.eof`, never subscribed). Tansu 0.6.0 answers the offset query
    /// (`highWatermarks`) with its last batch's first offset + 1 (21 messages, the last 20 in one
    /// batch, read as 2; 2026-12-05), while its fetches carry the true end: so the handle is assigned
    /// each partition at the last offset the query gave and reads to the partition's end, whose
    /// offset the end-of-partition event gives. A partition that did not reach its end within
    /// `timeoutMilliseconds` keeps its queried mark. Blocks; messages read are dropped.
    func fetchedHighWatermarks(of topic: String, queried: [Int32: Int64], timeoutMilliseconds: Int32) throws -> [Int32: Int64] {
        guard !queried.isEmpty else { return queried }
        guard let list = rd_kafka_topic_partition_list_new(Int32(queried.count)) else {
            throw KafkaError(code: -1, message: "rd_kafka_topic_partition_list_new failed")
        }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, high) in queried {
            rd_kafka_topic_partition_list_add(list, topic, partition)?.pointee.offset = max(0, high - 1)
        }
        let assigned = rd_kafka_assign(self.pointer, list)
        guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: assigned.rawValue, message: "assigning \(topic) to read its watermarks: \(Self.describe(assigned))")
        }
        defer { rd_kafka_assign(self.pointer, nil) }
        var marks = queried
        var ended = Set<Int32>()
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutMilliseconds))
        while ended.count < queried.count, ContinuousClock.now < deadline {
            guard let message = rd_kafka_consumer_poll(self.pointer, 20) else { continue }
            defer { rd_kafka_message_destroy(message) }
            let partition = message.pointee.partition
            guard message.pointee.err == RD_KAFKA_RESP_ERR__PARTITION_EOF, let high = queried[partition] else { continue }
            marks[partition] = max(high, message.pointee.offset)
            ended.insert(partition)
        }
        return marks
    }

    /// The offsets the handle's group has committed in `topic`'s partitions (absent: none committed).
    func committedOffsets(of topic: String, partitions: [Int32], timeoutMilliseconds: Int32) throws -> [Int32: Int64] {
        guard let list = rd_kafka_topic_partition_list_new(Int32(partitions.count)) else {
            throw KafkaError(code: -1, message: "rd_kafka_topic_partition_list_new failed")
        }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions { rd_kafka_topic_partition_list_add(list, topic, partition) }
        let code = rd_kafka_committed(self.pointer, list, timeoutMilliseconds)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: code.rawValue, message: "committed offsets in \(topic): \(Self.describe(code))", isRetriable: true)
        }
        var offsets: [Int32: Int64] = [:]
        for index in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[index]
            if element.err == RD_KAFKA_RESP_ERR_NO_ERROR && element.offset >= 0 { offsets[element.partition] = element.offset }
        }
        return offsets
    }
}

/// Runs blocking librdkafka calls off Swift's cooperative pool, on a queue of their own.
func runBlocking<T: Sendable>(on queue: DispatchQueue, _ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        queue.async {
            continuation.resume(with: Result { try work() })
        }
    }
}
