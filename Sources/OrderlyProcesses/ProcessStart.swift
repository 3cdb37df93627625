import Foundation
import Logging
import NIOCore
import NIOPosix

/// What each of Orderly's executables (`orderly`, `orderly-bench`) does as it starts.
public enum ProcessStart {
    /// Swift concurrency's jobs run on NIO's event loops (the threads that do the sockets' I/O), so an
    /// await on a database or HTTP answer resumes where the answer arrived instead of hopping to
    /// another pool's thread. Call before any task starts; ORDERLY_EXECUTOR=default keeps Swift's
    /// own pool. Blocking C calls (librdkafka, libmongoc) run on their own threads and queues anyway.
    public static func useEventLoopsForConcurrency() {
        if ProcessInfo.processInfo.environment["ORDERLY_EXECUTOR"] != "default" {
            NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
    }

    /// The settings of a long-running `orderly` process: the environment's, with each consumer's poll
    /// waiting up to a second unless `ORDERLY_CONSUMER_POLL_MS` says otherwise (a process runs a
    /// handful of consumers, so the threads their waits hold are few; at rest it wakes less).
    public static func settings(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Settings {
        var settings = Settings.fromEnvironment(environment)
        if environment["ORDERLY_CONSUMER_POLL_MS"] == nil { settings.consumerPollTimeout = .seconds(1) }
        return settings
    }

    /// Metrics and logging set up once per process: JSON lines on stderr unless
    /// `ORDERLY_LOG_FORMAT=text`; `LOG_LEVEL` sets the level (default `defaultLevel`).
    /// A long-running process (`tracing: true`) also exports traces when `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// is set, as service `orderly-<role>` (the label's last part) unless `OTEL_SERVICE_NAME` is set.
    public static func logger(_ label: String, defaultLevel: Logger.Level = .info, tracing: Bool = false) -> Logger {
        Observability.bootstrapMetrics()
        Observability.bootstrapLogging(defaultLevel: defaultLevel)
        let logger = Logger(label: label)
        if tracing { TracingSetup.bootstrap(serviceName: "orderly-" + (label.split(separator: ".").last.map(String.init) ?? label), logger: logger) }
        return logger
    }
}
