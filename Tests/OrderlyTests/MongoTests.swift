import Foundation
import OrderlyProcesses
import OrderlyReadModels
import Testing

@testable import OrderlyBench

/// The libmongoc wrapper against the local MongoDB-compatible server.
@Suite struct MongoTests {
    func makeClient() throws -> MongoClient {
        try MongoClient(uri: TestServers.settings.mongoURI, database: TestServers.uniqueName("mongo_test"))
    }

    @Test func upsertThenFindReturnsTheDocument() async throws {
        let client = try self.makeClient()
        try await client.ping()
        let items = client.collection("items")
        let outcome = try await items.upsert(
            filter: ["_id": "a"], update: ["$set": ["name": "first", "count": 3, "tags": ["x", "y"], "price": 12.5]])
        #expect(outcome == .applied)
        let found = try #require(try await items.findOne(["_id": "a"]))
        #expect(found["name"] == "first")
        #expect(found["count"] == .int(3))
        #expect(found["tags"] == ["x", "y"])
        #expect(found["price"] == .double(12.5))
        #expect(try await items.findOne(["_id": "missing"]) == nil)
        try await client.dropDatabase()
    }

    /// The load generator's look for ended orders (scripts/bench): with delivery it leaves out paid
    /// orders whose parcel is still on its way, so a look returns each such order once and not on
    /// every look until it arrives (what that reading cost the document server slowed the projector).
    @Test func theLoadGeneratorsLookForEndedOrdersLeavesOutParcelsOnTheirWay() async throws {
        let client = try self.makeClient()
        let orders = client.collection("orders")
        let states: [(id: String, status: String, fulfilment: String?)] = [
            ("cancelled", "CANCELLED", nil), ("paid-not-yet-requested", "COMPLETED", nil), ("requested", "COMPLETED", "REQUESTED"),
            ("dispatched", "COMPLETED", "DISPATCHED"), ("delivered", "COMPLETED", "DELIVERED"), ("skipped", "COMPLETED", "SKIPPED"),
            ("failed", "COMPLETED", "FAILED"), ("reserved", "RESERVED", nil), ("other", "COMPLETED", "DELIVERED"),
        ]
        for state in states {
            var fields: Document = [
                "orderId": .string(state.id), "status": .string(state.status), "timeline": [["type": "OrderPlaced"]],
            ]
            if let fulfilment = state.fulfilment {
                fields = [
                    "orderId": .string(state.id), "status": .string(state.status), "timeline": [["type": "OrderPlaced"]],
                    "fulfilment": ["status": .string(fulfilment), "carrier": "SIMULATED"],
                ]
            }
            _ = try await orders.upsert(filter: ["_id": .string(state.id)], update: ["$set": fields])
        }
        let asked = states.map(\.id).filter { $0 != "other" }
        // Asked for as the watcher asks: only the fields it checks come back.
        func watched(delivery: Bool) async throws -> [LoadGenerator.WatchedOrder] {
            try await orders.find(
                LoadGenerator.endedOrders(among: asked, delivery: delivery), projection: LoadGenerator.WatchedOrder.projection,
                as: LoadGenerator.WatchedOrder.self)
        }
        func found(delivery: Bool) async throws -> Set<String> { Set(try await watched(delivery: delivery).map(\.orderId)) }
        // A paid order whose shipment is not requested yet still comes back (no `fulfilment` to
        // filter on); the watcher passes over it.
        #expect(try await found(delivery: true) == ["cancelled", "paid-not-yet-requested", "delivered", "skipped", "failed"])
        #expect(
            try await found(delivery: false) == ["cancelled", "paid-not-yet-requested", "requested", "dispatched", "delivered", "skipped", "failed"])
        let ended = Dictionary(uniqueKeysWithValues: try await watched(delivery: true).map { ($0.orderId, $0.hasShipmentEnded) })
        #expect(ended == ["cancelled": false, "paid-not-yet-requested": false, "delivered": true, "skipped": true, "failed": true])
        let projected = try await orders.find(
            ["_id": "delivered"], projection: LoadGenerator.WatchedOrder.projection, as: Document.self)
        #expect(projected.first?["timeline"] == nil)
        // The whole `fulfilment` comes back, its fields in whichever order the server keeps them.
        #expect(projected.first?["fulfilment"]?["status"] == "DELIVERED" && projected.first?["fulfilment"]?["carrier"] == "SIMULATED")
        try await client.dropDatabase()
    }

    @Test func aVersionGuardedUpsertAppliesOnceAndReportsRepeats() async throws {
        let client = try self.makeClient()
        let items = client.collection("guarded")
        func apply(_ version: Int64) async throws -> UpsertOutcome {
            try await items.upsert(
                filter: ["_id": "o-1", "version": ["$lt": .int(version)]],
                update: ["$set": ["version": .int(version)], "$inc": ["applied": 1]])
        }
        #expect(try await apply(1) == .applied)
        #expect(try await apply(1) == .alreadyApplied)
        #expect(try await apply(2) == .applied)
        #expect(try await apply(1) == .alreadyApplied)
        let document = try #require(try await items.findOne(["_id": "o-1"]))
        #expect(document["applied"] == .int(2))
        #expect(document["version"] == .int(2))
        try await client.dropDatabase()
    }

    @Test func aBulkOfGuardedUpsertsAppliesWhatItCanAndNamesTheRest() async throws {
        let client = try self.makeClient()
        let items = client.collection("bulk")
        func write(_ id: String, revision: Int64) -> (filter: Document, update: Document) {
            (["_id": .string(id), "revision": .int(revision)], ["$set": ["revision": .int(revision + 1)]])
        }
        #expect(try await items.bulkUpsert((0..<50).map { write("d\($0)", revision: 0) }) == [])
        // Index 1 and 3 expect a revision the documents no longer have; the others apply.
        let rejected = try await items.bulkUpsert([
            write("d0", revision: 1), write("d1", revision: 0), write("d2", revision: 1), write("d3", revision: 5), write("new", revision: 0),
        ])
        #expect(rejected == [1, 3])
        #expect(try await items.count() == 51)
        #expect(try await items.findOne(["_id": "d0"])?["revision"] == .int(2))
        #expect(try await items.findOne(["_id": "d1"])?["revision"] == .int(1))
        try await client.dropDatabase()
    }

    @Test func findFiltersSortsLimitsAndCounts() async throws {
        let client = try self.makeClient()
        let items = client.collection("many")
        for index in 0..<50 {
            _ = try await items.upsert(
                filter: ["_id": .string("i-\(index)")], update: ["$set": ["n": .int(Int64(index)), "even": .bool(index % 2 == 0)]])
        }
        #expect(try await items.count() == 50)
        #expect(try await items.count(["even": true]) == 25)
        let top = try await items.find(["even": true], sort: ["n": -1], limit: 3)
        #expect(top.map { $0["n"] } == [.int(48), .int(46), .int(44)])
        try await client.dropDatabase()
    }

    @Test func aServerThatDoesNotAnswerIsAnError() async throws {
        let client = try MongoClient(uri: "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500", database: "none")
        await #expect(throws: MongoError.self) { try await client.ping() }
    }

    /// Credentials and TLS come through the URI (`ORDERLY_MONGO_URI`) and libmongoc honours them:
    /// asking the local server, which speaks no TLS, for TLS fails; the same URI without it works.
    @Test func theURIsTLSOptionIsHonoured() async throws {
        let settings = try await TestServers.isolatedSettings()
        let separator = settings.mongoURI.contains("?") ? "&" : "/?"
        let plain = try MongoClient(uri: settings.mongoURI + separator + "serverSelectionTimeoutMS=3000", database: settings.mongoDatabase)
        try await plain.ping()
        let secure = try MongoClient(
            uri: settings.mongoURI + separator + "tls=true&serverSelectionTimeoutMS=1500&connectTimeoutMS=1000",
            database: settings.mongoDatabase)
        await #expect(throws: MongoError.self) { try await secure.ping() }
        // A malformed option is refused when the client is made, not at the first query.
        #expect(throws: MongoError.self) { try MongoClient(uri: "mongodb://127.0.0.1:1/?tls=maybe", database: "x") }
    }
}
