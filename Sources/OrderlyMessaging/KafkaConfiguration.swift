import Foundation

/// Settings for every Kafka client Orderly makes. Keys and values are librdkafka's own.
public struct KafkaConfiguration: Sendable {
    public var brokers: String
    /// Extra librdkafka properties for every client, applied last (they win).
    public var properties: [String: String]
    /// Extra librdkafka properties for consumers only (group timings).
    public var consumerProperties: [String: String]
    /// Extra librdkafka properties for producers only (how long a message may wait for the broker).
    public var producerProperties: [String: String]
    /// A file of librdkafka properties in Java-properties form (`security.protocol=SASL_SSL`),
    /// read whenever a client is made, so a bad one stops the process at start naming it; the
    /// `ORDERLY_KAFKA_PROPERTY_*` variables (in `properties`) win over it.
    public var propertyFile: String?

    public init(
        brokers: String, properties: [String: String] = [:], consumerProperties: [String: String] = [:],
        producerProperties: [String: String] = [:], propertyFile: String? = nil
    ) {
        self.propertyFile = propertyFile
        self.brokers = brokers
        self.properties = properties
        self.consumerProperties = consumerProperties
        self.producerProperties = producerProperties
    }

    /// Reads `ORDERLY_KAFKA_BROKERS` and the group timings. Short timings matter with Tansu, which
    /// otherwise waits out a long join before a new group's first message.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> KafkaConfiguration {
        var consumer: [String: String] = [:]
        if let value = environment["ORDERLY_KAFKA_SESSION_TIMEOUT_MS"] { consumer["session.timeout.ms"] = value }
        if let value = environment["ORDERLY_KAFKA_HEARTBEAT_INTERVAL_MS"] { consumer["heartbeat.interval.ms"] = value }
        if let value = environment["ORDERLY_KAFKA_FETCH_WAIT_MS"] { consumer["fetch.wait.max.ms"] = value }
        if let value = environment["ORDERLY_KAFKA_CONSUMER_DEBUG"] { consumer["debug"] = value }
        var producer: [String: String] = [:]
        if let value = environment["ORDERLY_KAFKA_MESSAGE_TIMEOUT_MS"] { producer["message.timeout.ms"] = value }
        if let value = environment["ORDERLY_KAFKA_LINGER_MS"] { producer["linger.ms"] = value }
        // Any librdkafka property for every client (SASL, SSL, client.id, …): the name upper-cased
        // with `_` for `.` after the prefix, e.g. ORDERLY_KAFKA_PROPERTY_SASL_MECHANISM=PLAIN.
        var properties: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix(Self.propertyPrefix) && name.count > Self.propertyPrefix.count {
            properties[name.dropFirst(Self.propertyPrefix.count).lowercased().replacingOccurrences(of: "_", with: ".")] = value
        }
        return KafkaConfiguration(
            brokers: environment["ORDERLY_KAFKA_BROKERS"] ?? "127.0.0.1:9092", properties: properties, consumerProperties: consumer,
            producerProperties: producer, propertyFile: environment["ORDERLY_KAFKA_CONFIG_FILE"].flatMap { $0.isEmpty ? nil : $0 })
    }

    public static let propertyPrefix = "ORDERLY_KAFKA_PROPERTY_"

    /// The properties of `text` in Java-properties form: `name=value` or `name: value` per line,
    /// `#` and `!` comment lines, blank lines; a line that is none of those is an error naming it.
    public static func parseProperties(_ text: String, file: String) throws -> [String: String] {
        var properties: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            guard let separator = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw KafkaError(code: -1, message: "\(file):\(index + 1): expected name=value")
            }
            let name = line[..<separator].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { throw KafkaError(code: -1, message: "\(file):\(index + 1): a property without a name") }
            properties[name] = line[line.index(after: separator)...].trimmingCharacters(in: .whitespaces)
        }
        return properties
    }

    /// Whether a property's value is a secret (passwords, keys, tokens): never put in a message or a log.
    public static func isSecret(_ name: String) -> Bool {
        ["password", "secret", "key", "jaas", "token", "credential"].contains { name.lowercased().contains($0) }
    }
}

public struct KafkaError: Error, Sendable, CustomStringConvertible {
    public var code: Int32
    public var message: String
    public var isRetriable: Bool

    public init(code: Int32, message: String, isRetriable: Bool = false) {
        self.code = code
        self.message = message
        self.isRetriable = isRetriable
    }

    public var description: String { "Kafka error \(self.code): \(self.message)" }
}

/// A message to produce. Headers keep their order.
public struct KafkaOutgoingMessage: Sendable {
    public var topic: String
    public var key: [UInt8]
    public var value: [UInt8]
    public var headers: [(String, [UInt8])]

    public init(topic: String, key: [UInt8], value: [UInt8], headers: [(String, [UInt8])] = []) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// A consumed message, copied out of librdkafka's memory.
public struct KafkaRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]
    public var value: [UInt8]
    public var headers: [(String, [UInt8])]
    /// When the broker (or the producer) stamped it, in ms since 1970; nil when it has no time.
    public var timestampMs: Int64?

    public func header(_ name: String) -> String? {
        self.headers.first { $0.0 == name }.map { String(decoding: $0.1, as: UTF8.self) }
    }
}
