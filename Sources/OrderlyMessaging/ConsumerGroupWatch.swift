import CRdKafka
import Foundation
import Synchronization

/// Whether consumer groups keep up with a topic: each group has committed, in every partition, at
/// least what the partition held `settle` ago. Asked by the saga deadline: an order waiting for a
/// service that is down or behind is waiting for the pipeline, not stuck.
/// A group that has never committed anything is left out (it never ran: nothing to wait for).
public final class ConsumerGroupWatch: Sendable {
    private let topic: String
    private let settle: Duration
    private let timeoutMilliseconds: Int32
    /// One handle per group, never subscribed: it only asks the group's coordinator for its offsets.
    private let groups: [(name: String, handle: KafkaHandle)]
    private let samples = Mutex<[(at: ContinuousClock.Instant, marks: [Int32: Int64])]>([])
    /// The last answer, given again to anyone asking within `reuse` of it: each look costs a round
    /// trip per partition and per group, and an idle system should cost next to nothing.
    private let lastAnswer = Mutex<(at: ContinuousClock.Instant, behind: [String])?>(nil)
    private let reuse: Duration = .seconds(2)
    private let queue = DispatchQueue(label: "orderly-consumer-group-watch")

    public init(configuration: KafkaConfiguration, topic: String, groups: [String], settle: Duration = .seconds(5), timeout: Duration = .seconds(1))
        throws
    {
        self.topic = topic
        self.settle = settle
        self.timeoutMilliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        self.groups = try groups.map { group in
            (
                group,
                try KafkaHandle.make(
                    type: RD_KAFKA_CONSUMER, configuration: configuration,
                    defaults: ["group.id": group, "enable.auto.commit": "false", "enable.partition.eof": "true"])
            )
        }
    }

    /// The groups that have not committed what the topic held `settle` ago (empty: all keep up).
    /// Throws when the broker does not answer.
    public func groupsBehind() async throws -> [String] {
        if let last = self.lastAnswer.withLock({ $0 }), ContinuousClock.now - last.at < self.reuse { return last.behind }
        let behind = try await self.lookAtGroups()
        self.lastAnswer.withLock { $0 = (ContinuousClock.now, behind) }
        return behind
    }

    private func lookAtGroups() async throws -> [String] {
        guard let first = self.groups.first else { return [] }
        let topic = self.topic
        let timeout = self.timeoutMilliseconds
        // Queried, then read from a fetch: Tansu's answer to the query falls short by its last batch,
        // which after a republish of the log can be thousands of events a group has yet to read.
        let marks = try await runBlocking(on: self.queue) {
            let queried = try first.handle.highWatermarks(of: topic, timeoutMilliseconds: timeout) ?? [:]
            return try first.handle.fetchedHighWatermarks(of: topic, queried: queried, timeoutMilliseconds: timeout)
        }
        let now = ContinuousClock.now
        let settle = self.settle
        let settled: [Int32: Int64]? = self.samples.withLock { samples in
            samples.append((now, marks))
            samples.removeAll { now - $0.at > settle * 6 }
            return samples.last { now - $0.at >= settle }?.marks
        }
        guard let settled else { return [] }
        var behind: [String] = []
        for group in self.groups {
            let handle = group.handle
            let committed = try await runBlocking(on: self.queue) {
                try handle.committedOffsets(of: topic, partitions: Array(settled.keys), timeoutMilliseconds: timeout)
            }
            guard !committed.isEmpty else { continue }
            if settled.contains(where: { partition, high in (committed[partition] ?? 0) < high }) { behind.append(group.name) }
        }
        return behind
    }
}
