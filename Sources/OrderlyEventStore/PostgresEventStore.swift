import Foundation
import Logging
import Metrics
import OrderlyDomain
import PostgresNIO
import Synchronization

/// The event log in PostgreSQL (schema in `migrations/`).
///
/// Appending: concurrent appends go together (`GroupCommit`), one call of `orderly_append_batch`
/// (migrations/0005) for all of them: one statement, one transaction, one commit. It takes no lock:
/// each command's version is read in the statement's snapshot, the `UNIQUE (stream_id,
/// stream_version)` and idempotency-key indexes catch a concurrent writer, and a batch that fails
/// that way is appended again one command at a time with `orderly_append` (migrations/0004), which
/// first takes a transaction-scoped advisory lock on its stream and so waits instead of failing. Both
/// keep every stream in version order in (transaction id, position) order: a transaction gets its id
/// at its first write, after it saw the stream's previous version committed (the batch) or after it
/// got the lock (the single append). An idempotency key is stored in the same transaction as the
/// events.
///
/// Tailing: `readAll` returns only rows whose writing transaction is below the oldest transaction
/// still running (`pg_snapshot_xmin(pg_current_snapshot())`), ordered by (transaction id, position).
/// A slow transaction that holds a low position is therefore waited for instead of skipped, which a
/// "highest position seen" reader would do. The cost: one long-running writer anywhere in the database
/// holds readers back, so the server runs with `idle_in_transaction_session_timeout`.
public struct PostgresEventStore: EventStore {
    public let client: PostgresClient
    let logger: Logger
    let groupCommit: GroupCommit

    /// `connectionWait`: how long an append waits for a connection before it fails, unsent, with
    /// `EventStoreError.unavailable` (the api answers 503 `store-unavailable`).
    public init(client: PostgresClient, logger: Logger, connectionWait: Duration = .seconds(4)) {
        self.client = client
        self.logger = logger
        self.groupCommit = GroupCommit(client: client, logger: logger, connectionWait: connectionWait)
    }

    public func append(
        _ events: [NewEvent], to stream: String, expecting expected: ExpectedVersion, idempotency: IdempotencyKey?
    ) async throws -> AppendResult {
        guard TraceContext.enabled else { return try await self.appendUntraced(events, to: stream, expecting: expected, idempotency: idempotency) }
        // The events carry the appending span's context on (the relay and the consumers continue the
        // trace from it), not the database call's.
        let stamped = TraceContext.stamped(events)
        return try await TraceContext.databaseCall(system: "postgresql", operation: "INSERT", collection: "events") {
            try await self.appendUntraced(stamped, to: stream, expecting: expected, idempotency: idempotency)
        }
    }

    private func appendUntraced(
        _ events: [NewEvent], to stream: String, expecting expected: ExpectedVersion, idempotency: IdempotencyKey?
    ) async throws -> AppendResult {
        guard !events.isEmpty else { throw EventStoreError.emptyAppend }
        // Metadata JSON written by hand: JSONEncoder was a visible share of a single append's CPU.
        var metadata: [String] = []
        metadata.reserveCapacity(events.count)
        for event in events {
            var json = JSONWriter(capacity: 160)
            json.object { json in
                json.field("correlationId", event.metadata.correlationId)
                json.field("causationId", event.metadata.causationId)
                json.field("actor", event.metadata.actor)
                json.field("partitionKey", event.metadata.partitionKey)
                json.field("traceparent", event.metadata.traceparent)
            }
            metadata.append(String(decoding: json.bytes, as: UTF8.self))
        }
        let expectedVersion: Int64? =
            switch expected {
            case .any: nil
            case .noStream: 0
            case .exact(let version): version
            }
        let call = AppendCall(
            stream: stream, expected: expectedVersion, ids: events.map(\.id), types: events.map(\.type),
            schemaVersions: events.map { Int32($0.schemaVersion) }, data: events.map { String(decoding: $0.data, as: UTF8.self) },
            metadata: metadata, idempotencyKey: idempotency?.key, request: idempotency?.request)
        let result = try await self.groupCommit.append(call, expected: expected)
        if !result.isReplay { self.recordAppended(events, result) }
        return result
    }

    /// One log line and a count per type for every append that wrote events: with the correlation id
    /// (the order) and causation id in each line, one order's saga reads across every process's log.
    private func recordAppended(_ events: [NewEvent], _ result: AppendResult) {
        for event in events { AppendedCounters.counter(event.type).increment() }
        guard self.logger.logLevel <= .info, let first = events.first else { return }
        self.logger.info(
            "appended",
            metadata: [
                "stream": "\(result.streamID)", "streamVersion": "\(result.streamVersion)", "position": "\(result.position)",
                "eventTypes": .array(events.map { .string($0.type) }), "correlationId": "\(first.metadata.correlationId ?? "")",
                "causationId": "\(first.metadata.causationId ?? "")", "actor": "\(first.metadata.actor ?? "")",
            ])
    }

    /// Appends one command in its own transaction (`orderly_append`).
    ///
    /// In doubt (the connection dropped after the server may have committed, here or in the batch
    /// that sent this command first), every event's own id settles it: the retry finds them stored
    /// (the `event_id` unique index refuses them again, or the stream is past the expected version)
    /// and answers the positions they got, so a command is stored exactly once and never reported
    /// as a false conflict, with or without an idempotency key.
    static func appendAlone(
        _ call: AppendCall, expected: ExpectedVersion, client: PostgresClient, connectionWait: Duration, logger: Logger
    ) async throws -> AppendResult {
        var attempt = 1
        var connectionAttempts = 1
        while true {
            do {
                return try await Self.run(call, client: client, connectionWait: connectionWait, logger: logger)
            } catch let error as PSQLError where Self.mayBeStoredAlready(error) {
                if let stored = try await Self.stored(call, client: client, logger: logger) { return stored }
                guard attempt < 8, Self.isLostRace(error, key: call.idempotencyKey) else {
                    throw Self.translate(error, stream: call.stream, expected: expected, key: call.idempotencyKey)
                }
                // Another writer committed first: a batch (which takes no lock) wrote this stream's
                // next version, or another request with the same key went through. Asking again reads
                // what is there now: the next version, the key's first result, or a genuine conflict.
                attempt += 1
            } catch let error as PSQLError where Self.isLostConnection(error) && connectionAttempts < 3 && !Task.isCancelled {
                // The answer was lost with the connection: the next attempt, on another one, finds
                // out whether this command's transaction committed.
                connectionAttempts += 1
                try await Task.sleep(for: .milliseconds(100))
            } catch let error as DeadlinePassed {
                // No answer within the bound (the connection is closed now): in doubt, but not sent
                // again. By now the caller may have been told the outcome is unknown, and a command
                // stored long after that would be a late surprise. Stored, its positions are the answer.
                if let stored = try await Self.stored(call, client: client, logger: logger) { return stored }
                throw error
            } catch let error as PSQLError {
                throw Self.translate(error, stream: call.stream, expected: expected, key: call.idempotencyKey)
            }
        }
    }

    /// Errors after which the command's events may already be in the log: a unique violation (of the
    /// event id, or a race) and a wrong expected version.
    private static func mayBeStoredAlready(_ error: PSQLError) -> Bool {
        let state = error.serverInfo?[.sqlState]
        return state == "23505" || state == "OR001"
    }

    /// The connection ended before an answer: the command may or may not have committed.
    static func isLostConnection(_ error: PSQLError) -> Bool {
        [.serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .connectionError].contains(error.code)
    }

    /// The command's result if its events are already stored (all of them: an append is atomic).
    static func stored(_ call: AppendCall, client: PostgresClient, logger: Logger) async throws -> AppendResult? {
        let found = try await Deadline.run(within: statementDeadline, timeout: { DeadlinePassed("the in-doubt lookup", limit: statementDeadline) }) {
            var found: [(String, Int64, Int64)] = []
            let rows = try await client.query(
                "SELECT stream_id, stream_version, position FROM events WHERE event_id = ANY(\(call.ids)) ORDER BY stream_version",
                logger: logger)
            for try await row in rows.decode((String, Int64, Int64).self) { found.append(row) }
            return found
        }
        guard found.count == call.ids.count, let last = found.last, found.allSatisfy({ $0.0 == call.stream }) else { return nil }
        logger.notice(
            "an append in doubt was found stored; answering its positions",
            metadata: ["stream": "\(call.stream)", "position": "\(last.2)"])
        return AppendResult(streamID: last.0, streamVersion: last.1, position: last.2, isReplay: false)
    }

    /// One call of `orderly_append` (migrations/0002), which appends in one round trip. Prepared once
    /// per connection, so the server parses and plans it once.
    struct AppendCall: PostgresPreparedStatement {
        typealias Row = (String, Int64, Int64, Bool)

        static let sql = """
            SELECT out_stream, out_version, out_position, out_replayed
            FROM orderly_append($1, $2, $3, $4, $5, $6::text[]::jsonb[], $7::text[]::jsonb[], $8, $9)
            """
        static let bindingDataTypes: [PostgresDataType] = [.text, .int8, .uuidArray, .textArray, .int4Array, .textArray, .textArray, .text, .text]

        var stream: String
        var expected: Int64?
        var ids: [UUID]
        var types: [String]
        var schemaVersions: [Int32]
        var data: [String]
        var metadata: [String]
        var idempotencyKey: String?
        var request: String?

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 9)
            bindings.append(self.stream)
            bindings.append(self.expected)
            bindings.append(self.ids)
            bindings.append(self.types)
            bindings.append(self.schemaVersions)
            bindings.append(self.data)
            bindings.append(self.metadata)
            bindings.append(self.idempotencyKey)
            bindings.append(self.request)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            try row.decode(Row.self)
        }
    }

    /// In a transaction of its own, answered once its COMMIT is: postgres-nio ends a statement's rows
    /// before the implicit commit that follows it, so without the explicit COMMIT an append whose
    /// commit failed would be reported as stored. Three round trips; this path is for the rare
    /// command a batch could not take.
    private static func run(_ call: AppendCall, client: PostgresClient, connectionWait: Duration, logger: Logger) async throws -> AppendResult {
        do {
            return try await client.withConnection(leasedWithin: connectionWait) { connection in
                do {
                    // Bounded: a statement written to a connection that had just closed is never
                    // answered. Past the bound the connection is closed, and the command is in doubt
                    // like one whose connection broke (`appendAlone` finds out by its event ids).
                    return try await Deadline.run(within: statementDeadline, timeout: { DeadlinePassed("an append", limit: statementDeadline) }) {
                        try await connection.withTransaction(logger: logger) { connection in
                            var result: AppendResult?
                            for try await (stream, version, position, replayed) in try await connection.execute(call, logger: logger) {
                                result = AppendResult(streamID: stream, streamVersion: version, position: position, isReplay: replayed)
                            }
                            guard let result else { throw EventStoreError.emptyAppend }
                            return result
                        }
                    }
                } catch let error as DeadlinePassed {
                    try? await connection.close()
                    throw error
                }
            }
        } catch let error as PostgresTransactionError {
            // The function's own errors and lost races are told apart by their SQLSTATE.
            throw error.closureError ?? error.commitError ?? error.beginError ?? error
        }
    }

    /// A unique-index race, or (with a key) a conflict that the key's first request may explain.
    private static func isLostRace(_ error: PSQLError, key: String?) -> Bool {
        let state = error.serverInfo?[.sqlState]
        return state == "23505" || (key != nil && state == "OR001")
    }

    /// Maps the function's own SQLSTATEs (and a lost unique-index race) to typed errors.
    private static func translate(_ error: PSQLError, stream: String, expected: ExpectedVersion, key: String?) -> any Error {
        switch error.serverInfo?[.sqlState] {
        case "OR001":
            let actual = error.serverInfo?[.detail].flatMap { Int64($0) } ?? 0
            return EventStoreError.wrongExpectedVersion(stream: stream, expected: expected, actual: actual)
        case "OR002":
            return EventStoreError.idempotencyKeyReused(key: key ?? "")
        case "23505" where error.serverInfo?[.constraintName] == "events_stream_id_stream_version_key":
            // Lost the race eight times running; report what we know.
            return EventStoreError.wrongExpectedVersion(stream: stream, expected: expected, actual: -1)
        default:
            return error
        }
    }

    /// Reads and checkpoints answer within this, or fail (the caller retries): a statement sent on
    /// a connection the server had just dropped is never answered otherwise, and a relay or a
    /// service waiting on it stood still for good after a PostgreSQL outage.
    static let statementDeadline: Duration = .seconds(15)

    public func readStream(_ stream: String, from version: Int64, limit: Int) async throws -> [RecordedEvent] {
        try await TraceContext.databaseCall(system: "postgresql", operation: "SELECT", collection: "events") {
            try await Deadline.run(within: Self.statementDeadline, timeout: { DeadlinePassed("readStream", limit: Self.statementDeadline) }) {
                try await self.readStreamUnbounded(stream, from: version, limit: limit)
            }
        }
    }

    public func readAll(after cursor: LogCursor, limit: Int, matching filter: EventFilter) async throws -> [RecordedEvent] {
        try await Deadline.run(within: Self.statementDeadline, timeout: { DeadlinePassed("readAll", limit: Self.statementDeadline) }) {
            try await self.readAllUnbounded(after: cursor, limit: limit, matching: filter)
        }
    }

    public func latestPosition() async throws -> Int64 {
        try await Deadline.run(within: Self.statementDeadline, timeout: { DeadlinePassed("latestPosition", limit: Self.statementDeadline) }) {
            try await self.latestPositionUnbounded()
        }
    }

    public func loadCheckpoint(_ name: String) async throws -> LogCursor {
        try await Deadline.run(within: Self.statementDeadline, timeout: { DeadlinePassed("loadCheckpoint", limit: Self.statementDeadline) }) {
            try await self.loadCheckpointUnbounded(name)
        }
    }

    public func saveCheckpoint(_ name: String, _ cursor: LogCursor) async throws {
        try await Deadline.run(within: Self.statementDeadline, timeout: { DeadlinePassed("saveCheckpoint", limit: Self.statementDeadline) }) {
            try await self.saveCheckpointUnbounded(name, cursor)
        }
    }

    private func readStreamUnbounded(_ stream: String, from version: Int64, limit: Int) async throws -> [RecordedEvent] {
        let rows = try await self.client.query(
            """
            SELECT \(unescaped: Self.columns) FROM events
            WHERE stream_id = \(stream) AND stream_version >= \(version)
            ORDER BY events.stream_version LIMIT \(Int64(limit))
            """, logger: self.logger)
        return try await Self.decode(rows)
    }

    private func readAllUnbounded(after cursor: LogCursor, limit: Int, matching filter: EventFilter) async throws -> [RecordedEvent] {
        // The horizon comes from its own, earlier statement: every transaction below it had finished
        // before the read below takes its snapshot, so each committed row under it is visible to that
        // read, whatever the server does inside one statement. One extra round trip per batch.
        var horizon: String?
        for try await value in try await self.client.query(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text", logger: self.logger
        ).decode(String.self) {
            horizon = value
        }
        guard let horizon else { return [] }
        let transactionID = String(cursor.transactionID)
        let rows = try await self.client.query(
            """
            SELECT \(unescaped: Self.columns) FROM events
            WHERE transaction_id < \(horizon)::xid8
              AND (transaction_id, position) > (\(transactionID)::xid8, \(cursor.position))
              \(filter: filter)
            ORDER BY events.transaction_id, events.position
            LIMIT \(limit)
            """, logger: self.logger)
        return try await Self.decode(rows)
    }

    public func cursor(atPosition position: Int64) async throws -> LogCursor? {
        let rows = try await self.client.query(
            "SELECT transaction_id::text FROM events WHERE position = \(position)", logger: self.logger)
        for try await transactionID in rows.decode(String.self) {
            return LogCursor(transactionID: UInt64(transactionID) ?? 0, position: position)
        }
        return nil
    }

    public func scan(matching filter: EventFilter, _ body: (RecordedEvent) throws -> Void) async throws {
        // One statement, so one snapshot; postgres-nio reads the rows off the socket only as they are
        // consumed, so a history of any size streams through in constant memory.
        let rows = try await self.client.query(
            """
            SELECT \(unescaped: Self.columns) FROM events
            WHERE TRUE \(filter: filter)
            ORDER BY events.position
            """, logger: self.logger)
        for try await row in rows {
            try body(try Self.event(from: row))
        }
    }

    public func count(matching filter: EventFilter) async throws -> Int64 {
        let rows = try await self.client.query(
            """
            SELECT count(*) FROM events
            WHERE TRUE \(filter: filter)
            """, logger: self.logger)
        for try await count in rows.decode(Int64.self) { return count }
        return 0
    }

    /// A filter as query parameters: NULL for a part that matches everything (unnamed statements are
    /// planned with their values, so the server drops those conditions).
    fileprivate struct FilterParts {
        var types: [String]?
        var streamPattern: String?
        var recordedFrom: Date?
        var recordedBefore: Date?
        var fromPosition: Int64?
        var toPosition: Int64?

        init(_ filter: EventFilter) {
            self.types = filter.types.isEmpty ? nil : filter.types
            self.streamPattern = filter.streamPrefix.map { prefix in
                // LIKE's wildcards and its escape character are literal in a prefix.
                var pattern = ""
                for character in prefix {
                    if character == "%" || character == "_" || character == "\\" { pattern.append("\\") }
                    pattern.append(character)
                }
                return pattern + "%"
            }
            self.recordedFrom = filter.recordedFrom
            self.recordedBefore = filter.recordedBefore
            self.fromPosition = filter.fromPosition
            self.toPosition = filter.toPosition
        }
    }

    public func openStreams(startedBy startType: String, in window: Range<Date>, lacking endTypes: [String], limit: Int) async throws
        -> [OpenStream]
    {
        let rows = try await self.client.query(
            """
            SELECT started.stream_id, started.recorded_at FROM events AS started
            WHERE started.event_type = \(startType) AND started.recorded_at >= \(window.lowerBound)
              AND started.recorded_at < \(window.upperBound)
              AND NOT EXISTS (
                SELECT 1 FROM events AS ended WHERE ended.stream_id = started.stream_id AND ended.event_type = ANY(\(endTypes)))
            ORDER BY started.recorded_at LIMIT \(limit)
            """, logger: self.logger)
        var open: [OpenStream] = []
        for try await (stream, startedAt) in rows.decode((String, Date).self) {
            open.append(OpenStream(streamID: stream, startedAt: startedAt))
        }
        return open
    }

    private func latestPositionUnbounded() async throws -> Int64 {
        for try await position in try await self.client.query("SELECT coalesce(max(position), 0) FROM events", logger: self.logger)
            .decode(Int64.self)
        {
            return position
        }
        return 0
    }

    private func loadCheckpointUnbounded(_ name: String) async throws -> LogCursor {
        let rows = try await self.client.query(
            "SELECT transaction_id::text, position FROM checkpoints WHERE name = \(name)", logger: self.logger)
        for try await (transactionID, position) in rows.decode((String, Int64).self) {
            return LogCursor(transactionID: UInt64(transactionID) ?? 0, position: position)
        }
        return .start
    }

    private func saveCheckpointUnbounded(_ name: String, _ cursor: LogCursor) async throws {
        let transactionID = String(cursor.transactionID)
        try await self.client.query(
            """
            INSERT INTO checkpoints (name, transaction_id, position) VALUES (\(name), \(transactionID)::xid8, \(cursor.position))
            ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, position = EXCLUDED.position,
                                             updated_at = now()
            """, logger: self.logger)
    }

    public func ping() async throws {
        try await self.client.run("SELECT 1", logger: self.logger)
    }

    private static let columns = """
        position, transaction_id::text AS transaction_text, event_id, stream_id, stream_version, event_type, schema_version,
        data::text, metadata->>'correlationId', metadata->>'causationId', metadata->>'actor', metadata->>'partitionKey',
        metadata->>'traceparent', recorded_at
        """

    private static func decode(_ rows: PostgresRowSequence) async throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        for try await row in rows { events.append(try Self.event(from: row)) }
        return events
    }

    /// One row of `columns`. Metadata fields come out as columns: no JSON parsing per row on the
    /// relay's hot path.
    private static func event(from row: PostgresRow) throws -> RecordedEvent {
        // Column by column with concrete types: decoding the whole row as one 13-value tuple went
        // through generic metadata at run time, a tenth of an export's CPU. The data column comes
        // as raw bytes (one copy into `Data`, no String in between).
        var cells = row.makeIterator()
        func next<Value: PostgresDecodable>(_ type: Value.Type) throws -> Value {
            guard let cell = cells.next() else { throw PostgresEventStoreError.missingColumn }
            return try cell.decode(type, context: .default)
        }
        let position = try next(Int64.self)
        let transactionID = try next(String.self)
        let id = try next(UUID.self)
        let stream = try next(String.self)
        let version = try next(Int64.self)
        let type = try next(String.self)
        let schemaVersion = try next(Int32.self)
        let data = try next(ByteBuffer.self)
        let metadata = EventMetadata(
            correlationId: try next(String?.self), causationId: try next(String?.self), actor: try next(String?.self),
            partitionKey: try next(String?.self), traceparent: try next(String?.self))
        let recordedAt = try next(Date.self)
        return RecordedEvent(
            id: id, streamID: stream, streamVersion: version, position: position, transactionID: UInt64(transactionID) ?? 0,
            type: type, schemaVersion: Int(schemaVersion), data: Data(data.readableBytesView), metadata: metadata, recordedAt: recordedAt)
    }
}

enum PostgresEventStoreError: Error {
    case missingColumn
}

extension PostgresQuery.StringInterpolation {
    /// ` AND <condition>` for each part of an event filter, the one place `readAll`, `scan` and `count`
    /// take their filtering from.
    fileprivate mutating func appendInterpolation(filter: EventFilter) {
        let parts = PostgresEventStore.FilterParts(filter)
        self.unlessNull(parts.types, "::text[]", "event_type = ANY(", ")")
        self.unlessNull(parts.streamPattern, "::text", "stream_id LIKE ")
        self.unlessNull(parts.recordedFrom, "::timestamptz", "recorded_at >= ")
        self.unlessNull(parts.recordedBefore, "::timestamptz", "recorded_at < ")
        // Not `position BETWEEN min AND max` when unbounded: on a table not yet analyzed the planner
        // guesses 0.5% of rows for any range, and for the relay's read it then sorted the whole log
        // instead of walking the (transaction id, position) index: 0.5 s a batch instead of 18 ms.
        self.unlessNull(parts.fromPosition, "::int8", "position >= ")
        self.unlessNull(parts.toPosition, "::int8", "position <= ")
    }

    /// ` AND (value IS NULL OR <test>value<close>)`: a NULL part matches everything.
    private mutating func unlessNull<Value: PostgresDynamicTypeEncodable>(
        _ value: Value?, _ cast: String, _ test: String, _ close: String = ""
    ) {
        self.appendLiteral(" AND (")
        self.appendInterpolation(value)
        self.appendLiteral("\(cast) IS NULL OR \(test)")
        self.appendInterpolation(value)
        self.appendLiteral("\(cast)\(close))")
    }
}

/// `orderly_events_appended_total` by event type, each made once: making a metric validates its name
/// and labels every time, which an append should not pay for.
enum AppendedCounters {
    private static let byType = Mutex<[String: Counter]>([:])

    static func counter(_ type: String) -> Counter {
        self.byType.withLock { counters in
            if let counter = counters[type] { return counter }
            let counter = Counter(label: "orderly_events_appended_total", dimensions: [("type", type)])
            counters[type] = counter
            return counter
        }
    }
}
