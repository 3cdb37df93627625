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
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        let places = [Bundle.main.bundleURL, executable].map {
            $0.appendingPathComponent(Self.bundleName).appendingPathComponent("openapi.json")
        }
        for place in places {
            if let data = FileManager.default.contents(atPath: place.path) { return ByteBuffer(bytes: data) }
        }
        throw OpenAPIDocumentMissing(places: places.map(\.path))
    }
}

struct OpenAPIDocumentMissing: Error, CustomStringConvertible {
    var places: [String]
    var description: String {
        "the OpenAPI document is missing: no \(OpenAPIDocument.bundleName)/openapi.json beside the executable (looked at \(self.places.joined(separator: ", ")))"
    }
}
