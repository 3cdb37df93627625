import Foundation
import OrderlyEventStore
import OrderlyHandling
import Synchronization
import Testing

/// The projector's read models share one consumer through `FanOutHandler`.
@Suite struct FanOutHandlerTests {
    /// Keeps the batches it was given; fails with `failure` while one is set.
    final class Recording: EventHandler {
        let batches = Mutex<[[String]]>([])
        let failure = Mutex<(any Error)?>(nil)

        func handle(_ event: RecordedEvent) async throws {
            try await self.handle(batch: [event])
        }

        func handle(batch events: [RecordedEvent]) async throws {
            self.batches.withLock { $0.append(events.map(\.type)) }
            if let failure = self.failure.withLock({ $0 }) { throw failure }
        }
    }

    struct Transient: Error {}

    static func event(_ type: String, position: Int64) -> RecordedEvent {
        RecordedEvent(
            id: UUID(), streamID: "s-\(position)", streamVersion: 1, position: position, transactionID: UInt64(position), type: type,
            schemaVersion: 1, data: Data("{}".utf8), metadata: EventMetadata(), recordedAt: Date())
    }

    let events = [event("Alpha", position: 1), event("Beta", position: 2), event("Gamma", position: 3), event("Alpha", position: 4)]

    @Test func eachMemberGetsOnlyItsTypesInLogOrderAndTheConsumerAsksForTheirUnion() async throws {
        let alphas = Recording()
        let betasAndGammas = Recording()
        let fanOut = FanOutHandler([.init(alphas, handledTypes: ["Alpha"]), .init(betasAndGammas, handledTypes: ["Beta", "Gamma"])])
        #expect(fanOut.handledTypes == ["Alpha", "Beta", "Gamma"])
        try await fanOut.handle(delivered: self.events.map { DeliveredEvent(event: $0, partition: 0) })
        #expect(alphas.batches.withLock { $0 } == [["Alpha", "Alpha"]])
        #expect(betasAndGammas.batches.withLock { $0 } == [["Beta", "Gamma"]])

        // A member that handles every type makes the consumer ask for every type.
        #expect(FanOutHandler([.init(alphas, handledTypes: ["Alpha"]), .init(Recording(), handledTypes: nil)]).handledTypes == nil)
    }

    @Test func aMemberWithNothingInTheBatchIsNotCalled() async throws {
        let alphas = Recording()
        let deltas = Recording()
        try await FanOutHandler([.init(alphas, handledTypes: ["Alpha"]), .init(deltas, handledTypes: ["Delta"])]).handle(batch: self.events)
        #expect(deltas.batches.withLock { $0 }.isEmpty)
        #expect(alphas.batches.withLock { $0 }.count == 1)
    }

    /// The batch is done only when every member is: one failing fails it (so the consumer retries it
    /// and commits nothing), after the others have finished; a poison event wins over a transient
    /// failure, so the consumer goes looking for the culprit instead of retrying for ever.
    @Test func oneMemberFailingFailsTheBatchAndAPoisonEventIsWhatTheConsumerSees() async throws {
        let healthy = Recording()
        let transient = Recording()
        transient.failure.withLock { $0 = Transient() }
        let fanOut = FanOutHandler([.init(transient, handledTypes: nil), .init(healthy, handledTypes: nil)])
        await #expect(throws: Transient.self) { try await fanOut.handle(batch: self.events) }
        #expect(healthy.batches.withLock { $0 }.count == 1, "the other member still handled the batch")

        let poisoned = Recording()
        poisoned.failure.withLock { $0 = PoisonEvent(reason: "unreadable") }
        let both = FanOutHandler([.init(transient, handledTypes: nil), .init(poisoned, handledTypes: nil)])
        await #expect(throws: PoisonEvent.self) { try await both.handle(batch: self.events) }
        await #expect(throws: PoisonEvent.self) { try await both.handle(self.events[0]) }
    }

    final class SharedLog: Sendable {
        let entries = Mutex<[String]>([])
    }

    /// Notes when it starts and ends a batch in a log it shares with others; takes `pause` over it.
    struct Timed: EventHandler {
        let name: String
        let log: SharedLog
        let pause: Duration

        func handle(_ event: RecordedEvent) async throws {
            try await self.handle(batch: [event])
        }

        func handle(batch events: [RecordedEvent]) async throws {
            self.log.entries.withLock { $0.append("\(self.name) started") }
            try await Task.sleep(for: self.pause)
            self.log.entries.withLock { $0.append("\(self.name) done") }
        }
    }

    /// The projector's `orders` model leads: the others start on a batch only once it is done with it,
    /// however long it takes, and still every member gets the batch.
    @Test func theOthersStartOnABatchOnlyOnceTheLeadingMembersAreDone() async throws {
        let log = SharedLog()
        let fanOut = FanOutHandler([
            .init(Timed(name: "follower", log: log, pause: .zero), handledTypes: nil),
            .init(Timed(name: "leader", log: log, pause: .milliseconds(100)), handledTypes: nil, leads: true),
            .init(Timed(name: "other", log: log, pause: .zero), handledTypes: nil),
        ])
        try await fanOut.handle(delivered: self.events.map { DeliveredEvent(event: $0, partition: 0) })
        let entries = log.entries.withLock { $0 }
        #expect(entries.prefix(2) == ["leader started", "leader done"])
        #expect(Set(entries.dropFirst(2)) == ["follower started", "follower done", "other started", "other done"])
    }
}
