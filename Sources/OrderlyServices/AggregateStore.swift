import Foundation
import OrderlyDomain
import OrderlyEventStore

/// Where each aggregate's events live. One stream per aggregate instance.
public enum StreamNames {
    public static func order(_ orderId: String) -> String { "order-\(orderId)" }
    public static func stock(_ sku: String) -> String { "stock-\(sku)" }
    public static func reservation(_ orderId: String) -> String { "reservation-\(orderId)" }
    public static func payment(_ orderId: String) -> String { "payment-\(orderId)" }
    public static func notification(_ orderId: String) -> String { "notification-\(orderId)" }
}

/// A stored event whose type or shape the domain does not know, in a stream it owns.
public struct UnreadableEvent: Error, Sendable, CustomStringConvertible {
    public var stream: String
    public var reason: String
    public var description: String { "stream \(self.stream) holds an unreadable event: \(self.reason)" }
}

/// Loads aggregates by folding their streams and appends their decisions with optimistic
/// concurrency: the append expects the version the decision was made on, and a conflict reloads and
/// decides again. Every service and command handler goes through it.
public struct AggregateStore: Sendable {
    public let store: any EventStore
    let maxAttempts: Int

    public init(store: any EventStore, maxAttempts: Int = 20) {
        self.store = store
        self.maxAttempts = maxAttempts
    }

    public func load(_ stream: String) async throws -> (events: [DomainEvent], version: Int64) {
        let recorded = try await self.store.readStream(stream, from: 1)
        let events = try recorded.map { event in
            do {
                return try EventCodec.decode(EncodedEvent(type: event.type, schemaVersion: event.schemaVersion, data: event.data))
            } catch {
                throw UnreadableEvent(stream: stream, reason: "\(error)")
            }
        }
        return (events, recorded.last?.streamVersion ?? 0)
    }

    /// Folds `stream` into a `State`, asks `decide` for new events and appends them expecting the
    /// version it decided on. Returns nil when the decision was to append nothing.
    @discardableResult
    public func update<State>(
        _ stream: String, fold: ([DomainEvent]) -> State, metadata: EventMetadata, decide: (State) throws -> [DomainEvent]
    ) async throws -> AppendResult? {
        var attempt = 1
        while true {
            let (events, version) = try await self.load(stream)
            let decided = try decide(fold(events))
            guard !decided.isEmpty else { return nil }
            let newEvents = try decided.map { event in
                let encoded = try EventCodec.encode(event)
                return NewEvent(type: encoded.type, schemaVersion: encoded.schemaVersion, data: encoded.data, metadata: metadata)
            }
            do {
                return try await self.store.append(newEvents, to: stream, expecting: version == 0 ? .noStream : .exact(version))
            } catch EventStoreError.wrongExpectedVersion where attempt < self.maxAttempts {
                // Someone else appended to this aggregate meanwhile: decide again on the new history.
                attempt += 1
            }
        }
    }
}

extension RecordedEvent {
    /// The domain event inside, or nil for a type this version of Orderly does not know (other
    /// systems may share the topic). A known type that does not decode is an error.
    public func domainEvent() throws(EventDecodingError) -> DomainEvent? {
        try EventCodec.decodeIfKnown(type: self.type, schemaVersion: self.schemaVersion, data: self.data)
    }

    /// Metadata for an event this one caused: same correlation (the order), caused by this event.
    public func causing(actor: String) -> EventMetadata {
        EventMetadata(correlationId: self.metadata.correlationId, causationId: self.id.uuidString.lowercased(), actor: actor)
    }
}
