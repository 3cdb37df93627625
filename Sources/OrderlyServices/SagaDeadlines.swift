import Foundation
import Logging
import Metrics
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import ServiceLifecycle
import Synchronization

/// What a deadline watcher watches: streams started by one event type and not yet ended by one of
/// others, and how it ends one past its deadline. The order saga (the order service cancels the
/// order) and the shipment booking (the delivery service fails the shipment) share the watcher.
public struct DeadlineWorkflow: Sendable {
    /// What the logs call one stream past its deadline.
    public var name: String
    public var startType: String
    public var endTypes: [String]
    /// Gauges and the counter: streams open within the deadline, past it, ended by the watcher, and
    /// whether the deadline is paused (the pipeline does not move).
    public var inFlightMetric: String
    public var pastDeadlineMetric: String
    public var expiredMetric: String
    public var pausedMetric: String
    /// Ends the stream as past its deadline; true when it appended (false: it ended meanwhile).
    public var expire: @Sendable (AggregateStore, String, Date) async throws -> Bool

    /// Orders with no terminal event: cancelled (`DEADLINE_EXCEEDED`) and so compensated.
    public static let orderSaga = DeadlineWorkflow(
        name: "an order past its saga deadline", startType: OrderPlaced.typeName,
        endTypes: [OrderCompleted.typeName, OrderCancelled.typeName], inFlightMetric: "orderly_sagas_in_flight",
        pastDeadlineMetric: "orderly_sagas_past_deadline", expiredMetric: "orderly_sagas_deadline_cancelled_total",
        pausedMetric: "orderly_sagas_deadline_paused"
    ) { aggregates, stream, now in
        let metadata = EventMetadata(
            correlationId: OrderCommands.orderID(fromStream: stream), causationId: "saga-deadline", actor: "order-service")
        return try await aggregates.update(stream, as: Order.self, metadata: metadata) { $0.cancel(because: .deadlineExceeded, at: now) }
            != nil
    }

    /// Shipments requested and neither dispatched nor failed (the carrier never answered the booking):
    /// failed (`BOOKING_DEADLINE_EXCEEDED`), so the order is refunded, its stock taken back and the
    /// customer told, as for any failed shipment.
    public static let shipmentBooking = DeadlineWorkflow(
        name: "a shipment past its booking deadline", startType: ShipmentRequested.typeName,
        endTypes: [ShipmentDispatched.typeName, ShipmentFailed.typeName], inFlightMetric: "orderly_shipments_awaiting_booking",
        pastDeadlineMetric: "orderly_shipments_past_booking_deadline", expiredMetric: "orderly_shipments_booking_deadline_failed_total",
        pausedMetric: "orderly_shipments_booking_deadline_paused"
    ) { aggregates, stream, now in
        let orderId = String(stream.dropFirst(StreamNames.shipment("").count))
        let metadata = EventMetadata(correlationId: orderId, causationId: "booking-deadline", actor: DeliveryService.actor)
        return try await aggregates.update(stream, as: Shipment.self, metadata: metadata) {
            $0.fail(because: ShipmentFailureReason.bookingDeadlineExceeded, at: now)
        } != nil
    }
}

/// Part of the order service (the saga deadline) and of the delivery service (the booking deadline,
/// see `DeadlineWorkflow`). For the order saga: cancels (and so compensates) every order that has not reached a
/// terminal state within `deadline` of being placed. The first sweep looks back `lookback` before the
/// deadline (an order service that was down for less than that still finds every late order); later
/// sweeps look only at orders that crossed their deadline since the previous sweep (with an overlap
/// for transactions that committed late), so a sweep stays cheap however long the history is. Also
/// reports how many sagas are past their deadline, and every `inFlightInterval` how many are in
/// flight (that count reads every order placed within the deadline). Several order service
/// replicas may sweep at once: the cancel is an expected-version append, so one of them wins.
public final class SagaDeadlineWatcher: Service, Sendable {
    public struct Settings: Sendable {
        public var deadline: Duration
        public var interval: Duration
        public var lookback: Duration
        /// The relay's checkpoint: while the relay trails the log (it cannot publish), the deadline
        /// does not count. Nil: not watched.
        public var relayCheckpoint: String?
        /// Whether the broker answers: while it does not, the deadline does not count. Nil: not watched.
        public var brokerAnswers: (@Sendable () async -> Bool)?
        /// Whether the saga services' consumer groups keep up with the topic: while one is down or
        /// behind, the deadline does not count. Nil: not watched.
        public var groupsKeepUp: (@Sendable () async -> Bool)?
        /// How long the pipeline must have worked again before the deadline counts again: after a
        /// broker outage the consumer groups rejoin and catch up (about 11 s measured with Tansu after
        /// a 20 s freeze), which this process cannot see from here.
        public var settle: Duration
        /// How often the in-flight gauge is counted again. The count reads every order placed within
        /// the deadline (6,000 at 100 orders/s): done every second, it and the old 30 s overlap were a
        /// fifth of PostgreSQL's CPU in the saga benchmark.
        public var inFlightInterval: Duration

        public init(
            deadline: Duration = .seconds(60), interval: Duration = .seconds(1), lookback: Duration = .seconds(86_400),
            relayCheckpoint: String? = nil, brokerAnswers: (@Sendable () async -> Bool)? = nil,
            groupsKeepUp: (@Sendable () async -> Bool)? = nil, settle: Duration = .seconds(15), inFlightInterval: Duration = .seconds(10)
        ) {
            self.inFlightInterval = inFlightInterval
            self.deadline = deadline
            self.interval = interval
            self.lookback = lookback
            self.relayCheckpoint = relayCheckpoint
            self.brokerAnswers = brokerAnswers
            self.groupsKeepUp = groupsKeepUp
            self.settle = settle
        }
    }

    let store: any EventStore
    let aggregates: AggregateStore
    let settings: Settings
    let workflow: DeadlineWorkflow
    let logger: Logger
    let inFlight: Gauge
    let pastDeadline: Gauge
    let expired: Counter
    let paused: Gauge
    /// Orders placed before this were already swept; only the sweeping loop touches it.
    let sweptUntil = Mutex<Date?>(nil)
    /// When the pipeline could not carry sagas forward (see `PipelineClock`).
    let clock: Mutex<PipelineClock>
    /// Recent log heads, to tell a relay that is behind from one that is busy.
    let heads = Mutex<[(at: ContinuousClock.Instant, head: Int64)]>([])
    /// When the in-flight gauge was last counted.
    let inFlightCounted = Mutex<ContinuousClock.Instant?>(nil)
    /// The last in-flight and overdue counts, and when the in-flight count started: while both are
    /// zero and the log has not moved since, the pipeline's health does not matter.
    let lastCounts = Mutex<(at: ContinuousClock.Instant, inFlight: Int, overdue: Int)?>(nil)
    /// The log head at the last sweep and when it last changed.
    let lastHead = Mutex<(head: Int64, movedAt: ContinuousClock.Instant)?>(nil)

    public init(store: any EventStore, settings: Settings, workflow: DeadlineWorkflow = .orderSaga, logger: Logger) {
        self.store = store
        self.aggregates = AggregateStore(store: store)
        self.settings = settings
        self.workflow = workflow
        self.inFlight = Gauge(label: workflow.inFlightMetric)
        self.pastDeadline = Gauge(label: workflow.pastDeadlineMetric)
        self.expired = Counter(label: workflow.expiredMetric)
        self.paused = Gauge(label: workflow.pausedMetric)
        self.clock = Mutex(PipelineClock(settle: settings.settle.timeInterval))
        self.logger = logger
    }

    public func run() async throws {
        await repeatUntilShutdown("deadline sweep", logger: self.logger, retryDelay: self.settings.interval) {
            let head = try? await self.store.latestPosition()
            if self.mayHaveOpenStreams(head: head) {
                let healthy = await self.pipelineIsMoving(head: head)
                self.paused.record(healthy ? 0 : 1)
                try await self.sweep(now: Date(), pipelineHealthy: healthy)
            } else {
                // Nothing to sweep and no deadline a pause could move.
                self.clock.withLock { $0.tick(at: Date(), healthy: true) }
                self.paused.record(0)
            }
            return .after(self.settings.interval)
        }
    }

    /// Whether a sweep can find anything, and so whether the pipeline's health matters: not while
    /// the last counts found no stream in flight and none overdue, no pause is open and the log head
    /// has not moved since (a new stream moves it; the next in-flight count sees it). At rest that
    /// spares the broker, the consumer groups and PostgreSQL their questions every second: the order
    /// service was the busiest process of an idle system. Every `inFlightInterval` it sweeps anyway,
    /// for a transaction that committed below a head already seen.
    public func mayHaveOpenStreams(head: Int64?) -> Bool {
        let now = ContinuousClock.now
        let movedAt: ContinuousClock.Instant? = self.lastHead.withLock { last in
            guard let head else { return nil }
            if last?.head != head { last = (head, now) }
            return last?.movedAt
        }
        guard let movedAt, let counts = self.lastCounts.withLock({ $0 }), now - counts.at < self.settings.inFlightInterval else {
            return true
        }
        return counts.inFlight > 0 || counts.overdue > 0 || movedAt >= counts.at || self.clock.withLock { $0.isPaused }
    }

    /// Whether events can flow from the log to the services now: the broker answers, the relay
    /// keeps up (its checkpoint has reached every position the log had 5 s ago) and so do the saga
    /// services' consumer groups. A saga waiting on our own pipeline is not stuck: a broker outage
    /// of a minute cancelled every order in flight. `head` is the log's head now (nil: unreadable).
    func pipelineIsMoving(head: Int64?) async -> Bool {
        if let brokerAnswers = self.settings.brokerAnswers, await !brokerAnswers() { return false }
        if let groupsKeepUp = self.settings.groupsKeepUp, await !groupsKeepUp() { return false }
        guard let checkpointName = self.settings.relayCheckpoint else { return true }
        // The log cannot be read: nothing moves.
        guard let head, let checkpoint = try? await self.store.loadCheckpoint(checkpointName).position else { return false }
        let now = ContinuousClock.now
        return self.heads.withLock { heads in
            heads.append((now, head))
            heads.removeAll { now - $0.at > .seconds(30) }
            // The newest head at least 5 s old must have been relayed.
            guard let settled = heads.last(where: { now - $0.at >= .seconds(5) }) else { return true }
            return checkpoint >= settled.head
        }
    }

    /// Cancels every open order that has had `deadline` of pipeline time (wall time less the pauses
    /// while the pipeline was down, see `PipelineClock`) since it was placed; returns how many it
    /// cancelled.
    @discardableResult
    public func sweep(now: Date, pipelineHealthy: Bool = true) async throws -> Int {
        let deadline = self.clock.withLock { clock in
            clock.tick(at: now, healthy: pipelineHealthy)
            clock.forget(before: now.addingTimeInterval(-self.settings.lookback.timeInterval - self.settings.deadline.timeInterval))
            return clock.cutoff(now: now, deadline: self.settings.deadline.timeInterval)
        }
        let earliest =
            self.sweptUntil.withLock { $0 }.map { $0.addingTimeInterval(-Self.overlap) }
            ?? deadline.addingTimeInterval(-self.settings.lookback.timeInterval)
        let countNow = self.inFlightCounted.withLock { last in
            guard let counted = last, ContinuousClock.now - counted < self.settings.inFlightInterval else {
                last = .now
                return true
            }
            return false
        }
        if countNow {
            let started = ContinuousClock.now
            let inFlight = try await self.store.openStreams(
                startedBy: self.workflow.startType, in: deadline..<now, lacking: self.workflow.endTypes, limit: 100_000)
            self.inFlight.record(inFlight.count)
            self.lastCounts.withLock { $0 = (started, inFlight.count, $0?.overdue ?? 0) }
        }
        let overdue = try await self.store.openStreams(
            startedBy: self.workflow.startType, in: min(earliest, deadline)..<deadline, lacking: self.workflow.endTypes, limit: 100_000)
        self.pastDeadline.record(overdue.count)
        self.lastCounts.withLock { $0?.overdue = overdue.count }
        var cancelled = 0
        for stream in overdue where try await self.workflow.expire(self.aggregates, stream.streamID, now) {
            cancelled += 1
            self.expired.increment()
            self.logger.notice("ended \(self.workflow.name)", metadata: ["stream": "\(stream.streamID)"])
        }
        self.sweptUntil.withLock { $0 = deadline }
        return cancelled
    }

    /// How far back each sweep looks again: an OrderPlaced is stamped when its transaction starts and
    /// may become visible a little later. Only a lag longer than the deadline needs it: an order that
    /// becomes visible before its deadline passes is in the window of the first sweep after that
    /// anyway, so an order is missed only if its append took longer than the deadline plus this.
    /// (It was 30 s: every sweep read 31 s of orders again, 3,100 at 100 orders/s.)
    static let overlap: TimeInterval = 5
}

/// The saga deadline's clock: wall time less the pauses in which the pipeline (broker, relay, the
/// log itself) could not carry events. Ticked once a sweep with whether the pipeline moved; a tick
/// that finds it down counts it down since the tick before. Pure: no I/O.
public struct PipelineClock: Sendable {
    struct Pause: Sendable {
        var start: Date
        var end: Date
    }

    private(set) var pauses: [Pause] = []
    private var downSince: Date?
    private var healthySince: Date?
    private var lastTick: Date?
    /// Seconds the pipeline must have worked again before a pause ends.
    let settle: TimeInterval

    public init(settle: TimeInterval = 0) {
        self.settle = settle
    }

    public mutating func tick(at now: Date, healthy: Bool) {
        defer { self.lastTick = now }
        if healthy {
            guard let start = self.downSince else { return }
            let since = self.healthySince ?? now
            self.healthySince = since
            if now.timeIntervalSince(since) >= self.settle {
                self.pauses.append(Pause(start: start, end: now))
                self.downSince = nil
                self.healthySince = nil
            }
        } else {
            self.healthySince = nil
            if self.downSince == nil { self.downSince = self.lastTick ?? now }
        }
    }

    /// Whether a pause is open or not yet settled: the pipeline must be watched until it ends.
    public var isPaused: Bool { self.downSince != nil }

    /// Seconds of pause between `start` and `end`.
    public func paused(from start: Date, to end: Date) -> TimeInterval {
        let open = self.downSince.map { [Pause(start: $0, end: end)] } ?? []
        return (self.pauses + open).reduce(0) { total, pause in
            let from = max(pause.start, start)
            let to = min(pause.end, end)
            return to > from ? total + to.timeIntervalSince(from) : total
        }
    }

    /// The latest placement time whose order has had `deadline` seconds of pipeline time by `now`:
    /// every order placed before it is past its deadline. Walks back from `now`, counting only the
    /// time between pauses.
    public func cutoff(now: Date, deadline: TimeInterval) -> Date {
        let open = self.downSince.map { [Pause(start: $0, end: now)] } ?? []
        var remaining = deadline
        var cursor = now
        for pause in (self.pauses + open).sorted(by: { $0.end > $1.end }) where pause.start < cursor {
            let running = max(0, cursor.timeIntervalSince(pause.end))
            if running >= remaining { return cursor.addingTimeInterval(-remaining) }
            remaining -= running
            cursor = pause.start
        }
        return cursor.addingTimeInterval(-remaining)
    }

    /// Drops pauses that ended before `date` (no order that old is still looked at).
    public mutating func forget(before date: Date) {
        self.pauses.removeAll { $0.end < date }
    }
}
