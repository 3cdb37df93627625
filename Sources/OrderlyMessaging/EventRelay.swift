import Foundation
import Logging
import Metrics
import OrderlyEventStore
import OrderlyHandling
import ServiceLifecycle
import Synchronization
import Tracing

/// Publishes the event log to Kafka in log order. The checkpoint moves only after every delivery
/// report of a batch succeeded; after any failure the relay starts again from the checkpoint, so a
/// crash or a broker outage loses nothing (consumers may see duplicates, which they drop). Only the
/// holder of the leader lock relays; other instances stand by and take over when it dies.
public struct EventRelay: Service {
    public struct Settings: Sendable {
        public var topic: String
        public var checkpointName: String
        public var batchSize: Int
        /// How long the relay waits, with nothing to publish, before it reads the log again.
        public var idleDelay: Duration
        /// The wait instead, once nothing has been appended for `quietAfter`: an idle system then
        /// reads the log ten times a second instead of fifty (the 20 ms poll was most of an idle
        /// Orderly's CPU). Only the first event after such a quiet spell can wait longer; the rest of
        /// its saga follows within the spell's end, at the short wait.
        public var quietDelay: Duration
        public var quietAfter: Duration
        public var retryDelay: Duration
        /// Which events to publish: everything for the live relay; a replay for a new consumer group
        /// publishes only from a position on.
        public var filter: EventFilter
        /// For the live relay: the topic's partition count. The relay then watches the topic and,
        /// when the broker has lost it or part of it (a broker that came back empty), makes it again
        /// with this many partitions and republishes the log from its start.
        public var guardedPartitions: Int32?
        /// The guarded topic's replication factor and topic settings, for when it is made again.
        public var topicReplicationFactor: Int32 = 1
        public var topicConfig: [String: String] = [:]
        /// How often the guarded topic is looked at.
        public var topicCheckInterval: Duration
        /// How many full batches (a backlog) may wait for the broker's acknowledgement at once. A
        /// batch that is not full (the relay has caught up with the log) is waited for before the
        /// log is read again: see `publish`.
        public var maxBatchesInFlight: Int
        /// With an append signal that works, how often the relay reads the log at rest all the same
        /// (a notification lost on a broken connection costs at most this).
        public var signalledReadInterval: Duration

        public init(
            topic: String = "order-events", checkpointName: String = "relay", batchSize: Int = 5000,
            idleDelay: Duration = .milliseconds(20), quietDelay: Duration = .milliseconds(100), quietAfter: Duration = .seconds(5),
            retryDelay: Duration = .seconds(1), filter: EventFilter = .all, guardedPartitions: Int32? = nil,
            topicReplicationFactor: Int32 = 1, topicConfig: [String: String] = [:], topicCheckInterval: Duration = .seconds(5),
            maxBatchesInFlight: Int = 4, signalledReadInterval: Duration = .seconds(2)
        ) {
            self.signalledReadInterval = signalledReadInterval
            self.maxBatchesInFlight = max(1, maxBatchesInFlight)
            self.quietDelay = quietDelay
            self.quietAfter = quietAfter
            self.filter = filter
            self.guardedPartitions = guardedPartitions
            self.topicReplicationFactor = topicReplicationFactor
            self.topicConfig = topicConfig
            self.topicCheckInterval = topicCheckInterval
            self.topic = topic
            self.checkpointName = checkpointName
            self.batchSize = batchSize
            self.idleDelay = idleDelay
            self.retryDelay = retryDelay
        }
    }

    let store: any EventStore
    /// The producer in use: replaced by a fresh one after a failed delivery (see `KafkaProducer.renewed`).
    let producers: Slot<KafkaProducer>
    let leaderLock: any LeaderLock
    /// Appends announced by the database: at rest the relay reads the log only when told (or every
    /// `signalledReadInterval`) instead of ten times a second.
    let appendSignal: (any AppendSignal)?
    let settings: Settings
    let logger: Logger
    let metrics = RelayMetrics()
    /// Messages this relay has had acknowledged by the broker, for `watchTopic`.
    let delivered = DeliveredCount()

    public init(
        store: any EventStore, producer: KafkaProducer, leaderLock: any LeaderLock = SoleLeader(), appendSignal: (any AppendSignal)? = nil,
        settings: Settings = Settings(), logger: Logger
    ) {
        self.store = store
        self.appendSignal = appendSignal
        self.producers = Slot(producer)
        self.leaderLock = leaderLock
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.reportLag() }
            group.addTask { await self.relayWhileLeading() }
            if let signal = self.appendSignal { group.addTask { await signal.run() } }
            await group.next()
            group.cancelAll()
        }
        await self.producers.current.shutdown()
    }

    /// Relays while this instance leads; after any failure starts again from the checkpoint, with a
    /// fresh producer when the failure was Kafka's.
    private func relayWhileLeading() async {
        await repeatUntilShutdown("relaying (restarting from the checkpoint)", logger: self.logger, retryDelay: self.settings.retryDelay) {
            try await self.leaderLock.whileLeader { try await self.relayUntilFailure() }
            return .next
        } recover: { error in
            if error is KafkaError { await self.renewProducer() }
        }
    }

    private func renewProducer() async {
        let old = self.producers.current
        do {
            self.producers.replace(with: try old.renewed())
            self.logger.notice("relay producer renewed after a failed delivery")
            await old.shutdown()
        } catch {
            self.logger.warning("cannot make a new producer; keeping the old one", metadata: ["error": "\(error)"])
        }
    }

    /// How far the stored checkpoint trails the log, every second, apart from the relaying itself:
    /// a relay stuck retrying (a broker down) still reports its growing lag, so an alert can fire.
    private func reportLag() async {
        // A log that cannot be read is the relay's own failure to report; the gauge keeps its value.
        await repeatUntilShutdown("reporting the relay's lag", logger: self.logger, retryDelay: .seconds(1)) {
            if let head = try? await self.store.latestPosition(),
                let checkpoint = try? await self.store.loadCheckpoint(self.settings.checkpointName)
            {
                self.metrics.lagPositions.record(max(0, head - checkpoint.position))
            }
            return .after(.seconds(1))
        }
    }

    private func relayUntilFailure() async throws {
        let cursor = try await self.store.loadCheckpoint(self.settings.checkpointName)
        self.logger.info("relay starting", metadata: ["checkpoint": "\(cursor)", "topic": "\(self.settings.topic)"])
        guard let partitions = self.settings.guardedPartitions else {
            try await self.publish(from: cursor, stoppingAfter: nil)
            return
        }
        do {
            if let lost = try await self.confirmedLossBeforeStart(checkpoint: cursor) { throw lost }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.publish(from: cursor, stoppingAfter: nil) }
                group.addTask { try await self.watchTopic() }
                defer { group.cancelAll() }
                try await group.next()
            }
        } catch let lost as TopicLost {
            try await self.republish(after: lost, partitions: partitions)
        }
    }

    /// Before publishing from a checkpoint past the start: a topic that is gone or empty was lost
    /// (the broker came back empty while no relay ran; the process may have made the topic again).
    /// A broker that does not answer proves nothing.
    private func lossBeforeStart(checkpoint: LogCursor) async -> TopicLost? {
        guard checkpoint.position > 0 else { return nil }
        let found: [Int32: Int64]?
        do {
            found = try await self.producers.current.highWatermarks(of: self.settings.topic)
        } catch {
            return nil
        }
        guard let marks = found else { return TopicLost(reason: "the broker has no topic \(self.settings.topic)") }
        guard marks.values.reduce(0, +) == 0 else { return nil }
        return TopicLost(reason: "the topic is empty, and events up to position \(checkpoint.position) were delivered to it")
    }

    /// `lossBeforeStart`, asked twice a second apart: both must find the loss.
    private func confirmedLossBeforeStart(checkpoint: LogCursor) async throws -> TopicLost? {
        guard await self.lossBeforeStart(checkpoint: checkpoint) != nil else { return nil }
        try await Task.sleep(for: .seconds(1))
        return await self.lossBeforeStart(checkpoint: checkpoint)
    }

    /// Returns (throwing `TopicLost`) once the topic is gone, a partition ends before where it
    /// ended, or the topic holds fewer messages than this relay has since delivered to it: the broker
    /// lost them. Looks every `topicCheckInterval`; a broker that does not answer proves nothing and
    /// is asked again later.
    private func watchTopic() async throws {
        var seen: [Int32: Int64] = [:]
        var first: (messages: Int64, delivered: Int)?
        // A loss is acted on only when the next look confirms it: a broker that has just thawed or
        // restarted may answer oddly once, and a republish is a pass over the whole log.
        var suspected = false
        // Counted before the previous look: everything counted was acknowledged a whole interval
        // ago, so it is in what the broker answers now. (Counted just before this look, the
        // messages acknowledged a moment ago were seen missing from Tansu's high watermarks under
        // load, a false loss and a needless pass over the log.)
        var deliveredBeforeLastLook = self.delivered.count
        while true {
            try await Task.sleep(for: self.settings.topicCheckInterval)
            let delivered = deliveredBeforeLastLook
            deliveredBeforeLastLook = self.delivered.count
            let found: [Int32: Int64]?
            do {
                found = try await self.producers.current.highWatermarks(of: self.settings.topic)
            } catch {
                continue
            }
            if let loss = Self.loss(found, topic: self.settings.topic, seen: seen, first: first, delivered: delivered) {
                if suspected { throw loss }
                suspected = true
                continue
            }
            suspected = false
            guard let marks = found else { continue }
            // Counted after the topic was asked: nothing delivered in between is counted twice.
            if first == nil { first = (marks.values.reduce(0, +), self.delivered.count) }
            seen = marks
        }
    }

    /// How far one partition's high watermark may fall short of what it holds: Tansu reports it as
    /// its last batch's first offset + 1 (found 2026-12-05: 21 messages, the last 20 in one batch,
    /// read as 2), and a batch holds up to librdkafka's `batch.num.messages` (10,000). Without it, a
    /// last batch larger than the one at the first look read as lost messages, and the whole log
    /// was republished for nothing (seen in DeliveryTests with one partition's larger batches).
    static let watermarkShortfallPerPartition: Int64 = 10_000

    /// What the topic's high watermarks say was lost, if anything: the topic is gone, a partition
    /// ends before where it ended, or it holds fewer messages than it held plus those delivered
    /// since, by more than a last batch per partition (`watermarkShortfallPerPartition`).
    static func loss(
        _ found: [Int32: Int64]?, topic: String, seen: [Int32: Int64], first: (messages: Int64, delivered: Int)?, delivered: Int
    ) -> TopicLost? {
        guard let marks = found else { return TopicLost(reason: "the broker has no topic \(topic)") }
        for (partition, high) in marks where high < seen[partition] ?? 0 {
            return TopicLost(reason: "partition \(partition) ends at offset \(high), where it ended at \(seen[partition] ?? 0) before")
        }
        let messages = marks.values.reduce(0, +)
        let shortfall = Self.watermarkShortfallPerPartition * Int64(marks.count)
        if let first, messages + shortfall < first.messages + Int64(delivered - first.delivered) {
            return TopicLost(
                reason: "the topic holds \(messages) messages, fewer than the \(first.messages) it held plus the \(delivered - first.delivered) since"
            )
        }
        return nil
    }

    /// The log is the truth: the producer's undelivered messages are dropped (they must not land
    /// after the ones republished before them), the topic is made again if it is gone, and the
    /// checkpoint goes back to the start, so the relay, restarted, publishes everything again.
    /// Consumers drop what they had already handled.
    private func republish(after lost: TopicLost, partitions: Int32) async throws {
        self.metrics.topicLosses.increment()
        self.logger.error(
            "the broker lost published events; republishing the log from its start",
            metadata: ["topic": "\(self.settings.topic)", "reason": "\(lost.reason)"])
        let old = self.producers.current
        await old.discard()
        self.producers.replace(with: try old.renewed())
        // Made again only if it is gone: an existing topic is left as it is.
        var gone = false
        do {
            gone = try await self.producers.current.highWatermarks(of: self.settings.topic) == nil
        } catch {
            // Not answered: if it is gone, the next start of the relay finds out and comes back here.
        }
        if gone {
            try await KafkaAdmin.ensureTopic(
                self.settings.topic, partitions: partitions, replicationFactor: self.settings.topicReplicationFactor,
                topicConfig: self.settings.topicConfig, configuration: old.configuration)
        }
        try await self.store.saveCheckpoint(self.settings.checkpointName, .start)
    }

    /// Publishes from the checkpoint on until it has caught up with the log, under the leader lock,
    /// then returns how many events went out (a replay for a new consumer group). Run again, it
    /// resumes from its checkpoint.
    public func catchUp() async throws -> Int {
        let published = Mutex(0)
        try await self.leaderLock.whileLeader {
            let cursor = try await self.store.loadCheckpoint(self.settings.checkpointName)
            self.logger.info("catching up", metadata: ["checkpoint": "\(cursor)", "topic": "\(self.settings.topic)"])
            let count = try await self.publish(from: cursor, stoppingAfter: nil, untilCaughtUp: true)
            published.withLock { $0 = count }
        }
        await self.producers.current.shutdown()
        return published.withLock { $0 }
    }

    /// Publishes the log from `cursor` on, batch after batch, until cancelled (or, given a count, once
    /// at least that many events went out; or, if asked, once a read finds nothing new); returns how
    /// many it published. While the log holds a backlog (full batches), up to `maxBatchesInFlight`
    /// batches wait for the broker at once: the log is read again as soon as a full batch is handed
    /// to the producer. Once a batch is not full (caught up), its acknowledgement is waited for
    /// before the next read: librdkafka's idempotent producer has one produce request per partition
    /// in flight (it counts messages against its window of 5 requests), and messages handed to it
    /// behind that request only wait, its broker thread polling without a timeout meanwhile (19% of
    /// a core at 100 orders/s). What was appended during the wait goes out in the next batch. The
    /// checkpoint still moves in log order, only past batches whose every delivery report succeeded.
    @discardableResult
    public func publish(from start: LogCursor, stoppingAfter count: Int?, untilCaughtUp: Bool = false) async throws -> Int {
        let limit = self.settings.batchSize
        var cursor = start
        var enqueued = 0
        var published = 0
        var inFlight: [InFlightBatch] = []
        // Given up on (a failure, a cancellation): the tracker forgets them once they are reported.
        defer { for batch in inFlight { batch.delivery.forget() } }
        // Nothing found yet: quiet from the start (see `SignalledRest.init`).
        var lastFound = ContinuousClock.now - self.settings.quietAfter
        var rest = SignalledRest(readInterval: self.settings.signalledReadInterval, quietAfter: self.settings.quietAfter)
        // Appends notify only while a relay rests on their notice (migrations/0011): at rest it
        // asks for them, then reads the log once more before it waits; busy, it says so.
        var resting = false
        var restAnnounced = ContinuousClock.now
        while !Task.isCancelled {
            let caughtUp = inFlight.last.map { $0.events.count < limit } ?? false
            published += try await self.settle(&inFlight, waitingForOne: caughtUp || inFlight.count >= self.settings.maxBatchesInFlight)
            if let count, enqueued >= count { break }
            let generation = self.appendSignal?.generation
            if inFlight.isEmpty, !untilCaughtUp, let signal = self.appendSignal, let generation,
                let wait = rest.mayLeaveLogUnread(generation: generation, lastFound: lastFound)
            {
                if resting, ContinuousClock.now - restAnnounced < Self.restRenewal {
                    // No timer ticking at rest (each Task.sleep is a wake-up of Dispatch's timer thread).
                    await signal.wait(past: generation, upTo: wait)
                    try Task.checkCancellation()
                    continue
                }
                resting = await signal.announce(resting: true)
                restAnnounced = .now
            }
            rest.willRead(generation: generation)
            let events = try await self.store.readAll(after: cursor, limit: limit, matching: self.settings.filter)
            self.metrics.readAfter.recordSinceAppend(of: events)
            if let last = events.last {
                lastFound = .now
                if resting, let signal = self.appendSignal {
                    // Busy again: the log is read every few milliseconds, appends need not notify.
                    resting = await !signal.announce(resting: false)
                }
                let (messages, spans) = PublishTracing.messages(for: events, topic: self.settings.topic)
                inFlight.append(InFlightBatch(events: events, delivery: try await self.producers.current.enqueue(messages), spans: spans))
                cursor = last.cursor
                enqueued += events.count
                continue
            }
            if inFlight.isEmpty {
                self.metrics.lagSeconds.record(0)
                if untilCaughtUp { break }
                // With a working signal the wait stays short: the next look is at the signal, not the log.
                let quiet = ContinuousClock.now - lastFound >= self.settings.quietAfter && generation == nil
                try await Task.sleep(for: quiet ? self.settings.quietDelay : self.settings.idleDelay)
            } else if untilCaughtUp {
                published += try await self.settle(&inFlight, waitingForOne: true)
            } else {
                // Batches are out; look for new events again soon, and settle the batches then.
                try await Task.sleep(for: self.settings.idleDelay)
            }
        }
        while !inFlight.isEmpty, !Task.isCancelled {
            published += try await self.settle(&inFlight, waitingForOne: true)
        }
        return published
    }

    /// How often a resting relay asks for notices again (migrations/0011 forgets a request after 30
    /// minutes: one a relay left when it died).
    static let restRenewal: Duration = .seconds(600)

    /// Takes the batches the broker has answered for off the front of `inFlight` (waiting for the
    /// first one if asked), throwing the first failed delivery, then stores the checkpoint once,
    /// after the last of them. Returns how many events that published.
    private func settle(_ inFlight: inout [InFlightBatch], waitingForOne: Bool) async throws -> Int {
        var settled: [[RecordedEvent]] = []
        while let first = inFlight.first, first.delivery.isSettled || (waitingForOne && settled.isEmpty) {
            do {
                try await first.delivery.wait()
            } catch {
                TraceContext.end(first.spans, failure: error)
                throw error
            }
            TraceContext.end(first.spans, failure: nil)
            inFlight.removeFirst()
            settled.append(first.events)
        }
        guard let last = settled.last?.last else { return 0 }
        try await self.store.saveCheckpoint(self.settings.checkpointName, last.cursor)
        let count = settled.reduce(0) { $0 + $1.count }
        self.metrics.published.increment(by: count)
        for events in settled { self.metrics.publishedAfter.recordSinceAppend(of: events) }
        self.delivered.add(count)
        self.metrics.lagSeconds.record(max(0, Date().timeIntervalSince(last.recordedAt)))
        self.logger.debug("relayed events", metadata: ["count": "\(count)", "event.position": "\(last.position)"])
        return count
    }

}

/// A Kafka client in use, swapped for a new one when renewed (the relay's producer, a consumer's member).
final class Slot<Value: Sendable>: Sendable {
    private let value: Mutex<Value>

    init(_ value: Value) {
        self.value = Mutex(value)
    }

    var current: Value { self.value.withLock { $0 } }

    func replace(with value: Value) {
        self.value.withLock { $0 = value }
    }
}

/// A count shared by the relay's publishing and its topic watch.
final class DeliveredCount: Sendable {
    private let value = Atomic(0)

    var count: Int { self.value.load(ordering: .sequentiallyConsistent) }

    func add(_ amount: Int) {
        self.value.wrappingAdd(amount, ordering: .sequentiallyConsistent)
    }
}

/// The broker no longer holds what the relay delivered to it.
struct TopicLost: Error {
    var reason: String
}

/// Events published, and how far the relay trails the log (in positions and in seconds).
struct RelayMetrics: Sendable {
    let published = Counter(label: "orderly_relay_events_published_total")
    /// Times the broker was found to have lost the topic's messages (each followed by a republish).
    let topicLosses = Counter(label: "orderly_relay_topic_losses_total")
    let lagPositions = Gauge(label: "orderly_relay_lag_positions")
    let lagSeconds = Gauge(label: "orderly_relay_lag_seconds")
    /// Per event: from its append to the relay reading it from the log (a transaction still running
    /// below it holds it back, see `PostgresEventStore.readAll`).
    let readAfter = Timer(label: "orderly_relay_read_after_append_seconds")
    /// Per event: from its append to the broker's acknowledgement and the checkpoint after it.
    let publishedAfter = Timer(label: "orderly_relay_published_after_append_seconds")
}

/// A batch handed to the producer: its events, the broker's answer to come, and its publish spans.
struct InFlightBatch {
    var events: [RecordedEvent]
    var delivery: KafkaDelivery
    var spans: [any Span]
}

/// The relay's part of a trace: each event that carries one (`EventMetadata.traceparent`) gets a
/// producer span, a child of the span that appended it, lasting until the broker has the message;
/// the message carries that span's `traceparent`, so the consumers' spans are its children.
enum PublishTracing {
    static func messages(for events: [RecordedEvent], topic: String) -> (messages: [KafkaOutgoingMessage], spans: [any Span]) {
        guard TraceContext.enabled else { return (events.map { EventMessageCodec.message(for: $0, topic: topic) }, []) }
        var messages: [KafkaOutgoingMessage] = []
        var spans: [any Span] = []
        messages.reserveCapacity(events.count)
        for event in events {
            guard let parent = event.metadata.traceparent, TraceContext.isSampled(parent) else {
                messages.append(EventMessageCodec.message(for: event, topic: topic))
                continue
            }
            let span = startSpan("publish \(topic)", context: TraceContext.context(traceparent: parent), ofKind: .producer)
            span.updateAttributes { attributes in
                attributes["messaging.system"] = "kafka"
                attributes["messaging.operation.type"] = "send"
                attributes["messaging.destination.name"] = topic
                attributes["orderly.event.type"] = event.type
                attributes["orderly.event.position"] = Int(event.position)
            }
            var traced = event
            traced.metadata.traceparent = TraceContext.traceparent(of: span.context) ?? parent
            messages.append(EventMessageCodec.message(for: traced, topic: topic))
            spans.append(span)
        }
        return (messages, spans)
    }
}
