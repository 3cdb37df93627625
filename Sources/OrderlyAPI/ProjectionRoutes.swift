import Foundation
import Hummingbird
import OrderlyDomain
import OrderlyReadModels

/// The read models for operators (the console's "Read models" page): their state and lag for
/// analysts, rebuild and verify in the background for admins.
struct ProjectionRoutes {
    let administration: ProjectionAdministration?

    struct Listing: Codable, Sendable {
        var projections: [ProjectionStatus]
    }

    func register(on router: Router<OrderlyRequestContext>) {
        router.get("/projections") { _, context in
            try context.require(.analyst)
            return JSONBody(value: Listing(projections: try await self.configured().statuses()))
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
