import Foundation
import Logging
import Metrics
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import ServiceLifecycle
import Synchronization

/// Part of the order service: cancels (and so compensates) every order that has not reached a
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

    static let terminalTypes = [OrderCompleted.typeName, OrderCancelled.typeName]
    let store: any EventStore
    let aggregates: AggregateStore
    let settings: Settings
    let logger: Logger
    let inFlight = Gauge(label: "orderly_sagas_in_flight")
    let pastDeadline = Gauge(label: "orderly_sagas_past_deadline")
    let expired = Counter(label: "orderly_sagas_deadline_cancelled_total")
    let paused = Gauge(label: "orderly_sagas_deadline_paused")
    /// Orders placed before this were already swept; only the sweeping loop touches it.
    let sweptUntil = Mutex<Date?>(nil)
    /// When the pipeline could not carry sagas forward (see `PipelineClock`).
    let clock: Mutex<PipelineClock>
    /// Recent log heads, to tell a relay that is behind from one that is busy.
    let heads = Mutex<[(at: ContinuousClock.Instant, head: Int64)]>([])
    /// When the in-flight gauge was last counted.
    let inFlightCounted = Mutex<ContinuousClock.Instant?>(nil)

    public init(store: any EventStore, settings: Settings, logger: Logger) {
        self.store = store
        self.aggregates = AggregateStore(store: store)
        self.settings = settings
        self.clock = Mutex(PipelineClock(settle: settings.settle.timeInterval))
        self.logger = logger
    }

    public func run() async throws {
        await repeatUntilShutdown("deadline sweep", logger: self.logger, retryDelay: self.settings.interval) {
            let healthy = await self.pipelineIsMoving()
            self.paused.record(healthy ? 0 : 1)
            try await self.sweep(now: Date(), pipelineHealthy: healthy)
            return .after(self.settings.interval)
        }
    }

    /// Whether events can flow from the log to the services now: the broker answers, the relay
    /// keeps up (its checkpoint has reached every position the log had 5 s ago) and so do the saga
    /// services' consumer groups. A saga waiting on our own pipeline is not stuck: a broker outage
    /// of a minute cancelled every order in flight.
    func pipelineIsMoving() async -> Bool {
        if let brokerAnswers = self.settings.brokerAnswers, await !brokerAnswers() { return false }
        if let groupsKeepUp = self.settings.groupsKeepUp, await !groupsKeepUp() { return false }
        guard let checkpointName = self.settings.relayCheckpoint else { return true }
        do {
            let head = try await self.store.latestPosition()
            let checkpoint = try await self.store.loadCheckpoint(checkpointName).position
            let now = ContinuousClock.now
            return self.heads.withLock { heads in
                heads.append((now, head))
                heads.removeAll { now - $0.at > .seconds(30) }
                // The newest head at least 5 s old must have been relayed.
                guard let settled = heads.last(where: { now - $0.at >= .seconds(5) }) else { return true }
                return checkpoint >= settled.head
            }
        } catch {
            // The log cannot be read: nothing moves.
            return false
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
            let inFlight = try await self.store.openStreams(
                startedBy: OrderPlaced.typeName, in: deadline..<now, lacking: Self.terminalTypes, limit: 100_000)
            self.inFlight.record(inFlight.count)
        }
        let overdue = try await self.store.openStreams(
            startedBy: OrderPlaced.typeName, in: min(earliest, deadline)..<deadline, lacking: Self.terminalTypes, limit: 100_000)
        self.pastDeadline.record(overdue.count)
        var cancelled = 0
        for stream in overdue {
            let metadata = EventMetadata(
                correlationId: OrderCommands.orderID(fromStream: stream.streamID), causationId: "saga-deadline",
                actor: "order-service")
            let result = try await self.aggregates.update(stream.streamID, as: Order.self, metadata: metadata) {
                $0.cancel(because: .deadlineExceeded, at: now)
            }
            if result != nil {
                cancelled += 1
                self.expired.increment()
                self.logger.notice("cancelled an order past its saga deadline", metadata: ["order.stream": "\(stream.streamID)"])
            }
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
