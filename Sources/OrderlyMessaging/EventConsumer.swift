import Foundation
import Logging
import Metrics
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import ServiceLifecycle
import Tracing

/// The runtime every reacting process uses: a consumer-group member that, for each event,
/// drops repeats (per partition and stream: a version at or below the last one applied), retries transient failures
/// with backoff without moving on (order per order id matters), dead-letters poison events with
/// their reason without blocking the partition, and commits offsets only after the effects are
/// durable.
public struct EventConsumer: Service {
    public struct Settings: Sendable {
        public var group: String
        public var deadLetterTopic: String
        public var maxBatch: Int
        /// The most events a consumer takes in one batch unless told otherwise (the projector takes more).
        public static let defaultMaxBatch = 500
        public var firstRetryDelay: Duration
        public var maxRetryDelay: Duration
        /// How many streams' last versions are remembered for dropping repeats; past it the memory
        /// starts over and the handler's own idempotency takes the repeats.
        public var rememberedStreams: Int
        /// The event types the handler wants (nil: all). Others are passed over on their
        /// `event-type` header, before any decoding, and committed like handled ones.
        public var handledTypes: Set<String>?
        /// How often, at most, handled offsets are committed while batches keep coming (and always
        /// when a poll finds nothing, and at shutdown). Every commit is a write the broker makes
        /// under the same lock its produce path takes (Tansu); a crash redelivers at most this much,
        /// which the handlers' idempotency absorbs.
        public var commitInterval: Duration
        /// How long one poll waits for a message (librdkafka answers as soon as one is there). The
        /// poll blocks a thread of Dispatch's pool meanwhile, which Task.sleep's timers need too: at
        /// 500 ms, a process with dozens of consumers (the test runner) saw its timers seconds late.
        public var pollTimeout: Duration

        public init(
            group: String, deadLetterTopic: String, maxBatch: Int = Settings.defaultMaxBatch, firstRetryDelay: Duration = .milliseconds(100),
            maxRetryDelay: Duration = .seconds(5), rememberedStreams: Int = 100_000, handledTypes: Set<String>? = nil,
            commitInterval: Duration = .milliseconds(250), pollTimeout: Duration = .milliseconds(100)
        ) {
            self.pollTimeout = pollTimeout
            self.group = group
            self.deadLetterTopic = deadLetterTopic
            self.maxBatch = maxBatch
            self.firstRetryDelay = firstRetryDelay
            self.maxRetryDelay = maxRetryDelay
            self.rememberedStreams = rememberedStreams
            self.handledTypes = handledTypes
            self.commitInterval = commitInterval
        }
    }

    /// Renewed when the group leaves it without partitions (see `KafkaConsumer.holdsNoPartitionOfATopicWithSome`).
    let consumers: Slot<KafkaConsumer>
    /// Renewed after a failed delivery, as the relay's (see `KafkaProducer.renewed`).
    let deadLetters: Slot<KafkaProducer>
    let handler: any EventHandler
    let settings: Settings
    let logger: Logger
    let metrics: ConsumerMetrics

    public init(
        consumer: KafkaConsumer, deadLetters: KafkaProducer, handler: any EventHandler, settings: Settings, logger: Logger
    ) {
        self.consumers = Slot(consumer)
        self.deadLetters = Slot(deadLetters)
        self.handler = handler
        self.settings = settings
        self.logger = logger
        self.metrics = ConsumerMetrics(group: settings.group)
    }

    /// What the consume loop carries from one batch to the next.
    struct LoopState: Sendable {
        /// The last version applied per stream, to drop repeats.
        var lastVersions: [String: Int64] = [:]
        var starvation = StarvationWatch()
        /// What was handled since the last commit.
        var handled = HandledOffsets()
    }

    public func run() async throws {
        let ended = await repeatUntilShutdown(
            "consuming for group \(self.settings.group)", logger: self.logger, retryDelay: self.settings.maxRetryDelay, state: LoopState()
        ) { state in
            try await self.consumeOnce(&state)
            return .next
        } recover: { state, error in
            // A retriable error (a commit the broker refused for now) leaves every polled record
            // handled: go on, the offsets are committed next time. Otherwise the member may be past
            // records it did not finish, or broken (a fatal error): commit what was done, then join
            // again from the committed offsets, forgetting which versions were seen. (Not for every
            // error: members renewed during a broker outage kept Tansu's groups from recovering.)
            if let kafka = error as? KafkaError, kafka.isRetriable { return }
            try? await self.commit(&state.handled)
            let failed = self.consumer
            if let fresh = try? failed.renewed() {
                await failed.close()
                self.consumers.replace(with: fresh)
            }
            state.lastVersions = [:]
        }
        // What was handled since the last commit, so a restart does not redo it (best effort: a
        // crash instead redelivers it, which the handlers absorb).
        if !ended.handled.isEmpty { self.consumer.startCommit(ended.handled.records) }
        await self.consumer.close()
        await self.deadLetters.current.shutdown()
    }

    /// Polls one batch and handles it (or, when there is none, commits and looks for starvation).
    private func consumeOnce(_ state: inout LoopState) async throws {
        let records = try await self.pollBatch()
        guard !records.isEmpty else {
            try await self.commit(&state.handled)
            try await self.renewIfStarved(&state.starvation)
            return
        }
        state.starvation.fed()
        var admitted: [(record: KafkaRecord, event: RecordedEvent)] = []
        for record in records {
            if let event = try await self.admit(record, lastVersions: &state.lastVersions) { admitted.append((record, event)) }
        }
        self.metrics.receivedAfter.recordSinceAppend(of: admitted.map(\.event))
        let handlingStarted = ContinuousClock.now
        try await self.handle(admitted)
        self.metrics.batchHandled(events: admitted.count, in: ContinuousClock.now - handlingStarted)
        state.handled.add(records)
        if ContinuousClock.now - state.handled.lastCommit >= self.settings.commitInterval { try await self.commit(&state.handled) }
    }

    /// Commits what was handled since the last commit. Not waited for: the next batch need not sit
    /// out a broker round trip.
    private func commit(_ handled: inout HandledOffsets) async throws {
        guard !handled.isEmpty else { return }
        try await self.consumer.commit(handled.records, waiting: false)
        handled.committed()
    }

    private var consumer: KafkaConsumer { self.consumers.current }

    private func pollBatch() async throws -> [KafkaRecord] {
        try await self.consumer.poll(max: self.settings.maxBatch, timeout: self.settings.pollTimeout)
    }

    /// While idle, looks every few seconds whether the group has left this member without
    /// partitions although the topic has some; if it stays so for `patience`, joins again as a new
    /// member. Each renewal doubles the patience (a member of a group with more members than
    /// partitions is rightly idle, and must not make the group rebalance over and over).
    private func renewIfStarved(_ watch: inout StarvationWatch) async throws {
        let now = ContinuousClock.now
        guard now >= watch.nextLook else { return }
        watch.nextLook = now + .seconds(5)
        let old = self.consumer
        if old.sawATopicMissing() { watch.topicWentMissing = true }
        guard await old.holdsNoPartitionOfATopicWithSome() == true else {
            watch.emptySince = nil
            return
        }
        let since = watch.emptySince ?? now
        watch.emptySince = since
        guard now - since >= watch.currentPatience else { return }
        self.logger.notice(
            "the group gave this member no partitions although the topic has some; joining again as a new member",
            metadata: [
                "group": "\(self.settings.group)", "idle.for": "\(now - since)", "topic.went.missing": "\(watch.topicWentMissing)",
            ])
        let fresh = try old.renewed()
        await old.close()
        self.consumers.replace(with: fresh)
        watch.renewed()
    }

    /// Decodes a record and drops it if it is a repeat; an unreadable one goes to the dead-letter topic.
    func admit(_ record: KafkaRecord, lastVersions: inout [String: Int64]) async throws -> RecordedEvent? {
        if let wanted = self.settings.handledTypes, let type = record.header("event-type"), !wanted.contains(type) { return nil }
        // A redriven dead letter (`orderly dlq redrive`) is for the group that set it aside; the others
        // handled the event the first time.
        let redriven = record.header(DeadLetterRedrive.groupHeader)
        if let redriven, redriven != self.settings.group { return nil }
        let event: RecordedEvent
        do {
            event = try EventMessageCodec.event(from: record)
        } catch {
            try await self.deadLetter(record, reason: "unreadable message: \(error)")
            return nil
        }
        // Its group takes it past the repeat check below (the stream has moved on since, so it would look
        // like a redelivery); the handler's own idempotency still holds.
        if redriven != nil {
            self.logger.notice(
                "handling a redriven dead letter",
                metadata: [
                    "event.type": "\(event.type)", "stream.id": "\(event.streamID)",
                    "redrive.of": "\(record.header(DeadLetterRedrive.ofHeader) ?? "?")",
                ])
            return event
        }
        // Per partition and stream: the relay publishes in log order, so within one partition a stream's
        // versions only grow and a repeat is a redelivery. A stream shared by many orders (a SKU's stock)
        // spreads over partitions, where its versions interleave; that is not a repeat.
        let dedupeKey = "\(record.partition)/\(event.streamID)"
        if let last = lastVersions[dedupeKey], event.streamVersion <= last {
            self.metrics.duplicates.increment()
            self.logger.debug(
                "dropped a repeated event",
                metadata: ["event.type": "\(event.type)", "stream.id": "\(event.streamID)", "stream.version": "\(event.streamVersion)"])
            return nil
        }
        if lastVersions.count >= self.settings.rememberedStreams { lastVersions.removeAll(keepingCapacity: true) }
        lastVersions[dedupeKey] = event.streamVersion
        return event
    }

    /// Hands the events to the handler as one batch; if it finds a poison event among them, goes
    /// through them one at a time so that only the poison one is dead-lettered.
    func handle(_ admitted: [(record: KafkaRecord, event: RecordedEvent)]) async throws {
        guard !admitted.isEmpty else { return }
        guard TraceContext.enabled else { return try await self.handleUntraced(admitted) }
        let (traced, spans) = ConsumeTracing.start(admitted, group: self.settings.group)
        do {
            // Calls the handler makes for the batch as a whole (the projector's bulk write) go under
            // the first sampled event's span, linked to the others'; the default per-event handling
            // puts each event's under its own.
            try await TraceContext.withBatch(traced.map(\.event.metadata.traceparent)) { try await self.handleUntraced(traced) }
            TraceContext.end(spans, failure: nil)
        } catch {
            TraceContext.end(spans, failure: error)
            throw error
        }
    }

    private func handleUntraced(_ admitted: [(record: KafkaRecord, event: RecordedEvent)]) async throws {
        do {
            try await self.retrying(logger: self.logger) {
                try await self.handler.handle(delivered: admitted.map { DeliveredEvent(event: $0.event, partition: $0.record.partition) })
            }
            self.applied(admitted.map(\.event))
            return
        } catch is PoisonEvent {
            self.logger.notice("a batch holds a poison event; handling its events one at a time")
        }
        for (record, event) in admitted {
            var logger = self.logger
            logger[metadataKey: "correlationId"] = "\(event.metadata.correlationId ?? "")"
            logger[metadataKey: "event.id"] = "\(event.id.uuidString.lowercased())"
            logger[metadataKey: "event.type"] = "\(event.type)"
            logger[metadataKey: "event.position"] = "\(event.position)"
            do {
                try await self.retrying(logger: logger) {
                    try await self.handler.handle(delivered: [DeliveredEvent(event: event, partition: record.partition)])
                }
                self.applied([event])
            } catch let poison as PoisonEvent {
                try await self.deadLetter(record, reason: poison.reason)
            }
        }
    }

    private func applied(_ events: [RecordedEvent]) {
        self.metrics.applied.increment(by: Int64(events.count))
        self.metrics.handledAfter.recordSinceAppend(of: events)
        if let last = events.last { self.metrics.lagSeconds.record(max(0, Date().timeIntervalSince(last.recordedAt))) }
    }

    /// Runs `work` until it succeeds, backing off between attempts; a poison event or cancellation ends it.
    private func retrying(logger: Logger, _ work: () async throws -> Void) async throws {
        var delay = self.settings.firstRetryDelay
        while true {
            do {
                try await work()
                return
            } catch let poison as PoisonEvent {
                throw poison
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                self.metrics.retries.increment()
                logger.warning("handling failed; retrying", metadata: ["error": "\(error)", "retry.delay": "\(delay)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, self.settings.maxRetryDelay)
            }
        }
    }

    /// Publishes the message as it came, plus the reason and where it came from, and waits for the
    /// broker to have it before the offset may be committed past it.
    private func deadLetter(_ record: KafkaRecord, reason: String) async throws {
        self.logger.error(
            "dead-lettering an event",
            metadata: ["reason": "\(reason)", "kafka.partition": "\(record.partition)", "kafka.offset": "\(record.offset)"])
        let headers =
            record.headers + [
                ("dlq-reason", Array(reason.utf8)), ("dlq-group", Array(self.settings.group.utf8)),
                ("dlq-source", Array("\(record.topic)/\(record.partition)/\(record.offset)".utf8)),
            ]
        var delay = self.settings.firstRetryDelay
        while true {
            do {
                try await self.deadLetters.current.send([
                    KafkaOutgoingMessage(topic: self.settings.deadLetterTopic, key: record.key, value: record.value, headers: headers)
                ])
                self.metrics.deadLettered.increment()
                return
            } catch let error as KafkaError {
                self.logger.warning("dead-letter topic unavailable; retrying", metadata: ["error": "\(error)"])
                let failed = self.deadLetters.current
                if let fresh = try? failed.renewed() {
                    self.deadLetters.replace(with: fresh)
                    await failed.shutdown()
                }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, self.settings.maxRetryDelay)
            }
        }
    }
}

/// How long a member may sit without partitions before it joins again (see `EventConsumer.renewIfStarved`).
struct StarvationWatch {
    /// Long beside a group's own recovery: after a broker freeze of a minute, Tansu's groups took
    /// more than 10 s to hand out partitions again, and a member renewed then (it leaves, a new one
    /// joins) kept every group of the long-outage chaos run from recovering at all.
    static let firstPatience: Duration = .seconds(60)
    /// After the broker said the topic does not exist: Tansu's bug, not a slow rebalance, is then the
    /// likely reason for an empty assignment once the topic is back (a frozen broker says nothing).
    static let patienceAfterTopicWentMissing: Duration = .seconds(15)
    var patience = Self.firstPatience
    var topicWentMissing = false
    var nextLook = ContinuousClock.now + .seconds(5)
    var emptySince: ContinuousClock.Instant?

    var currentPatience: Duration {
        self.topicWentMissing ? min(self.patience, Self.patienceAfterTopicWentMissing) : self.patience
    }

    mutating func renewed() {
        self.patience = min(self.patience * 2, .seconds(300))
        self.topicWentMissing = false
        self.emptySince = nil
    }

    mutating func fed() {
        self.patience = Self.firstPatience
        self.topicWentMissing = false
        self.emptySince = nil
    }
}

/// Per consumer group: events applied, repeats dropped, retries, dead letters, and how old the last
/// applied event was (the lag in seconds behind the log).
struct ConsumerMetrics: Sendable {
    let applied: Counter
    let duplicates: Counter
    let retries: Counter
    let deadLettered: Counter
    let lagSeconds: Gauge
    /// Per event: from its append (`recordedAt`) to this group receiving it, and to its handler
    /// being done; together with the relay's publish delay they say where an order's time goes.
    let receivedAfter: Timer
    let handledAfter: Timer
    /// Per polled batch with events for the handler: how long handling it took (the group's pace:
    /// events per batch over this is what it can take; a group that falls behind shows why here).
    let batchHandling: Timer
    let batchEvents: Counter

    init(group: String) {
        let dimensions = [("group", group)]
        self.applied = Counter(label: "orderly_consumer_events_applied_total", dimensions: dimensions)
        self.duplicates = Counter(label: "orderly_consumer_events_duplicate_total", dimensions: dimensions)
        self.retries = Counter(label: "orderly_consumer_retries_total", dimensions: dimensions)
        self.deadLettered = Counter(label: "orderly_consumer_dead_lettered_total", dimensions: dimensions)
        self.lagSeconds = Gauge(label: "orderly_consumer_lag_seconds", dimensions: dimensions)
        self.receivedAfter = Timer(label: "orderly_consumer_received_after_append_seconds", dimensions: dimensions)
        self.handledAfter = Timer(label: "orderly_consumer_handled_after_append_seconds", dimensions: dimensions)
        self.batchHandling = Timer(label: "orderly_consumer_batch_handling_seconds", dimensions: dimensions)
        self.batchEvents = Counter(label: "orderly_consumer_batch_events_total", dimensions: dimensions)
    }

    func batchHandled(events: Int, in duration: Duration) {
        guard events > 0 else { return }
        self.batchEvents.increment(by: Int64(events))
        self.batchHandling.recordNanoseconds(duration.nanoseconds)
    }
}

extension Timer {
    /// Records, per event, the time from its append until now (the stage timings of a saga's hops).
    func recordSinceAppend(of events: some Sequence<RecordedEvent>, now: Date = Date()) {
        for event in events { self.recordNanoseconds(max(0, Int64(now.timeIntervalSince(event.recordedAt) * 1e9))) }
    }
}

/// The last handled record of each partition since the last commit.
struct HandledOffsets {
    private var last: [String: KafkaRecord] = [:]
    private(set) var lastCommit = ContinuousClock.now

    var isEmpty: Bool { self.last.isEmpty }
    var records: [KafkaRecord] { Array(self.last.values) }

    mutating func add(_ records: [KafkaRecord]) {
        for record in records {
            let key = "\(record.topic)/\(record.partition)"
            if let kept = self.last[key], kept.offset >= record.offset { continue }
            self.last[key] = record
        }
    }

    mutating func committed() {
        self.last.removeAll(keepingCapacity: true)
        self.lastCommit = .now
    }
}

/// A consumer's part of a trace: each event gets a consumer span, a child of the relay's publish span
/// (the message's `traceparent`), lasting until the handler is done with its batch; the event is
/// handed on carrying that span's `traceparent`, so what the handler appends continues the trace.
enum ConsumeTracing {
    static func start(
        _ admitted: [(record: KafkaRecord, event: RecordedEvent)], group: String
    ) -> (admitted: [(record: KafkaRecord, event: RecordedEvent)], spans: [any Span]) {
        var spans: [any Span] = []
        let traced = admitted.map { entry -> (record: KafkaRecord, event: RecordedEvent) in
            guard let parent = entry.event.metadata.traceparent, TraceContext.isSampled(parent) else { return entry }
            let span = startSpan("process \(entry.event.type)", context: TraceContext.context(traceparent: parent), ofKind: .consumer)
            span.updateAttributes { attributes in
                attributes["messaging.system"] = "kafka"
                attributes["messaging.operation.type"] = "process"
                attributes["messaging.destination.name"] = entry.record.topic
                attributes["messaging.consumer.group.name"] = group
                attributes["messaging.destination.partition.id"] = "\(entry.record.partition)"
                attributes["messaging.kafka.offset"] = Int(entry.record.offset)
                attributes["orderly.event.type"] = entry.event.type
                attributes["orderly.event.position"] = Int(entry.event.position)
            }
            spans.append(span)
            var event = entry.event
            event.metadata.traceparent = TraceContext.traceparent(of: span.context) ?? parent
            return (entry.record, event)
        }
        return (traced, spans)
    }
}
