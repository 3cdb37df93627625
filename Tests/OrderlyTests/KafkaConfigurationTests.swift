import Foundation
import OrderlyMessaging
import OrderlyProcesses
import Testing

/// librdkafka properties from the environment and from a file reach the real client (a limit set
/// there is enforced against the broker), a bad one stops the client naming it without its secret,
/// and topics are made with the replication settings asked for.
@Suite struct KafkaConfigurationTests {
    static func send(_ bytes: Int, to topic: String, with configuration: KafkaConfiguration) async throws {
        let producer = try KafkaProducer(configuration: configuration)
        defer { Task { await producer.shutdown() } }
        try await producer.send([KafkaOutgoingMessage(topic: topic, key: Array("k".utf8), value: Array(repeating: 65, count: bytes))])
    }

    @Test func propertiesFromTheEnvironmentAndAFileReachTheClient() async throws {
        let settings = try await TestServers.isolatedSettings()
        let brokers = settings.kafka.brokers
        try await KafkaAdmin.ensureTopic(settings.topic, partitions: 1, configuration: settings.kafka)
        // From the environment: message.max.bytes of 2,000 makes the client refuse a 5,000-byte message.
        let limited = KafkaConfiguration.fromEnvironment([
            "ORDERLY_KAFKA_BROKERS": brokers, "ORDERLY_KAFKA_PROPERTY_MESSAGE_MAX_BYTES": "2000",
        ])
        #expect(limited.properties == ["message.max.bytes": "2000"])
        try await Self.send(1000, to: settings.topic, with: limited)
        await #expect(throws: KafkaError.self) { try await Self.send(5000, to: settings.topic, with: limited) }

        // From a file in Java-properties form; a variable wins over it.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("orderly-kafka-\(UUID().uuidString).properties").path
        try "# a comment\n! another\n\nclient.id = from-file\nmessage.max.bytes: 2000\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fromFile = KafkaConfiguration.fromEnvironment(["ORDERLY_KAFKA_BROKERS": brokers, "ORDERLY_KAFKA_CONFIG_FILE": file])
        await #expect(throws: KafkaError.self) { try await Self.send(5000, to: settings.topic, with: fromFile) }
        let overridden = KafkaConfiguration.fromEnvironment([
            "ORDERLY_KAFKA_BROKERS": brokers, "ORDERLY_KAFKA_CONFIG_FILE": file, "ORDERLY_KAFKA_PROPERTY_MESSAGE_MAX_BYTES": "100000",
        ])
        try await Self.send(5000, to: settings.topic, with: overridden)
    }

    @Test func aBadPropertyStopsTheClientNamingItButNotItsSecret() throws {
        let unknown = KafkaConfiguration.fromEnvironment(["ORDERLY_KAFKA_BROKERS": "127.0.0.1:1", "ORDERLY_KAFKA_PROPERTY_NO_SUCH_THING": "1"])
        #expect {
            try KafkaProducer(configuration: unknown)
        } throws: { error in
            "\(error)".contains("no.such.thing")
        }
        let secret = "hunter2-do-not-print"
        let badSecret = KafkaConfiguration.fromEnvironment([
            "ORDERLY_KAFKA_BROKERS": "127.0.0.1:1", "ORDERLY_KAFKA_PROPERTY_SASL_PASSWORD_TYPO": secret,
        ])
        #expect {
            try KafkaProducer(configuration: badSecret)
        } throws: { error in
            "\(error)".contains("sasl.password.typo") && !"\(error)".contains(secret)
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("orderly-kafka-\(UUID().uuidString).properties").path
        try "client.id=x\nthis line has no separator\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect {
            try KafkaProducer(configuration: KafkaConfiguration(brokers: "127.0.0.1:1", propertyFile: file))
        } throws: { error in
            "\(error)".contains("\(file):2")
        }
        #expect(throws: KafkaError.self) {
            try KafkaProducer(configuration: KafkaConfiguration(brokers: "127.0.0.1:1", propertyFile: file + ".missing"))
        }
    }

    @Test func topicsAreMadeWithTheReplicationAskedFor() async throws {
        var settings = try await TestServers.isolatedSettings()
        settings.topic = TestServers.uniqueName("replicated")
        settings.topicPartitions = 2
        settings.topicReplicationFactor = 3
        settings.topicMinInsyncReplicas = 2
        try await Processes.ensureTopic(settings.topic, settings, logger: TestServers.logger)
        let described = try #require(try await KafkaAdmin.describeTopic(settings.topic, configuration: settings.kafka))
        #expect(described.partitions == 2)
        #expect(described.replicationFactor == 3)
        #expect(described.config["min.insync.replicas"] == "2")
        #expect(try await KafkaAdmin.describeTopic(TestServers.uniqueName("absent"), configuration: settings.kafka) == nil)
    }
}
