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
        let answer = Deadline.Answer<Result>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
                answer.wait(continuation)
                let lease = Task {
                    do {
                        let value = try await self.withConnection { connection in
                            guard claim.take(.leased) else { throw EventStoreError.unavailable(waited: limit) }
                            return try await body(connection)
                        }
                        answer.give(.success(value))
                    } catch {
                        answer.give(.failure(error))
                    }
                }
                Task {
                    try? await Task.sleep(for: limit)
                    if claim.take(.timedOut) {
                        answer.give(.failure(EventStoreError.unavailable(waited: limit)))
                        lease.cancel()
                    }
                }
            }
        } onCancel: {
            // A caller that is gone stops waiting; a lease not yet claimed will not run its body.
            if claim.take(.timedOut) { answer.give(.failure(CancellationError())) }
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

/// Whether `error` says the event store could not be reached (no connection within the bound, a
/// connection lost or refused), as opposed to a refusal by the store itself.
public func isStoreUnavailable(_ error: any Error) -> Bool {
    if case EventStoreError.unavailable = error { return true }
    if error is DeadlinePassed { return true }
    if let error = error as? PSQLError { return PostgresEventStore.isLostConnection(error) }
    if let error = error as? PostgresTransactionError {
        return [error.beginError, error.closureError, error.commitError, error.rollbackError].contains { $0.map(isStoreUnavailable) ?? false }
    }
    return false
}
