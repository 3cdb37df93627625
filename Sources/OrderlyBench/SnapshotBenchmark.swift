import Foundation
import OrderlyDomain
import OrderlyEventStore
import OrderlyServices

/// What a process that just started pays for its first decision on a long stream (a busy SKU's
/// stock): the load folded from the whole stream, against the load from the snapshot a running
/// service leaves behind (at most `AggregateStore`'s interval behind the stream's end).
public enum SnapshotBenchmark {
    public struct Result: Codable, Sendable {
        public var events: Int
        /// Events after the snapshot, folded on top of it.
        public var tail: Int
        public var wholeFoldSeconds: Double
        public var fromSnapshotSeconds: Double
    }

    /// Seeds a stock stream of `events` events (a restock, then a reservation and a sale per order),
    /// then times both loads on a cold `AggregateStore` each; throws if they disagree.
    public static func run(store: PostgresEventStore, events: Int, snapshotEvery: Int64 = 500) async throws -> Result {
        let sku = "SKU-SNAPSHOT-\(Identifiers.random().uuidString.prefix(8))"
        let stream = StreamNames.stock(sku)
        let metadata = EventMetadata(correlationId: stream, actor: "bench")
        var version = try await store.append(
            [try NewEvent(.stockRestocked(StockRestocked(sku: sku, quantity: events, unitPrice: 100)), metadata: metadata)], to: stream,
            expecting: .noStream
        ).streamVersion
        func appendOrders(upTo count: Int) async throws {
            while version < Int64(count) {
                let orders = min(250, (count - Int(version)) / 2 + 1)
                var batch: [NewEvent] = []
                for _ in 0..<orders {
                    let order = Identifiers.random().uuidString
                    batch.append(try NewEvent(.stockItemReserved(StockItemReserved(sku: sku, orderId: order, quantity: 1)), metadata: metadata))
                    batch.append(try NewEvent(.stockItemCommitted(StockItemCommitted(sku: sku, orderId: order, quantity: 1)), metadata: metadata))
                }
                version = try await store.append(batch, to: stream, expecting: .exact(version)).streamVersion
            }
        }
        // The stream as a running service would have left it: snapshotted on the way, then a tail.
        try await appendOrders(upTo: events - Int(snapshotEvery) + 1)
        let service = AggregateStore(store: store, snapshotEvery: snapshotEvery)
        _ = try await service.load(stream, as: Stock.self)
        let snapshotDeadline = ContinuousClock.now + .seconds(30)
        while try await store.loadSnapshot(of: stream) == nil, ContinuousClock.now < snapshotDeadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        guard let snapshot = try await store.loadSnapshot(of: stream) else { throw LoadGeneratorError("no snapshot was saved") }
        try await appendOrders(upTo: events)

        let wholeStarted = ContinuousClock.now
        let whole = try await AggregateStore(store: store, snapshotEvery: nil).load(stream, as: Stock.self)
        let wholeTook = ContinuousClock.now - wholeStarted
        let snapshotStarted = ContinuousClock.now
        let fromSnapshot = try await AggregateStore(store: store).load(stream, as: Stock.self)
        let snapshotTook = ContinuousClock.now - snapshotStarted
        guard whole.state == fromSnapshot.state, whole.version == fromSnapshot.version else {
            throw LoadGeneratorError("the load from the snapshot differs from the whole fold")
        }
        return Result(
            events: Int(whole.version), tail: Int(whole.version - snapshot.streamVersion), wholeFoldSeconds: wholeTook.timeInterval,
            fromSnapshotSeconds: snapshotTook.timeInterval)
    }
}
