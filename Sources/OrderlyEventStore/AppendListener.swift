import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Something a log reader can wait on instead of polling: returns once events were appended since
/// the last call returned, or after `limit` at the latest.
public protocol AppendWaiting: Sendable {
    func waitForAppends(upTo limit: Duration) async
}

/// Listens on PostgreSQL's `orderly_events_appended` channel (see migration 0008) and wakes the one
/// waiter (the relay) when events were appended. Notifications sent while it was not listening (it
/// reconnects after a lost connection) are missed: it rings once after every reconnect, and the
/// waiter's `limit` bounds what a lost one can cost.
public final class AppendListener: Service, AppendWaiting, Sendable {
    public static let channel = "orderly_events_appended"
    let client: PostgresClient
    let logger: Logger
    let bell = AppendBell()

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.client.withConnection { connection in
                        try await connection.listen(on: Self.channel) { notifications in
                            // Whatever was appended while nobody listened.
                            self.bell.ring()
                            for try await _ in notifications { self.bell.ring() }
                        }
                    }
                } catch is CancellationError {
                    return
                } catch {
                    if Task.isCancelled { return }
                    self.logger.warning("cannot listen for appends; trying again", metadata: ["error": "\(String(reflecting: error))"])
                    self.bell.ring()
                    try await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    public func waitForAppends(upTo limit: Duration) async {
        await self.bell.wait(upTo: limit)
    }
}

/// A latch for one waiter at a time: a ring with nobody waiting is kept for the next wait.
final class AppendBell: Sendable {
    private struct State {
        var rung = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Void, Never>)?
        var nextID: UInt64 = 0
        /// A wait whose time ran out (or whose task was cancelled) before it had stored its waiter.
        var released: UInt64?
    }
    private let state = Mutex(State())

    func ring() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.rung = true
                return nil
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume()
    }

    func wait(upTo limit: Duration) async {
        let id = self.state.withLock { state -> UInt64? in
            if state.rung {
                state.rung = false
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        let timeout = Task { [weak self] in
            try? await Task.sleep(for: limit)
            self?.release(id)
        }
        defer { timeout.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = self.state.withLock { state -> Bool in
                    if state.rung || state.released == id {
                        state.rung = false
                        return true
                    }
                    state.waiter = (id, continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            self.release(id)
        }
    }

    /// Ends wait `id` if it is still waiting (its time is up, or its task was cancelled).
    private func release(_ id: UInt64) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter, waiter.id == id else {
                state.released = id
                return nil
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume()
    }
}
