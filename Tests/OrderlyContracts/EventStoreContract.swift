import Foundation
import OrderlyEventStore
import Testing

public func makeEvents(_ count: Int, type: String = "Tested", correlation: String = "o-1") -> [NewEvent] {
    (0..<count).map { index in
        NewEvent(type: type, data: Data(#"{"n":\#(index)}"#.utf8), metadata: EventMetadata(correlationId: correlation, actor: "test"))
    }
}

/// Reads the whole log after `cursor`, waiting until at least `count` events are visible: transaction
/// ids are cluster-wide, so tests running beside this one can hold the read horizon for a moment.
/// Gives up after 150 s without a new event: a test beside this one may hold a writing transaction open
/// (aSlowTransactionIsWaitedForNotSkipped does, on purpose; so does CREATE DATABASE). The last thing
/// before giving up is always a read (a test process that was itself stalled must not give up on a
/// log it did not look at), and giving up records which writing transactions held the horizon.
public func readVisible(
    _ store: any EventStore, after cursor: LogCursor = .start, count: Int, limit: Int = 100,
    explain: @Sendable (any EventStore) async -> String = { _ in "" }
) async throws -> [RecordedEvent] {
    var seen: [RecordedEvent] = []
    var cursor = cursor
    var lastProgress = ContinuousClock.now
    let patience = Duration.seconds(150)
    while seen.count < count {
        let batch = try await store.readAll(after: cursor, limit: limit)
        if let last = batch.last {
            seen += batch
            cursor = last.cursor
            lastProgress = .now
        } else if ContinuousClock.now - lastProgress > patience {
            Issue.record("the log stayed at \(seen.count) of \(count) events for \(patience); \(await explain(store))")
            break
        } else {
            try await Task.sleep(for: .milliseconds(20))
        }
    }
    return seen
}

/// What a tailing reader must have seen: `count` events, each once, every stream from version 1 on
/// without a gap or a swap.
public func expectEveryEventOnceInStreamOrder(
    _ seen: [RecordedEvent], count: Int, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(seen.count == count, sourceLocation: sourceLocation)
    #expect(Set(seen.map(\.id)).count == count, sourceLocation: sourceLocation)
    for (stream, events) in Dictionary(grouping: seen, by: \.streamID) {
        #expect(
            events.map(\.streamVersion) == Array(1...Int64(events.count)), "stream \(stream) out of order or with gaps",
            sourceLocation: sourceLocation)
    }
}

/// What every event store must do, whichever adapter: run over PostgreSQL (integration tier,
/// `PostgresEventStoreContractTests`) and in memory (fast tier, `InMemoryEventStoreContractTests`).
public enum EventStoreContract {
    public static func openStreamsAreThoseStartedInTheWindowWithoutAnEndEvent(_ store: any EventStore) async throws {
        func event(_ type: String) -> NewEvent { NewEvent(type: type, data: Data("{}".utf8), metadata: EventMetadata()) }
        _ = try await store.append([event("Started")], to: "flow-open", expecting: .noStream)
        _ = try await store.append([event("Started"), event("Other")], to: "flow-open-2", expecting: .noStream)
        _ = try await store.append([event("Started"), event("Ended")], to: "flow-ended", expecting: .noStream)
        _ = try await store.append([event("Started")], to: "flow-cancelled", expecting: .noStream)
        _ = try await store.append([event("Cancelled")], to: "flow-cancelled", expecting: .exact(1))
        let now = Date()
        let window = now.addingTimeInterval(-60)..<now.addingTimeInterval(60)
        let open = try await store.openStreams(startedBy: "Started", in: window, lacking: ["Ended", "Cancelled"], limit: 10)
        #expect(open.map(\.streamID) == ["flow-open", "flow-open-2"])
        #expect(try await store.openStreams(startedBy: "Started", in: window, lacking: ["Ended", "Cancelled"], limit: 1).count == 1)
        let past = now.addingTimeInterval(-120)..<now.addingTimeInterval(-60)
        #expect(try await store.openStreams(startedBy: "Started", in: past, lacking: ["Ended"], limit: 10).isEmpty)
    }

    public static func appendThenReadTheStreamBack(_ store: any EventStore) async throws {
        let events = makeEvents(3)
        let result = try await store.append(events, to: "order-a", expecting: .noStream)
        #expect(result.streamVersion == 3)
        let read = try await store.readStream("order-a", from: 1)
        #expect(read.map(\.id) == events.map(\.id))
        #expect(read.map(\.streamVersion) == [1, 2, 3])
        #expect(read.last?.position == result.position)
        #expect(read.first?.metadata == EventMetadata(correlationId: "o-1", actor: "test"))
        #expect(try JSONSerialization.jsonObject(with: read[2].data) as? [String: Int] == ["n": 2])
        #expect(try await store.readStream("order-a", from: 3).map(\.streamVersion) == [3])
        #expect(try await store.readStream("order-none", from: 1).isEmpty)
    }

    public static func expectedVersionsAreEnforced(_ store: any EventStore) async throws {
        _ = try await store.append(makeEvents(2), to: "order-b", expecting: .noStream)
        await #expect(throws: EventStoreError.wrongExpectedVersion(stream: "order-b", expected: .noStream, actual: 2)) {
            try await store.append(makeEvents(1), to: "order-b", expecting: .noStream)
        }
        await #expect(throws: EventStoreError.wrongExpectedVersion(stream: "order-b", expected: .exact(1), actual: 2)) {
            try await store.append(makeEvents(1), to: "order-b", expecting: .exact(1))
        }
        await #expect(throws: EventStoreError.wrongExpectedVersion(stream: "order-new", expected: .exact(4), actual: 0)) {
            try await store.append(makeEvents(1), to: "order-new", expecting: .exact(4))
        }
        #expect(try await store.append(makeEvents(1), to: "order-b", expecting: .exact(2)).streamVersion == 3)
        #expect(try await store.append(makeEvents(2), to: "order-b", expecting: .any).streamVersion == 5)
        #expect(try await store.append(makeEvents(1), to: "order-c", expecting: .any).streamVersion == 1)
        // A failed append leaves nothing behind.
        #expect(try await store.readStream("order-b", from: 1).count == 5)
        #expect(try await store.readStream("order-new", from: 1).isEmpty)
    }

    public static func concurrentAppendsWithTheSameExpectedVersionHaveOneWinner(_ store: any EventStore) async throws {
        _ = try await store.append(makeEvents(1), to: "order-race", expecting: .noStream)
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    do {
                        _ = try await store.append(makeEvents(1), to: "order-race", expecting: .exact(1))
                        return true
                    } catch EventStoreError.wrongExpectedVersion(_, _, let actual) {
                        #expect(actual == 2)
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        #expect(try await store.readStream("order-race", from: 1).count == 2)
    }

    public static func readAllReturnsEveryEventOnceInOrderAndResumesFromACursor(_ store: any EventStore) async throws {
        for stream in 0..<5 {
            _ = try await store.append(makeEvents(3, correlation: "o-\(stream)"), to: "order-\(stream)", expecting: .noStream)
        }
        let seen = try await readVisible(store, count: 15, limit: 4)
        #expect(seen.count == 15)
        #expect(try await store.readAll(after: try #require(seen.last).cursor, limit: 10).isEmpty)
        #expect(Set(seen.map(\.id)).count == 15)
        #expect(seen.map(\.position) == seen.map(\.position).sorted())
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.cursor < $1.cursor })
        for stream in 0..<5 {
            #expect(seen.filter { $0.streamID == "order-\(stream)" }.map(\.streamVersion) == [1, 2, 3])
        }
    }

    public static func checkpointsStartAtTheBeginningAndMoveWhenSaved(_ store: any EventStore) async throws {
        #expect(try await store.loadCheckpoint("relay") == .start)
        _ = try await store.append(makeEvents(2), to: "order-cp", expecting: .noStream)
        let first = try await readVisible(store, count: 2, limit: 2)
        let cursor = try #require(first.first?.cursor)
        try await store.saveCheckpoint("relay", cursor)
        #expect(try await store.loadCheckpoint("relay") == cursor)
        #expect(try await store.readAll(after: cursor, limit: 10).map(\.streamVersion) == [2])
    }

    public static func anIdempotencyKeyAppendsOnceAndReplaysTheFirstResult(_ store: any EventStore) async throws {
        let key = IdempotencyKey(key: "k-1", request: #"{"a":1}"#)
        let first = try await store.append(makeEvents(2), to: "order-i1", expecting: .noStream, idempotency: key)
        #expect(first.isReplay == false)
        // A repeat, even aimed at another stream, returns the first result and appends nothing.
        let again = try await store.append(makeEvents(2), to: "order-i2", expecting: .noStream, idempotency: key)
        #expect(again == AppendResult(streamID: "order-i1", streamVersion: 2, position: first.position, isReplay: true))
        #expect(try await store.readStream("order-i2", from: 1).isEmpty)
        #expect(try await store.readStream("order-i1", from: 1).count == 2)
        await #expect(throws: EventStoreError.idempotencyKeyReused(key: "k-1")) {
            try await store.append(
                makeEvents(1), to: "order-i3", expecting: .noStream, idempotency: IdempotencyKey(key: "k-1", request: #"{"a":2}"#))
        }
        #expect(try await store.readStream("order-i3", from: 1).isEmpty)
    }

    public static func aFailedAppendDoesNotConsumeItsIdempotencyKey(_ store: any EventStore) async throws {
        _ = try await store.append(makeEvents(1), to: "order-j", expecting: .noStream)
        let key = IdempotencyKey(key: "k-2", request: "r")
        await #expect(throws: EventStoreError.self) {
            try await store.append(makeEvents(1), to: "order-j", expecting: .noStream, idempotency: key)
        }
        let retried = try await store.append(makeEvents(1), to: "order-j", expecting: .exact(1), idempotency: key)
        #expect(retried.isReplay == false)
        #expect(retried.streamVersion == 2)
    }

    public static func concurrentRequestsWithOneKeyAppendOnce(_ store: any EventStore) async throws {
        let key = IdempotencyKey(key: "k-race", request: "same")
        let results = try await withThrowingTaskGroup(of: AppendResult.self) { group in
            for index in 0..<8 {
                group.addTask { try await store.append(makeEvents(1), to: "order-r\(index)", expecting: .noStream, idempotency: key) }
            }
            return try await group.reduce(into: [AppendResult]()) { $0.append($1) }
        }
        #expect(results.filter { !$0.isReplay }.count == 1)
        #expect(Set(results.map(\.streamID)).count == 1)
        #expect(Set(results.map(\.position)).count == 1)
        // Every stream read in full (no waiting on the tailing horizon, no stopping at the first
        // event): one command's events are stored, once.
        var stored = 0
        for index in 0..<8 { stored += try await store.readStream("order-r\(index)", from: 1, limit: 100).count }
        #expect(stored == 1)
    }
}
