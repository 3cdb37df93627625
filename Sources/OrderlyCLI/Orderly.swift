import ArgumentParser
import Foundation
import Hummingbird
import Logging
import OrderlyAPI
import OrderlyApp
import OrderlyEventStore
import OrderlyMessaging
import OrderlyReadModels
import PostgresNIO
import ServiceLifecycle
import UnixSignals

@main
struct Orderly: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orderly",
        abstract: "An event-sourced order system: PostgreSQL event log, Kafka, MongoDB read models.",
        discussion: "Settings come from ORDERLY_* environment variables; see README.md.",
        subcommands: [
            Migrate.self, API.self, Relay.self, Project.self, SagaService.self, Dev.self, Projections.self, Events.self, Orders.self, Token.self,
            Bench.self,
        ]
    )
}

/// Logging set up once per process; `LOG_LEVEL` overrides the level.
func makeLogger(_ label: String) -> Logger {
    Observability.bootstrapMetrics()
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
        return handler
    }
    return Logger(label: label)
}

/// Runs services until SIGTERM or SIGINT, then stops them in reverse order.
func runUntilSignalled(_ services: [any Service], logger: Logger) async throws {
    let group = ServiceGroup(
        configuration: .init(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the numbered SQL files in migrations/ (safe to run twice).")

    @Option(help: "Folder of NNNN_name.sql files (default: $ORDERLY_MIGRATIONS_DIR, else ./migrations).")
    var directory: String?

    func run() async throws {
        let logger = makeLogger("orderly.migrate")
        let migrations = try Migrator.load(from: self.directory ?? Migrator.defaultDirectory())
        let applied = try await Settings.fromEnvironment().withPostgres(logger: logger) { client in
            try await Migrator(client: client, logger: logger).migrate(migrations)
        }
        print(applied.isEmpty ? "migrations: up to date" : "migrations: applied \(applied.joined(separator: ", "))")
    }
}

struct API: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the REST api (ORDERLY_HTTP_PORT, default 8080).")

    func run() async throws {
        let logger = makeLogger("orderly.api")
        let app = try await Processes.api(Settings.fromEnvironment(), logger: logger)
        try await app.runService()
    }
}

struct Relay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish the event log to Kafka in order (one leader at a time; /health and /metrics on ORDERLY_OPS_PORT, default 9101).")

    func run() async throws {
        let logger = makeLogger("orderly.relay")
        let settings = Settings.fromEnvironment()
        try await runUntilSignalled(try await Processes.relay(settings, opsPort: settings.opsPort ?? 9101, logger: logger), logger: logger)
    }
}

struct Project: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume events and maintain the MongoDB read models (/health and /metrics on ORDERLY_OPS_PORT, default 9102).")

    func run() async throws {
        let logger = makeLogger("orderly.projector")
        let settings = Settings.fromEnvironment()
        try await runUntilSignalled(try await Processes.projector(settings, opsPort: settings.opsPort ?? 9102, logger: logger), logger: logger)
    }
}

extension SagaServiceKind: ExpressibleByArgument {}

struct SagaService: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service",
        abstract: "Run one saga service: order, inventory, payment or notification (/health and /metrics on ORDERLY_OPS_PORT, default 9103).")

    @Argument(help: "order | inventory | payment | notification")
    var kind: SagaServiceKind

    func run() async throws {
        let logger = makeLogger("orderly.service.\(self.kind.rawValue)")
        let settings = Settings.fromEnvironment()
        let postgres = try settings.makePostgresClient(logger: logger)
        let services = try await Processes.sagaService(self.kind, settings, postgres: postgres, opsPort: settings.opsPort ?? 9103, logger: logger)
        try await runUntilSignalled([postgres] + services, logger: logger)
    }
}

struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run api, relay, projector and the four saga services in one process (for a laptop).")

    func run() async throws {
        let logger = makeLogger("orderly.dev")
        let settings = Settings.fromEnvironment()
        let app = try await Processes.dev(settings, logger: logger) { port in
            logger.info("orderly dev serving", metadata: ["url": "http://127.0.0.1:\(port)"])
        }
        try await app.runService()
    }
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load generators; scripts/bench runs them beside raw baselines.",
        subcommands: [BenchStore.self, BenchRelay.self, BenchSaga.self, BenchProjector.self, BenchOrderGet.self])
}

struct BenchStore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store", abstract: "Append to the event store with concurrent writers; prints events/s and latency.")

    @Option(help: "Concurrent writers.") var writers = 8
    @Option(help: "Events per append (each append goes to a new stream).") var batch = 1
    @Option(help: "Seconds to run.") var seconds = 10
    @Option(help: "The JSON data of each event.") var payload = #"{"orderId":"o-1","customerId":"c-1","total":2598}"#
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let logger = makeLogger("orderly.bench")
        let result = try await Settings.fromEnvironment().withPostgres(logger: logger) { client in
            try await StoreBenchmark.run(
                store: PostgresEventStore(client: client, logger: logger), writers: self.writers, batch: self.batch,
                duration: .seconds(self.seconds), payload: self.payload)
        }
        if self.json {
            print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        } else {
            print(
                "\(result.events) events in \(result.appends) appends over \(String(format: "%.1f", result.seconds)) s: "
                    + "\(Int(result.eventsPerSecond)) events/s, p50 \(String(format: "%.2f", result.p50Milliseconds)) ms, "
                    + "p99 \(String(format: "%.2f", result.p99Milliseconds)) ms")
        }
    }
}

struct BenchRelay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay", abstract: "Append a backlog, then time the relay publishing it to a new topic; prints events/s.")

    @Option(help: "Events in the backlog.") var events = 100_000
    @Option(help: "Events the relay reads and publishes per batch.") var batchSize = 5000
    @Option(help: "The JSON data of each event.") var payload = #"{"orderId":"o-1","customerId":"c-1","total":2598}"#
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let logger = makeLogger("orderly.bench")
        let settings = Settings.fromEnvironment()
        let topic = "bench-relay-\(UUID().uuidString.prefix(8).lowercased())"
        let result = try await settings.withPostgres(logger: logger) { client in
            let store = PostgresEventStore(client: client, logger: logger)
            try await RelayBenchmark.seed(store: store, count: self.events, payload: self.payload)
            try await KafkaAdmin.ensureTopic(topic, partitions: settings.topicPartitions, configuration: settings.kafka)
            let relay = EventRelay(
                store: store, producer: try KafkaProducer(configuration: settings.kafka),
                settings: .init(topic: topic, checkpointName: topic, batchSize: self.batchSize), logger: logger)
            return try await RelayBenchmark.drain(relay: relay, count: self.events)
        }
        if self.json {
            print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        } else {
            print("\(result.events) events relayed in \(String(format: "%.2f", result.seconds)) s: \(Int(result.eventsPerSecond)) events/s")
        }
    }
}

struct BenchSaga: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "saga",
        abstract: "Place orders over HTTP at a steady rate; report the time from POST /orders to COMPLETED in the read model.")

    @Option(help: "Base URL of a running api.") var url = "http://127.0.0.1:8080"
    @Option(help: "Orders per second.") var rate = 100.0
    @Option(help: "How long to place orders, in seconds.") var seconds = 60.0
    @Option(help: "How long to wait afterwards for the last sagas to end, in seconds.") var settle = 60.0
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        _ = makeLogger("orderly.bench")
        let settings = Settings.fromEnvironment()
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let result = try await SagaBenchmark.run(
            baseURL: self.url, bearer: try await benchBearer(), mongo: mongo, rate: self.rate, duration: .milliseconds(Int64(self.seconds * 1000)),
            settleTimeout: .milliseconds(Int64(self.settle * 1000)))
        if self.json {
            print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        } else {
            print(
                "\(result.orders) orders at \(result.rate)/s: \(result.completed) completed, \(result.cancelled) cancelled, "
                    + "\(result.unfinished) unfinished, errors \(result.errors); POST→COMPLETED p50 \(Int(result.p50Milliseconds)) ms, "
                    + "p99 \(Int(result.p99Milliseconds)) ms, max \(Int(result.maxMilliseconds)) ms")
        }
    }
}

struct BenchProjector: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projector", abstract: "Publish a backlog of placed orders to a new topic and time the orders projection through it.")

    @Option(help: "Events (each a new order) in the backlog.") var events = 20_000
    @Option(help: "Write the orders' ids here, one a line (for `bench order-get` and the raw baseline).") var idsFile: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let logger = makeLogger("orderly.bench")
        let settings = Settings.fromEnvironment()
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let result = try await ReadBenchmark.projector(settings: settings, mongo: mongo, count: self.events, idsFile: self.idsFile, logger: logger)
        if self.json {
            print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        } else {
            print("\(result.events) events projected in \(String(format: "%.2f", result.seconds)) s: \(Int(result.eventsPerSecond)) events/s")
        }
    }
}

struct BenchOrderGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-get", abstract: "Read orders by id over HTTP with concurrent clients (closed loop); prints requests/s.")

    @Option(help: "Base URL of a running api.") var url = "http://127.0.0.1:8080"
    @Option(help: "A file of order ids, one a line.") var idsFile: String
    @Option(help: "Concurrent clients.") var concurrency = 8
    @Option(help: "Seconds to run.") var seconds = 10
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        _ = makeLogger("orderly.bench")
        let ids = try String(contentsOfFile: self.idsFile, encoding: .utf8).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        let result = try await ReadBenchmark.orderGets(
            baseURL: self.url, bearer: try await benchBearer(), ids: ids, concurrency: self.concurrency, duration: .seconds(self.seconds))
        if self.json {
            print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        } else {
            print(
                "\(result.requests) reads in \(String(format: "%.1f", result.seconds)) s: \(Int(result.requestsPerSecond))/s, "
                    + "p50 \(String(format: "%.2f", result.p50Milliseconds)) ms, p99 \(String(format: "%.2f", result.p99Milliseconds)) ms, "
                    + "\(result.errors) errors")
        }
    }
}

/// An admin token for the HTTP load generators, signed with the api's key from the environment.
func benchBearer() async throws -> String {
    guard let authority = try await Settings.fromEnvironment().makeTokenAuthority() else {
        throw ValidationError("set ORDERLY_JWT_SECRET (or ORDERLY_JWT_KEY_FILE) to the api's: the load generator signs its own admin token")
    }
    return "Bearer " + (try await authority.mint(subject: "bench", role: .admin, lifetime: .seconds(24 * 3600)))
}
