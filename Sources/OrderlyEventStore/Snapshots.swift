import PostgresNIO

/// An aggregate's folded state saved at a stream version, so that a load reads only the events
/// after it. A cache of the log, never the truth: a lost or ignored snapshot costs a longer fold.
public struct StreamSnapshot: Sendable, Equatable {
    public var streamID: String
    /// The aggregate and the version of its fold that wrote it (a snapshot of another is ignored).
    public var schema: String
    public var streamVersion: Int64
    /// The state as JSON.
    public var state: [UInt8]

    public init(streamID: String, schema: String, streamVersion: Int64, state: [UInt8]) {
        self.streamID = streamID
        self.schema = schema
        self.streamVersion = streamVersion
        self.state = state
    }
}

/// A store that keeps one snapshot per stream.
public protocol SnapshotStore: Sendable {
    func loadSnapshot(of stream: String) async throws -> StreamSnapshot?
    /// Keeps `snapshot` unless the kept one has the same schema and a later version. One of another
    /// schema is replaced: the newest code's fold wins.
    func saveSnapshot(_ snapshot: StreamSnapshot) async throws
}

extension PostgresEventStore: SnapshotStore {
    public func loadSnapshot(of stream: String) async throws -> StreamSnapshot? {
        try await Deadline.run(within: Self.statementDeadline, timeout: { DeadlinePassed("loadSnapshot", limit: Self.statementDeadline) }) {
            let rows = try await self.client.query(
                "SELECT schema, stream_version, state::text FROM snapshots WHERE stream_id = \(stream)", logger: self.logger)
            for try await (schema, version, state) in rows.decode((String, Int64, String).self) {
                return StreamSnapshot(streamID: stream, schema: schema, streamVersion: version, state: Array(state.utf8))
            }
            return nil
        }
    }

    public func saveSnapshot(_ snapshot: StreamSnapshot) async throws {
        let state = String(decoding: snapshot.state, as: UTF8.self)
        try await Deadline.run(within: Self.statementDeadline, timeout: { DeadlinePassed("saveSnapshot", limit: Self.statementDeadline) }) {
            try await self.client.run(
                """
                INSERT INTO snapshots (stream_id, schema, stream_version, state)
                VALUES (\(snapshot.streamID), \(snapshot.schema), \(snapshot.streamVersion), \(state)::jsonb)
                ON CONFLICT (stream_id) DO UPDATE
                SET schema = EXCLUDED.schema, stream_version = EXCLUDED.stream_version, state = EXCLUDED.state, taken_at = now()
                WHERE snapshots.schema <> EXCLUDED.schema OR snapshots.stream_version < EXCLUDED.stream_version
                """, logger: self.logger)
        }
    }
}
