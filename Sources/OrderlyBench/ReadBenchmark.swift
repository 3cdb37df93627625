import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import OrderlyMessaging
import OrderlyProcesses
import OrderlyReadModels
import ServiceLifecycle
import Synchronization

/// The read side's two figures: how fast the projector turns a Kafka backlog of placed orders into
/// `orders` documents, and how many `GET /orders/{id}` a running api answers. scripts/bench sets each
/// beside raw libmongoc (bulk upserts of the same documents; point reads of the same ids).
public enum ReadBenchmark {
    public struct ProjectorResult: Codable, Sendable {
        public var events: Int
        public var seconds: Double
        public var eventsPerSecond: Double
        /// One written document, as the raw baseline upserts it (without `_id`).
        public var sampleDocument: String
    }

    /// Publishes `count` OrderPlaced events of different orders to a new topic, then runs the orders
    /// projection's live consumer until it has handled them all. Timed from the first batch handed to
    /// the projection to the last one written: the consumer group's join is left out.
    public static func projector(
        settings: Settings, mongo: MongoClient, count: Int, idsFile: String?, logger: Logger
    ) async throws -> ProjectorResult {
        var settings = settings
        settings.topic = "bench-projector-\(UUID().uuidString.prefix(8).lowercased())"
        try await KafkaAdmin.ensureTopic(settings.topic, partitions: settings.topicPartitions, configuration: settings.kafka)
        let producer = try KafkaProducer(configuration: settings.kafka)
        var ids: [String] = []
        for start in stride(from: 0, to: count, by: 5000) {
            var messages: [KafkaOutgoingMessage] = []
            for index in start..<min(start + 5000, count) {
                let id = "bench-\(UUID().uuidString.lowercased())"
                ids.append(id)
                let placed = OrderPlaced(
                    orderId: id, customerId: "c-\(index % 1000)", currency: "EUR",
                    lines: [OrderLine(sku: "SKU-00017", quantity: 2, unitPrice: 1299), OrderLine(sku: "SKU-00003", quantity: 1, unitPrice: 4500)],
                    total: 7098, paymentToken: "tok_ok", placedAt: Date())
                let encoded = try EventCodec.encode(.orderPlaced(placed))
                let event = RecordedEvent(
                    id: UUID(), streamID: "order-\(id)", streamVersion: 1, position: Int64(index + 1), transactionID: UInt64(index + 1),
                    type: encoded.type, schemaVersion: encoded.schemaVersion, data: encoded.data,
                    metadata: EventMetadata(correlationId: id, actor: "bench"), recordedAt: Date())
                messages.append(EventMessageCodec.message(for: event, topic: settings.topic))
            }
            try await producer.send(messages)
        }
        await producer.shutdown()
        if let idsFile { try Data(ids.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: idsFile)) }

        let definitions = try ReadModelCatalog.definitions(from: ProjectionDefinition.defaultDirectory())
        guard let definition = definitions.first(where: { $0.0.name == OrdersProjection.name })?.1 else {
            throw ProjectionError(message: "no orders definition")
        }
        try await definition.ensureIndexes(mongo)
        let live = LiveProjection(OrdersProjection.self, definition: definition, client: mongo, logger: logger)
        let timed = TimedHandler(inner: live)
        let consumer = try await Processes.consumer(
            settings, group: "bench-projector-\(UUID().uuidString.prefix(8))", handler: timed, handledTypes: OrdersProjection.handledTypes,
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: live), .init(service: consumer)], logger: logger))
        let span = try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            defer { tasks.cancelAll() }
            let deadline = ContinuousClock.now + .seconds(600)
            while timed.handled < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            await group.triggerGracefulShutdown()
            return timed.span
        }
        guard let span, timed.handled >= count else { throw ProjectionError(message: "the projector handled \(timed.handled) of \(count) events") }
        let sample = try await mongo.collection(OrdersProjection.name).findOne(["_id": .string(ids.first ?? "")])
        var sampleText = "{}"
        if case .object(let fields)? = sample {
            sampleText = String(decoding: try Document.object(fields.filter { $0.0 != "_id" }).jsonData(), as: UTF8.self)
        }
        let seconds = span.timeInterval
        return ProjectorResult(events: count, seconds: seconds, eventsPerSecond: Double(count) / seconds, sampleDocument: sampleText)
    }

    public struct ReadResult: Codable, Sendable {
        public var requests: Int
        public var errors: Int
        public var seconds: Double
        public var requestsPerSecond: Double
        public var p50Milliseconds: Double
        public var p99Milliseconds: Double
    }

    /// `concurrency` clients, each sending `GET /orders/{id}` for random ids of `ids` one after
    /// another for `duration` (closed loop). A request counts when it answers 200 with a body.
    public static func orderGets(baseURL: String, bearer: String, ids: [String], concurrency: Int, duration: Duration) async throws -> ReadResult {
        guard !ids.isEmpty else { throw ProjectionError(message: "no order ids to read") }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { _ = client.shutdown() }
        let started = ContinuousClock.now
        let end = started + duration
        let perClient = try await withThrowingTaskGroup(of: ([Duration], Int).self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Duration] = []
                    var errors = 0
                    while ContinuousClock.now < end {
                        let sent = ContinuousClock.now
                        var request = HTTPClientRequest(url: "\(baseURL)/orders/\(ids.randomElement() ?? "")")
                        request.headers.add(name: "Authorization", value: bearer)
                        do {
                            let response = try await client.execute(request, timeout: .seconds(10))
                            let body = try await response.body.collect(upTo: 1 << 20)
                            if response.status == .ok, body.readableBytes > 0 { latencies.append(ContinuousClock.now - sent) } else { errors += 1 }
                        } catch {
                            errors += 1
                        }
                    }
                    return (latencies, errors)
                }
            }
            return try await group.reduce(into: [([Duration], Int)]()) { $0.append($1) }
        }
        let seconds = (ContinuousClock.now - started).timeInterval
        let latencies = perClient.flatMap(\.0)
        let latency = LoadGenerator.Latency(latencies)
        return ReadResult(
            requests: latencies.count, errors: perClient.map(\.1).reduce(0, +), seconds: seconds,
            requestsPerSecond: Double(latencies.count) / seconds, p50Milliseconds: latency.p50,
            p99Milliseconds: latency.p99)
    }
}

/// Counts what passes through to the projection and when the first batch came and the last left.
final class TimedHandler: EventHandler {
    let inner: any EventHandler
    private let state = Mutex<(handled: Int, first: ContinuousClock.Instant?, last: ContinuousClock.Instant?)>((0, nil, nil))

    init(inner: any EventHandler) {
        self.inner = inner
    }

    var handled: Int { self.state.withLock { $0.handled } }
    var span: Duration? { self.state.withLock { state in state.first.flatMap { first in state.last.map { $0 - first } } } }

    func handle(delivered events: [DeliveredEvent]) async throws {
        self.state.withLock { if $0.first == nil { $0.first = .now } }
        try await self.inner.handle(delivered: events)
        self.state.withLock {
            $0.handled += events.count
            $0.last = .now
        }
    }

    func handle(_ event: RecordedEvent) async throws { try await self.inner.handle(event) }
}
