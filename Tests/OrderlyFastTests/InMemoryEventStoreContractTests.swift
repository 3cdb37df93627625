import OrderlyContracts
import OrderlyEventStore
import Testing

/// The event store contract (OrderlyContracts) over the in-memory store.
@Suite struct InMemoryEventStoreContractTests {
    @Test func openStreamsAreThoseStartedInTheWindowWithoutAnEndEvent() async throws {
        try await EventStoreContract.openStreamsAreThoseStartedInTheWindowWithoutAnEndEvent(InMemoryEventStore())
    }
    @Test func appendThenReadTheStreamBack() async throws { try await EventStoreContract.appendThenReadTheStreamBack(InMemoryEventStore()) }
    @Test func expectedVersionsAreEnforced() async throws { try await EventStoreContract.expectedVersionsAreEnforced(InMemoryEventStore()) }
    @Test func concurrentAppendsWithTheSameExpectedVersionHaveOneWinner() async throws {
        try await EventStoreContract.concurrentAppendsWithTheSameExpectedVersionHaveOneWinner(InMemoryEventStore())
    }
    @Test func readAllReturnsEveryEventOnceInOrderAndResumesFromACursor() async throws {
        try await EventStoreContract.readAllReturnsEveryEventOnceInOrderAndResumesFromACursor(InMemoryEventStore())
    }
    @Test func checkpointsStartAtTheBeginningAndMoveWhenSaved() async throws {
        try await EventStoreContract.checkpointsStartAtTheBeginningAndMoveWhenSaved(InMemoryEventStore())
    }
    @Test func anIdempotencyKeyAppendsOnceAndReplaysTheFirstResult() async throws {
        try await EventStoreContract.anIdempotencyKeyAppendsOnceAndReplaysTheFirstResult(InMemoryEventStore())
    }
    @Test func aFailedAppendDoesNotConsumeItsIdempotencyKey() async throws {
        try await EventStoreContract.aFailedAppendDoesNotConsumeItsIdempotencyKey(InMemoryEventStore())
    }
    @Test func concurrentRequestsWithOneKeyAppendOnce() async throws {
        try await EventStoreContract.concurrentRequestsWithOneKeyAppendOnce(InMemoryEventStore())
    }
}
