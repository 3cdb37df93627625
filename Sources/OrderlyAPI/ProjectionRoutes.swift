import Foundation
import Hummingbird
import OrderlyDomain
import OrderlyHandling
import OrderlyReadModels

/// The read models for operators (the console's "Read models" page): their state and lag for
/// analysts, rebuild and verify in the background for admins; and the dead letters (events a
/// consumer group set aside) for analysts.
struct ProjectionRoutes {
    let administration: ProjectionAdministration?
    let deadLetters: (@Sendable (Int) async throws -> [DeadLetter])?

    struct DeadLetters: Codable, Sendable {
        var deadLetters: [DeadLetter]
    }

    struct Listing: Codable, Sendable {
        var projections: [ProjectionStatus]
    }

    func register(on router: Router<OrderlyRequestContext>) {
        router.get("/projections") { _, context in
            try context.require(.analyst)
            return JSONBody(value: Listing(projections: try await self.configured().statuses()))
        }
        router.get("/dead-letters") { request, context in
            try context.require(.analyst)
            return try await self.listDeadLetters(request)
        }
        router.get("/projections/{name}") { _, context in
            try context.require(.analyst)
            return JSONBody(value: try await Self.mapped { try await self.configured().status(try context.parameters.require("name")) })
        }
        router.post("/projections/{name}/rebuild") { _, context in
            try context.require(.admin)
            let name = try context.parameters.require("name")
            return JSONBody(status: .accepted, value: try await Self.mapped { try await self.configured().startRebuild(name) })
        }
        router.post("/projections/{name}/verify") { _, context in
            try context.require(.admin)
            let name = try context.parameters.require("name")
            return JSONBody(status: .accepted, value: try await Self.mapped { try await self.configured().startVerify(name) })
        }
        router.get("/projections/{name}/verify") { _, context in
            try context.require(.analyst)
            let name = try context.parameters.require("name")
            guard let status = try await Self.mapped({ try await self.configured().verification(name) }) else {
                throw Problem.notFound("no verify of \(name) was started from the api")
            }
            return JSONBody(value: status)
        }
    }

    /// `GET /dead-letters?limit=&group=`: the newest dead letters, oldest first.
    func listDeadLetters(_ request: Request) async throws -> JSONBody<DeadLetters> {
        let limit = Int(try QueryParameter.integer(request, "limit", in: 1...1000) ?? 100)
        let group = request.uri.queryParameters["group"].map(String.init)
        if let group, !IdentifierRules.isWellFormed(group, maxLength: 200) {
            throw Problem.invalidQuery("group must be a consumer group name (letters, digits and - _ . :)", field: "group")
        }
        guard let deadLetters = self.deadLetters else {
            throw Problem(
                status: .notImplemented, type: "not-configured", title: "Not configured", detail: "this api was started without the broker")
        }
        let found: [DeadLetter]
        do {
            found = try await deadLetters(limit)
        } catch {
            var problem = Problem(
                status: .serviceUnavailable, type: "broker-unavailable", title: "The broker is unavailable",
                detail: "the dead-letter topic could not be read (\(error)); retry later")
            problem.headers[.retryAfter] = "2"
            throw problem
        }
        return JSONBody(value: DeadLetters(deadLetters: group.map { wanted in found.filter { $0.group == wanted } } ?? found))
    }

    func configured() throws -> ProjectionAdministration {
        guard let administration = self.administration else {
            throw Problem(
                status: .notImplemented, type: "not-configured", title: "Not configured",
                detail: "this api was started without the read models' administration")
        }
        return administration
    }

    /// `body`, with the administration's refusals as problems.
    static func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch ProjectionAdministrationError.unknownProjection(let name, let known) {
            throw Problem.notFound("no read model \(name); there are \(known.joined(separator: ", "))")
        } catch ProjectionAdministrationError.busy(let detail) {
            throw Problem(status: .conflict, type: "projection-busy", title: "Already under way", detail: detail)
        }
    }
}
