import Foundation
import Hummingbird
import Logging
import NIOCore
import OrderlyDomain
import OrderlyEventStore
import OrderlyReadModels
import OrderlyServices

/// An RFC 9457 problem+json error. `type` is stable: clients branch on it, never on `detail`.
public struct Problem: HTTPResponseError, Encodable {
    public var status: HTTPResponse.Status
    public var type: String
    public var title: String
    public var detail: String
    /// The offending input field, when there is one.
    public var field: String?
    /// Extra response headers (`WWW-Authenticate` on a 401, `Retry-After` on a 429).
    public var headers: HTTPFields = [:]

    enum CodingKeys: String, CodingKey {
        case type, title, detail, field, status
    }

    public init(status: HTTPResponse.Status, type: String, title: String, detail: String, field: String? = nil) {
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.field = field
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("https://orderly.dev/problems/\(self.type)", forKey: .type)
        try container.encode(self.title, forKey: .title)
        try container.encode(self.detail, forKey: .detail)
        try container.encodeIfPresent(self.field, forKey: .field)
        try container.encode(self.status.code, forKey: .status)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(self)) ?? Data("{}".utf8)
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        return Response(status: self.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func notFound(_ what: String) -> Problem {
        Problem(status: .notFound, type: "not-found", title: "Not found", detail: what)
    }

    static func invalidQuery(_ detail: String, field: String) -> Problem {
        Problem(status: .badRequest, type: "invalid-query", title: "Invalid query parameter", detail: detail, field: field)
    }

    static func invalidBody(_ detail: String, field: String? = nil) -> Problem {
        Problem(status: .badRequest, type: "invalid-body", title: "The request body is not valid", detail: detail, field: field)
    }
}

/// Turns every error a handler throws into problem+json: known domain and store errors get their own
/// status and type; anything unexpected becomes a bare 500 whose detail reveals nothing internal.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return try Self.problem(for: error, context: context).response(from: request, context: context)
        }
    }

    static func problem(for error: any Error, context: Context) -> Problem {
        if let problem = Problem(describing: error) { return problem }
        context.logger.error("request failed", metadata: ["error": "\(error)"])
        return Problem(
            status: .internalServerError, type: "internal", title: "Internal error",
            detail: "the server could not complete the request; it has been logged")
    }
}

extension Problem {
    /// The problem an expected failure maps to; nil for anything unexpected (a 500).
    public init?(describing error: any Error) {
        switch error {
        case let problem as Problem:
            self = problem
        case let error as ValidationError:
            self.init(
                status: .unprocessableContent, type: "validation-failed", title: "The command breaks a rule",
                detail: error.description, field: error.field)
        case EventStoreError.wrongExpectedVersion(let stream, let expected, let actual):
            self.init(
                status: .conflict, type: "concurrency-conflict", title: "Concurrent change",
                detail: "stream \(stream) was expected at version \(expected) but is at \(actual); reload and retry")
        case EventStoreError.idempotencyKeyReused:
            self.init(
                status: .unprocessableContent, type: "idempotency-key-reused", title: "Idempotency key reused",
                detail: "this Idempotency-Key was already used with a different request body", field: "Idempotency-Key")
        case OrderCommandError.orderNotFound(let id):
            self.init(status: .notFound, type: "not-found", title: "Not found", detail: "no order \(id)")
        case OrderCommandError.orderEnded(let id, let status):
            self.init(
                status: .conflict, type: "order-ended", title: "The order has ended",
                detail: "order \(id) is \(status.isEmpty ? "already ended" : status) and can no longer be cancelled")
        case ShipmentUpdateError.noShipment(let id):
            self.init(
                status: .notFound, type: "not-found", title: "Not found",
                detail: "no shipment for order \(id): it is not paid yet, unknown, or has no address to ship to")
        case ShipmentUpdateError.conflict(let id, let status):
            self.init(
                status: .conflict, type: "shipment-state-conflict", title: "The update contradicts the shipment",
                detail: "the shipment of order \(id) is \(status.rawValue); this update cannot follow that")
        case let error where isStoreUnavailable(error):
            self.init(
                status: .serviceUnavailable, type: "store-unavailable", title: "The event store is unavailable",
                detail: "PostgreSQL did not answer in time (\(error)); nothing was stored. Retry later")
            self.headers[.retryAfter] = "2"
        case let error as MongoError where error.isUnavailable:
            self.init(
                status: .serviceUnavailable, type: "read-model-unavailable", title: "The read models are unavailable",
                detail: "the document server did not answer (\(error.message)); commands are still accepted. Retry later")
            self.headers[.retryAfter] = "2"
        case CommandDeadline.passed(let limit):
            self.init(
                status: .serviceUnavailable, type: "store-unavailable", title: "The event store is unavailable",
                detail:
                    "the command did not complete within \(limit); it may or may not have been stored: retry with the same Idempotency-Key to find out without placing it twice"
            )
            self.headers[.retryAfter] = "2"
        case is NIOTooManyBytesError:
            self.init(
                status: .contentTooLarge, type: "body-too-large", title: "Request body too large",
                detail: "the body exceeds \(API.maxBodyBytes) bytes")
        case let error as HTTPError:
            self.init(
                status: error.status, type: "http-\(error.status.code)", title: error.status.reasonPhrase,
                detail: error.body ?? error.status.reasonPhrase)
        default:
            return nil
        }
    }
}
