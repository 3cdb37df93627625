import Foundation
import Logging
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import OrderlyMessaging
import OrderlyReadModels
import OrderlyServices
import PostgresNIO
import ServiceLifecycle

/// The five saga services, each a consumer group of its own.
public enum SagaServiceKind: String, CaseIterable, Sendable {
    case order, inventory, payment, notification, delivery
}

/// The default notification sender, a stand-in for a mail gateway: records each message in the
/// `notifications` collection (of the notifications database, see `Settings.notificationsDatabase`),
/// keyed by order and outcome, so a repeat after a crash is the same single message. Tests and staff
/// read it. It records whom a message was addressed to only sealed (`recipient`: the order's personal
/// data as the log holds it, opened with the customer's key), so forgetting the customer erases that
/// too; `addressed` says whether the message had a recipient at all.
public struct RecordingNotificationSender: NotificationSender {
    public static let collection = "notifications"
    let notifications: MongoCollection

    public init(client: MongoClient) {
        self.notifications = client.collection(Self.collection)
    }

    /// One unordered bulk of upserts. A write refused as a duplicate key lost a race with another
    /// sender of the same message: it is there once, which is all a repeat must achieve.
    public func send(all notifications: [OutgoingNotification]) async throws {
        let writes = try notifications.map { outgoing in
            let notification = outgoing.notification
            let record = Record(
                orderId: notification.orderId, customerId: notification.customerId, outcome: notification.outcome,
                message: notification.message, addressed: outgoing.recipient != .unaddressed, recipient: outgoing.sealedRecipient)
            return (
                filter: ["_id": .string("\(notification.orderId):\(notification.outcome.rawValue)")] as Document,
                update: ["$setOnInsert": try Document.from(record), "$inc": ["deliveries": 1]] as Document
            )
        }
        _ = try await self.notifications.bulkUpsert(writes)
    }

    /// One message as recorded.
    struct Record: Codable {
        var orderId: String
        var customerId: String?
        var outcome: NotificationOutcome
        var message: String
        var addressed: Bool
        var recipient: SealedPersonalData?
    }
}

extension Processes {
    /// One saga service: its consumer (group `<prefix>-<kind>`) and, for the order service, the
    /// deadline watcher. Serves /health and /metrics on `opsPort` when given one.
    public static func sagaService(
        _ kind: SagaServiceKind, _ settings: Settings, postgres: PostgresClient, opsPort: Int?, logger: Logger
    ) async throws -> [any Service] {
        var logger = logger
        logger[metadataKey: "service"] = "\(kind.rawValue)"
        let store = PostgresEventStore(client: postgres, logger: logger)
        // The notification service's record (a stand-in for a mail gateway): its readiness too.
        var notificationRecord: MongoClient?
        let handler: any EventHandler
        // The types the service acts on: its consumer passes over the others on their `event-type`
        // header, before decoding them (every service used to decode every event of the topic, about
        // twelve an order, to act on three to six).
        let handledTypes: Set<String>
        var extra: [any Service] = []
        switch kind {
        case .order:
            handler = OrderService(store: store)
            handledTypes = OrderService.handledTypes
            // The groups a saga goes through before its end (notification comes after it).
            let pipeline = try PipelineWatch(settings, groups: [.inventory, .payment, .order], logger: logger)
            extra.append(pipeline.probe)
            extra.append(
                SagaDeadlineWatcher(
                    store: store, settings: pipeline.deadlineSettings(deadline: settings.sagaDeadline, interval: settings.sagaSweepInterval),
                    logger: logger))
        case .inventory:
            handler = InventoryService(store: store)
            handledTypes = InventoryService.handledTypes
        case .payment:
            let opener = try settings.makePaymentTokenOpener()
            if opener == nil {
                logger.warning("no ORDERLY_PAYMENT_TOKEN_PRIVATE_KEY: payment tokens the api sealed are declined (PAYMENT_TOKEN_UNREADABLE)")
            }
            handler = PaymentService(store: store, gateway: SimulatedPaymentGateway(), paymentTokens: opener)
            handledTypes = PaymentService.handledTypes
        case .notification:
            let mongo = try MongoClient(uri: settings.mongoURI, database: settings.notificationsDatabase)
            // Keys trusted for a second: a customer forgotten more than that before is not written to.
            let vault = PersonalDataVault(keys: CachedCustomerKeyStore(PostgresCustomerKeyStore(client: postgres, logger: logger), ttl: .seconds(1)))
            handler = NotificationService(store: store, sender: RecordingNotificationSender(client: mongo), vault: vault)
            handledTypes = NotificationService.handledTypes
            notificationRecord = mongo
        case .delivery:
            // Uncached keys: a customer forgotten a moment before booking is not shipped to.
            let vault = PersonalDataVault(keys: PostgresCustomerKeyStore(client: postgres, logger: logger))
            handler = DeliveryService(store: store, vault: vault, carrier: SimulatedCarrier(advancesByItself: settings.simulatedCarrierAdvances))
            handledTypes = DeliveryService.handledTypes
            let pipeline = try PipelineWatch(settings, groups: [.delivery], logger: logger)
            extra.append(pipeline.probe)
            extra.append(
                SagaDeadlineWatcher(
                    store: store,
                    settings: pipeline.deadlineSettings(deadline: settings.shipmentBookingDeadline, interval: settings.shipmentSweepInterval),
                    workflow: .shipmentBooking, logger: logger))
        }
        let consumer = try await self.consumer(
            settings, group: "\(settings.serviceGroupPrefix)-\(kind.rawValue)", handler: handler, handledTypes: handledTypes, logger: logger)
        var services: [any Service] = [consumer] + extra
        if let opsPort {
            services.append(self.opsServer(settings, port: opsPort, postgres: postgres, mongo: notificationRecord, logger: logger))
        }
        return services
    }
}

/// Whether events can flow to a deadline's services (the broker answers, their consumer groups keep
/// up): a deadline does not count while its own pipeline is down (a broker outage of a minute once
/// cancelled every order in flight).
struct PipelineWatch {
    /// Asks the broker; a service of the process, so it is shut down with it.
    let probe: KafkaProducer
    let brokerAnswers: @Sendable () async -> Bool
    let groupsKeepUp: @Sendable () async -> Bool
    let relayCheckpoint: String

    init(_ settings: Settings, groups kinds: [SagaServiceKind], logger: Logger) throws {
        let probe = try KafkaProducer(configuration: settings.kafka)
        self.probe = probe
        self.brokerAnswers = { (try? await probe.ping(timeout: .seconds(1))) != nil }
        let groups = try ConsumerGroupWatch(
            configuration: settings.kafka, topic: settings.topic, groups: kinds.map { "\(settings.serviceGroupPrefix)-\($0.rawValue)" })
        self.groupsKeepUp = {
            guard let behind = try? await groups.groupsBehind() else { return false }
            if !behind.isEmpty { logger.debug("deadline paused: consumer groups behind", metadata: ["groups": "\(behind)"]) }
            return behind.isEmpty
        }
        self.relayCheckpoint = "relay:\(settings.topic)"
    }

    func deadlineSettings(deadline: Duration, interval: Duration) -> SagaDeadlineWatcher.Settings {
        .init(
            deadline: deadline, interval: interval, relayCheckpoint: self.relayCheckpoint, brokerAnswers: self.brokerAnswers,
            groupsKeepUp: self.groupsKeepUp)
    }
}
