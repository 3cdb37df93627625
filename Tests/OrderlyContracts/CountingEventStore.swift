import Foundation
import OrderlyEventStore
import Synchronization

/// An event store that forwards everything to another and counts its reads: of the log (`readAll`,
/// a relay's polls) and of single streams (`readStream`, an aggregate's loads). Tests use it to tell
/// work that read the store from work that did not.
public final class CountingEventStore: EventStore {
    public let inner: any EventStore
    private let counts = Mutex((log: 0, stream: 0))
    public var logReads: Int { self.counts.withLock { $0.log } }
    public var streamReads: Int { self.counts.withLock { $0.stream } }

    public init(_ inner: any EventStore) {
        self.inner = inner
    }

    public func append(
        _ events: [NewEvent], to stream: String, expecting expected: ExpectedVersion, idempotency: IdempotencyKey?
    ) async throws -> AppendResult {
        try await self.inner.append(events, to: stream, expecting: expected, idempotency: idempotency)
    }

    public func readStream(_ stream: String, from version: Int64, limit: Int) async throws -> [RecordedEvent] {
        self.counts.withLock { $0.stream += 1 }
        return try await self.inner.readStream(stream, from: version, limit: limit)
    }

    public func readAll(after cursor: LogCursor, limit: Int, matching filter: EventFilter) async throws -> [RecordedEvent] {
        self.counts.withLock { $0.log += 1 }
        return try await self.inner.readAll(after: cursor, limit: limit, matching: filter)
    }

    public func cursor(atPosition position: Int64) async throws -> LogCursor? { try await self.inner.cursor(atPosition: position) }

    public func scan(matching filter: EventFilter, _ body: (RecordedEvent) throws -> Void) async throws {
        try await self.inner.scan(matching: filter, body)
    }

    public func count(matching filter: EventFilter) async throws -> Int64 { try await self.inner.count(matching: filter) }
    public func latestPosition() async throws -> Int64 { try await self.inner.latestPosition() }
    public func loadCheckpoint(_ name: String) async throws -> LogCursor { try await self.inner.loadCheckpoint(name) }
    public func saveCheckpoint(_ name: String, _ cursor: LogCursor) async throws { try await self.inner.saveCheckpoint(name, cursor) }
    public func ping() async throws { try await self.inner.ping() }

    public func openStreams(startedBy startType: String, in window: Range<Date>, lacking endTypes: [String], limit: Int) async throws
        -> [OpenStream]
    {
        try await self.inner.openStreams(startedBy: startType, in: window, lacking: endTypes, limit: limit)
    }
}
