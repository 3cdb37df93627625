import PostgresNIO
import Synchronization

extension PostgresClient {
    /// `withConnection`, but waiting at most `limit` for a connection: postgres-nio otherwise waits
    /// for as long as the server is down, and a command held that long was appended when the
    /// server came back, after its caller had given up (and perhaps retried). Past the limit the
    /// lease is cancelled and `EventStoreError.unavailable` thrown: nothing was sent. Once leased,
    /// `body` runs to its end.
    func withConnection<Result: Sendable>(
        leasedWithin limit: Duration, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let leased = LeaseFlag()
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                try await self.withConnection { connection in
                    leased.flag.store(true, ordering: .sequentiallyConsistent)
                    return try await body(connection)
                }
            }
            group.addTask {
                try await Task.sleep(for: limit)
                if !leased.flag.load(ordering: .sequentiallyConsistent) { throw EventStoreError.unavailable(waited: limit) }
                return nil
            }
            defer { group.cancelAll() }
            while let value = try await group.next() {
                if let value { return value }
            }
            throw EventStoreError.unavailable(waited: limit)
        }
    }
}

/// Set once a connection was leased (shared by the lease and its timer).
private final class LeaseFlag: Sendable {
    let flag = Atomic(false)
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
