import Logging
import OrderlyHandling
import ServiceLifecycle

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
