import Logging
import PostgresNIO

/// Running a statement for its effect. postgres-nio returns from `query` as soon as the rows'
/// description arrives; an error the statement raises while it runs (a function's RAISE, a unique
/// violation) comes after that, among the rows, and is lost unless they are read. In a transaction
/// that loss is silent: the transaction is aborted and its COMMIT quietly rolls back.
extension PostgresConnection {
    public func run(_ statement: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(statement, logger: logger) {}
    }
}

extension PostgresClient {
    public func run(_ statement: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(statement, logger: logger) {}
    }
}
