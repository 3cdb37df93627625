import PostgresNIO
import Synchronization

extension PostgresClient {
    /// `withConnection`, but waiting at most `limit` for a connection: postgres-nio otherwise waits
    /// for as long as the server is down, and a command held that long was appended when the
    /// server came back, after its caller had given up (and perhaps retried). Past the limit
    /// `EventStoreError.unavailable` is thrown and `body` never runs, even if a connection comes
    /// later (the lease and the timer race for one claim; the loser stands down). Once leased, `body`
    /// runs to its end. The caller does not wait for a lease it gave up on: that one is cancelled and,
    /// should it still arrive, handed straight back.
    func withConnection<Result: Sendable>(
        leasedWithin limit: Duration, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let claim = LeaseClaim()
        let outcome = LeaseOutcome<Result>()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
            outcome.wait(continuation)
            let lease = Task {
                do {
                    let value = try await self.withConnection { connection in
                        guard claim.take(.leased) else { throw EventStoreError.unavailable(waited: limit) }
                        return try await body(connection)
                    }
                    outcome.give(.success(value))
                } catch {
                    outcome.give(.failure(error))
                }
            }
            Task {
                try? await Task.sleep(for: limit)
                if claim.take(.timedOut) {
                    outcome.give(.failure(EventStoreError.unavailable(waited: limit)))
                    lease.cancel()
                }
            }
        }
    }
}

/// Who got there first: the connection (the body runs) or the timer (it never will).
private final class LeaseClaim: Sendable {
    enum Winner: Int {
        case none = 0, leased = 1, timedOut = 2
    }

    private let winner = Atomic(Winner.none.rawValue)

    /// True if `side` is the first to claim.
    func take(_ side: Winner) -> Bool {
        self.winner.compareExchange(expected: Winner.none.rawValue, desired: side.rawValue, ordering: .sequentiallyConsistent).exchanged
    }
}

/// The caller's answer, given once: by the lease (its body's result or error) or by the timer.
private final class LeaseOutcome<Result: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Result, any Error>?
        var early: Swift.Result<Result, any Error>?
        var given = false
    }

    private let state = Mutex(State())

    func wait(_ continuation: CheckedContinuation<Result, any Error>) {
        let early = self.state.withLock { state -> Swift.Result<Result, any Error>? in
            if let early = state.early { return early }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func give(_ result: Swift.Result<Result, any Error>) {
        let continuation = self.state.withLock { state -> CheckedContinuation<Result, any Error>? in
            guard !state.given else { return nil }
            state.given = true
            guard let continuation = state.continuation else {
                state.early = result
                return nil
            }
            state.continuation = nil
            return continuation
        }
        continuation?.resume(with: result)
    }
}

/// Whether `error` says the event store could not be reached (no connection within the bound, a
/// connection lost or refused), as opposed to a refusal by the store itself.
public func isStoreUnavailable(_ error: any Error) -> Bool {
    if case EventStoreError.unavailable = error { return true }
    if let error = error as? PSQLError { return PostgresEventStore.isLostConnection(error) }
    if let error = error as? PostgresTransactionError {
        return [error.beginError, error.closureError, error.commitError, error.rollbackError].contains { $0.map(isStoreUnavailable) ?? false }
    }
    return false
}
