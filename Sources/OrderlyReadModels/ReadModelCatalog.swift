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
