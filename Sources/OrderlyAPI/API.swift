import Foundation
import Hummingbird
import Logging
import OrderlyDomain
import OrderlyEventStore
import OrderlyReadModels
import OrderlyServices

/// What the api needs: command handlers, read models, and readiness checks of the parts it relies on.
public struct APIDependencies: Sendable {
    public var commands: OrderCommands
    public var orders: any OrderReadModel
    public var inventory: any InventoryReadModel
    public var sales: any SalesReadModel
    /// The event log, read by the analysts' routes.
    public var events: any EventStore
    /// Verifies bearer tokens; nil when no key is configured (then no token is accepted and every
    /// route that needs a role answers 401).
    public var tokens: TokenAuthority?
    /// How often the live event tail polls the log once caught up.
    public var livePollInterval: Duration = .milliseconds(200)
    /// Named checks for `/ready`; each throws when its part does not answer.
    public var readinessChecks: [(String, @Sendable () async throws -> Void)]
    /// The process's metrics in the Prometheus text format, for `/metrics`.
    public var metricsText: @Sendable () -> [UInt8]

    public init(
        commands: OrderCommands, orders: any OrderReadModel, inventory: any InventoryReadModel, sales: any SalesReadModel,
        events: any EventStore, tokens: TokenAuthority?, readinessChecks: [(String, @Sendable () async throws -> Void)],
        metricsText: @escaping @Sendable () -> [UInt8] = { [] }
    ) {
        self.commands = commands
        self.orders = orders
        self.inventory = inventory
        self.sales = sales
        self.events = events
        self.tokens = tokens
        self.readinessChecks = readinessChecks
        self.metricsText = metricsText
    }
}

public enum API {
    public static let maxBodyBytes = 64 * 1024

    /// The router every entry point (api, dev, tests) serves, so what is tested is what runs.
    public static func buildRouter(_ dependencies: APIDependencies) -> Router<OrderlyRequestContext> {
        let router = Router(context: OrderlyRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        router.add(middleware: AuthMiddleware(authority: dependencies.tokens))
        OrderRoutes(dependencies: dependencies).register(on: router)
        EventRoutes(store: dependencies.events, livePollInterval: dependencies.livePollInterval, keepAliveInterval: .seconds(15))
            .register(on: router)
        HealthRoutes(checks: dependencies.readinessChecks, metricsText: dependencies.metricsText).register(on: router)
        return router
    }

    /// The router of the relay's and projector's small ops server: `/health` and `/metrics` only.
    public static func buildOpsRouter(metricsText: @escaping @Sendable () -> [UInt8]) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        HealthRoutes(checks: [], metricsText: metricsText).register(on: router)
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

/// Reads a JSON body up to the size limit and decodes it, turning every decoding failure into a 400
/// that names the field.
func decodeBody<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
    let buffer = try await request.body.collect(upTo: API.maxBodyBytes)
    do {
        return try JSONDecoder().decode(type, from: Data(buffer.readableBytesView))
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
