import Foundation
import OrderlyDomain

/// Who and what caused an event. `correlationId` is the order id the event belongs to, so one order's
/// whole saga can be followed; `causationId` is the event or command that caused it.
public struct EventMetadata: Codable, Sendable, Equatable {
    public var correlationId: String?
    public var causationId: String?
    public var actor: String?
    /// What the relay keys the Kafka message by, when not the correlation id: a stream shared by many
    /// orders (a SKU's stock) is keyed by itself, so its events stay in one partition, in order.
    public var partitionKey: String?
    /// The W3C `traceparent` of the span that appended it (a command's, a handler's), when tracing is
    /// on: the relay and the consumers continue the trace from it (`TraceContext`).
    public var traceparent: String?

    public init(
        correlationId: String? = nil, causationId: String? = nil, actor: String? = nil, partitionKey: String? = nil, traceparent: String? = nil
    ) {
        self.correlationId = correlationId
        self.causationId = causationId
        self.actor = actor
        self.partitionKey = partitionKey
        self.traceparent = traceparent
    }
}

/// An event about to be appended.
public struct NewEvent: Sendable, Equatable {
    public var id: UUID
    public var type: String
    public var schemaVersion: Int
    /// JSON text of the payload.
    public var data: Data
    public var metadata: EventMetadata

    public init(id: UUID = Identifiers.timeOrdered(), type: String, schemaVersion: Int = 1, data: Data, metadata: EventMetadata) {
        self.id = id
        self.type = type
        self.schemaVersion = schemaVersion
        self.data = data
        self.metadata = metadata
    }
}

/// A point in the log that a tailing reader resumes after. Positions are handed out at insert time but
/// transactions commit in another order, so the log is read in (transactionID, position) order;
/// in-memory stores use the position for both.
public struct LogCursor: Codable, Sendable, Equatable, Comparable, CustomStringConvertible {
    public var transactionID: UInt64
    public var position: Int64

    public static let start = LogCursor(transactionID: 0, position: 0)

    public init(transactionID: UInt64, position: Int64) {
        self.transactionID = transactionID
        self.position = position
    }

    public static func < (lhs: LogCursor, rhs: LogCursor) -> Bool {
        (lhs.transactionID, lhs.position) < (rhs.transactionID, rhs.position)
    }

    public var description: String { "\(self.transactionID)/\(self.position)" }
}

/// An event as stored, with everything the log knows about it.
public struct RecordedEvent: Codable, Sendable, Equatable {
    public var id: UUID
    public var streamID: String
    public var streamVersion: Int64
    public var position: Int64
    public var transactionID: UInt64
    public var type: String
    public var schemaVersion: Int
    public var data: Data
    public var metadata: EventMetadata
    public var recordedAt: Date

    public init(
        id: UUID, streamID: String, streamVersion: Int64, position: Int64, transactionID: UInt64, type: String,
        schemaVersion: Int, data: Data, metadata: EventMetadata, recordedAt: Date
    ) {
        self.id = id
        self.streamID = streamID
        self.streamVersion = streamVersion
        self.position = position
        self.transactionID = transactionID
        self.type = type
        self.schemaVersion = schemaVersion
        self.data = data
        self.metadata = metadata
        self.recordedAt = recordedAt
    }

    public var cursor: LogCursor { LogCursor(transactionID: self.transactionID, position: self.position) }
}

/// What the appender expects the stream's current version to be. Versions start at 1.
public enum ExpectedVersion: Sendable, Equatable, CustomStringConvertible {
    case any
    case noStream
    case exact(Int64)

    public var description: String {
        switch self {
        case .any: "any"
        case .noStream: "no stream"
        case .exact(let version): "\(version)"
        }
    }
}

/// An idempotency key with the request it came with. `request` is a canonical form of the command
/// (same command, same text); the store keeps only its hash.
public struct IdempotencyKey: Sendable, Equatable {
    public var key: String
    public var request: String

    public init(key: String, request: String) {
        self.key = key
        self.request = request
    }
}

public struct AppendResult: Sendable, Equatable {
    /// The stream appended to (for a replayed idempotency key: the stream of the first request).
    public var streamID: String
    /// The stream's version after the append.
    public var streamVersion: Int64
    /// The global position of the last appended event.
    public var position: Int64
    /// True when an idempotency key matched an earlier append: nothing was appended this time.
    public var isReplay: Bool
    /// The id of the last event appended, where the appender knows it (`AggregateStore.update`): what
    /// a next step taken at once names as its cause.
    public var lastEventId: UUID?

    public init(streamID: String, streamVersion: Int64, position: Int64, isReplay: Bool = false) {
        self.streamID = streamID
        self.streamVersion = streamVersion
        self.position = position
        self.isReplay = isReplay
    }
}

public enum EventStoreError: Error, Sendable, Equatable {
    /// Optimistic concurrency: the stream was not at the expected version. `actual` is 0 when the
    /// stream does not exist.
    case wrongExpectedVersion(stream: String, expected: ExpectedVersion, actual: Int64)
    /// The idempotency key was used before with a different request.
    case idempotencyKeyReused(key: String)
    case emptyAppend
    /// No connection to the store within `waited` (it is down or overloaded): nothing was written.
    case unavailable(waited: Duration)
}

/// The event log. PostgreSQL in production, in memory for fast unit tests; both pass one contract suite.
public protocol EventStore: Sendable {
    /// Appends all events atomically, or none. With an idempotency key, a repeat of the same request
    /// returns the first result and appends nothing; the key is stored in the same transaction.
    func append(
        _ events: [NewEvent], to stream: String, expecting expected: ExpectedVersion, idempotency: IdempotencyKey?
    ) async throws -> AppendResult
    /// Events of one stream, in version order, from `version` (inclusive), at most `limit`.
    func readStream(_ stream: String, from version: Int64, limit: Int) async throws -> [RecordedEvent]
    /// Committed events after `cursor` that match `filter`, in log order, at most `limit`. Never skips
    /// an event that a slower transaction commits later.
    func readAll(after cursor: LogCursor, limit: Int, matching filter: EventFilter) async throws -> [RecordedEvent]
    /// The log cursor of the event at `position`, to resume a reader that knows only positions; nil
    /// when no event has that position.
    func cursor(atPosition position: Int64) async throws -> LogCursor?
    /// Every event matching `filter` in position order, handed to `body` one at a time as it is read:
    /// memory stays flat whatever the log's size. One consistent snapshot (one statement): events
    /// committed after the scan began are not included.
    func scan(matching filter: EventFilter, _ body: (RecordedEvent) throws -> Void) async throws
    /// How many events match `filter` (for progress bars).
    func count(matching filter: EventFilter) async throws -> Int64
    /// The highest position appended so far (0 for an empty log), committed or not: for lag metrics.
    func latestPosition() async throws -> Int64
    func loadCheckpoint(_ name: String) async throws -> LogCursor
    func saveCheckpoint(_ name: String, _ cursor: LogCursor) async throws
    /// Whether the store answers (for readiness).
    func ping() async throws
    /// Streams whose `startType` event was recorded in `window` and that have no event of `endTypes`
    /// yet, oldest first: workflows still open (the order service's saga deadlines).
    func openStreams(startedBy startType: String, in window: Range<Date>, lacking endTypes: [String], limit: Int) async throws
        -> [OpenStream]
}

/// A stream that started a workflow and has not finished it.
public struct OpenStream: Sendable, Equatable {
    public var streamID: String
    public var startedAt: Date

    public init(streamID: String, startedAt: Date) {
        self.streamID = streamID
        self.startedAt = startedAt
    }
}

/// Which events a reader wants; an empty or nil part matches everything.
public struct EventFilter: Sendable, Equatable {
    /// Event type names, any of which matches.
    public var types: [String]
    /// Streams whose id starts with this text (`order-` for every order stream).
    public var streamPrefix: String?
    /// Recorded at or after.
    public var recordedFrom: Date?
    /// Recorded before.
    public var recordedBefore: Date?
    /// Positions at or after.
    public var fromPosition: Int64?
    /// Positions at or before.
    public var toPosition: Int64?

    public static let all = EventFilter()

    public init(
        types: [String] = [], streamPrefix: String? = nil, recordedFrom: Date? = nil, recordedBefore: Date? = nil,
        fromPosition: Int64? = nil, toPosition: Int64? = nil
    ) {
        self.types = types
        self.streamPrefix = streamPrefix
        self.recordedFrom = recordedFrom
        self.recordedBefore = recordedBefore
        self.fromPosition = fromPosition
        self.toPosition = toPosition
    }

    public func matches(_ event: RecordedEvent) -> Bool {
        if !self.types.isEmpty && !self.types.contains(event.type) { return false }
        if let prefix = self.streamPrefix, !event.streamID.hasPrefix(prefix) { return false }
        if let from = self.recordedFrom, event.recordedAt < from { return false }
        if let before = self.recordedBefore, event.recordedAt >= before { return false }
        if let from = self.fromPosition, event.position < from { return false }
        if let to = self.toPosition, event.position > to { return false }
        return true
    }
}

extension EventStore {
    /// Every committed event after `cursor`, in log order, at most `limit`.
    public func readAll(after cursor: LogCursor, limit: Int) async throws -> [RecordedEvent] {
        try await self.readAll(after: cursor, limit: limit, matching: .all)
    }

    /// The whole stream from `version` on.
    public func readStream(_ stream: String, from version: Int64) async throws -> [RecordedEvent] {
        try await self.readStream(stream, from: version, limit: Int.max)
    }

    public func append(_ events: [NewEvent], to stream: String, expecting expected: ExpectedVersion) async throws -> AppendResult {
        try await self.append(events, to: stream, expecting: expected, idempotency: nil)
    }
}
