import OrderlyEventStore

/// A command's answer within `limit`, whatever its dependencies do: the store fails an append that
/// waited too long for a connection (unsent) after 4 s; this bound (10 s: a loaded 2-core machine took over 3 s for healthy commands) covers the rest (a read of the
/// aggregate, a server that accepted the statement and then stopped answering). The command itself is
/// not awaited past the bound: its outcome is then unknown to the caller, who is told so (503 with a
/// hint to retry with the same Idempotency-Key). The readiness checks use it too.
enum CommandDeadline: Error {
    case passed(Duration)

    static let limit: Duration = .seconds(10)

    static func run<Result: Sendable>(limit: Duration = Self.limit, _ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
        try await Deadline.run(within: limit, timeout: { CommandDeadline.passed(limit) }, body)
    }
}
