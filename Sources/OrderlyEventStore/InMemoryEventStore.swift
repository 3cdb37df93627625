import Foundation
import Synchronization

/// The event store in memory, for fast unit tests. It follows the same contract as the PostgreSQL store.
public final class InMemoryEventStore: EventStore, SnapshotStore {
    private struct State {
        var events: [RecordedEvent] = []
        var versions: [String: Int64] = [:]
        var checkpoints: [String: LogCursor] = [:]
        var snapshots: [String: StreamSnapshot] = [:]
        var idempotencyKeys: [String: (request: String, result: AppendResult)] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public func append(
        _ events: [NewEvent], to stream: String, expecting expected: ExpectedVersion, idempotency: IdempotencyKey?
    ) async throws -> AppendResult {
        guard !events.isEmpty else { throw EventStoreError.emptyAppend }
        return try self.state.withLock { state in
            if let idempotency, let earlier = state.idempotencyKeys[idempotency.key] {
                guard earlier.request == idempotency.request else { throw EventStoreError.idempotencyKeyReused(key: idempotency.key) }
                var replay = earlier.result
                replay.isReplay = true
                return replay
            }
            let current = state.versions[stream] ?? 0
            let matches =
                switch expected {
                case .any: true
                case .noStream: current == 0
                case .exact(let version): current == version
                }
            guard matches else {
                throw EventStoreError.wrongExpectedVersion(stream: stream, expected: expected, actual: current)
            }
            var version = current
            let now = Date()
            for event in events {
                version += 1
                let position = Int64(state.events.count + 1)
                state.events.append(
                    RecordedEvent(
                        id: event.id, streamID: stream, streamVersion: version, position: position,
                        transactionID: UInt64(position), type: event.type, schemaVersion: event.schemaVersion,
                        data: event.data, metadata: event.metadata, recordedAt: now
                    )
                )
            }
            state.versions[stream] = version
            let result = AppendResult(streamID: stream, streamVersion: version, position: Int64(state.events.count))
            if let idempotency { state.idempotencyKeys[idempotency.key] = (idempotency.request, result) }
            return result
        }
    }

    public func readStream(_ stream: String, from version: Int64, limit: Int) async throws -> [RecordedEvent] {
        self.state.withLock { state in
            Array(state.events.lazy.filter { $0.streamID == stream && $0.streamVersion >= version }.prefix(limit))
        }
    }

    public func readAll(after cursor: LogCursor, limit: Int, matching filter: EventFilter) async throws -> [RecordedEvent] {
        self.state.withLock { state in
            let start = Int(max(cursor.position, 0))
            guard start < state.events.count else { return [] }
            return Array(state.events[start...].lazy.filter { filter.matches($0) }.prefix(limit))
        }
    }

    public func cursor(atPosition position: Int64) async throws -> LogCursor? {
        self.state.withLock { state in
            guard position >= 1, position <= state.events.count else { return nil }
            return state.events[Int(position) - 1].cursor
        }
    }

    public func scan(matching filter: EventFilter, _ body: (RecordedEvent) throws -> Void) async throws {
        let snapshot = self.state.withLock { $0.events }
        for event in snapshot where filter.matches(event) { try body(event) }
    }

    public func count(matching filter: EventFilter) async throws -> Int64 {
        self.state.withLock { state in Int64(state.events.lazy.filter { filter.matches($0) }.count) }
    }

    public func latestPosition() async throws -> Int64 {
        self.state.withLock { Int64($0.events.count) }
    }

    public func loadCheckpoint(_ name: String) async throws -> LogCursor {
        self.state.withLock { $0.checkpoints[name] ?? .start }
    }

    public func saveCheckpoint(_ name: String, _ cursor: LogCursor) async throws {
        self.state.withLock { $0.checkpoints[name] = cursor }
    }

    public func ping() async throws {}

    public func loadSnapshot(of stream: String) async throws -> StreamSnapshot? {
        self.state.withLock { $0.snapshots[stream] }
    }

    public func saveSnapshot(_ snapshot: StreamSnapshot) async throws {
        self.state.withLock { state in
            if let kept = state.snapshots[snapshot.streamID], kept.schema == snapshot.schema, kept.streamVersion >= snapshot.streamVersion {
                return
            }
            state.snapshots[snapshot.streamID] = snapshot
        }
    }

    public func openStreams(startedBy startType: String, in window: Range<Date>, lacking endTypes: [String], limit: Int) async throws
        -> [OpenStream]
    {
        self.state.withLock { state in
            let ended = Set(state.events.filter { endTypes.contains($0.type) }.map(\.streamID))
            let open = state.events.filter { $0.type == startType && window.contains($0.recordedAt) && !ended.contains($0.streamID) }
            return open.sorted { $0.recordedAt < $1.recordedAt }.prefix(limit).map { OpenStream(streamID: $0.streamID, startedAt: $0.recordedAt) }
        }
    }
}
