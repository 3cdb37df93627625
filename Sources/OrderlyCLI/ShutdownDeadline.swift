import Foundation
import Logging
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// Bounds a process's shutdown. On SIGTERM or SIGINT the services stop gracefully for
/// `gracefulPart`, are then cancelled, and once `total` has passed since the signal the process
/// exits as it is, whatever its dependencies are doing (a frozen broker, a database that does not
/// answer, a C call that blocks). Exiting there is safe by construction: every checkpoint and offset
/// moves only after its effect is durable, and nothing is acknowledged before that, so work cut off
/// is done again by the next process, as after kill -9. Kubernetes kills after 30 s; we promise 10.
struct ShutdownDeadline: Sendable {
    static let total: Duration = .seconds(
        ProcessInfo.processInfo.environment["ORDERLY_SHUTDOWN_SECONDS"].flatMap { Double($0) }.map { min(max($0, 1), 30) } ?? 8)
    static var gracefulPart: Duration { total * 0.6 }

    let logger: Logger

    /// Waits for the first SIGTERM or SIGINT, then starts the clock on a thread of its own: not
    /// Swift's pool and not a dispatch queue, whose few worker threads may all be inside blocking C
    /// calls to a frozen dependency (CI saw a dispatch timer fire two seconds late that way).
    func armOnSignal() async {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        for await signal in signals {
            let logger = self.logger
            let total = Self.total
            logger.info("shutting down", metadata: ["signal": "\(signal)", "deadline": "\(total)"])
            let expiry = ContinuousClock.now + total
            let watchdog = Thread {
                while ContinuousClock.now < expiry {
                    Thread.sleep(forTimeInterval: 0.05)
                }
                logger.warning("shutdown deadline passed; exiting with work abandoned (nothing unacknowledged is lost)")
                // Every buffered stream: the log lines above and anything else not yet written.
                fflush(nil)
                _exit(143)
            }
            watchdog.name = "shutdown-deadline"
            watchdog.start()
            return
        }
    }
}
