import Foundation
import NIOCore

/// The OpenAPI 3.1 document served at `/openapi.json`: `openapi.json` beside this file, a resource
/// of this module. Tests hold its paths and methods equal to the router's and its request schemas
/// to the `BodyShape`s the api checks bodies with; CI validates it (openapi-spec-validator); the
/// fuzz run holds every response to it.
enum OpenAPIDocument {
    /// Where SwiftPM puts this module's resources: beside the executable (`swift build`, tests), and
    /// beside `/usr/local/bin/orderly` in the image (the Dockerfile copies it there).
    static let bundleName = "Orderly_OrderlyAPI.resources"

    /// The document, read once. A missing file stops the api at start with where it looked (SwiftPM's
    /// own `Bundle.module` would stop the process with a fatal error instead).
    static func load() throws -> ByteBuffer {
        let place = try self.resourceDirectory().appendingPathComponent("openapi.json")
        guard let data = FileManager.default.contents(atPath: place.path) else { throw OpenAPIDocumentMissing(places: [place.path]) }
        return ByteBuffer(bytes: data)
    }

    /// This module's resource bundle: the first of the places SwiftPM and the image put it that holds
    /// the OpenAPI document (the console's files are in it too).
    static func resourceDirectory() throws -> URL {
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        let places = [Bundle.main.bundleURL, executable].map { $0.appendingPathComponent(Self.bundleName) }
        for place in places where FileManager.default.fileExists(atPath: place.appendingPathComponent("openapi.json").path) {
            return place
        }
        throw OpenAPIDocumentMissing(places: places.map { $0.appendingPathComponent("openapi.json").path })
    }
}

struct OpenAPIDocumentMissing: Error, CustomStringConvertible {
    var places: [String]
    var description: String {
        "the OpenAPI document is missing: no \(OpenAPIDocument.bundleName)/openapi.json beside the executable (looked at \(self.places.joined(separator: ", ")))"
    }
}
