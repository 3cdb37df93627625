import Logging
import OrderlyHandling
import ServiceLifecycle
import Synchronization
import Testing

/// The long-lived loop every relay, consumer, projector and deadline watcher runs.
@Suite struct RepeatUntilShutdownTests {
    /// Keeps what was logged, to check a failure is reported rather than swallowed.
    final class Recorded: Sendable {
        let lines = Mutex<[String]>([])
        var logger: Logger {
            Logger(label: "test") { _ in RecordingHandler(recorded: self) }
        }
    }

    struct RecordingHandler: LogHandler {
        let recorded: Recorded
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let error = event.metadata?["error"].map { " \($0)" } ?? ""
            self.recorded.lines.withLock { $0.append("\(event.level) \(event.message)\(error)") }
        }
    }

    struct Broken: Error, CustomStringConvertible {
        var description: String { "broken on purpose" }
    }

    @Test func aFailedIterationIsLoggedRecoveredFromAndTheLoopGoesOn() async throws {
        let recorded = Recorded()
        let recoveries = Mutex(0)
        let calls = await repeatUntilShutdown(
            "testing", logger: recorded.logger, retryDelay: .milliseconds(1), state: 0,
            { calls in
                calls += 1
                if calls <= 2 { throw Broken() }
                return calls == 4 ? .stop : .next
            },
            recover: { _, _ in recoveries.withLock { $0 += 1 } })
        #expect(calls == 4)
        #expect(recoveries.withLock { $0 } == 2)
        #expect(
            recorded.lines.withLock { $0 } == [
                "warning testing failed; trying again broken on purpose", "warning testing failed; trying again broken on purpose",
            ])
    }

    @Test func aLoopEndsWhenItsTaskIsCancelled() async throws {
        let turns = Mutex(0)
        let loop = Task {
            await repeatUntilShutdown("waiting", logger: Logger(label: "test"), retryDelay: .seconds(1)) {
                turns.withLock { $0 += 1 }
                return .after(.milliseconds(5))
            }
        }
        // Going round (however slowly a loaded machine starts the task) before it is cancelled.
        let deadline = ContinuousClock.now + .seconds(30)
        while turns.withLock({ $0 }) < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(turns.withLock { $0 } >= 2)
        loop.cancel()
        let started = ContinuousClock.now
        await loop.value
        #expect(ContinuousClock.now - started < .seconds(1))
    }

    /// A service whose loop never fails and never stops ends when its group shuts down gracefully.
    @Test func aLoopEndsOnGracefulShutdown() async throws {
        struct Looping: Service {
            func run() async throws {
                await repeatUntilShutdown("looping", logger: Logger(label: "test"), retryDelay: .seconds(1)) { .after(.seconds(60)) }
            }
        }
        let group = ServiceGroup(services: [Looping()], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(100))
        let started = ContinuousClock.now
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}
