import Foundation
import OrderlyDomain
import OrderlyEventStore

/// One order's past, for analysts: every event of its streams in log order, and its view (the same
/// fold as the `orders` read model) as it was at a moment, folded from the events recorded by then.
public struct OrderHistory: Sendable {
    public var orderID: String
    /// Every event of the order's streams, in position order.
    public var events: [RecordedEvent]
    /// The moment the state is folded to (nil: now, every event).
    public var asOf: Date?
    /// The order as it was at `asOf`; nil when it had not been placed yet.
    public var state: OrderView?

    /// Events recorded at or before `asOf`.
    public var applied: [RecordedEvent] {
        guard let asOf else { return self.events }
        return self.events.filter { $0.recordedAt <= asOf }
    }

    /// Reads `streams` (the order's own streams: order, reservation, payment, notification) and folds.
    public static func load(orderID: String, streams: [String], store: any EventStore, asOf: Date?) async throws -> OrderHistory {
        var events: [RecordedEvent] = []
        for stream in streams { events += try await store.readStream(stream, from: 1) }
        events.sort { $0.position < $1.position }
        var history = OrderHistory(orderID: orderID, events: events, asOf: asOf, state: nil)
        var sourced: [SourcedEvent] = []
        for event in history.applied {
            if let item = try OrdersProjection.sourced(event, source: SourcedEvent.logSource) { sourced.append(item) }
        }
        var documents: [String: OrderView] = [:]
        _ = OrdersProjection.fold(sourced, into: &documents, now: asOf ?? Date())
        history.state = documents[orderID]
        return history
    }
}
