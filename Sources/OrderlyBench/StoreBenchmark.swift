import Foundation
import OrderlyDomain
import OrderlyEventStore

/// Appends as fast as `writers` concurrent writers can for a fixed time, each append `batch` events to
/// a new stream; the event store half of `scripts/bench`, compared there with raw pgbench inserts.
public enum StoreBenchmark {
    public struct Result: Codable, Sendable {
        public var writers: Int
        public var batch: Int
        public var seconds: Double
        public var appends: Int
        public var events: Int
        public var eventsPerSecond: Double
        public var p50Milliseconds: Double
        public var p99Milliseconds: Double
    }

    /// `payload` is the JSON each event carries; `scripts/bench` gives the raw baseline the same text.
    public static func run(store: any EventStore, writers: Int, batch: Int, duration: Duration, payload: String) async throws -> Result {
        let metadata = EventMetadata(
            correlationId: "2b4f9c7e-1d3a-4c55-9e0b-7a6f1e2d3c4b", causationId: Identifiers.random().uuidString, actor: "bench")
        let payload = Data(payload.utf8)
        let started = ContinuousClock.now
        let deadline = started + duration
        let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
            for _ in 0..<writers {
                group.addTask {
                    var latencies: [Duration] = []
                    while ContinuousClock.now < deadline {
                        let events = (0..<batch).map { _ in NewEvent(type: "OrderPlaced", data: payload, metadata: metadata) }
                        let before = ContinuousClock.now
                        _ = try await store.append(events, to: "bench-\(Identifiers.random().uuidString)", expecting: .noStream)
                        latencies.append(ContinuousClock.now - before)
                    }
                    return latencies
                }
            }
            return try await group.reduce(into: [Duration]()) { $0 += $1 }
        }
        let seconds = (ContinuousClock.now - started).timeInterval
        let latency = LoadGenerator.Latency(latencies)
        return Result(
            writers: writers, batch: batch, seconds: seconds, appends: latencies.count, events: latencies.count * batch,
            eventsPerSecond: Double(latencies.count * batch) / seconds, p50Milliseconds: latency.p50,
            p99Milliseconds: latency.p99)
    }
}
