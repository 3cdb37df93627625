import Foundation
import Logging
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import OrderlyMessaging
import OrderlyProcesses
import OrderlyReadModels
import ServiceLifecycle
import Synchronization
import Testing

/// Runs `service` until `body` returns, then shuts it down.
func whileRunning<T: Sendable>(_ service: any Service, _ body: @Sendable () async throws -> T) async throws -> T {
    try await whileRunning([service], body)
}

func whileRunning<T: Sendable>(_ services: [any Service], _ body: @Sendable () async throws -> T) async throws -> T {
    let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: TestServers.logger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        defer { tasks.cancelAll() }
        let result = try await body()
        await group.triggerGracefulShutdown()
        return result
    }
}

/// The consumer runtime and the projector against the local broker and document server.
@Suite struct ConsumerTests {
    func orderPlaced(_ orderID: String, version: Int64 = 1, position: Int64, data: Data? = nil) throws -> RecordedEvent {
        let placed = OrderPlaced(
            orderId: orderID, customerId: "c-1", currency: "EUR", lines: [OrderLine(sku: "SKU-1", quantity: 1, unitPrice: 700)], total: 700,
            paymentToken: "tok_ok", placedAt: Date())
        let encoded = try EventCodec.encode(.orderPlaced(placed))
        return RecordedEvent(
            id: UUID(), streamID: "order-\(orderID)", streamVersion: version, position: position, transactionID: UInt64(position),
            type: encoded.type, schemaVersion: encoded.schemaVersion, data: data ?? encoded.data, metadata: EventMetadata(correlationId: orderID),
            recordedAt: Date())
    }

    func publish(_ messages: [KafkaOutgoingMessage], settings: Settings) async throws {
        try await KafkaAdmin.ensureTopic(settings.topic, partitions: 10, configuration: settings.kafka)
        let producer = try KafkaProducer(configuration: settings.kafka)
        try await producer.send(messages)
        await producer.shutdown()
    }

    /// The orders read model's live projection and its consumer.
    func projector(_ settings: Settings, group: String) async throws -> [any Service] {
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let definition = try #require(try ProjectionDefinition.loadAll(from: TestServers.repositoryRoot + "/projections")["orders"])
        let live = LiveProjection(OrdersProjection.self, definition: definition, client: mongo, logger: TestServers.logger)
        return [live, try await Processes.consumer(settings, group: group, handler: live, logger: TestServers.logger)]
    }

    @Test func anEventDeliveredTwiceHasOneEffectEvenAcrossARestart() async throws {
        let settings = try await TestServers.isolatedSettings()
        let event = try self.orderPlaced("o-dup", position: 1)
        let message = EventMessageCodec.message(for: event, topic: settings.topic)
        try await self.publish([message, message], settings: settings)
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let orders = MongoOrderReadModel(client: mongo)

        let first = try await self.projector(settings, group: settings.projectorGroup)
        let view = try await whileRunning(first) {
            try await TestServers.eventually { try await orders.order(id: "o-dup") }
        }
        #expect(view?.timeline.count == 1)
        #expect(view?.total == 700)

        // The second pass is a new process's memory over the same messages: only the version guard
        // stops it. A later event of the same order (same key, so after the repeats in the same
        // partition) shows when the second pass has gone through them all.
        let cancelled = try EventCodec.encode(
            .orderCancelled(OrderCancelled(orderId: "o-dup", customerId: "c-1", reason: .customerRequest, cancelledAt: Date())))
        let marker = RecordedEvent(
            id: UUID(), streamID: "order-o-dup", streamVersion: 2, position: 2, transactionID: 2, type: cancelled.type,
            schemaVersion: cancelled.schemaVersion, data: cancelled.data, metadata: EventMetadata(correlationId: "o-dup"), recordedAt: Date())
        try await self.publish([EventMessageCodec.message(for: marker, topic: settings.topic)], settings: settings)
        let second = try await self.projector(settings, group: TestServers.uniqueName("second"))
        let again = try await whileRunning(second) {
            try await TestServers.eventually { () -> OrderView? in
                guard let view = try await orders.order(id: "o-dup"), view.status == "CANCELLED" else { return nil }
                return view
            }
        }
        #expect(again?.status == "CANCELLED", "the second pass never reached the later event")
        #expect(again?.timeline.map(\.type) == ["OrderPlaced", "OrderCancelled"])
        try await mongo.dropDatabase()
    }

    /// Offsets are committed at most every `commitInterval` while batches keep coming, and at once
    /// when a poll finds nothing: a member that handled everything and then went quiet has committed
    /// it, so the group's next member starts after it (here the interval is an hour, so only the
    /// commit on going quiet can have done it).
    @Test func aConsumerThatWentQuietHasCommittedWhatItHandled() async throws {
        let settings = try await TestServers.isolatedSettings()
        let events = try (1...20).map { try self.orderPlaced("o-\($0)", position: Int64($0)) }
        try await self.publish(events.map { EventMessageCodec.message(for: $0, topic: settings.topic) }, settings: settings)
        func member(_ seen: RecordingHandler) throws -> EventConsumer {
            EventConsumer(
                consumer: try KafkaConsumer(configuration: settings.kafka, groupID: settings.projectorGroup, topics: [settings.topic]),
                deadLetters: try KafkaProducer(configuration: settings.kafka), handler: seen,
                settings: .init(group: settings.projectorGroup, deadLetterTopic: settings.deadLetterTopic, commitInterval: .seconds(3600)),
                logger: TestServers.logger)
        }
        let first = RecordingHandler()
        try await whileRunning(try member(first)) {
            _ = try await TestServers.eventually { first.positions.count >= 20 ? true : nil }
            try await Task.sleep(for: .seconds(1))  // a few empty polls
        }
        #expect(Set(first.positions) == Set(1...20))
        let marker = try self.orderPlaced("o-marker", position: 21)
        try await self.publish([EventMessageCodec.message(for: marker, topic: settings.topic)], settings: settings)
        let second = RecordingHandler()
        try await whileRunning(try member(second)) {
            _ = try await TestServers.eventually { second.positions.contains(21) ? true : nil }
        }
        #expect(second.positions == [21], "the next member was given again what the first had handled")
    }

    /// A projector that starts behind a backlog takes it in batches of up to its setting (2,000 by
    /// default; `ORDERLY_PROJECTOR_MAX_BATCH`), not the services' 500: that is how it catches up (an
    /// order's events that come together cost one write of its document).
    @Test func aProjectorBehindABacklogTakesMoreThanFiveHundredEventsAtOnce() async throws {
        #expect(Settings.fromEnvironment([:]).projectorMaxBatch == 2000)
        #expect(Settings.fromEnvironment(["ORDERLY_PROJECTOR_MAX_BATCH": "3000"]).projectorMaxBatch == 3000)
        #expect(Settings.fromEnvironment(["ORDERLY_PROJECTOR_MAX_BATCH": "-1"]).projectorMaxBatch == 2000)
        let settings = try await TestServers.isolatedSettings()
        let backlog = try (1...1500).map { try self.orderPlaced("o-backlog-\($0)", position: Int64($0)) }
        try await self.publish(backlog.map { EventMessageCodec.message(for: $0, topic: settings.topic) }, settings: settings)
        let batches = BatchSizes()
        let consumer = try await Processes.consumer(
            settings, group: settings.projectorGroup, handler: batches, maxBatch: settings.projectorMaxBatch, logger: TestServers.logger)
        let sizes = try await whileRunning(consumer) {
            try await TestServers.eventually(timeout: .seconds(60)) { batches.sizes.reduce(0, +) >= 1500 ? batches.sizes : nil }
        }
        #expect(sizes?.reduce(0, +) == 1500)
        #expect((sizes?.max() ?? 0) > 500, "batches: \(sizes ?? [])")
        #expect((sizes?.max() ?? 0) <= settings.projectorMaxBatch)
    }

    /// The broker restarts empty under a running consumer, and the topic is made again only after
    /// the member has rejoined its group without it (as when the relay takes a few seconds to find
    /// the loss). Tansu then answers the member's next join with its stored, empty, assignment for
    /// good; the consumer must notice it holds no partition of a topic that has some, join again as
    /// a new member, and handle what is published from then on.
    @Test func aConsumerLeftWithoutPartitionsAfterTheBrokerCameBackEmptyJoinsAgain() async throws {
        var isolated = try await TestServers.isolatedSettings()
        let broker = PrivateBroker()
        try broker.start()
        isolated.kafka.brokers = broker.brokers
        let settings = isolated
        let handled = HandledEvents()
        let consumer = try await Processes.consumer(settings, group: settings.projectorGroup, handler: handled, logger: TestServers.logger)
        let before = try (1...3).map { try self.orderPlaced("o-before-\($0)", position: Int64($0)) }
        let after = try (1...3).map { try self.orderPlaced("o-after-\($0)", position: Int64(10 + $0)) }
        let all: [UUID] = try await whileRunning(consumer) {
            try await self.publish(before.map { EventMessageCodec.message(for: $0, topic: settings.topic) }, settings: settings)
            _ = try await TestServers.eventually(timeout: .seconds(60)) { handled.ids.isSuperset(of: before.map(\.id)) ? true : nil }
            try await broker.restartEmpty()
            // Longer than the session timeout: the member has found its group gone and joined the
            // new broker's group while the topic does not exist.
            try await Task.sleep(for: .seconds(12))
            try await Processes.ensureTopic(settings.topic, settings, logger: TestServers.logger)
            try await self.publish(after.map { EventMessageCodec.message(for: $0, topic: settings.topic) }, settings: settings)
            // The broker told the member its topic was gone, so it waits only 15 s (not a minute)
            // without partitions before it joins again as a new member.
            _ = try await TestServers.eventually(timeout: .seconds(50)) { handled.ids.isSuperset(of: after.map(\.id)) ? true : nil }
            return Array(handled.ids)
        }
        #expect(Set(all).isSuperset(of: (before + after).map(\.id)), "the events published after the broker came back never arrived")
    }

    @Test func poisonEventsAreDeadLetteredWithTheirReasonAndLaterEventsFlow() async throws {
        let settings = try await TestServers.isolatedSettings()
        let garbage = KafkaOutgoingMessage(topic: settings.topic, key: Array("o-p".utf8), value: Array("not an event".utf8))
        let unreadable = EventMessageCodec.message(
            for: try self.orderPlaced("o-p", position: 1, data: Data(#"{"orderId": 5}"#.utf8)), topic: settings.topic)
        let good = EventMessageCodec.message(for: try self.orderPlaced("o-p", version: 2, position: 2), topic: settings.topic)
        try await self.publish([garbage, unreadable, good], settings: settings)

        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let consumer = try await self.projector(settings, group: settings.projectorGroup)
        let view = try await whileRunning(consumer) {
            try await TestServers.eventually { try await MongoOrderReadModel(client: mongo).order(id: "o-p") }
        }
        #expect(view?.version == 2, "the event after the poison ones was not applied")

        let deadLetters = try KafkaConsumer(configuration: settings.kafka, groupID: TestServers.uniqueName("dlq"), topics: [settings.deadLetterTopic])
        var records: [KafkaRecord] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while records.count < 2, ContinuousClock.now < deadline {
            if let record = try await deadLetters.poll(timeout: .milliseconds(200)) { records.append(record) }
        }
        await deadLetters.close()
        #expect(records.count == 2)
        let reasons = records.compactMap { $0.header("dlq-reason") }
        #expect(reasons.contains { $0.contains("unreadable message") })
        #expect(reasons.contains { $0.contains("cannot read OrderPlaced") })
        #expect(records.allSatisfy { $0.header("dlq-group") == settings.projectorGroup })
        #expect(records.contains { String(decoding: $0.value, as: UTF8.self) == "not an event" })
        // What operators list (`GET /dead-letters`): read without joining a group, reason and group decoded.
        let listed = try await DeadLetterTopic.newest(settings.deadLetterTopic, limit: 10, configuration: settings.kafka)
        #expect(listed.count == 2)
        #expect(listed.allSatisfy { $0.group == settings.projectorGroup && $0.source?.hasPrefix("\(settings.topic)/") == true })
        #expect(listed.contains { $0.value == "not an event" && $0.reason.contains("unreadable message") })
        #expect(listed.contains { $0.eventType == "OrderPlaced" && $0.reason.contains("cannot read OrderPlaced") && $0.position == 1 })
        #expect(try await DeadLetterTopic.newest(settings.deadLetterTopic, limit: 1, configuration: settings.kafka).count == 1)
        #expect(try await DeadLetterTopic.newest(TestServers.uniqueName("no-such-topic"), limit: 10, configuration: settings.kafka).isEmpty)
        // The same from the command line: `orderly dlq list` with filters, `orderly dlq show`.
        let list = try ChildProcess.orderly(["dlq", "list", "--group", settings.projectorGroup], settings: settings)
        await list.process.exited()
        #expect(list.process.terminationStatus == 0 && list.output.contains("2 dead letters"), "\(list.output)")
        #expect(list.output.contains("unreadable message") && list.output.contains("OrderPlaced"), "\(list.output)")
        let filtered = try ChildProcess.orderly(["dlq", "list", "--reason", "cannot read"], settings: settings)
        await filtered.process.exited()
        #expect(filtered.output.contains("1 dead letters") && !filtered.output.contains("unreadable message"), "\(filtered.output)")
        let garbageLetter = try #require(listed.first { $0.value == "not an event" })
        let show = try ChildProcess.orderly(["dlq", "show", "\(garbageLetter.partition)/\(garbageLetter.offset)"], settings: settings)
        await show.process.exited()
        #expect(show.output.contains(#""value" : "not an event""#), "\(show.output)")
        let missing = try ChildProcess.orderly(["dlq", "show", "0/999999"], settings: settings)
        await missing.process.exited()
        #expect(missing.process.terminationStatus != 0 && missing.output.contains("no dead letter at 0/999999"), "\(missing.output)")
        try await mongo.dropDatabase()
    }

    /// The dead-letter round trip an operator makes: a poison event (OrderPlaced at a schema version this
    /// build has no upcaster for) is set aside by the projector; "the next release" brings the upcaster;
    /// `orderly dlq redrive` puts the letter back, and only the projector's group handles it, although its
    /// stream was seen before (the repeat check would drop it); another group does not see it twice; what
    /// was redriven is recorded, and a second redrive needs --again and changes nothing.
    @Test func aDeadLetterRedrivenAfterAFixIsHandledByItsOwnGroupOnly() async throws {
        let settings = try await TestServers.isolatedSettings()
        var poison = try self.orderPlaced("o-r", position: 1, data: Data(UpgradableProjection.version0Payload(orderID: "o-r").utf8))
        poison.schemaVersion = 0
        let good = try self.orderPlaced("o-g", position: 2)
        try await self.publish([poison, good].map { EventMessageCodec.message(for: $0, topic: settings.topic) }, settings: settings)

        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let readModel = MongoOrderReadModel(client: mongo)
        let definition = try #require(try ProjectionDefinition.loadAll(from: TestServers.repositoryRoot + "/projections")["orders"])
        let live = LiveProjection(OrdersProjection.self, definition: definition, client: mongo, logger: TestServers.logger)
        let projection = UpgradableProjection(inner: live)
        let other = RecordingHandler()
        let services: [any Service] = [
            live, try await Processes.consumer(settings, group: settings.projectorGroup, handler: projection, logger: TestServers.logger),
            try await Processes.consumer(settings, group: settings.projectorGroup + "-other", handler: other, logger: TestServers.logger),
        ]
        let orderly: @Sendable ([String]) async throws -> (status: Int32, output: String) = { arguments in
            let child = try ChildProcess.orderly(["dlq"] + arguments, settings: settings, extra: ["USER": "ops-test"])
            await child.process.exited()
            return (child.process.terminationStatus, child.output)
        }
        try await whileRunning(services) {
            #expect(try await TestServers.eventually { try await readModel.order(id: "o-g") } != nil)
            let letter = try #require(
                try await TestServers.eventually {
                    try await DeadLetterTopic.newest(settings.deadLetterTopic, limit: 10, configuration: settings.kafka).first
                })
            #expect(letter.group == settings.projectorGroup && letter.reason.contains("cannot read OrderPlaced v0"), "\(letter)")
            #expect(try await readModel.order(id: "o-r") == nil)
            #expect(try await TestServers.eventually { other.positions.count == 2 ? true : nil } == true)
            let place = "\(letter.partition)/\(letter.offset)"

            // Nothing is redriven by accident: no letter named, or a dry run.
            let unnamed = try await orderly(["redrive"])
            #expect(unnamed.status != 0 && unnamed.output.contains("pass --all"), "\(unnamed.output)")
            let dry = try await orderly(["redrive", "--all", "--dry-run"])
            #expect(dry.status == 0 && dry.output.contains("would redrive \(place)") && dry.output.contains("1 would be redriven"), "\(dry.output)")
            #expect(!(try await orderly(["list"])).output.contains("[redriven"))

            // The fix is deployed; the letter goes back and the order appears in the read model.
            projection.upgrade()
            let redrive = try await orderly(["redrive", place])
            #expect(redrive.status == 0 && redrive.output.contains("1 redriven"), "\(redrive.output)")
            let view = try #require(try await TestServers.eventually { try await readModel.order(id: "o-r") })
            #expect(view.version == 1 && view.customerId == "c-1" && view.total == 700)
            let list = try await orderly(["list"])
            #expect(list.output.contains("[redriven ") && list.output.contains("by ops-test"), "\(list.output)")

            // A second redrive must be asked for; it is recorded and changes nothing.
            let repeated = try await orderly(["redrive", place])
            #expect(repeated.status != 0 && repeated.output.contains("already redriven: \(place)"), "\(repeated.output)")
            let again = try await orderly(["redrive", place, "--again"])
            #expect(again.status == 0 && again.output.contains("1 redriven"), "\(again.output)")
            #expect((try await orderly(["list"])).output.contains("2 times"))
            #expect((try await orderly(["redrive", "--all"])).output.contains("skipping 1 already redriven"))

            // A marker after the redriven messages, on their partition (same key): once the other group
            // has it, it has passed both redriven messages, and it must have skipped them.
            var marker = try self.orderPlaced("o-r", version: 2, position: 3)
            marker.type = "TestMarker"
            try await self.publish([EventMessageCodec.message(for: marker, topic: settings.topic)], settings: settings)
            #expect(try await TestServers.eventually { other.positions.contains(3) ? true : nil } == true)
            #expect(other.positions.sorted() == [1, 2, 3], "another group handled a redriven letter: \(other.positions)")
            #expect(try await readModel.order(id: "o-r")?.version == 1)
            #expect(try await DeadLetterTopic.newest(settings.deadLetterTopic, limit: 10, configuration: settings.kafka).count == 1)
        }
        try await mongo.dropDatabase()
    }
}

/// A handler that remembers which events it was given.
final class HandledEvents: EventHandler, Sendable {
    private let seen = Mutex<Set<UUID>>([])

    var ids: Set<UUID> { self.seen.withLock { $0 } }

    func handle(_ event: RecordedEvent) async throws {
        _ = self.seen.withLock { $0.insert(event.id) }
    }
}

/// Keeps how many events each batch it was handed held.
final class BatchSizes: EventHandler {
    private let seen = Mutex<[Int]>([])
    var sizes: [Int] { self.seen.withLock { $0 } }

    func handle(_ event: RecordedEvent) async throws {
        self.seen.withLock { $0.append(1) }
    }

    func handle(batch events: [RecordedEvent]) async throws {
        self.seen.withLock { $0.append(events.count) }
    }
}

/// Keeps the log position of every event it is handed.
final class RecordingHandler: EventHandler {
    private let seen = Mutex<[Int64]>([])
    var positions: [Int64] { self.seen.withLock { $0 } }

    func handle(_ event: RecordedEvent) async throws {
        self.seen.withLock { $0.append(event.position) }
    }
}

/// The orders projection as "the next release" has it once `upgrade()` is called: one more upcaster,
/// for OrderPlaced version 0 (the shape before payloads had versions: `order` and `customer`).
final class UpgradableProjection: EventHandler {
    private let inner: any EventHandler
    private let upgraded = Atomic<Bool>(false)
    private static let upcasters = UpcasterChain(
        Upcaster.all + [
            Upcaster(type: OrderPlaced.typeName, fromVersion: 0) { data in
                guard var fields = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw PoisonEvent(reason: "not an object") }
                fields["orderId"] = fields.removeValue(forKey: "order")
                fields["customerId"] = fields.removeValue(forKey: "customer")
                return try JSONSerialization.data(withJSONObject: fields)
            }
        ])

    init(inner: any EventHandler) {
        self.inner = inner
    }

    static func version0Payload(orderID: String) -> String {
        #"{"order":"\#(orderID)","customer":"c-1","currency":"EUR","lines":[{"sku":"SKU-1","quantity":1,"unitPrice":700}],"total":700,"#
            + #""paymentToken":"tok_ok","placedAt":"2026-12-03T10:00:00.000Z"}"#
    }

    func upgrade() {
        self.upgraded.store(true, ordering: .sequentiallyConsistent)
    }

    func handle(_ event: RecordedEvent) async throws {
        try await self.handle(delivered: [DeliveredEvent(event: event, partition: 0)])
    }

    func handle(delivered events: [DeliveredEvent]) async throws {
        guard self.upgraded.load(ordering: .sequentiallyConsistent) else { return try await self.inner.handle(delivered: events) }
        let current = try events.map { delivered in
            var event = delivered.event
            do {
                let upcast = try EventCodec.upcast(
                    EncodedEvent(type: event.type, schemaVersion: event.schemaVersion, data: event.data), upcasters: Self.upcasters)
                event.schemaVersion = upcast.schemaVersion
                event.data = upcast.data
            } catch {
                throw PoisonEvent(reason: "cannot read \(event.type) v\(event.schemaVersion): \(error)")
            }
            return DeliveredEvent(event: event, partition: delivered.partition)
        }
        try await self.inner.handle(delivered: current)
    }
}
