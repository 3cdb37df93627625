import ArgumentParser
import Foundation
import Hummingbird
import Logging
import OrderlyAPI
import OrderlyDomain
import OrderlyEventStore
import OrderlyMessaging
import OrderlyProcesses
import OrderlyReadModels
import PostgresNIO
import ServiceLifecycle
import UnixSignals

struct Orderly: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orderly",
        abstract: "An event-sourced order system: PostgreSQL event log, Kafka, MongoDB read models.",
        discussion: "Settings come from ORDERLY_* environment variables; see README.md.",
        version: "orderly \(BuildInfo.commit) (built \(BuildInfo.builtAt))",
        subcommands: [
            Migrate.self, API.self, Relay.self, Project.self, SagaService.self, Dev.self, Projections.self, Events.self, Orders.self,
            DeadLetters.self, Customers.self, Keys.self,
            Token.self,
        ]
    )
}

/// Runs services until SIGTERM or SIGINT, then stops them in reverse order. Shutdown is bounded
/// whatever the dependencies do (see `ShutdownDeadline`): graceful for a few seconds, then the
/// services are cancelled, and past the deadline the process exits as it is.
func runUntilSignalled(_ services: [any Service], logger: Logger) async throws {
    // The trace exporter first, so it stops last and flushes the spans of everything before it.
    let services = (TracingSetup.service.map { [$0] } ?? []) + services
    var configuration = ServiceGroupConfiguration(
        services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    configuration.maximumGracefulShutdownDuration = ShutdownDeadline.gracefulPart
    // No escalation to a crash: the deadline below ends the process instead.
    configuration.maximumCancellationDuration = nil
    let watcher = Task { await ShutdownDeadline(logger: logger).armOnSignal() }
    defer { watcher.cancel() }
    try await ServiceGroup(configuration: configuration).run()
    // Every service stopped and flushed: end here, not through exit(), whose handlers include the
    // cleanup of the OpenSSL inside librdkafka; a Dispatch thread that used librdkafka and ended just
    // after it crashed in OpenSSL's thread cleanup (about 1 order service in 9 exited 139 after a
    // clean shutdown, 2026-12-05).
    fflush(nil)
    _exit(0)
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the numbered SQL files in migrations/ (safe to run twice).")

    @Option(help: "Folder of NNNN_name.sql files (default: $ORDERLY_MIGRATIONS_DIR, else ./migrations).")
    var directory: String?

    func run() async throws {
        let logger = ProcessStart.logger("orderly.migrate")
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
        let logger = ProcessStart.logger("orderly.api", tracing: true)
        let app = try await Processes.api(Settings.fromEnvironment(), logger: logger)
        try await runUntilSignalled([app], logger: logger)
    }
}

struct Relay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish the event log to Kafka in order (one leader at a time; /health and /metrics on ORDERLY_OPS_PORT, default 9101).")

    func run() async throws {
        let logger = ProcessStart.logger("orderly.relay", tracing: true)
        let settings = Settings.fromEnvironment()
        try await runUntilSignalled(try await Processes.relay(settings, opsPort: settings.opsPort ?? 9101, logger: logger), logger: logger)
    }
}

struct Project: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume events and maintain the MongoDB read models (/health and /metrics on ORDERLY_OPS_PORT, default 9102).")

    func run() async throws {
        let logger = ProcessStart.logger("orderly.projector", tracing: true)
        let settings = ProcessStart.settings()
        try await runUntilSignalled(try await Processes.projector(settings, opsPort: settings.opsPort ?? 9102, logger: logger), logger: logger)
    }
}

extension SagaServiceKind: ExpressibleByArgument {}

struct SagaService: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service",
        abstract:
            "Run one saga service: order, inventory, payment, notification or delivery (/health and /metrics on ORDERLY_OPS_PORT, default 9103).")

    @Argument(help: "order | inventory | payment | notification | delivery")
    var kind: SagaServiceKind

    func run() async throws {
        let logger = ProcessStart.logger("orderly.service.\(self.kind.rawValue)", tracing: true)
        let settings = ProcessStart.settings()
        let postgres = try await settings.makeCheckedPostgresClient(logger: logger)
        let services = try await Processes.sagaService(self.kind, settings, postgres: postgres, opsPort: settings.opsPort ?? 9103, logger: logger)
        try await runUntilSignalled([postgres] + services, logger: logger)
    }
}

struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run api, relay, projector and the four saga services in one process (for a laptop).")

    func run() async throws {
        let logger = ProcessStart.logger("orderly.dev", tracing: true)
        let settings = ProcessStart.settings()
        let app = try await Processes.dev(settings, logger: logger) { port in
            logger.info("orderly dev serving", metadata: ["url": "http://127.0.0.1:\(port)"])
        }
        try await runUntilSignalled([app], logger: logger)
    }
}
