import Foundation
import OrderlyDomain
import OrderlyEventStore
import OrderlyMessaging

/// How fast the relay drains a backlog: `scripts/bench` compares it with raw librdkafka producing
/// messages of the same shape.
public enum RelayBenchmark {
    public struct Result: Codable, Sendable {
        public var events: Int
        public var seconds: Double
        public var eventsPerSecond: Double
    }

    /// Appends `count` events (in appends of 100 to new streams, 8 writers at a time) to make a backlog.
    public static func seed(store: any EventStore, count: Int, payload: String) async throws {
        let data = Data(payload.utf8)
        let appends = (count + 99) / 100
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for index in stride(from: writer, to: appends, by: 8) {
                        let size = min(100, count - index * 100)
                        let stream = "order-bench-\(index)"
                        let events = (0..<size).map { _ in
                            NewEvent(type: "OrderPlaced", data: data, metadata: EventMetadata(correlationId: stream, actor: "bench"))
                        }
                        _ = try await store.append(events, to: stream, expecting: .noStream)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Runs the relay's own publishing loop from the start of the log until it has published `count` events.
    public static func drain(relay: EventRelay, count: Int) async throws -> Result {
        let started = ContinuousClock.now
        let published = try await relay.publish(from: .start, stoppingAfter: count)
        let seconds = (ContinuousClock.now - started).timeInterval
        return Result(events: published, seconds: seconds, eventsPerSecond: Double(published) / seconds)
    }
}
