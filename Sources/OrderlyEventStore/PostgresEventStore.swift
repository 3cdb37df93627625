import Foundation
import Logging
import PostgresNIO

/// The event log in PostgreSQL (schema in `migrations/`).
///
/// Concurrency: each append first writes its stream's row in `streams` (insert for a new stream,
/// `UPDATE ... WHERE version = expected` for an exact version). That row lock serialises writers of one
/// stream only, gives a clean conflict with the actual version, and, being the transaction's first
/// write, also fixes its transaction id: the writer holding a stream's row always has a lower
/// transaction id than one waiting for it, so (transaction id, position) order keeps every stream in
/// version order. `UNIQUE (stream_id, stream_version)` is the backstop.
///
/// Tailing: `readAll` returns only rows whose writing transaction is below the oldest transaction
/// still running (`pg_snapshot_xmin(pg_current_snapshot())`), ordered by (transaction id, position).
/// A slow transaction that holds a low position is therefore waited for instead of skipped, which a
/// "highest position seen" reader would do. The cost: one long-running writer anywhere in the database
/// holds readers back, so the server runs with `idle_in_transaction_session_timeout`.
public struct PostgresEventStore: EventStore {
    public let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public func append(_ events: [NewEvent], to stream: String, expecting expected: ExpectedVersion) async throws -> AppendResult {
        guard !events.isEmpty else { throw EventStoreError.emptyAppend }
        let count = Int64(events.count)
        let encoder = JSONEncoder()
        var metadata: [String] = []
        metadata.reserveCapacity(events.count)
        for event in events {
            metadata.append(String(decoding: try encoder.encode(event.metadata), as: UTF8.self))
        }
        let ids = events.map(\.id)
        let types = events.map(\.type)
        let schemaVersions = events.map { Int32($0.schemaVersion) }
        let data = events.map { String(decoding: $0.data, as: UTF8.self) }
        do {
            return try await self.client.withTransaction(logger: self.logger) { connection in
                let newVersion = try await Self.claimStream(stream, expected: expected, count: count, on: connection, logger: self.logger)
                let firstVersion = newVersion - count + 1
                let versions = (0..<count).map { firstVersion + $0 }
                let streams = [String](repeating: stream, count: events.count)
                let rows = try await connection.query(
                    """
                    INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, data, metadata)
                    SELECT * FROM unnest(\(ids)::uuid[], \(streams)::text[], \(versions)::int8[], \(types)::text[],
                                         \(schemaVersions)::int4[], \(data)::text[]::jsonb[], \(metadata)::text[]::jsonb[])
                    RETURNING position
                    """,
                    logger: self.logger
                )
                var last: Int64 = 0
                for try await position in rows.decode(Int64.self) { last = max(last, position) }
                return AppendResult(streamVersion: newVersion, position: last)
            }
        } catch let error as PostgresTransactionError {
            if let closureError = error.closureError {
                throw try await self.translate(closureError, stream: stream, expected: expected)
            }
            throw error
        }
    }

    /// Moves the stream's version forward by `count`, or throws `wrongExpectedVersion`. Returns the new version.
    private static func claimStream(
        _ stream: String, expected: ExpectedVersion, count: Int64, on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64 {
        let rows: PostgresRowSequence
        switch expected {
        case .any:
            rows = try await connection.query(
                """
                INSERT INTO streams (stream_id, version) VALUES (\(stream), \(count))
                ON CONFLICT (stream_id) DO UPDATE SET version = streams.version + EXCLUDED.version
                RETURNING version
                """, logger: logger)
        case .noStream, .exact(0):
            rows = try await connection.query(
                """
                INSERT INTO streams (stream_id, version) VALUES (\(stream), \(count))
                ON CONFLICT (stream_id) DO NOTHING RETURNING version
                """, logger: logger)
        case .exact(let version):
            rows = try await connection.query(
                """
                UPDATE streams SET version = version + \(count)
                WHERE stream_id = \(stream) AND version = \(version) RETURNING version
                """, logger: logger)
        }
        for try await version in rows.decode(Int64.self) { return version }
        let actual = try await Self.currentVersion(stream, on: connection, logger: logger)
        throw EventStoreError.wrongExpectedVersion(stream: stream, expected: expected, actual: actual)
    }

    private static func currentVersion(_ stream: String, on connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        let rows = try await connection.query("SELECT version FROM streams WHERE stream_id = \(stream)", logger: logger)
        for try await version in rows.decode(Int64.self) { return version }
        return 0
    }

    /// A unique violation on (stream_id, stream_version) is a lost race: report it as the conflict it is.
    private func translate(_ error: any Error, stream: String, expected: ExpectedVersion) async throws -> any Error {
        if let error = error as? PSQLError, error.serverInfo?[.sqlState] == "23505" {
            let actual = try await self.client.withConnection { connection in
                try await Self.currentVersion(stream, on: connection, logger: self.logger)
            }
            return EventStoreError.wrongExpectedVersion(stream: stream, expected: expected, actual: actual)
        }
        return error
    }

    public func readStream(_ stream: String, from version: Int64) async throws -> [RecordedEvent] {
        let rows = try await self.client.query(
            """
            SELECT \(unescaped: Self.columns) FROM events
            WHERE stream_id = \(stream) AND stream_version >= \(version)
            ORDER BY stream_version
            """, logger: self.logger)
        return try await Self.decode(rows)
    }

    public func readAll(after cursor: LogCursor, limit: Int) async throws -> [RecordedEvent] {
        let transactionID = String(cursor.transactionID)
        let rows = try await self.client.query(
            """
            SELECT \(unescaped: Self.columns) FROM events
            WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              AND (transaction_id, position) > (\(transactionID)::xid8, \(cursor.position))
            ORDER BY transaction_id, position
            LIMIT \(limit)
            """, logger: self.logger)
        return try await Self.decode(rows)
    }

    public func loadCheckpoint(_ name: String) async throws -> LogCursor {
        let rows = try await self.client.query(
            "SELECT transaction_id::text, position FROM checkpoints WHERE name = \(name)", logger: self.logger)
        for try await (transactionID, position) in rows.decode((String, Int64).self) {
            return LogCursor(transactionID: UInt64(transactionID) ?? 0, position: position)
        }
        return .start
    }

    public func saveCheckpoint(_ name: String, _ cursor: LogCursor) async throws {
        let transactionID = String(cursor.transactionID)
        try await self.client.query(
            """
            INSERT INTO checkpoints (name, transaction_id, position) VALUES (\(name), \(transactionID)::xid8, \(cursor.position))
            ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, position = EXCLUDED.position,
                                             updated_at = now()
            """, logger: self.logger)
    }

    public func ping() async throws {
        try await self.client.query("SELECT 1", logger: self.logger)
    }

    private static let columns = """
        position, transaction_id::text, event_id, stream_id, stream_version, event_type, schema_version,
        data::text, metadata::text, recorded_at
        """

    private static func decode(_ rows: PostgresRowSequence) async throws -> [RecordedEvent] {
        let decoder = JSONDecoder()
        var events: [RecordedEvent] = []
        for try await (position, transactionID, id, stream, version, type, schemaVersion, data, metadata, recordedAt) in rows.decode(
            (Int64, String, UUID, String, Int64, String, Int32, String, String, Date).self)
        {
            events.append(
                RecordedEvent(
                    id: id, streamID: stream, streamVersion: version, position: position,
                    transactionID: UInt64(transactionID) ?? 0, type: type, schemaVersion: Int(schemaVersion),
                    data: Data(data.utf8), metadata: try decoder.decode(EventMetadata.self, from: Data(metadata.utf8)),
                    recordedAt: recordedAt
                )
            )
        }
        return events
    }
}
