import ArgumentParser
import Foundation
import Logging
import OrderlyEventStore
import OrderlyProcesses
import OrderlyReadModels
import PostgresNIO

struct Projections: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, rebuild and verify the MongoDB read models defined in projections/.",
        subcommands: [ProjectionsList.self, ProjectionsRebuild.self, ProjectionsVerify.self])
}

/// The projection named on the command line, with its definition.
func namedProjection(_ name: String) throws -> (any ReadModelProjection.Type, ProjectionDefinition) {
    let all = try ReadModelCatalog.definitions(from: ProjectionDefinition.defaultDirectory())
    guard let found = all.first(where: { $0.0.name == name }) else {
        throw ValidationError("no read model \(name); there are \(all.map { $0.0.name }.joined(separator: ", "))")
    }
    return found
}

struct ProjectionsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Each read model: version, live collection, rebuild under way.")

    func run() async throws {
        _ = ProcessStart.logger("orderly.projections")
        let settings = Settings.fromEnvironment()
        let catalog = ProjectionCatalog(client: try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase))
        for (projection, definition) in try ReadModelCatalog.definitions(from: ProjectionDefinition.defaultDirectory()) {
            let state = try await catalog.state(projection.name)
            var line = "\(projection.name): definition v\(definition.version)"
            if let state {
                line += ", live v\(state.version) in \(state.collection)"
                if let rebuild = state.rebuild { line += ", rebuilding into \(rebuild.collection) (\(rebuild.position)/\(rebuild.target))" }
            } else {
                line += ", not started yet"
            }
            print(line)
        }
    }
}

struct ProjectionsRebuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Replay the event store into a new collection while the live projector goes on, then switch readers over.")

    @Argument(help: "The read model: orders, inventory, customer_orders or sales_daily.") var name: String

    func run() async throws {
        let logger = ProcessStart.logger("orderly.projections")
        let (projection, definition) = try namedProjection(self.name)
        let settings = Settings.fromEnvironment()
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let report = try await settings.withPostgres(logger: logger) { client in
            try await Self.rebuild(
                projection, definition: definition, store: PostgresEventStore(client: client, logger: logger), mongo: mongo, logger: logger)
        }
        print(
            "\(self.name): rebuilt into \(report.collection) from \(report.events) events in \(String(format: "%.1f", report.seconds)) s "
                + "(readers switched over; \(report.previousCollection) kept until the next rebuild)"
                + (report.unreadable > 0 ? "; \(report.unreadable) unreadable events skipped" : ""))
    }

    static func rebuild<P: ReadModelProjection>(
        _ projection: P.Type, definition: ProjectionDefinition, store: PostgresEventStore, mongo: MongoClient, logger: Logger
    ) async throws -> RebuildReport {
        let progressBar = ProgressLine()
        let report = try await ProjectionRebuilder(projection, definition: definition, store: store, client: mongo, logger: logger).rebuild {
            progressBar.show($0)
        }
        progressBar.finish()
        return report
    }
}

struct ProjectionsVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Compare the live read model with a fresh fold of the event store; exit 1 on any difference.")

    @Argument(help: "The read model: orders, inventory, customer_orders or sales_daily.") var name: String
    @Option(help: "Differences to print at most.") var show = 50

    func run() async throws {
        let logger = ProcessStart.logger("orderly.projections")
        let (projection, _) = try namedProjection(self.name)
        let settings = Settings.fromEnvironment()
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let (documents, differences) = try await settings.withPostgres(logger: logger) { client in
            try await Self.verify(projection, store: PostgresEventStore(client: client, logger: logger), mongo: mongo, logger: logger)
        }
        for difference in differences.prefix(self.show) { print(difference) }
        if differences.count > self.show { print("… and \(differences.count - self.show) more") }
        print("\(self.name): \(documents) documents, \(differences.count) differences")
        if !differences.isEmpty { throw ExitCode(1) }
    }

    static func verify<P: ReadModelProjection>(_ projection: P.Type, store: PostgresEventStore, mongo: MongoClient, logger: Logger) async throws
        -> (Int, [ProjectionDifference])
    {
        let result = try await ProjectionVerifier(projection, store: store, client: mongo, logger: logger).verify()
        return (result.documents, result.differences)
    }
}
