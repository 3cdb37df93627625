import ArgumentParser
import Foundation
import Hummingbird
import Logging
import OrderlyApp
import OrderlyEventStore
import PostgresNIO
import ServiceLifecycle
import UnixSignals

@main
struct Orderly: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orderly",
        abstract: "An event-sourced order system: PostgreSQL event log, Kafka, MongoDB read models.",
        discussion: "Settings come from ORDERLY_* environment variables; see README.md.",
        subcommands: [Migrate.self, API.self, Relay.self, Project.self, Dev.self]
    )
}

/// Logging set up once per process; `LOG_LEVEL` overrides the level.
func makeLogger(_ label: String) -> Logger {
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
        let settings = Settings.fromEnvironment()
        let client = try settings.makePostgresClient(logger: logger)
        let migrations = try Migrator.load(from: self.directory ?? Migrator.defaultDirectory())
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            let applied = try await Migrator(client: client, logger: logger).migrate(migrations)
            print(applied.isEmpty ? "migrations: up to date" : "migrations: applied \(applied.joined(separator: ", "))")
            group.cancelAll()
        }
    }
}

struct API: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the REST api (ORDERLY_HTTP_PORT, default 8080).")

    func run() async throws {
        let logger = makeLogger("orderly.api")
        let app = try Processes.api(Settings.fromEnvironment(), logger: logger)
        try await app.runService()
    }
}

struct Relay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Publish the event log to Kafka in order.")

    func run() async throws {
        let logger = makeLogger("orderly.relay")
        try await runUntilSignalled(try await Processes.relay(Settings.fromEnvironment(), logger: logger), logger: logger)
    }
}

struct Project: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Consume events and maintain the MongoDB read models.")

    func run() async throws {
        let logger = makeLogger("orderly.projector")
        try await runUntilSignalled(try await Processes.projector(Settings.fromEnvironment(), logger: logger), logger: logger)
    }
}

struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run api, relay and projector in one process (for a laptop).")

    func run() async throws {
        let logger = makeLogger("orderly.dev")
        let settings = Settings.fromEnvironment()
        let app = try await Processes.dev(settings, logger: logger) { port in
            logger.info("orderly dev serving", metadata: ["url": "http://127.0.0.1:\(port)"])
        }
        try await app.runService()
    }
}
