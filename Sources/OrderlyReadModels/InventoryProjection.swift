import Foundation
import OrderlyDomain
import OrderlyEventStore

/// A SKU's stock as read-side clients see it (`GET /inventory/{sku}`).
public struct InventoryView: ProjectedView {
    public var sku: String
    public var onHand: Int64
    public var reserved: Int64
    public var available: Int64
    /// The catalog price order lines must match, in minor units.
    public var unitPrice: Int64?
    /// The stock stream's version this view reflects.
    public var version: Int64
    public var revision: Int64?

    public var documentID: String { self.sku }
}

/// The `inventory` read model: one document per SKU. A SKU's stock events travel under the SKU's
/// own Kafka key, so they arrive in stream order: an event at or below the document's version is a
/// repeat.
public enum InventoryProjection: ReadModelProjection {
    public static let name = "inventory"
    public static let unverifiedFields: Set<String> = ["revision"]
    public static let handledTypes: Set<String> = [
        StockRestocked.typeName, StockItemReserved.typeName, StockItemReleased.typeName, StockItemCommitted.typeName, StockItemReturned.typeName,
    ]

    public static func documentIDs(of event: DomainEvent, recorded: RecordedEvent) -> [String] {
        switch event {
        case .stockRestocked(let e): [e.sku]
        case .stockItemReserved(let e): [e.sku]
        case .stockItemReleased(let e): [e.sku]
        case .stockItemCommitted(let e): [e.sku]
        case .stockItemReturned(let e): [e.sku]
        default: []
        }
    }

    public static func startsDocument(_ event: DomainEvent, recorded: RecordedEvent) -> Bool {
        recorded.streamVersion == 1
    }

    public static func apply(_ event: DomainEvent, recorded: RecordedEvent, source: String, to current: InventoryView?, id: String, now: Date)
        -> InventoryView?
    {
        var view = current ?? InventoryView(sku: id, onHand: 0, reserved: 0, available: 0, version: 0)
        guard recorded.streamVersion > view.version else { return nil }
        switch event {
        case .stockRestocked(let restocked):
            view.onHand += Int64(restocked.quantity)
            view.unitPrice = restocked.unitPrice
        case .stockItemReserved(let reserved):
            view.reserved += Int64(reserved.quantity)
        case .stockItemReleased(let released):
            view.reserved -= Int64(released.quantity)
        case .stockItemCommitted(let committed):
            view.reserved -= Int64(committed.quantity)
            view.onHand -= Int64(committed.quantity)
        case .stockItemReturned(let returned):
            view.onHand += Int64(returned.quantity)
        default:
            return nil
        }
        view.available = view.onHand - view.reserved
        view.version = recorded.streamVersion
        return view
    }
}

/// Queries over the `inventory` collection.
public protocol InventoryReadModel: Sendable {
    func stock(sku: String) async throws -> InventoryView?
}

public struct MongoInventoryReadModel: InventoryReadModel {
    let collections: ActiveCollections

    public init(collections: ActiveCollections) {
        self.collections = collections
    }

    public init(client: MongoClient) {
        self.init(collections: ActiveCollections(client: client))
    }

    public func stock(sku: String) async throws -> InventoryView? {
        try await self.collections.collection(InventoryProjection.name).findOne(["_id": .string(sku)], as: InventoryView.self)
    }
}
