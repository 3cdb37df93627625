import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Tells a reader of the log (the relay) that events were appended, so that at rest it need not read
/// the log to find out that nothing happened.
public protocol AppendSignal: Sendable {
    /// Grows with every append notice; nil while the signal is not working (the reader then polls as
    /// if there were no signal).
    var generation: UInt64? { get }
    /// Keeps the signal fed until cancelled, starting again after any failure.
    func run() async
    /// Returns once the generation is no longer `seen` (an append, or the signal stopped working),
    /// after `timeout`, or when the task is cancelled: a wait with no timer ticking meanwhile.
    func wait(past seen: UInt64, upTo timeout: Duration) async
    /// Asks for notices (`resting`: the reader is about to rest on them; it reads the log once more
    /// after this returns true) or says they are no longer needed (the reader is busy and reads the
    /// log anyway). Returns false when the request could not be made: the reader then must not rest
    /// on the signal.
    func announce(resting: Bool) async -> Bool
}

extension AppendSignal {
    /// A signal that notifies every append whether anyone rests on it needs no announcement.
    public func announce(resting: Bool) async -> Bool { true }
}

/// PostgreSQL's LISTEN on `orderly_events`, which every statement adding events notifies at its commit
/// while a reader rests on it (migrations/0008 and 0011: a resting reader has a row in
/// `orderly_append_listeners`), on a pooled connection held for as long as it listens. A notification may be
/// lost while the connection is being made again; the generation then reads nil, and one more step
/// when listening starts again, so the reader looks at the log rather than trust a stale number.
public final class PostgresAppendSignal: AppendSignal {
    public static let channel = "orderly_events"

    private struct State {
        var generation: UInt64 = 0
        var listening = false
        var nextWaiter: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Waiters cancelled before they were registered.
        var cancelled: Set<UInt64> = []

        /// Every waiter, to resume once the lock is released.
        mutating func takeWaiters() -> [CheckedContinuation<Void, Never>] {
            defer { self.waiters = [:] }
            return Array(self.waiters.values)
        }
    }

    private let state = Mutex(State())
    /// This signal's row in `orderly_append_listeners` while its reader rests.
    public let listener = "\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
    private let client: PostgresClient
    private let retryDelay: Duration
    private let logger: Logger

    public init(client: PostgresClient, retryDelay: Duration = .seconds(1), logger: Logger) {
        self.client = client
        self.retryDelay = retryDelay
        self.logger = logger
    }

    public var generation: UInt64? {
        self.state.withLock { $0.listening ? $0.generation : nil }
    }

    public func run() async {
        while !Task.isCancelled {
            do {
                try await self.client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        self.update { state in
                            state.listening = true
                            state.generation &+= 1
                        }
                        for try await _ in notifications {
                            self.update { $0.generation &+= 1 }
                        }
                    }
                }
            } catch {
                if !Task.isCancelled {
                    self.logger.debug("listening for appends failed; the relay polls meanwhile", metadata: ["error": "\(error)"])
                }
            }
            self.update { $0.listening = false }
            try? await Task.sleep(for: self.retryDelay)
        }
    }

    public func announce(resting: Bool) async -> Bool {
        do {
            if resting {
                try await self.client.query(
                    """
                    WITH gone AS (DELETE FROM orderly_append_listeners WHERE resting_since < now() - interval '1 day')
                    INSERT INTO orderly_append_listeners (listener) VALUES (\(self.listener))
                    ON CONFLICT (listener) DO UPDATE SET resting_since = now()
                    """, logger: self.logger)
            } else {
                try await self.client.query("DELETE FROM orderly_append_listeners WHERE listener = \(self.listener)", logger: self.logger)
            }
            return true
        } catch {
            self.logger.debug("announcing the relay's rest failed; it polls meanwhile", metadata: ["error": "\(error)"])
            return false
        }
    }

    public func wait(past seen: UInt64, upTo timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForChange(past: seen) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForChange(past seen: UInt64) async {
        let id = self.state.withLock { state in
            state.nextWaiter &+= 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = self.state.withLock { state -> Bool in
                    if state.cancelled.remove(id) != nil || !state.listening || state.generation != seen { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiting = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let continuation = state.waiters.removeValue(forKey: id) else {
                    state.cancelled.insert(id)
                    return nil
                }
                return continuation
            }
            waiting?.resume()
        }
    }

    /// Changes the state and wakes every waiter (it looks again at what changed).
    private func update(_ change: (inout State) -> Void) {
        let waiting = self.state.withLock { state in
            change(&state)
            return state.takeWaiters()
        }
        for continuation in waiting { continuation.resume() }
    }
}

/// When a reader of the log at rest (the relay) may leave the log unread: its append signal works
/// and has not moved since the last read, nothing was found or signalled for `quietAfter` (while
/// events come, and just after a signal, it reads as often as without one: an append whose notice
/// came before an earlier transaction let it be read is then still found at once), and the last
/// read is less than `readInterval` ago.
public struct SignalledRest: Sendable {
    public let readInterval: Duration
    public let quietAfter: Duration
    private var lastGeneration: UInt64?
    private var lastRead: ContinuousClock.Instant
    private var lastSignal: ContinuousClock.Instant

    /// A relay just started has seen no append: it may rest after its first read finds nothing
    /// (it read busily for `quietAfter` first, the largest part of an idle system's first seconds).
    public init(readInterval: Duration, quietAfter: Duration, now: ContinuousClock.Instant = .now) {
        self.readInterval = readInterval
        self.quietAfter = quietAfter
        self.lastRead = now
        self.lastSignal = now - quietAfter
    }

    /// How long the log may stay unread (until the next read is due), or nil to read it now.
    public func mayLeaveLogUnread(generation: UInt64?, lastFound: ContinuousClock.Instant, now: ContinuousClock.Instant = .now) -> Duration? {
        guard let generation, generation == self.lastGeneration, now - max(lastFound, self.lastSignal) >= self.quietAfter else { return nil }
        let due = self.readInterval - (now - self.lastRead)
        return due > .zero ? due : nil
    }

    public mutating func willRead(generation: UInt64?, now: ContinuousClock.Instant = .now) {
        // Only a generation moving on is an append; the first one (listening started, or started
        // again after the signal broke) is not: that read finds what came before it.
        if let last = self.lastGeneration, let generation, generation != last { self.lastSignal = now }
        self.lastGeneration = generation
        self.lastRead = now
    }
}
