import CRdKafka
import Foundation
import Synchronization

/// A consumer-group member with manual commits: offsets are never stored automatically, so a caller
/// commits only after its effect is durable. Every call that may block runs on the consumer's own
/// serial queue, never on Swift's cooperative pool; librdkafka requires one thread at a time anyway.
public final class KafkaConsumer: Sendable {
    private let handle: KafkaHandle
    private let queue: DispatchQueue
    private let configuration: KafkaConfiguration
    private let groupID: String
    private let topics: [String]
    /// Set when the broker said a subscribed topic does not exist (see `sawATopicMissing`).
    private let topicMissing = Mutex(false)
    private let lifecycle = Mutex(KafkaClientPhase.running)

    /// Running, closing (leaving the group) or closed.
    public var phase: KafkaClientPhase { self.lifecycle.withLock { $0 } }

    /// Throws at once once the consumer is closing or closed (its handle no longer serves polls).
    private func checkRunning(_ what: String) throws {
        let phase = self.phase
        guard phase == .running else {
            throw KafkaError(code: -1, message: "\(what) on a consumer that is \(phase == .closing ? "closing" : "closed")")
        }
    }

    public init(configuration: KafkaConfiguration, groupID: String, topics: [String]) throws {
        self.configuration = configuration
        self.groupID = groupID
        self.topics = topics
        self.handle = try KafkaHandle.make(
            type: RD_KAFKA_CONSUMER, configuration: configuration,
            defaults: [
                "group.id": groupID,
                "enable.auto.commit": "false",
                "enable.auto.offset.store": "false",
                "auto.offset.reset": "earliest",
                "enable.partition.eof": "false",
                // A topic that disappears (a broker that came back empty) and is made again by the
                // relay is seen within seconds, not librdkafka's default of five minutes.
                "topic.metadata.refresh.interval.ms": "5000",
            ]
        )
        self.queue = DispatchQueue(label: "orderly-kafka-consumer-\(groupID)")
        // Serve rebalances and errors through consumer_poll instead of a separate queue.
        rd_kafka_poll_set_consumer(self.handle.pointer)
        guard let list = rd_kafka_topic_partition_list_new(Int32(topics.count)) else {
            throw KafkaError(code: -1, message: "rd_kafka_topic_partition_list_new failed")
        }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics {
            rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA)
        }
        let code = rd_kafka_subscribe(self.handle.pointer, list)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: code.rawValue, message: "subscribe: \(KafkaHandle.describe(code))")
        }
    }

    /// The next message, or nil when none arrived within `timeout`. Transient errors (a broker that is
    /// down, a rebalance) also return nil: librdkafka retries on its own. Fatal errors throw.
    public func poll(timeout: Duration = .milliseconds(100)) async throws -> KafkaRecord? {
        try self.checkRunning("poll")
        let handle = self.handle
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return try await self.waitingCancellably {
            guard let message = rd_kafka_consumer_poll(handle.pointer, milliseconds) else { return nil }
            defer { rd_kafka_message_destroy(message) }
            let code = message.pointee.err
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                try self.noteError(code)
                return nil
            }
            return Self.copy(message)
        }
    }

    /// Up to `max` messages in one trip to the consumer's queue: waits up to `timeout` for the first,
    /// then takes only what has already arrived.
    public func poll(max: Int, timeout: Duration = .milliseconds(100)) async throws -> [KafkaRecord] {
        try self.checkRunning("poll")
        let handle = self.handle
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return try await self.waitingCancellably {
            var records: [KafkaRecord] = []
            while records.count < max, let message = rd_kafka_consumer_poll(handle.pointer, records.isEmpty ? milliseconds : 0) {
                defer { rd_kafka_message_destroy(message) }
                let code = message.pointee.err
                if code == RD_KAFKA_RESP_ERR_NO_ERROR { records.append(Self.copy(message)) } else { try self.noteError(code) }
            }
            return records
        }
    }

    /// Runs a poll on the consumer's queue; cancelling the task (a shutdown) ends the poll's wait at
    /// once (librdkafka's queue yield), so a long poll timeout, which spares an idle process its
    /// wake-ups, costs a shutdown nothing. A poll not waiting yet when the yield comes returns at once.
    private func waitingCancellably<T: Sendable>(_ poll: @escaping @Sendable () throws -> T) async throws -> T {
        let handle = self.handle
        return try await withTaskCancellationHandler {
            try await runBlocking(on: self.queue, poll)
        } onCancel: {
            guard self.phase == .running, let queue = rd_kafka_queue_get_consumer(handle.pointer) else { return }
            rd_kafka_queue_yield(queue)
            rd_kafka_queue_destroy(queue)
        }
    }

    /// An error event from the consumer's queue: fatal ones throw; a subscribed topic that does not
    /// exist is remembered; the rest librdkafka retries on its own.
    private func noteError(_ code: rd_kafka_resp_err_t) throws {
        if code == RD_KAFKA_RESP_ERR__FATAL { throw KafkaError(code: code.rawValue, message: KafkaHandle.describe(code)) }
        if code == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || code == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC {
            self.topicMissing.withLock { $0 = true }
        }
    }

    /// Whether the broker said, since the last call, that a subscribed topic does not exist (a broker
    /// that came back empty before the relay made the topic again): the case in which Tansu may leave
    /// this member without partitions (see `holdsNoPartitionOfATopicWithSome`).
    public func sawATopicMissing() -> Bool {
        self.topicMissing.withLock { seen in
            defer { seen = false }
            return seen
        }
    }

    /// Commits the position after each record (per partition, the highest wins).
    /// With `waiting: false` the commit is sent and not waited for: offsets still only ever move past
    /// records whose effects are durable, and a commit that is lost means those records come again,
    /// which idempotent handlers absorb.
    public func commit(_ records: [KafkaRecord], waiting: Bool = true) async throws {
        try self.checkRunning("commit")
        let offsets = Self.nextOffsets(after: records)
        guard !offsets.isEmpty else { return }
        let handle = self.handle
        try await runBlocking(on: self.queue) { try Self.commit(offsets, on: handle, waiting: waiting) }
    }

    /// Starts a commit and returns at once (librdkafka only queues it): for a consumer on its way
    /// out, where nothing can be awaited and nothing may hang. A failure is left to redelivery.
    public func startCommit(_ records: [KafkaRecord]) {
        let offsets = Self.nextOffsets(after: records)
        guard !offsets.isEmpty else { return }
        try? Self.commit(offsets, on: self.handle, waiting: false)
    }

    /// Per topic and partition, the offset after the last of `records`.
    static func nextOffsets(after records: [KafkaRecord]) -> [String: [Int32: Int64]] {
        var next: [String: [Int32: Int64]] = [:]
        for record in records {
            next[record.topic, default: [:]][record.partition] = max(next[record.topic]?[record.partition] ?? 0, record.offset + 1)
        }
        return next
    }

    private static func commit(_ offsets: [String: [Int32: Int64]], on handle: KafkaHandle, waiting: Bool) throws {
        guard let list = rd_kafka_topic_partition_list_new(Int32(offsets.count)) else {
            throw KafkaError(code: -1, message: "rd_kafka_topic_partition_list_new failed")
        }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (topic, partitions) in offsets {
            for (partition, offset) in partitions {
                rd_kafka_topic_partition_list_add(list, topic, partition)?.pointee.offset = offset
            }
        }
        let code = rd_kafka_commit(handle.pointer, list, waiting ? 0 : 1)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: code.rawValue, message: "commit: \(KafkaHandle.describe(code))", isRetriable: true)
        }
    }

    /// A new member of the same group for the same topics (the old one should be closed).
    public func renewed() throws -> KafkaConsumer {
        try KafkaConsumer(configuration: self.configuration, groupID: self.groupID, topics: self.topics)
    }

    /// Whether this member holds no partition while a subscribed topic has some (nil: the broker
    /// did not answer). Tansu, after it restarted empty, can leave a member in that state for good:
    /// the member joined while the topic was gone and got nothing; when the topic came back it
    /// joined again with the same member id and subscription, and Tansu answered with the stored
    /// (empty) assignment instead of a new one. A new member gets a fresh assignment.
    public func holdsNoPartitionOfATopicWithSome() async -> Bool? {
        let handle = self.handle
        let topics = self.topics
        return try? await runBlocking(on: self.queue) { () -> Bool in
            var assigned: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            guard rd_kafka_assignment(handle.pointer, &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR, let assigned else {
                throw KafkaError(code: -1, message: "rd_kafka_assignment failed")
            }
            defer { rd_kafka_topic_partition_list_destroy(assigned) }
            guard assigned.pointee.cnt == 0 else { return false }
            return try topics.contains { try (handle.partitionCount(of: $0, timeoutMilliseconds: 2000) ?? 0) > 0 }
        }
    }

    /// Leaves the group cleanly so the partitions move to other members at once. Waits at most
    /// `limit`: with the broker gone librdkafka's close can block far longer, and a member that does
    /// not leave is only taken out of the group after its session timeout (its uncommitted records
    /// come again to the next member, which handlers absorb).
    public func close(within limit: Duration = .seconds(3)) async {
        let starting = self.lifecycle.withLock { phase in
            defer { if phase == .running { phase = .closing } }
            return phase == .running
        }
        guard starting else { return }
        let closed = DispatchSemaphore(value: 0)
        self.queue.async { [self] in
            rd_kafka_consumer_close(self.handle.pointer)
            self.lifecycle.withLock { $0 = .closed }
            closed.signal()
        }
        let milliseconds = Int(limit.components.seconds * 1000 + limit.components.attoseconds / 1_000_000_000_000_000)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                _ = closed.wait(timeout: .now() + .milliseconds(milliseconds))
                done.resume()
            }
        }
    }

    static func copy(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaRecord {
        let raw = message.pointee
        let topic = raw.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let value = raw.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: raw.len)) } ?? []
        let key = raw.key.map { Array(UnsafeRawBufferPointer(start: $0, count: raw.key_len)) } ?? []
        var headers: [(String, [UInt8])] = []
        var list: OpaquePointer?
        if rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var bytes: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &bytes, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                if let name {
                    let content = bytes.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                    headers.append((String(cString: name), content))
                }
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        return KafkaRecord(
            topic: topic, partition: raw.partition, offset: raw.offset, key: key, value: value, headers: headers,
            timestampMs: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp)
    }
}

extension KafkaConsumer {
    /// The group's messages as an async sequence. Nothing is committed for the caller: commit with
    /// `commit(_:)` once each record's effect is durable. Ends when the task is cancelled.
    public func records(pollTimeout: Duration = .milliseconds(100)) -> Records {
        Records(consumer: self, pollTimeout: pollTimeout)
    }

    public struct Records: AsyncSequence, Sendable {
        public typealias Element = KafkaRecord
        let consumer: KafkaConsumer
        let pollTimeout: Duration

        public struct AsyncIterator: AsyncIteratorProtocol {
            let consumer: KafkaConsumer
            let pollTimeout: Duration

            public mutating func next() async throws -> KafkaRecord? {
                while !Task.isCancelled {
                    if let record = try await self.consumer.poll(timeout: self.pollTimeout) { return record }
                }
                return nil
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(consumer: self.consumer, pollTimeout: self.pollTimeout)
        }
    }
}
