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

    /// Metrics and logging set up once per process: JSON lines on stderr unless
    /// `ORDERLY_LOG_FORMAT=text`; `LOG_LEVEL` sets the level (default `defaultLevel`).
    public static func logger(_ label: String, defaultLevel: Logger.Level = .info) -> Logger {
        Observability.bootstrapMetrics()
        Observability.bootstrapLogging(defaultLevel: defaultLevel)
        return Logger(label: label)
    }
}
