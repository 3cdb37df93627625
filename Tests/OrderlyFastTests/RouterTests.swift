import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import OrderlyAPI
import OrderlyEventStore
import OrderlyReadModels
import OrderlyServices
import Testing

/// The api's router through Hummingbird's in-process test client, over the in-memory event store
/// and read models (kept up with the log by a background fold, as a projector would): roles,
/// validation, problem+json, paging and read-your-writes, with no server started.
@Suite struct RouterTests {
    static let secret = "router-tests-secret-of-at-least-32-bytes"

    /// Runs `body` against a fresh api; the read models follow the log every few milliseconds.
    static func withAPI(_ body: @Sendable (any TestClientProtocol, Tokens) async throws -> Void) async throws {
        let store = InMemoryEventStore()
        let models = InMemoryReadModels()
        let authority = try await TokenAuthority.hmac(secret: Self.secret, issuer: "orderly")
        let dependencies = APIDependencies(
            commands: OrderCommands(store: store), orders: models, inventory: models, sales: models, events: store, tokens: authority,
            readinessChecks: [])
        let app = Application(router: try API.buildRouter(dependencies))
        let projector = Task {
            while !Task.isCancelled {
                _ = try? await models.catchUp(with: store)
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        defer { projector.cancel() }
        try await app.test(.router) { client in try await body(client, Tokens(authority: authority)) }
    }

    struct Tokens: Sendable {
        let authority: TokenAuthority

        func bearer(_ role: Role, _ subject: String) async throws -> String {
            "Bearer " + (try await self.authority.mint(subject: subject, role: role, lifetime: .seconds(600)))
        }
    }

    struct Answer {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var json: [String: Any]

        /// The problem's stable name (the part after `problems/`).
        var problemType: String? { (self.json["type"] as? String)?.components(separatedBy: "/problems/").last }
    }

    static func call(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, bearer: String?, body: String? = nil
    ) async throws -> Answer {
        var headers = HTTPFields()
        if let bearer { headers[.authorization] = bearer }
        if body != nil { headers[.contentType] = "application/json" }
        let response = try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]) ?? [:]
        return Answer(status: response.status, headers: response.headers, json: json)
    }

    static func order(customer: String, sku: String = "SKU-1", quantity: Int = 1, unitPrice: Int = 500) -> String {
        #"{"customerId":"\#(customer)","currency":"EUR","paymentToken":"tok_ok","lines":[{"sku":"\#(sku)","quantity":\#(quantity),"unitPrice":\#(unitPrice)}]}"#
    }

    /// A problem answer: the status, problem+json, a stable type and a detail, nothing else leaking.
    static func expectProblem(_ answer: Answer, _ status: HTTPResponse.Status, _ type: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(answer.status == status, sourceLocation: sourceLocation)
        #expect(answer.headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
        #expect(answer.problemType == type, "\(answer.json)", sourceLocation: sourceLocation)
        #expect(answer.json["status"] as? Int == Int(status.code), sourceLocation: sourceLocation)
        #expect((answer.json["detail"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(Set(answer.json.keys).isSubset(of: ["type", "title", "status", "detail", "field"]), "\(answer.json)", sourceLocation: sourceLocation)
    }

    /// An api started without the read models' administration or the broker (as this test's is)
    /// says so for the routes that need them: 501 `not-configured`, after the role check, never a 500.
    @Test func routesWhoseBackendIsNotConfiguredSaySo() async throws {
        try await Self.withAPI { client, tokens in
            let admin = try await tokens.bearer(.admin, "admin-1")
            for (method, uri) in [
                (HTTPRequest.Method.get, "/projections"), (.get, "/projections/orders"), (.post, "/projections/orders/rebuild"),
                (.post, "/projections/orders/verify"), (.get, "/projections/orders/verify"), (.get, "/dead-letters"),
            ] {
                Self.expectProblem(try await Self.call(client, method, uri, bearer: admin), .notImplemented, "not-configured")
            }
            let customer = try await tokens.bearer(.customer, "c-1")
            Self.expectProblem(try await Self.call(client, .get, "/dead-letters", bearer: customer), .forbidden, "forbidden")
        }
    }

    @Test func aCustomerReadsTheOrderTheyJustPlacedAndNobodyElseDoes() async throws {
        try await Self.withAPI { client, tokens in
            let customer = try await tokens.bearer(.customer, "c-1")
            let placed = try await Self.call(client, .post, "/orders", bearer: customer, body: Self.order(customer: "c-1"))
            #expect(placed.status == .accepted)
            let id = try #require(placed.json["orderId"] as? String)
            let position = try #require(placed.json["position"] as? Int)
            let read = try await Self.call(client, .get, "/orders/\(id)?minPosition=\(position)&wait=5", bearer: customer)
            #expect(read.status == .ok)
            #expect(read.json["status"] as? String == "PLACED")
            #expect(read.json["total"] as? Int == 500)
            #expect((read.json["position"] as? Int ?? 0) >= position)
            // Another customer is told it does not exist; staff may read it.
            let other = try await Self.call(client, .get, "/orders/\(id)", bearer: try await tokens.bearer(.customer, "c-2"))
            Self.expectProblem(other, .notFound, "not-found")
            let staff = try await Self.call(client, .get, "/orders/\(id)", bearer: try await tokens.bearer(.staff, "s-1"))
            #expect(staff.status == .ok)
            Self.expectProblem(try await Self.call(client, .get, "/orders/no-such-order", bearer: customer), .notFound, "not-found")
        }
    }

    @Test func eachRoleGetsWhatItMayAndNothingElse() async throws {
        try await Self.withAPI { client, tokens in
            let customer = try await tokens.bearer(.customer, "c-1")
            let staff = try await tokens.bearer(.staff, "s-1")
            let analyst = try await tokens.bearer(.analyst, "a-1")
            let restock = #"{"quantity":5,"unitPrice":500}"#
            Self.expectProblem(try await Self.call(client, .get, "/orders", bearer: nil), .unauthorized, "unauthenticated")
            Self.expectProblem(try await Self.call(client, .get, "/orders", bearer: customer + "x"), .unauthorized, "invalid-token")
            let foreign = try await TokenAuthority.hmac(secret: "another-secret-of-at-least-32-bytes!", issuer: "orderly")
                .mint(subject: "c-1", role: .admin, lifetime: .seconds(60))
            Self.expectProblem(try await Self.call(client, .get, "/orders", bearer: "Bearer " + foreign), .unauthorized, "invalid-token")
            Self.expectProblem(
                try await Self.call(client, .post, "/inventory/SKU-1/restock", bearer: customer, body: restock), .forbidden, "forbidden")
            #expect(try await Self.call(client, .post, "/inventory/SKU-1/restock", bearer: staff, body: restock).status == .accepted)
            Self.expectProblem(
                try await Self.call(client, .post, "/orders", bearer: customer, body: Self.order(customer: "c-2")), .forbidden, "forbidden")
            Self.expectProblem(try await Self.call(client, .get, "/events", bearer: customer), .forbidden, "forbidden")
            Self.expectProblem(try await Self.call(client, .get, "/events", bearer: staff), .forbidden, "forbidden")
            let events = try await Self.call(client, .get, "/events", bearer: analyst)
            #expect(events.status == .ok)
            #expect((events.json["events"] as? [[String: Any]])?.first?["type"] as? String == "StockRestocked")
            Self.expectProblem(
                try await Self.call(client, .post, "/orders", bearer: analyst, body: Self.order(customer: "a-1")), .forbidden, "forbidden")
        }
    }

    @Test func badBodiesAreRefusedNamingWhatIsWrongAndStoreNothing() async throws {
        try await Self.withAPI { client, tokens in
            let customer = try await tokens.bearer(.customer, "c-1")
            func place(_ body: String) async throws -> Answer { try await Self.call(client, .post, "/orders", bearer: customer, body: body) }
            Self.expectProblem(try await place("{not json"), .badRequest, "invalid-body")
            Self.expectProblem(try await place("[]"), .badRequest, "invalid-body")
            let unknown = try await place(Self.order(customer: "c-1").replacingOccurrences(of: #""quantity""#, with: #""colour":"red","quantity""#))
            Self.expectProblem(unknown, .badRequest, "invalid-body")
            #expect(unknown.json["field"] as? String == "lines[0].colour")
            let wrongType = try await place(Self.order(customer: "c-1").replacingOccurrences(of: #""quantity":1"#, with: #""quantity":"1""#))
            Self.expectProblem(wrongType, .badRequest, "invalid-body")
            #expect(wrongType.json["field"] as? String == "lines[0].quantity")
            let negative = try await place(Self.order(customer: "c-1", quantity: -2))
            Self.expectProblem(negative, .unprocessableContent, "validation-failed")
            let oversized = try await place(Self.order(customer: "c-1").replacingOccurrences(of: "c-1", with: String(repeating: "c", count: 70_000)))
            Self.expectProblem(oversized, .contentTooLarge, "body-too-large")
            Self.expectProblem(
                try await Self.call(client, .get, "/orders?limit=0", bearer: customer), .badRequest, "invalid-query")
            Self.expectProblem(
                try await Self.call(client, .get, "/orders?cursor=bm90LWEtY3Vyc29y", bearer: customer), .badRequest, "invalid-query")
            // Nothing of it reached the log.
            let analyst = try await tokens.bearer(.analyst, "a-1")
            let events = try await Self.call(client, .get, "/events", bearer: analyst)
            #expect((events.json["events"] as? [Any])?.isEmpty == true, "\(events.json)")
        }
    }

    @Test func aCustomersOrdersComeInPagesNeitherRepeatingNorSkipping() async throws {
        try await Self.withAPI { client, tokens in
            let customer = try await tokens.bearer(.customer, "c-1")
            var placed: [String] = []
            var last = 0
            for _ in 0..<5 {
                let answer = try await Self.call(client, .post, "/orders", bearer: customer, body: Self.order(customer: "c-1"))
                placed.append(try #require(answer.json["orderId"] as? String))
                last = try #require(answer.json["position"] as? Int)
            }
            _ = try await Self.call(client, .post, "/orders", bearer: try await tokens.bearer(.customer, "c-2"), body: Self.order(customer: "c-2"))
            // Wait for the last of c-1's orders, then page.
            #expect(try await Self.call(client, .get, "/orders/\(placed[4])?minPosition=\(last)&wait=5", bearer: customer).status == .ok)
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let query = cursor.map { "/orders?limit=2&cursor=\($0)" } ?? "/orders?limit=2"
                let page = try await Self.call(client, .get, query, bearer: customer)
                #expect(page.status == .ok)
                let items = try #require(page.json["items"] as? [[String: Any]])
                #expect(items.allSatisfy { $0["customerId"] as? String == "c-1" })
                seen += items.compactMap { $0["orderId"] as? String }
                cursor = page.json["nextCursor"] as? String
                pages += 1
            } while cursor != nil && pages < 10
            #expect(pages == 3)
            #expect(seen.count == 5)
            #expect(Set(seen) == Set(placed))
            // A customer may not list another's orders.
            Self.expectProblem(try await Self.call(client, .get, "/orders?customerId=c-2", bearer: customer), .forbidden, "forbidden")
        }
    }
}
