import Foundation
import OrderlyDomain
import OrderlyEventStore
import OrderlyServices
import Testing

/// Snapshots of long streams, against the in-memory store and the real PostgreSQL store: what is
/// kept, that a cold load starts from one and still equals the fold of the whole stream, and that a
/// snapshot of another schema, or one that does not decode, is ignored.
@Suite struct SnapshotTests {
    @Test(arguments: StoreKind.allCases)
    func aStoreKeepsTheNewestSnapshotOfASchemaAndTheNewestSchema(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let snapshots = try #require(store as? any SnapshotStore)
            #expect(try await snapshots.loadSnapshot(of: "stock-K") == nil)
            let at10 = StreamSnapshot(streamID: "stock-K", schema: "Stock/1", streamVersion: 10, state: Array(#"{"a":1}"#.utf8))
            try await snapshots.saveSnapshot(at10)
            // An older one of the same schema is not kept over a newer one.
            try await snapshots.saveSnapshot(StreamSnapshot(streamID: "stock-K", schema: "Stock/1", streamVersion: 5, state: Array(#"{"a":0}"#.utf8)))
            #expect(try await snapshots.loadSnapshot(of: "stock-K")?.streamVersion == 10)
            // Another schema replaces it, whatever its version: the newest code's fold wins.
            try await snapshots.saveSnapshot(StreamSnapshot(streamID: "stock-K", schema: "Stock/2", streamVersion: 3, state: Array(#"{"b":2}"#.utf8)))
            let kept = try #require(try await snapshots.loadSnapshot(of: "stock-K"))
            #expect(kept.schema == "Stock/2" && kept.streamVersion == 3)
            #expect(try JSONSerialization.jsonObject(with: Data(kept.state)) as? [String: Int] == ["b": 2])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aColdLoadStartsFromTheSnapshotAndEqualsTheWholeFold(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let snapshots = try #require(store as? any SnapshotStore)
            let writer = AggregateStore(store: store, snapshotEvery: 100)
            try await writer.update("stock-S", as: Stock.self, metadata: EventMetadata()) { _ in
                try Stock.restock(sku: "S", quantity: 1000, unitPrice: 100)
            }
            for order in 0..<250 {
                try await writer.update("stock-S", as: Stock.self, metadata: EventMetadata()) { stock in
                    guard case .reserve(let events) = stock.reserve(OrderLine(sku: "S", quantity: 1, unitPrice: 100), for: "o\(order)") else {
                        return []
                    }
                    return events
                }
            }
            // Saved in the background every 100 events: the newest at version 200 or later.
            let saved = try await TestServers.eventually { () -> Int64? in
                guard let version = try await snapshots.loadSnapshot(of: "stock-S")?.streamVersion, version >= 200 else { return nil }
                return version
            }
            #expect(saved != nil)
            let whole = Stock.fold(
                try await store.readStream("stock-S", from: 1).map {
                    try EventCodec.decode(EncodedEvent(type: $0.type, schemaVersion: $0.schemaVersion, data: $0.data))
                })
            let cold = try await AggregateStore(store: store).load("stock-S", as: Stock.self)
            #expect(cold.version == 251)
            #expect(cold.state == whole)
            #expect(cold.state.reserved == 250)

            // The load trusts the snapshot (it does not fold from the start): one saying otherwise wins.
            let planted = Stock.fold([.stockRestocked(StockRestocked(sku: "S", quantity: 7, unitPrice: 100))])
            try await snapshots.saveSnapshot(
                StreamSnapshot(streamID: "stock-S", schema: Stock.snapshotSchema, streamVersion: 251, state: Array(try JSONEncoder().encode(planted)))
            )
            #expect(try await AggregateStore(store: store).load("stock-S", as: Stock.self).state == planted)
            // Another schema's snapshot, or one that does not decode, is ignored: the whole fold again.
            try await snapshots.saveSnapshot(
                StreamSnapshot(streamID: "stock-S", schema: "Stock/0", streamVersion: 251, state: Array(try JSONEncoder().encode(planted))))
            #expect(try await AggregateStore(store: store).load("stock-S", as: Stock.self).state == whole)
            try await snapshots.saveSnapshot(
                StreamSnapshot(streamID: "stock-S", schema: Stock.snapshotSchema, streamVersion: 251, state: Array(#"{"onHand":"many"}"#.utf8)))
            #expect(try await AggregateStore(store: store).load("stock-S", as: Stock.self).state == whole)
        }
    }

    /// A snapshot ahead of its stream (the log truncated, or restored from a backup older than the
    /// snapshots): an update that decided on it conflicts with the log, passes it over and folds the
    /// stream from its start, instead of conflicting for ever.
    @Test(arguments: StoreKind.allCases)
    func aSnapshotAheadOfItsStreamIsPassedOver(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let snapshots = try #require(store as? any SnapshotStore)
            try await AggregateStore(store: store).update("stock-T", as: Stock.self, metadata: EventMetadata()) { _ in
                try Stock.restock(sku: "T", quantity: 10, unitPrice: 100)
            }
            let planted = Stock.fold([.stockRestocked(StockRestocked(sku: "T", quantity: 7, unitPrice: 100))])
            try await snapshots.saveSnapshot(
                StreamSnapshot(streamID: "stock-T", schema: Stock.snapshotSchema, streamVersion: 500, state: Array(try JSONEncoder().encode(planted)))
            )
            let aggregates = AggregateStore(store: store)
            let result = try await aggregates.update("stock-T", as: Stock.self, metadata: EventMetadata()) { _ in
                try Stock.restock(sku: "T", quantity: 1, unitPrice: 100)
            }
            #expect(result?.streamVersion == 2)
            let loaded = try await aggregates.load("stock-T", as: Stock.self)
            #expect(loaded.version == 2 && loaded.state.onHand == 11, "decided on the snapshot: \(loaded)")
        }
    }
}
