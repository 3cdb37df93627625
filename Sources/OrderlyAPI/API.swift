import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import OrderlyReadModels
import OrderlyServices
import Tracing

/// What the api needs: command handlers, read models, and readiness checks of the parts it relies on.
public struct APIDependencies: Sendable {
    public var commands: OrderCommands
    /// Opens orders' personal data for those who may read it and erases customers' data keys; the
    /// same key store `commands` seals with. Nil: personal data is never shown, erasure answers 501.
    public var vault: PersonalDataVault?
    public var orders: any OrderReadModel
    public var inventory: any InventoryReadModel
    public var sales: any SalesReadModel
    /// The event log, read by the analysts' routes.
    public var events: any EventStore
    /// Verifies bearer tokens; nil when no key is configured (then no token is accepted and every
    /// route that needs a role answers 401).
    public var tokens: TokenAuthority?
    /// Limits commands per caller; nil: no limit.
    public var rateLimiter: RateLimiter?
    /// Whose `X-Forwarded-For` names the client (the load balancers in front of the api).
    public var trustedProxies: TrustedProxies = .none
    /// How often the live event tail polls the log once caught up.
    public var livePollInterval: Duration = .milliseconds(200)
    /// Named checks for `/ready`; each throws when its part does not answer.
    public var readinessChecks: [(String, @Sendable () async throws -> Void)]
    /// The process's metrics in the Prometheus text format, for `/metrics`.
    public var metricsText: @Sendable () -> [UInt8]
    /// The read models' state, rebuild and verify (`/projections`); nil: those routes answer 501.
    public var projections: ProjectionAdministration?
    /// The newest dead letters, at most the given count (`/dead-letters`); nil: that route answers 501.
    public var deadLetters: (@Sendable (Int) async throws -> [DeadLetter])?

    public init(
        commands: OrderCommands, orders: any OrderReadModel, inventory: any InventoryReadModel, sales: any SalesReadModel,
        events: any EventStore, tokens: TokenAuthority?, rateLimiter: RateLimiter? = nil,
        readinessChecks: [(String, @Sendable () async throws -> Void)],
        metricsText: @escaping @Sendable () -> [UInt8] = { [] }, projections: ProjectionAdministration? = nil,
        deadLetters: (@Sendable (Int) async throws -> [DeadLetter])? = nil
    ) {
        self.projections = projections
        self.deadLetters = deadLetters
        self.commands = commands
        self.orders = orders
        self.inventory = inventory
        self.sales = sales
        self.events = events
        self.tokens = tokens
        self.rateLimiter = rateLimiter
        self.readinessChecks = readinessChecks
        self.metricsText = metricsText
    }
}

public enum API {
    public static let maxBodyBytes = 64 * 1024

    /// The router every entry point (api, dev, tests) serves, so what is tested is what runs.
    public static func buildRouter(_ dependencies: APIDependencies) throws -> Router<OrderlyRequestContext> {
        let document = try OpenAPIDocument.load()
        let router = Router(context: OrderlyRequestContext.self)
        if TraceContext.enabled {
            // A server span per request (continuing an incoming `traceparent`), named by route; the
            // commands' appends carry it on (`TraceContext`); the answer names it in `traceresponse`.
            router.add(middleware: TracingMiddleware())
            router.add(middleware: TraceResponseMiddleware())
        }
        // Outermost (after tracing), so it counts the final status of every request (problems included), by route
        // template (`/orders/{id}`), method and status.
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: ProblemMiddleware())
        router.add(middleware: AuthMiddleware(authority: dependencies.tokens))
        if let limiter = dependencies.rateLimiter {
            router.add(middleware: RateLimitMiddleware(limiter: limiter, trustedProxies: dependencies.trustedProxies))
        }
        OrderRoutes(dependencies: dependencies).register(on: router)
        EventRoutes(store: dependencies.events, livePollInterval: dependencies.livePollInterval, keepAliveInterval: .seconds(15))
            .register(on: router)
        ProjectionRoutes(administration: dependencies.projections, deadLetters: dependencies.deadLetters).register(on: router)
        try ConsoleRoutes.load().register(on: router)
        HealthRoutes(checks: dependencies.readinessChecks, metricsText: dependencies.metricsText).register(on: router)
        router.get("/openapi.json") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: document))
        }
        return router
    }

    /// The HTTP/1 server every api process runs: Hummingbird's, with the drain for refused bodies.
    public static var server: HTTPServerBuilder {
        .http1(configuration: .init(additionalChannelHandlers: [RefusedBodyDrain()]))
    }

    /// The router of the small ops server of processes without the api (relay, projector, the saga
    /// services): `/health`, `/ready` (each of `checks` answers within 2 s) and `/metrics`.
    public static func buildOpsRouter(
        checks: [(String, @Sendable () async throws -> Void)] = [], metricsText: @escaping @Sendable () -> [UInt8]
    ) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        HealthRoutes(checks: checks, metricsText: metricsText).register(on: router)
        return router
    }
}

/// JSON bodies out, with stable key order.
struct JSONBody<Value: Encodable & Sendable>: ResponseGenerator {
    var status: HTTPResponse.Status = .ok
    var value: Value

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: self.status, headers: headers, body: .init(byteBuffer: .init(bytes: try encoder.encode(self.value))))
    }
}

/// The fields a request body may have and their JSON types, checked before decoding: an unknown
/// field (a misspelt optional one would otherwise be silently ignored) and a value of the wrong
/// type are refused naming the field. Foundation's decoder reports a fractional or oversized number
/// for an integer only as "not valid JSON", without the field.
indirect enum BodyShape: Sendable {
    case object([String: BodyShape])
    case array(BodyShape)
    case string
    /// A JSON integer that fits 64 bits (not `2.0`, not `true`).
    case integer

    /// The first problem with `json`: an unknown field, a null or a wrong type, with its path
    /// (`lines[0].colour`); nil when it fits. Missing fields are left to the decoder.
    func problem(in json: Any, at path: String = "") -> Problem? {
        let field = path.isEmpty ? "body" : path
        switch self {
        case .object(let fields):
            guard let object = json as? [String: Any] else { return Self.wrongType(field, "an object") }
            for key in object.keys.sorted() {
                let keyPath = path.isEmpty ? key : "\(path).\(key)"
                guard let shape = fields[key] else { return Problem.invalidBody("\(keyPath) is not a field of this request", field: keyPath) }
                guard let value = object[key] else { continue }
                // No field is nullable (the document says so): an optional one is left out, not null.
                if value is NSNull { return Problem.invalidBody("\(keyPath) must not be null; leave it out instead", field: keyPath) }
                if let found = shape.problem(in: value, at: keyPath) { return found }
            }
            return nil
        case .array(let element):
            guard let array = json as? [Any] else { return Self.wrongType(field, "an array") }
            for (index, item) in array.enumerated() {
                if let found = element.problem(in: item, at: "\(path)[\(index)]") { return found }
            }
            return nil
        case .string:
            return json is String ? nil : Self.wrongType(field, "a string")
        case .integer:
            guard let number = json as? NSNumber, !(json is NSDecimalNumber), !(json is Bool && String(cString: number.objCType) == "c"),
                "silq".contains(String(cString: number.objCType))
            else { return Self.wrongType(field, "an integer") }
            return nil
        }
    }

    private static func wrongType(_ field: String, _ expected: String) -> Problem {
        Problem.invalidBody("\(field) must be \(expected)", field: field)
    }
}

/// A request body with a known set of fields.
protocol RequestBody: Decodable {
    static var shape: BodyShape { get }
}

/// Reads a JSON body up to the size limit and decodes it, turning every decoding failure into a 400
/// that names the field; a field the body type does not have is a 400 too.
func decodeBody<T: RequestBody>(_ type: T.Type, from request: Request) async throws -> T {
    let buffer = try await request.body.collect(upTo: API.maxBodyBytes)
    let data = Data(buffer.readableBytesView)
    guard let json = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
        throw Problem.invalidBody("the body is not valid JSON")
    }
    guard json is [String: Any] else { throw Problem.invalidBody("the body must be a JSON object") }
    if let problem = T.shape.problem(in: json) { throw problem }
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch let DecodingError.keyNotFound(key, context) {
        throw Problem.invalidBody("\(path(context.codingPath + [key])) is required", field: path(context.codingPath + [key]))
    } catch let DecodingError.typeMismatch(expected, context) {
        throw Problem.invalidBody("\(path(context.codingPath)) must be \(describe(expected))", field: path(context.codingPath))
    } catch let DecodingError.valueNotFound(expected, context) {
        throw Problem.invalidBody("\(path(context.codingPath)) must be \(describe(expected)), not null", field: path(context.codingPath))
    } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
        throw Problem.invalidBody("\(path(context.codingPath)) is not valid", field: path(context.codingPath))
    } catch {
        throw Problem.invalidBody("the body is not valid JSON")
    }
}

private func path(_ keys: [any CodingKey]) -> String {
    var text = ""
    for key in keys {
        if let index = key.intValue {
            text += "[\(index)]"
        } else {
            text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
        }
    }
    return text.isEmpty ? "body" : text
}

private func describe(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Int.Type, is Int64.Type: "an integer"
    case is Bool.Type: "a boolean"
    case is [Any].Type: "an array"
    default: "an object"
    }
}

/// Answers with the request's span in a `traceresponse` header (W3C Trace Context, level 2:
/// `00-<trace id>-<span id>-<flags>`), so a client can look its request's trace up.
struct TraceResponseMiddleware: RouterMiddleware {
    typealias Context = OrderlyRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let traceparent = TraceContext.currentTraceparent(), let current = ServiceContext.current else {
            return try await next(request, context)
        }
        // The request's appends and database calls read the server span's traceparent from here.
        var response = try await ServiceContext.withValue(TraceContext.remembering(traceparent, in: current)) {
            try await next(request, context)
        }
        if let name = HTTPField.Name("traceresponse") { response.headers[name] = traceparent }
        return response
    }
}
