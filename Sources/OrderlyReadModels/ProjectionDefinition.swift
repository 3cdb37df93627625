import Foundation
import OrderlyEventStore

/// A read model's definition from `projections/NAME.json`: what it is called, its version, the
/// collection it lives in, the indexes its queries need and the events it handles. The projector
/// creates the indexes when it starts.
public struct ProjectionDefinition: Codable, Sendable, Equatable {
    public struct Index: Codable, Sendable, Equatable {
        public var name: String
        /// Field and direction (1 or -1) pairs, in index order.
        public var keys: [KeyPart]
    }

    /// One `["field", 1]` pair of an index key.
    public struct KeyPart: Codable, Sendable, Equatable {
        public var field: String
        public var direction: Int

        public init(from decoder: any Decoder) throws {
            var container = try decoder.unkeyedContainer()
            self.field = try container.decode(String.self)
            self.direction = try container.decode(Int.self)
            guard self.direction == 1 || self.direction == -1 else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "an index direction is 1 or -1")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.unkeyedContainer()
            try container.encode(self.field)
            try container.encode(self.direction)
        }
    }

    public var name: String
    public var version: Int
    public var collection: String
    public var description: String?
    public var indexes: [Index]
    public var events: [String]

    /// Reads every `*.json` file of `directory`, by name.
    public static func loadAll(from directory: String) throws -> [String: ProjectionDefinition] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw ProjectionError(message: "no projection definitions at \(directory) (set ORDERLY_PROJECTIONS_DIR)")
        }
        var definitions: [String: ProjectionDefinition] = [:]
        for name in names.sorted() where name.hasSuffix(".json") {
            let path = directory + "/" + name
            do {
                let definition = try JSONDecoder().decode(ProjectionDefinition.self, from: try Data(contentsOf: URL(fileURLWithPath: path)))
                definitions[definition.name] = definition
            } catch {
                throw ProjectionError(message: "\(path) is not a valid projection definition: \(error)")
            }
        }
        return definitions
    }

    /// `ORDERLY_PROJECTIONS_DIR`, else `./projections`, else `../share/orderly/projections` next to the binary.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        dataDirectory("projections", variable: "ORDERLY_PROJECTIONS_DIR", environment: environment)
    }

    /// Creates the definition's indexes on `collection` (by default the definition's own; a rebuild
    /// builds another). An index that already exists with the same keys is left alone.
    public func ensureIndexes(_ client: MongoClient, in collection: String? = nil) async throws {
        try await client.collection(collection ?? self.collection).createIndexes(
            self.indexes.map { index in (index.name, Document.object(index.keys.map { ($0.field, .int(Int64($0.direction))) })) })
    }
}

public struct ProjectionError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { self.message }

    public init(message: String) {
        self.message = message
    }
}
