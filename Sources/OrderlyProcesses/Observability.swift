import Foundation
import Logging
import Metrics
import OrderlyDomain
import Prometheus
import Synchronization

/// Metrics for the whole process, exported in the Prometheus text format at `/metrics`, and its logs.
public enum Observability {
    public static let registry = PrometheusCollectorRegistry()

    /// Routes swift-metrics into the registry. Once per process, before any metric is made; tests
    /// skip it and their metrics go nowhere.
    public static func bootstrapMetrics() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: self.registry))
    }

    /// How log lines are written to standard error: one JSON object a line (for collectors), or text.
    public enum LogFormat: String, Sendable {
        case json, text
    }

    /// Once per process. `ORDERLY_LOG_FORMAT` (json, the default, or text) and `LOG_LEVEL` choose.
    public static func bootstrapLogging(
        defaultLevel: Logger.Level = .info, environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        let level = environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? defaultLevel
        let format = environment["ORDERLY_LOG_FORMAT"].flatMap(LogFormat.init(rawValue:)) ?? .json
        // With tracing on, each line written inside a span carries its trace_id and span_id.
        LoggingSystem.bootstrap(
            { label, provider in
                switch format {
                case .json:
                    var handler = JSONLogHandler(label: label)
                    handler.metadataProvider = provider
                    handler.logLevel = level
                    return handler
                case .text:
                    var handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
                    handler.logLevel = level
                    return handler
                }
            }, metadataProvider: TracingSetup.loggingMetadataProvider())
    }
}

/// Writes each log record to standard error as one JSON object on one line:
/// `{"time":…,"level":…,"logger":…,"message":…, metadata…}`. Metadata keys sit at the top level, so
/// a log collector can select one order's saga across every process with `correlationId`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    let label: String
    let write: @Sendable ([UInt8]) -> Void

    public init(label: String, write: @escaping @Sendable ([UInt8]) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let provided = self.metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let given = event.metadata { merged.merge(given) { _, new in new } }
        var json = JSONWriter(capacity: 256)
        json.object { json in
            json.field("time", Date())
            json.field("level", event.level.rawValue)
            json.field("logger", self.label)
            json.field("message", event.message.description)
            // Sorted keys: the same record always reads the same way.
            for key in merged.keys.sorted() where !["time", "level", "logger", "message"].contains(key) {
                json.key(key)
                Self.write(merged[key] ?? .string(""), to: &json)
            }
        }
        json.text([UInt8(ascii: "\n")])
        self.write(json.bytes)
    }

    static func write(_ value: Logger.Metadata.Value, to json: inout JSONWriter) {
        switch value {
        case .string(let text): json.value(text)
        case .stringConvertible(let convertible): json.value(convertible.description)
        case .array(let values): json.array(values) { json, value in Self.write(value, to: &json) }
        case .dictionary(let values):
            json.object { json in
                for key in values.keys.sorted() {
                    json.key(key)
                    Self.write(values[key] ?? .string(""), to: &json)
                }
            }
        }
    }

    /// One `write(2)` a line, under a lock, so lines of concurrent tasks never interleave. A log line
    /// that cannot be written is dropped: logging must not stop the process.
    public static let standardError: @Sendable ([UInt8]) -> Void = { bytes in
        standardErrorLock.withLock { _ in try? OutputFile.standardError.write(bytes) }
    }
    private static let standardErrorLock = Mutex(())
}
