import Testing

@testable import OrderlyEventStore

/// The group commit's rules for which appends go together and when (no database: its round trips
/// are tested against PostgreSQL in PostgresEventStoreTests).
@Suite struct BatchSchedulerTests {
    struct Command: BatchedCommand, Equatable {
        var stream: String
        var idempotencyKey: String?
        var n = 0
    }

    @Test func aLoneCommandGoesAtOnce() {
        var scheduler = BatchScheduler<Command>()
        scheduler.queue = [Command(stream: "s-1")]
        #expect(scheduler.takeIfDue(maxInFlight: 2, maxBatch: 64) == [Command(stream: "s-1")])
        #expect(scheduler.queue.isEmpty)
        #expect(scheduler.inFlight == 1)
    }

    /// Beside a round trip under way, the next starts only once as many commands wait as that one
    /// carries; never more than `maxInFlight` at once.
    @Test func aSecondRoundTripWaitsForAsManyCommandsAsTheFirstCarries() {
        var scheduler = BatchScheduler<Command>()
        scheduler.queue = (0..<4).map { Command(stream: "s-\($0)") }
        let first = scheduler.takeIfDue(maxInFlight: 2, maxBatch: 64)
        #expect(first?.count == 4)
        scheduler.queue = (4..<7).map { Command(stream: "s-\($0)") }
        #expect(scheduler.takeIfDue(maxInFlight: 2, maxBatch: 64) == nil)
        scheduler.queue.append(Command(stream: "s-7"))
        #expect(scheduler.takeIfDue(maxInFlight: 2, maxBatch: 64)?.count == 4)
        scheduler.queue = (8..<20).map { Command(stream: "s-\($0)") }
        #expect(scheduler.takeIfDue(maxInFlight: 2, maxBatch: 64) == nil)
        scheduler.finished(first ?? [])
        #expect(scheduler.takeIfDue(maxInFlight: 2, maxBatch: 5)?.count == 5)
    }

    /// One stream or idempotency key per round trip, and none that a round trip under way carries:
    /// a stream's commands go one round trip after another, in order. A batch is sorted by stream.
    @Test func aStreamOrKeyIsInOneRoundTripAtATime() {
        var scheduler = BatchScheduler<Command>()
        scheduler.queue = [
            Command(stream: "s-b", n: 1), Command(stream: "s-a", n: 2), Command(stream: "s-b", n: 3),
            Command(stream: "s-c", idempotencyKey: "k", n: 4), Command(stream: "s-d", idempotencyKey: "k", n: 5),
        ]
        let first = scheduler.takeIfDue(maxInFlight: 1, maxBatch: 64) ?? []
        #expect(first.map(\.n) == [2, 1, 4])
        #expect(scheduler.queue.map(\.n) == [3, 5])
        #expect(scheduler.takeIfDue(maxInFlight: 2, maxBatch: 64) == nil)
        scheduler.finished(first)
        #expect(scheduler.takeIfDue(maxInFlight: 1, maxBatch: 64)?.map(\.n) == [3, 5])
    }
}
