import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import OrderlyAPI
import OrderlyProcesses
import OrderlyReadModels
import Testing

/// `/projections`: each read model's state and lag from the live projectors' heartbeats, and a
/// rebuild or verify started from the api, running in its background, against the real servers.
@Suite struct ProjectionAdministrationTests {
    static func json(_ response: TestResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]) ?? [:]
    }

    static func projection(_ name: String, in listing: [String: Any]) -> [String: Any]? {
        (listing["projections"] as? [[String: Any]])?.first { $0["name"] as? String == name }
    }

    @Test func readModelsShowTheirLagAndAnAdminRebuildsAndVerifiesThemInTheBackground() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [])
        try await app.test(.live) { client in
            let order = #"{"customerId":"c-p","currency":"EUR","lines":[{"sku":"SKU-P","quantity":1,"unitPrice":100}],"paymentToken":"tok_ok"}"#
            let placed = try await client.send(uri: "/orders", method: .post, body: ByteBuffer(string: order), as: .customer, subject: "c-p")
            #expect(placed.status == .accepted)
            let id = try #require(Self.json(placed)["orderId"] as? String)

            // Every model is listed with its definition; once the projector applied the order, the
            // orders model is caught up (lag 0) and has a live projector.
            let caughtUp = try await TestServers.eventually { () -> [String: Any]? in
                let listing = Self.json(try await client.send(uri: "/projections", method: .get, as: .analyst))
                guard let orders = Self.projection("orders", in: listing), (orders["projectors"] as? Int ?? 0) >= 1,
                    let lag = orders["lag"] as? [String: Any], lag["events"] as? Int == 0,
                    try await client.send(uri: "/orders/\(id)", method: .get, as: .staff).status == .ok
                else { return nil }
                return listing
            }
            let listing = try #require(caughtUp, "the orders model never showed a caught-up live projector")
            #expect(
                Set((listing["projections"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []) == [
                    "orders", "inventory", "customer_orders", "sales_daily",
                ])
            // The projector's one watcher beats for every model it keeps, in the same write.
            for name in ["orders", "inventory", "customer_orders", "sales_daily"] {
                #expect((Self.projection(name, in: listing)?["projectors"] as? Int ?? 0) >= 1, "\(name) shows no live projector")
            }
            // The version projections/orders.json gives (it goes up whenever the fold changes).
            let ordersVersion = try #require(
                try ReadModelCatalog.definitions(from: ProjectionDefinition.defaultDirectory()).first { $0.1.name == "orders" }?.1.version)
            #expect(Self.projection("orders", in: listing)?["definitionVersion"] as? Int == ordersVersion)
            #expect(Self.projection("orders", in: listing)?["collection"] as? String == "orders")

            // A verify runs in the background and is polled.
            let verify = try await client.send(uri: "/projections/orders/verify", method: .post)
            #expect(verify.status == .accepted, "\(String(buffer: verify.body))")
            #expect(Self.json(verify)["state"] as? String == "running")
            let verified = try await TestServers.eventually { () -> [String: Any]? in
                let status = Self.json(try await client.send(uri: "/projections/orders/verify", method: .get, as: .analyst))
                return status["state"] as? String == "running" ? nil : status
            }
            #expect(verified?["state"] as? String == "passed", "\(verified ?? [:])")
            #expect(verified?["documents"] as? Int == 1)
            #expect(verified?["differences"] as? Int == 0)

            // A rebuild runs in the background, switches readers to a new collection, and the order
            // is still there.
            let rebuild = try await client.send(uri: "/projections/orders/rebuild", method: .post)
            #expect(rebuild.status == .accepted, "\(String(buffer: rebuild.body))")
            let switched = try await TestServers.eventually(timeout: .seconds(60)) { () -> String? in
                let state = Self.json(try await client.send(uri: "/projections/orders", method: .get, as: .analyst))
                guard state["rebuild"] == nil || state["rebuild"] is NSNull, let collection = state["collection"] as? String,
                    collection.hasPrefix("orders_v\(ordersVersion)_")
                else { return nil }
                return collection
            }
            #expect(switched != nil, "the rebuild never switched readers over")
            #expect(try await client.send(uri: "/orders/\(id)", method: .get, as: .staff).status == .ok)

            // Refusals: an unknown model, a rebuild while another one's owner is alive, a verify while one runs.
            let unknown = try await client.send(uri: "/projections/nope/rebuild", method: .post)
            #expect(unknown.status == .notFound)
            let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
            let catalog = ProjectionCatalog(client: mongo)
            let current = try #require(try await catalog.state("orders"))
            var busy = current
            let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
            busy.rebuild = try JSONDecoder().decode(
                ProjectionState.Rebuild.self,
                from: Data(
                    #"{"collection":"orders_elsewhere","version":1,"owner":"another-api","heartbeatMs":\#(nowMs),"startedAt":"2026-12-03T00:00:00Z","position":0,"target":10}"#
                        .utf8))
            #expect(try await catalog.replace(current, with: busy))
            let refused = try await client.send(uri: "/projections/orders/rebuild", method: .post)
            #expect(refused.status == .conflict)
            #expect((Self.json(refused)["type"] as? String)?.hasSuffix("/projection-busy") == true, "\(Self.json(refused))")
            let verifications = mongo.collection(ProjectionAdministration.verificationCollection)
            _ = try await verifications.upsert(
                filter: ["_id": "orders"], update: ["$set": ["state": "running", "startedAt": "2026-12-03T00:00:00Z", "heartbeatMs": .int(nowMs)]])
            #expect(try await client.send(uri: "/projections/orders/verify", method: .post).status == .conflict)
            // A verify whose api went away reads as abandoned, and a new one may start.
            _ = try await verifications.upsert(filter: ["_id": "orders"], update: ["$set": ["heartbeatMs": .int(nowMs - 60_000)]])
            let abandoned = Self.json(try await client.send(uri: "/projections/orders/verify", method: .get, as: .analyst))
            #expect(abandoned["state"] as? String == "abandoned")
            #expect(try await client.send(uri: "/projections/orders/verify", method: .post).status == .accepted)
        }
    }
}
