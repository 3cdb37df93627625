import Foundation
import OrderlyMessaging
import OrderlyProcesses
import Testing

/// The librdkafka wrapper against the local broker.
@Suite struct KafkaTests {
    let configuration = TestServers.settings.kafka

    func messages(_ count: Int, topic: String) -> [KafkaOutgoingMessage] {
        (0..<count).map { index in
            KafkaOutgoingMessage(
                topic: topic, key: Array("order-\(index % 7)".utf8), value: Array("value-\(index)".utf8),
                headers: [("event-id", Array("id-\(index)".utf8)), ("empty", [])])
        }
    }

    /// Polls until `count` records arrived (or a minute passed).
    func consume(_ consumer: KafkaConsumer, count: Int) async throws -> [KafkaRecord] {
        var records: [KafkaRecord] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while records.count < count, ContinuousClock.now < deadline {
            if let record = try await consumer.poll(timeout: .milliseconds(200)) { records.append(record) }
        }
        return records
    }

    /// Tansu answers the offset query with its last batch's first offset + 1, so a group that has
    /// read two of 21 messages (the last 20 sent in one batch) looked caught up to the saga deadline's
    /// watch, which then counted while a whole republished log was still unread. The watch reads the
    /// true end from a fetch: behind at 2 of 21, caught up at 21.
    @Test func theGroupWatchSeesAGroupBehindTheLastBatchOfAPartition() async throws {
        let topic = TestServers.uniqueName("kafka_watch")
        try await KafkaAdmin.ensureTopic(topic, partitions: 1, configuration: self.configuration)
        let producer = try KafkaProducer(configuration: self.configuration)
        try await producer.send(self.messages(1, topic: topic))
        try await producer.send(self.messages(20, topic: topic))
        await producer.shutdown()
        let group = TestServers.uniqueName("watched")
        let consumer = try KafkaConsumer(configuration: self.configuration, groupID: group, topics: [topic])
        let firstTwo = try await self.consume(consumer, count: 2)
        try #require(firstTwo.count == 2)
        try await consumer.commit([firstTwo[1]])
        let behind = try ConsumerGroupWatch(configuration: self.configuration, topic: topic, groups: [group], settle: .zero)
        #expect(try await behind.groupsBehind() == [group], "a group two messages into 21 was taken for caught up")
        let rest = try await self.consume(consumer, count: 19)
        try #require(rest.count == 19)
        try await consumer.commit([rest[18]])
        let caughtUp = try ConsumerGroupWatch(configuration: self.configuration, topic: topic, groups: [group], settle: .zero)
        #expect(try await caughtUp.groupsBehind() == [])
        await consumer.close()
    }

    /// A closed producer refuses at once (nothing would serve a delivery report: before, such a send
    /// waited for ever); closing again is a no-op.
    @Test func aProducerThatWasShutDownRefusesSendsAtOnce() async throws {
        let topic = TestServers.uniqueName("kafka_closed")
        try await KafkaAdmin.ensureTopic(topic, partitions: 1, configuration: self.configuration)
        let producer = try KafkaProducer(configuration: self.configuration)
        try await producer.send(self.messages(1, topic: topic))
        #expect(producer.phase == .running)
        await producer.shutdown()
        #expect(producer.phase == .closed)
        let started = ContinuousClock.now
        await #expect(throws: KafkaError.self) { try await producer.send(self.messages(1, topic: topic)) }
        #expect(ContinuousClock.now - started < .seconds(1))
        await producer.shutdown()
    }

    /// Letting go of a producer whose messages cannot be delivered (no broker) does not hold the
    /// releasing thread for its flush (before: up to 2 s on whatever thread let it go).
    @Test func droppingAProducerWithMessagesInFlightDoesNotBlock() async throws {
        var unreachable = self.configuration
        unreachable.brokers = "127.0.0.1:\(TestPorts.next())"
        var producer: KafkaProducer? = try KafkaProducer(configuration: unreachable)
        let sending = Task { [producer] in try await producer?.send(self.messages(5, topic: "nowhere")) }
        try await Task.sleep(for: .milliseconds(200))
        sending.cancel()
        _ = await sending.result
        let started = ContinuousClock.now
        producer = nil
        #expect(ContinuousClock.now - started < .milliseconds(500))
    }

    /// A closed consumer refuses polls and commits at once; closing again returns at once.
    @Test func aClosedConsumerRefusesPollsAndClosesOnce() async throws {
        let consumer = try KafkaConsumer(configuration: self.configuration, groupID: TestServers.uniqueName("group"), topics: ["nowhere"])
        await consumer.close()
        #expect(consumer.phase == .closed)
        await #expect(throws: KafkaError.self) { try await consumer.poll(timeout: .milliseconds(10)) }
        await #expect(throws: KafkaError.self) { try await consumer.poll(max: 10, timeout: .milliseconds(10)) }
        let started = ContinuousClock.now
        await consumer.close()
        #expect(ContinuousClock.now - started < .milliseconds(100))
    }

    /// The processes poll for up to a second at a time (fewer wake-ups at rest): cancelling the polling
    /// task, as a shutdown does, must end the wait at once, and a message must still come at once.
    @Test func aLongPollEndsWhenItsTaskIsCancelledAndStillAnswersAMessageAtOnce() async throws {
        let topic = TestServers.uniqueName("kafka_long_poll")
        try await KafkaAdmin.ensureTopic(topic, partitions: 1, configuration: self.configuration)
        let consumer = try KafkaConsumer(configuration: self.configuration, groupID: TestServers.uniqueName("group"), topics: [topic])
        let waiting = Task { try await consumer.poll(max: 10, timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(300))
        let cancelled = ContinuousClock.now
        waiting.cancel()
        #expect(try await waiting.value.isEmpty)
        #expect(ContinuousClock.now - cancelled < .seconds(1))

        let producer = try KafkaProducer(configuration: self.configuration)
        try await producer.send(self.messages(1, topic: topic))
        await producer.shutdown()
        // The group may still be joining: the first poll that returns brings the message, long before 60 s.
        let polled = ContinuousClock.now
        var records: [KafkaRecord] = []
        while records.isEmpty, ContinuousClock.now - polled < .seconds(60) { records = try await consumer.poll(max: 10, timeout: .seconds(60)) }
        #expect(records.count == 1)
        #expect(ContinuousClock.now - polled < .seconds(20))
        await consumer.close()
    }

    @Test func producedMessagesArriveWithKeysHeadersAndPerKeyOrder() async throws {
        let topic = TestServers.uniqueName("kafka_roundtrip")
        try await KafkaAdmin.ensureTopic(topic, partitions: 10, configuration: self.configuration)
        // Creating it again is not an error.
        try await KafkaAdmin.ensureTopic(topic, partitions: 10, configuration: self.configuration)
        let producer = try KafkaProducer(configuration: self.configuration)
        try await producer.send(self.messages(200, topic: topic))
        await producer.shutdown()

        let consumer = try KafkaConsumer(configuration: self.configuration, groupID: TestServers.uniqueName("group"), topics: [topic])
        let records = try await self.consume(consumer, count: 200)
        await consumer.close()
        #expect(records.count == 200)
        #expect(Set(records.map { String(decoding: $0.value, as: UTF8.self) }).count == 200)
        #expect(Set(records.map(\.partition)).count > 1)
        let first = try #require(records.first)
        let index = try #require(Int(String(decoding: first.value, as: UTF8.self).dropFirst("value-".count)))
        #expect(first.header("event-id") == "id-\(index)")
        #expect(first.header("empty") == "")
        #expect(String(decoding: first.key, as: UTF8.self) == "order-\(index % 7)")
        for key in 0..<7 {
            let values = records.filter { String(decoding: $0.key, as: UTF8.self) == "order-\(key)" }
                .compactMap { Int(String(decoding: $0.value, as: UTF8.self).dropFirst("value-".count)) }
            #expect(values == values.sorted(), "key order-\(key) arrived out of order")
        }
    }

    @Test func aNewGroupMemberResumesAfterTheCommittedOffsets() async throws {
        let topic = TestServers.uniqueName("kafka_commit")
        let group = TestServers.uniqueName("group")
        try await KafkaAdmin.ensureTopic(topic, partitions: 1, configuration: self.configuration)
        let producer = try KafkaProducer(configuration: self.configuration)
        try await producer.send(self.messages(30, topic: topic))

        let first = try KafkaConsumer(configuration: self.configuration, groupID: group, topics: [topic])
        var records: [KafkaRecord] = []
        for try await record in first.records() {
            records.append(record)
            if records.count == 30 { break }
        }
        #expect(records.map { String(decoding: $0.value, as: UTF8.self) } == (0..<30).map { "value-\($0)" })
        try await first.commit(Array(records.prefix(20)))
        await first.close()

        let second = try KafkaConsumer(configuration: self.configuration, groupID: group, topics: [topic])
        let rest = try await self.consume(second, count: 10)
        await second.close()
        #expect(rest.map { String(decoding: $0.value, as: UTF8.self) } == (20..<30).map { "value-\($0)" })
        await producer.shutdown()
    }

    @Test func aBrokerThatDoesNotAnswerFailsThePing() async throws {
        let producer = try KafkaProducer(configuration: KafkaConfiguration(brokers: "127.0.0.1:1", properties: ["log_level": "0"]))
        await #expect(throws: KafkaError.self) { try await producer.ping(timeout: .seconds(1)) }
        await producer.shutdown()
    }
}
