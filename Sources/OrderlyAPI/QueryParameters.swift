import Foundation
import HTTPTypes
import Hummingbird
import OrderlyDomain

/// Query parameters and headers the routes share, each refused with a problem naming it.
enum QueryParameter {
    static func integer(_ request: Request, _ name: String, in range: ClosedRange<Int64>) throws -> Int64? {
        guard let text = request.uri.queryParameters[Substring(name)] else { return nil }
        guard let value = Int64(text), range.contains(value) else {
            throw Problem.invalidQuery("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)", field: name)
        }
        return value
    }

    /// An ISO 8601 time, as milliseconds since 1970 (what the read model filters on).
    static func time(_ request: Request, _ name: String) throws -> Int64? {
        try self.date(request, name).map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.down)) }
    }

    static func date(_ request: Request, _ name: String) throws -> Date? {
        guard let text = request.uri.queryParameters[Substring(name)].map(String.init) else { return nil }
        guard let date = UTCTime.parseInput(text) else {
            throw Problem.invalidQuery("\(name) must be an ISO 8601 time such as 2026-11-23T09:00:00Z", field: name)
        }
        return date
    }
}

/// The optional `Idempotency-Key` header: 1 to 255 visible ASCII characters.
func idempotencyKey(of request: Request) throws -> String? {
    guard let name = HTTPField.Name("Idempotency-Key"), let key = request.headers[name] else { return nil }
    let isVisibleASCII = key.utf8.allSatisfy { $0 > 32 && $0 < 127 }
    guard !key.isEmpty, key.utf8.count <= 255, isVisibleASCII else {
        throw Problem(
            status: .badRequest, type: "invalid-idempotency-key", title: "Invalid Idempotency-Key header",
            detail: "the Idempotency-Key header must be 1 to 255 visible ASCII characters", field: "Idempotency-Key")
    }
    return key
}
