import Foundation
import Logging
import Metrics
import OrderlyDomain
import OrderlyEventStore
import ServiceLifecycle

/// Part of the order service: cancels (and so compensates) every order that has not reached a
/// terminal state within `deadline` of being placed. It looks at orders placed within `lookback`
/// before the deadline, so an order service that was down for less than `lookback` still finds all of
/// them. Also reports how many sagas are in flight and how many are past their deadline.
public struct SagaDeadlineWatcher: Service {
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
        let deadline = now.addingTimeInterval(-Self.seconds(self.settings.deadline))
        let earliest = deadline.addingTimeInterval(-Self.seconds(self.settings.lookback))
        let open = try await self.store.openStreams(
            startedBy: OrderPlaced.typeName, in: earliest..<now, lacking: Self.terminalTypes, limit: 100_000)
        let overdue = open.filter { $0.startedAt < deadline }
        self.inFlight.record(open.count)
        self.pastDeadline.record(overdue.count)
        var cancelled = 0
        for stream in overdue {
            let metadata = EventMetadata(
                correlationId: stream.streamID.replacingOccurrences(of: "order-", with: ""), causationId: "saga-deadline",
                actor: "order-service")
            let result = try await self.aggregates.update(stream.streamID, fold: Order.fold, metadata: metadata) {
                $0.cancel(because: .deadlineExceeded, at: now)
            }
            if result != nil {
                cancelled += 1
                self.logger.notice("cancelled an order past its saga deadline", metadata: ["order.stream": "\(stream.streamID)"])
            }
        }
        return cancelled
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
