import Foundation
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling

/// Who a notification is for, as the notification service found it on the order.
public enum NotificationRecipient: Sendable, Equatable {
    /// The customer the order names, opened from its sealed personal data just before sending.
    case customer(CustomerDetails)
    /// The order names no one (placed without personal data, or before orders carried it): a
    /// channel that needs an address passes it over.
    case unaddressed
}

/// A notification as it goes to the channel.
public struct OutgoingNotification: Sendable, Equatable {
    public var notification: NotificationSent
    public var recipient: NotificationRecipient
    /// The order's personal data as stored, sealed with the customer's key. A channel that keeps a
    /// record of its messages keeps this, never the opened recipient, so that forgetting the
    /// customer erases the record's addressee as it erases the log's.
    public var sealedRecipient: SealedPersonalData?

    public init(notification: NotificationSent, recipient: NotificationRecipient, sealedRecipient: SealedPersonalData? = nil) {
        self.notification = notification
        self.recipient = recipient
        self.sealedRecipient = sealedRecipient
    }
}

/// Where customer notifications go. `send` must be idempotent per order and outcome: after a crash
/// the same notification can be sent again, and must reach the customer once.
public protocol NotificationSender: Sendable {
    /// Sends every one of them (in one round trip where the channel allows).
    func send(all notifications: [OutgoingNotification]) async throws
}

/// Tells customers how their order ended and where their parcel is, once per order and outcome,
/// addressed to the customer the order names. A customer who was forgotten is written to no more:
/// the notification is recorded as withheld.
public struct NotificationService: EventHandler {
    static let actor = "notification-service"
    let aggregates: AggregateStore
    let sender: any NotificationSender
    let vault: PersonalDataVault

    public init(store: any EventStore, sender: any NotificationSender, vault: PersonalDataVault) {
        self.aggregates = AggregateStore(store: store)
        self.sender = sender
        self.vault = vault
    }

    /// OrderPlaced only to learn the order (see `AggregateStore.learn`): who it is for is then known
    /// without reading its stream.
    public static let handledTypes: Set<String> = [
        OrderPlaced.typeName, OrderCompleted.typeName, OrderCancelled.typeName, ShipmentDispatched.typeName, ShipmentDelivered.typeName,
        ShipmentFailed.typeName,
    ]

    public func handle(_ event: RecordedEvent) async throws {
        try await self.handle(batch: [event])
    }

    /// A batch's notifications go out in one `send(all:)`: each order's notification stream is read
    /// and its customer opened (concurrently), the ones not sent yet are sent together, then each is
    /// recorded. One round trip to the channel per batch instead of one per order (the document
    /// server behind the recording sender handles one request at a time).
    public func handle(batch events: [RecordedEvent]) async throws {
        var due: [(notification: NotificationSent, cause: RecordedEvent)] = []
        var seen = Set<String>()
        for event in events where Self.handledTypes.contains(event.type) {
            if event.type == OrderPlaced.typeName {
                if case .orderPlaced(let placed) = try event.domainEventForHandler() {
                    self.aggregates.learn(.orderPlaced(placed), recorded: event, as: Order.self)
                }
                continue
            }
            guard let notification = try Self.notification(for: event),
                seen.insert("\(notification.orderId):\(notification.outcome.rawValue)").inserted
            else { continue }
            due.append((notification, event))
        }
        guard !due.isEmpty else { return }
        let unsent = try await concurrently(due, limit: EventHandling.concurrentOrders) { item in
            try await TraceContext.withParent(item.cause.metadata.traceparent) {
                // An order's first notification starts its stream: not read. A repeat this process does
                // not know of is sent again, which the sender's key makes one message, and its
                // recording conflicts and is read.
                let sent = try await self.aggregates.lastKnown(
                    StreamNames.notification(item.notification.orderId), as: Notifications.self, assumingNew: true)
                return sent.hasSent(item.notification.outcome) ? nil : item
            }
        }.compactMap { $0 }
        guard !unsent.isEmpty else { return }
        // Each order opened once per batch (a delivered order's dispatch and delivery come together).
        let orderIds = Array(Set(unsent.map(\.notification.orderId)))
        let opened = try await concurrently(orderIds, limit: EventHandling.concurrentOrders) { try await self.addressee(of: $0) }
        let addressees = Dictionary(uniqueKeysWithValues: zip(orderIds, opened))
        let addressed = unsent.map { (addressees[$0.notification.orderId] ?? .unaddressed, $0.notification, $0.cause) }
        // Sent before it is recorded: a crash in between sends again, and the sender's key makes that one message.
        let outgoing = addressed.compactMap { addressee, notification, _ in addressee.outgoing(notification) }
        if !outgoing.isEmpty { try await self.sender.send(all: outgoing) }
        // Recorded per order, in the batch's order within an order (a completed order may be cancelled after).
        var byOrder: [String: [(notification: NotificationSent, cause: RecordedEvent)]] = [:]
        var orders: [String] = []
        for (addressee, notification, cause) in addressed {
            var recorded = notification
            if addressee == .erased { recorded.withheld = NotificationWithheld.personalDataErased }
            if byOrder[notification.orderId] == nil { orders.append(notification.orderId) }
            byOrder[notification.orderId, default: []].append((recorded, cause))
        }
        // One append per order, each notification caused by the event that called for it (a parcel's
        // dispatch and delivery come together: one round trip to the store for both, not two).
        let recordings = byOrder
        _ = try await concurrently(orders, limit: EventHandling.concurrentOrders) { orderId in
            let items = recordings[orderId] ?? []
            guard let first = items.first else { return }
            var causes: [NotificationOutcome: EventMetadata] = [:]
            for item in items { causes[item.notification.outcome] = item.cause.causing(actor: Self.actor) }
            let metadataOf = causes
            _ = try await TraceContext.withParent(first.cause.metadata.traceparent) {
                try await self.aggregates.update(
                    StreamNames.notification(orderId), as: Notifications.self, metadata: first.cause.causing(actor: Self.actor),
                    likelyNew: true,
                    causes: .each { event in
                        guard case .notificationSent(let sent) = event else { return nil }
                        return metadataOf[sent.outcome]
                    }
                ) { notifications in
                    var due: [DomainEvent] = []
                    var next = notifications
                    for item in items where !next.hasSent(item.notification.outcome) {
                        due.append(.notificationSent(item.notification))
                        next.apply(.notificationSent(item.notification))
                    }
                    return due
                }
            }
        }
    }

    /// Who an order's notifications go to.
    enum Addressee: Equatable {
        case customer(CustomerDetails, sealed: SealedPersonalData)
        case unaddressed
        /// The customer was forgotten: nothing goes out.
        case erased

        func outgoing(_ notification: NotificationSent) -> OutgoingNotification? {
            switch self {
            case .customer(let details, let sealed):
                OutgoingNotification(notification: notification, recipient: .customer(details), sealedRecipient: sealed)
            case .unaddressed: OutgoingNotification(notification: notification, recipient: .unaddressed)
            case .erased: nil
            }
        }
    }

    /// Opened for each notification, not kept: a customer forgotten a moment ago is not written to.
    func addressee(of orderId: String) async throws -> Addressee {
        guard let found = try await self.aggregates.personalData(ofOrder: orderId, vault: self.vault) else { return .unaddressed }
        switch found.opened {
        case .erased: return .erased
        case .available(let data):
            guard let customer = data.customer else { return .unaddressed }
            return .customer(customer, sealed: found.sealed)
        }
    }

    /// The notification `event` calls for, or nil.
    static func notification(for event: RecordedEvent) throws -> NotificationSent? {
        switch try event.domainEventForHandler() {
        case .orderCompleted(let completed):
            return NotificationSent(
                orderId: completed.orderId, customerId: completed.customerId, outcome: .completed,
                message: Notifications.message(for: .completed, orderId: completed.orderId))
        case .orderCancelled(let cancelled):
            return NotificationSent(
                orderId: cancelled.orderId, customerId: cancelled.customerId, outcome: .cancelled,
                message: Notifications.message(for: .cancelled, orderId: cancelled.orderId, reason: cancelled.reason.rawValue))
        case .shipmentDispatched(let dispatched):
            return NotificationSent(
                orderId: dispatched.orderId, customerId: dispatched.customerId, outcome: .dispatched,
                message: Notifications.message(for: .dispatched, orderId: dispatched.orderId)
                    + " \(dispatched.carrier) tracking number: \(dispatched.trackingNumber).")
        case .shipmentDelivered(let delivered):
            return NotificationSent(
                orderId: delivered.orderId, customerId: delivered.customerId, outcome: .delivered,
                message: Notifications.message(for: .delivered, orderId: delivered.orderId))
        case .shipmentFailed(let failed):
            return NotificationSent(
                orderId: failed.orderId, customerId: failed.customerId, outcome: .shipmentFailed,
                message: Notifications.message(for: .shipmentFailed, orderId: failed.orderId, reason: failed.reason))
        default:
            return nil
        }
    }
}

/// Why a notification was withheld (`NotificationSent.withheld`); stable strings.
public enum NotificationWithheld {
    /// The customer was forgotten before it went out: there is no one to write to. The same reason
    /// a shipment fails with for a forgotten customer.
    public static let personalDataErased = ShipmentFailureReason.personalDataErased
}

extension AggregateStore {
    /// The personal data an order was placed with, sealed as stored and opened with the customer's
    /// key (`.erased` once the customer was forgotten); nil when the order carries none.
    func personalData(ofOrder orderId: String, vault: PersonalDataVault) async throws -> (
        sealed: SealedPersonalData, opened: UnsealedPersonalData
    )? {
        // An order's sealed personal data never changes once it is placed (erasure deletes the key).
        let order = try await self.lastKnown(StreamNames.order(orderId), as: Order.self) { $0.placedAt != nil }
        guard let sealed = order.personalData, let customerId = order.customerId else { return nil }
        return (sealed, try await vault.open(sealed, customerId: customerId))
    }
}
