import Foundation
import Logging
import Metrics
import OrderlyDomain
import OrderlyEventStore
import ServiceLifecycle
import Synchronization

/// Part of the order service: cancels (and so compensates) every order that has not reached a
/// terminal state within `deadline` of being placed. The first sweep looks back `lookback` before the
/// deadline (an order service that was down for less than that still finds every late order); later
/// sweeps look only at orders that crossed their deadline since the previous sweep (with an overlap
/// for transactions that committed late), so a sweep stays cheap however long the history is. Also
/// reports how many sagas are in flight and how many are past their deadline. Several order service
/// replicas may sweep at once: the cancel is an expected-version append, so one of them wins.
public final class SagaDeadlineWatcher: Service, Sendable {
    public struct Settings: Sendable {
        public var deadline: Duration
        public var interval: Duration
        public var lookback: Duration

        public init(deadline: Duration = .seconds(60), interval: Duration = .seconds(1), lookback: Duration = .seconds(86_400)) {
            self.deadline = deadline
            self.interval = interval
            self.lookback = lookback
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
    /// Orders placed before this were already swept; only the sweeping loop touches it.
    let sweptUntil = Mutex<Date?>(nil)

    public init(store: any EventStore, settings: Settings, logger: Logger) {
        self.store = store
        self.aggregates = AggregateStore(store: store)
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.sweep(now: Date())
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("deadline sweep failed; trying again", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: self.settings.interval)
            }
        }
    }

    /// Cancels every open order placed before `now - deadline`; returns how many it cancelled.
    @discardableResult
    public func sweep(now: Date) async throws -> Int {
        let deadline = now.addingTimeInterval(-self.settings.deadline.timeInterval)
        let earliest =
            self.sweptUntil.withLock { $0 }.map { $0.addingTimeInterval(-Self.overlap) }
            ?? deadline.addingTimeInterval(-self.settings.lookback.timeInterval)
        let inFlight = try await self.store.openStreams(
            startedBy: OrderPlaced.typeName, in: deadline..<now, lacking: Self.terminalTypes, limit: 100_000)
        let overdue = try await self.store.openStreams(
            startedBy: OrderPlaced.typeName, in: min(earliest, deadline)..<deadline, lacking: Self.terminalTypes, limit: 100_000)
        self.inFlight.record(inFlight.count)
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
    /// may become visible a little later.
    static let overlap: TimeInterval = 30
}
