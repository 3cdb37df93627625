import Foundation
import Logging
import OrderlyDomain
import OrderlyEventStore
import OrderlyMessaging
import PostgresNIO

/// `orderly events export`: the matching history, in position order, written as it is read. Memory
/// holds one buffer of at most `flushBytes` plus the rows postgres-nio has read ahead, whatever the
/// history's size.
public struct EventExporter: Sendable {
    public var store: any EventStore
    public var filter: EventFilter
    public var format: EventExportFormat
    public var flushBytes: Int

    public init(store: any EventStore, filter: EventFilter, format: EventExportFormat, flushBytes: Int = 1 << 20) {
        self.store = store
        self.filter = filter
        self.format = format
        self.flushBytes = flushBytes
    }

    /// Writes every matching event to `output`; `progress` gets the count so far about ten times a
    /// second. Returns how many events were written.
    @discardableResult
    public func export(to output: OutputFile, progress: (Int64) -> Void = { _ in }) async throws -> Int64 {
        var writer = EventExportWriter(format: self.format)
        writer.header()
        var written: Int64 = 0
        var lastProgress = ContinuousClock.now
        let flushBytes = self.flushBytes
        try await self.store.scan(matching: self.filter) { event in
            writer.append(event)
            written += 1
            if writer.pending >= flushBytes {
                try writer.take { try output.write($0) }
                if ContinuousClock.now - lastProgress >= .milliseconds(100) {
                    lastProgress = .now
                    progress(written)
                }
            }
        }
        try writer.take { try output.write($0) }
        progress(written)
        return written
    }
}

/// A file (or stdout) written with plain `write(2)`: no buffering of its own, the exporter hands it
/// large chunks.
public final class OutputFile: Sendable {
    public let descriptor: Int32
    private let closes: Bool

    public static let standardOutput = OutputFile(descriptor: STDOUT_FILENO, closes: false)
    public static let standardError = OutputFile(descriptor: STDERR_FILENO, closes: false)

    private init(descriptor: Int32, closes: Bool) {
        self.descriptor = descriptor
        self.closes = closes
    }

    /// Creates or truncates `path`.
    public convenience init(path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw OutputFileError(path: path, code: errno) }
        self.init(descriptor: descriptor, closes: true)
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let result = Glibc.write(self.descriptor, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
                if result < 0 {
                    if errno == EINTR { continue }
                    throw OutputFileError(path: self.name, code: errno)
                }
                offset += result
            }
        }
    }

    var name: String {
        switch self.descriptor {
        case STDOUT_FILENO: "stdout"
        case STDERR_FILENO: "stderr"
        default: "output"
        }
    }

    /// Whether this is a pipe (progress stays quiet when the export is piped on).
    public var isPipe: Bool {
        var info = stat()
        return fstat(self.descriptor, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO
    }

    deinit {
        if self.closes { close(self.descriptor) }
    }
}

public struct OutputFileError: Error, CustomStringConvertible {
    public var path: String
    public var code: Int32
    public var description: String { "cannot write \(self.path): \(String(cString: strerror(self.code)))" }
}

/// `orderly events replay`: republishes history to a topic of its own for a new consumer group, so
/// the live topic and every group already reading it are untouched.
public enum EventReplay {
    /// The topic a group's replay goes to.
    public static func topic(for group: String, settings: Settings) -> String { "\(settings.topic).replay.\(group)" }

    /// Group names become topic names: an identifier without `:` (Kafka allows letters, digits, `.`,
    /// `_` and `-`).
    public static func isValidGroup(_ group: String) -> Bool {
        IdentifierRules.isWellFormed(group, maxLength: 200) && !group.contains(":")
    }

    /// A relay that publishes every event at or after `fromPosition` to the group's replay topic, in
    /// log order: `catchUp()` stops once it has reached the log's end, `run()` goes on like the live
    /// relay. Its checkpoint is its own, so a replay run again resumes where it stopped.
    public static func relay(
        group: String, fromPosition: Int64, settings: Settings, postgres: PostgresClient, logger: Logger
    ) async throws -> EventRelay {
        let topic = Self.topic(for: group, settings: settings)
        try await Processes.ensureTopic(topic, settings, logger: logger)
        return EventRelay(
            store: PostgresEventStore(client: postgres, logger: logger), producer: try KafkaProducer(configuration: settings.kafka),
            leaderLock: PostgresLeaderLock(client: postgres, key: Processes.relayLockKey(topic: topic), logger: logger),
            settings: .init(
                topic: topic, checkpointName: "relay:\(topic)", batchSize: settings.relayBatchSize,
                filter: EventFilter(fromPosition: fromPosition)),
            logger: logger)
    }
}
