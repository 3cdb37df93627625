import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrderlyDomain

/// The operators' console (`/console`): static HTML, CSS and JavaScript modules from this module's
/// `console/` resource, read once at start. The page calls the same API with the same token and
/// roles as any client; it holds no secret of its own.
///
/// Every file is sent with a strict Content-Security-Policy (scripts and styles from this origin
/// only, no inline script, no framing) and an ETag; `no-cache` makes browsers revalidate, so a new
/// release is picked up at once and an unchanged file costs a 304.
struct ConsoleRoutes {
    struct File: Sendable {
        var bytes: ByteBuffer
        var contentType: String
        var etag: String
    }

    static let directoryName = "console"
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    let files: [String: File]

    /// The console's files, from the resource bundle beside the executable (as the OpenAPI document).
    static func load() throws -> ConsoleRoutes {
        let directory = try OpenAPIDocument.resourceDirectory().appendingPathComponent(Self.directoryName)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        var files: [String: File] = [:]
        for name in names {
            guard let type = Self.contentType(of: name), let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path)
            else { continue }
            files[name] = File(bytes: ByteBuffer(bytes: data), contentType: type, etag: "\"\(Checksum.fnv1a64(data))\"")
        }
        guard files["index.html"] != nil else { throw ConsoleMissing(directory: directory.path) }
        return ConsoleRoutes(files: files)
    }

    static func contentType(of name: String) -> String? {
        switch name.split(separator: ".").last {
        case "html": "text/html; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        default: nil
        }
    }

    func register(on router: Router<OrderlyRequestContext>) {
        router.get("/console") { request, _ in self.serve("index.html", request) }
        router.get("/console/{file}") { request, context in self.serve(try context.parameters.require("file"), request) }
    }

    func serve(_ name: String, _ request: Request) -> Response {
        guard let file = self.files[name] else {
            return Response(
                status: .notFound, headers: Self.headers(contentType: "text/plain; charset=utf-8"),
                body: .init(byteBuffer: .init(string: "not found\n")))
        }
        var headers = Self.headers(contentType: file.contentType)
        headers[.eTag] = file.etag
        if request.headers[.ifNoneMatch] == file.etag { return Response(status: .notModified, headers: headers) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: file.bytes))
    }

    static func headers(contentType: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-cache"
        headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        if let referrerPolicy = HTTPField.Name("Referrer-Policy") { headers[referrerPolicy] = "no-referrer" }
        return headers
    }
}

struct ConsoleMissing: Error, CustomStringConvertible {
    var directory: String
    var description: String { "the console's files are missing: no index.html in \(self.directory)" }
}
