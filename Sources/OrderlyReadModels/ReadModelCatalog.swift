import Foundation
import Logging
import OrderlyHandling
import ServiceLifecycle

/// Every read model Orderly keeps, matched with its definition in `projections/`.
public enum ReadModelCatalog {
    public static let projections: [any ReadModelProjection.Type] = [
        OrdersProjection.self, InventoryProjection.self, CustomerOrdersProjection.self, SalesDailyProjection.self,
    ]

    public static func projection(named name: String) -> (any ReadModelProjection.Type)? {
        self.projections.first { $0.name == name }
    }

    /// Each projection with its definition. A missing definition, or one whose events are not the
    /// ones the code applies, is an error: the definition is what operators read.
    public static func definitions(from directory: String) throws -> [(any ReadModelProjection.Type, ProjectionDefinition)] {
        let definitions = try ProjectionDefinition.loadAll(from: directory)
        return try self.projections.map { projection in
            guard let definition = definitions[projection.name] else {
                throw ProjectionError(message: "no definition for the \(projection.name) read model in \(directory)")
            }
            guard Set(definition.events) == projection.handledTypes, definition.events.count == projection.handledTypes.count else {
                throw ProjectionError(
                    message:
                        "\(directory)/\(projection.name).json lists events \(definition.events.sorted()); the code applies \(projection.handledTypes.sorted())"
                )
            }
            return (projection, definition)
        }
    }
}

/// Rebuilds a read model when its definition's version is above the one its live collection was
/// built for (at start, in the background: until the switch, readers keep the old collection).
public struct RebuildOnNewVersion<P: ReadModelProjection>: Service {
    let rebuilder: ProjectionRebuilder<P>
    let logger: Logger

    public init(rebuilder: ProjectionRebuilder<P>, logger: Logger) {
        self.rebuilder = rebuilder
        self.logger = logger
    }

    public func run() async throws {
        await repeatUntilShutdown("rebuild on a new definition version", logger: self.logger, retryDelay: .seconds(5)) {
            let state = try await self.rebuilder.catalog.ensureState(self.rebuilder.definition)
            guard state.version < self.rebuilder.definition.version else { return .stop }
            self.logger.notice(
                "the definition's version went up: rebuilding",
                metadata: ["from.version": "\(state.version)", "to.version": "\(self.rebuilder.definition.version)"])
            let report = try await self.rebuilder.rebuild { progress in
                self.logger.info("rebuilding", metadata: ["position": "\(progress.position)", "target": "\(progress.target)"])
            }
            self.logger.notice("rebuilt", metadata: ["collection": "\(report.collection)", "events": "\(report.events)"])
            return .stop
        }
        // Done: stay until the process stops (a service that returns would stop the others).
        try? await gracefulShutdown()
    }
}
