import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import OrderlyAPI
import OrderlyEventStore
import OrderlyProcesses
import OrderlyReadModels
import OrderlyServices
import Testing

/// Who may call what, on every route, through the real api, stores and tokens.
@Suite struct SecurityTests {
    struct Call: CustomStringConvertible {
        var method: HTTPRequest.Method
        var uri: String
        var body: String?
        var role: Role?
        var subject: String
        var status: Int

        var description: String { "\(self.role?.rawValue ?? "anonymous")/\(self.subject) \(self.method) \(self.uri) → \(self.status)" }
    }

    @Test func everyRoleReachesOnlyItsRoutes() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [])
        try await app.test(.live) { client in
            let order = #"{"customerId":"c-1","currency":"EUR","lines":[{"sku":"SKU-R","quantity":1,"unitPrice":100}],"paymentToken":"tok_ok"}"#
            let restock = #"{"quantity":5,"unitPrice":100}"#
            // Set up: stock, and one order of c-1 that every read below can see once projected.
            let stocked = try await client.send(uri: "/inventory/SKU-R/restock", method: .post, body: ByteBuffer(string: restock), as: .staff)
            #expect(stocked.status == .accepted)
            let placed = try await client.send(uri: "/orders", method: .post, body: ByteBuffer(string: order), as: .customer, subject: "c-1")
            #expect(placed.status == .accepted, "\(String(buffer: placed.body))")
            struct Placed: Decodable { var orderId: String }
            let id = try JSONDecoder().decode(Placed.self, from: Data(placed.body.readableBytesView)).orderId
            let visible = try await TestServers.eventually { () -> Bool? in
                let stock = try await client.send(uri: "/inventory/SKU-R", method: .get, as: .staff)
                let order = try await client.send(uri: "/orders/\(id)", method: .get, as: .staff)
                let summary = try await client.send(uri: "/customers/c-1/summary", method: .get, as: .staff)
                return stock.status == .ok && order.status == .ok && summary.status == .ok ? true : nil
            }
            #expect(visible == true, "the read models never showed the order")

            let calls: [Call] = [
                // Placing: a customer for themselves, admin; not staff or analyst, not for someone else.
                Call(method: .post, uri: "/orders", body: order, role: .customer, subject: "c-1", status: 202),
                Call(method: .post, uri: "/orders", body: order, role: .customer, subject: "c-2", status: 403),
                Call(method: .post, uri: "/orders", body: order, role: .admin, subject: "root", status: 202),
                Call(method: .post, uri: "/orders", body: order, role: .staff, subject: "s", status: 403),
                Call(method: .post, uri: "/orders", body: order, role: .analyst, subject: "a", status: 403),
                Call(method: .post, uri: "/orders", body: order, role: nil, subject: "", status: 401),
                // Reading one order: its customer and staff; another customer sees nothing there.
                Call(method: .get, uri: "/orders/\(id)", role: .customer, subject: "c-1", status: 200),
                Call(method: .get, uri: "/orders/\(id)", role: .customer, subject: "c-2", status: 404),
                Call(method: .get, uri: "/orders/\(id)?minPosition=1", role: .customer, subject: "c-2", status: 404),
                Call(method: .get, uri: "/orders/\(id)", role: .staff, subject: "s", status: 200),
                Call(method: .get, uri: "/orders/\(id)", role: .analyst, subject: "a", status: 403),
                Call(method: .get, uri: "/orders/\(id)", role: nil, subject: "", status: 401),
                // Listing: a customer only their own.
                Call(method: .get, uri: "/orders", role: .customer, subject: "c-1", status: 200),
                Call(method: .get, uri: "/orders?customerId=c-2", role: .customer, subject: "c-1", status: 403),
                Call(method: .get, uri: "/orders?customerId=c-2", role: .staff, subject: "s", status: 200),
                Call(method: .get, uri: "/orders", role: .analyst, subject: "a", status: 403),
                // Stock: customers and staff read it; only staff restock.
                Call(method: .get, uri: "/inventory/SKU-R", role: .customer, subject: "c-1", status: 200),
                Call(method: .get, uri: "/inventory/SKU-R", role: .analyst, subject: "a", status: 403),
                Call(method: .post, uri: "/inventory/SKU-R/restock", body: restock, role: .staff, subject: "s", status: 202),
                Call(method: .post, uri: "/inventory/SKU-R/restock", body: restock, role: .customer, subject: "c-1", status: 403),
                Call(method: .post, uri: "/inventory/SKU-R/restock", body: restock, role: .analyst, subject: "a", status: 403),
                // Summaries: the customer themselves and staff.
                Call(method: .get, uri: "/customers/c-1/summary", role: .customer, subject: "c-1", status: 200),
                Call(method: .get, uri: "/customers/c-1/summary", role: .customer, subject: "c-2", status: 404),
                Call(method: .get, uri: "/customers/c-1/summary", role: .staff, subject: "s", status: 200),
                Call(method: .get, uri: "/customers/c-1/summary", role: .analyst, subject: "a", status: 403),
                // Sales: staff and analysts.
                Call(method: .get, uri: "/sales/daily", role: .staff, subject: "s", status: 200),
                Call(method: .get, uri: "/sales/daily", role: .analyst, subject: "a", status: 200),
                Call(method: .get, uri: "/sales/daily", role: .customer, subject: "c-1", status: 403),
                // Events: analysts (and admin) only (more in EventsAPITests).
                Call(method: .get, uri: "/events", role: .analyst, subject: "a", status: 200),
                Call(method: .get, uri: "/events", role: .staff, subject: "s", status: 403),
                Call(method: .get, uri: "/streams/order-\(id)/events", role: .admin, subject: "root", status: 200),
                Call(method: .get, uri: "/streams/order-\(id)/events", role: .customer, subject: "c-1", status: 403),
                // An order's saga history: staff and analysts, not customers.
                Call(method: .get, uri: "/orders/\(id)/history", role: .staff, subject: "s", status: 200),
                Call(method: .get, uri: "/orders/\(id)/history", role: .analyst, subject: "a", status: 200),
                Call(method: .get, uri: "/orders/\(id)/history", role: .customer, subject: "c-1", status: 403),
                // Read models: analysts look, only admin rebuilds or verifies.
                Call(method: .get, uri: "/projections", role: .analyst, subject: "a", status: 200),
                Call(method: .get, uri: "/projections", role: .staff, subject: "s", status: 403),
                Call(method: .get, uri: "/projections/orders", role: .customer, subject: "c-1", status: 403),
                Call(method: .post, uri: "/projections/orders/rebuild", role: .analyst, subject: "a", status: 403),
                Call(method: .post, uri: "/projections/orders/verify", role: .staff, subject: "s", status: 403),
                Call(method: .get, uri: "/projections/orders/verify", role: nil, subject: "", status: 401),
                Call(method: .get, uri: "/dead-letters", role: .analyst, subject: "a", status: 200),
                Call(method: .get, uri: "/dead-letters?limit=0", role: .analyst, subject: "a", status: 400),
                Call(method: .get, uri: "/dead-letters", role: .staff, subject: "s", status: 403),
                // Operations, the document and the console's static files are open (the console
                // calls the API with the user's token like any client).
                Call(method: .get, uri: "/console", role: nil, subject: "", status: 200),
                Call(method: .get, uri: "/health", role: nil, subject: "", status: 200),
                Call(method: .get, uri: "/ready", role: nil, subject: "", status: 200),
                Call(method: .get, uri: "/metrics", role: nil, subject: "", status: 200),
                Call(method: .get, uri: "/openapi.json", role: nil, subject: "", status: 200),
                // Cancelling: only the order's customer (another one sees no such order), not staff.
                Call(method: .post, uri: "/orders/\(id)/cancel", role: .customer, subject: "c-2", status: 404),
                Call(method: .post, uri: "/orders/\(id)/cancel", role: .staff, subject: "s", status: 403),
                Call(method: .post, uri: "/orders/\(id)/cancel", role: .customer, subject: "c-1", status: 202),
            ]
            for call in calls {
                var headers: HTTPFields = [.contentType: "application/json"]
                if let role = call.role { headers[.authorization] = try await TestServers.bearer(role, subject: call.subject) }
                let response = try await client.execute(
                    uri: call.uri, method: call.method, headers: headers, body: call.body.map { ByteBuffer(string: $0) })
                #expect(Int(response.status.code) == call.status, "\(call): \(String(buffer: response.body).prefix(300))")
                if call.status >= 400 {
                    #expect(response.headers[.contentType] == "application/problem+json", "\(call)")
                }
            }
        }
    }

    @Test func unknownFieldsAndWrongShapesAreRejectedNamingTheField() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [], projector: false)
        try await app.test(.live) { client in
            let cases: [(String, String, String?)] = [
                (
                    #"{"customerId":"c","currency":"EUR","lines":[{"sku":"S","quantity":1,"unitPrice":1}],"paymentToken":"t","coupon":"X"}"#,
                    "invalid-body", "coupon"
                ),
                (
                    #"{"customerId":"c","currency":"EUR","lines":[{"sku":"S","quantity":1,"unitPrice":1,"colour":"red"}],"paymentToken":"t"}"#,
                    "invalid-body", "lines[0].colour"
                ),
                (#"[{"customerId":"c"}]"#, "invalid-body", nil),
                (#""just a string""#, "invalid-body", nil),
                (
                    #"{"customerId":"c","currency":"EUR","lines":[{"sku":"S","quantity":true,"unitPrice":1}],"paymentToken":"t"}"#, "invalid-body",
                    "lines[0].quantity"
                ),
                (#"{"customerId":7,"currency":"EUR","lines":[],"paymentToken":"t"}"#, "invalid-body", "customerId"),
                // Optional fields are left out, never null (the fuzzer found `"customer": null` accepted).
                (
                    #"{"customerId":"c","currency":"EUR","lines":[{"sku":"S","quantity":1,"unitPrice":1}],"paymentToken":"t","customer":null}"#,
                    "invalid-body", "customer"
                ),
                (#"{"customerId":null,"currency":"EUR","lines":[],"paymentToken":"t"}"#, "invalid-body", "customerId"),
                (#"{"customerId":"c","currency":"EUR","lines":{"sku":"S"},"paymentToken":"t"}"#, "invalid-body", "lines"),
                (#"{"currency":"EUR","lines":[],"paymentToken":"t"}"#, "invalid-body", "customerId"),
                (
                    #"{"customerId":"c","currency":"EUR","lines":[{"sku":"S","quantity":1.5,"unitPrice":1}],"paymentToken":"t"}"#, "invalid-body",
                    "lines[0].quantity"
                ),
                (
                    #"{"customerId":"c","currency":"EUR","lines":[{"sku":"S","quantity":99999999999999999999,"unitPrice":1}],"paymentToken":"t"}"#,
                    "invalid-body", "lines[0].quantity"
                ),
                (
                    #"{"customerId":"c","currency":"EUR","lines":[{"sku":"S","quantity":1,"unitPrice":0}],"paymentToken":"t"}"#, "validation-failed",
                    "lines[0].unitPrice"
                ),
                (
                    #"{"customerId":"c d","currency":"EUR","lines":[{"sku":"S","quantity":1,"unitPrice":1}],"paymentToken":"t"}"#,
                    "validation-failed", "customerId"
                ),
            ]
            for (body, type, field) in cases {
                let response = try await client.send(uri: "/orders", method: .post, body: ByteBuffer(string: body))
                let text = String(buffer: response.body)
                #expect(response.status.code == (type == "invalid-body" ? 400 : 422), "\(body): \(text)")
                #expect(text.contains("problems/\(type)"), "\(body): \(text)")
                if let field { #expect(text.contains(#""field":"\#(field)""#), "\(body): \(text)") }
            }
            let restock = try await client.send(
                uri: "/inventory/S/restock", method: .post, body: ByteBuffer(string: #"{"quantity":1,"unitPrice":1,"discount":5}"#))
            #expect(restock.status == .badRequest)
            #expect(String(buffer: restock.body).contains(#""field":"discount""#))
        }
    }

    @Test func commandsAreRateLimitedPerCallerWithRetryAfter() async throws {
        var settings = try await TestServers.isolatedSettings()
        // One command per 20 s after a burst of 3: a loaded machine cannot refill the bucket mid-test.
        settings.rateLimitPerSecond = 0.05
        settings.rateLimitBurst = 3
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [], projector: false)
        try await app.test(.live) { client in
            let restock = ByteBuffer(string: #"{"quantity":1,"unitPrice":100}"#)
            var statuses: [Int] = []
            for _ in 0..<4 {
                statuses.append(
                    try await client.send(uri: "/inventory/S/restock", method: .post, body: restock, as: .staff, subject: "s-1").status.code)
            }
            #expect(statuses == [202, 202, 202, 429])
            let limited = try await client.send(uri: "/inventory/S/restock", method: .post, body: restock, as: .staff, subject: "s-1")
            #expect(limited.status == .tooManyRequests)
            #expect((1...20).contains(Int(limited.headers[.retryAfter] ?? "") ?? 0), "\(limited.headers)")
            #expect(String(buffer: limited.body).contains("problems/rate-limited"))
            // Queries are not limited; another caller has a bucket of their own.
            #expect(try await client.send(uri: "/inventory/S", method: .get, as: .staff, subject: "s-1").status != .tooManyRequests)
            #expect(try await client.send(uri: "/inventory/S/restock", method: .post, body: restock, as: .staff, subject: "s-2").status == .accepted)
            // Without a token the caller is its address: anonymous commands spend a bucket of their own
            // (refused 401 by the route, but counted first), then get 429.
            var anonymous: [Int] = []
            for _ in 0..<4 {
                anonymous.append(try await client.execute(uri: "/orders", method: .post, body: ByteBuffer(string: "{}")).status.code)
            }
            #expect(anonymous == [401, 401, 401, 429])
            // The peer is not a trusted proxy: an X-Forwarded-For it sends changes nothing.
            let claimed = try await client.execute(
                uri: "/orders", method: .post, headers: [HTTPField.Name("X-Forwarded-For")!: "203.0.113.7"], body: ByteBuffer(string: "{}"))
            #expect(claimed.status == .tooManyRequests)
        }
    }

    /// Behind a trusted load balancer each client has its own bucket, found in X-Forwarded-For (the
    /// right-most address the proxies did not write themselves).
    @Test func behindATrustedProxyTheForwardedClientIsTheCaller() async throws {
        var settings = try await TestServers.isolatedSettings()
        settings.rateLimitPerSecond = 0.05
        settings.rateLimitBurst = 2
        settings.trustedProxies = "127.0.0.0/8, ::1"
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [], projector: false)
        try await app.test(.live) { client in
            func post(forwardedFor: String) async throws -> Int {
                Int(
                    try await client.execute(
                        uri: "/orders", method: .post, headers: [HTTPField.Name("X-Forwarded-For")!: forwardedFor],
                        body: ByteBuffer(string: "{}")
                    ).status.code)
            }
            var first: [Int] = []
            for _ in 0..<3 { first.append(try await post(forwardedFor: "198.51.100.1")) }
            #expect(first == [401, 401, 429])
            // Another client behind the same proxy is not limited by the first one's use.
            #expect(try await post(forwardedFor: "198.51.100.2") == 401)
            // A client writing its own header left of the proxy's entry gains nothing: the right-most counts.
            #expect(try await post(forwardedFor: "192.0.2.99, 198.51.100.1") == 429)
        }
        #expect(throws: TrustedProxiesError.self) { try TrustedProxies(parsing: "10.0.0.0/8, not-an-address") }
    }

    @Test func aRateLimiterRefillsAtItsRateUpToItsBurst() {
        let limiter = RateLimiter(ratePerSecond: 10, burst: 2)
        let start = ContinuousClock.now
        #expect(limiter.take(for: "a", now: start) == nil)
        #expect(limiter.take(for: "a", now: start) == nil)
        let wait = limiter.take(for: "a", now: start)
        #expect(wait == .milliseconds(100))
        #expect(limiter.take(for: "a", now: start + .milliseconds(100)) == nil)
        #expect(limiter.take(for: "a", now: start + .milliseconds(100)) != nil)
        // A long pause refills to the burst, not beyond.
        let later = start + .seconds(60)
        #expect(limiter.take(for: "a", now: later) == nil)
        #expect(limiter.take(for: "a", now: later) == nil)
        #expect(limiter.take(for: "a", now: later) != nil)
    }

    /// The served document and the router agree on every path and method, both ways.
    @Test func theOpenAPIDocumentMatchesTheRouter() async throws {
        let settings = try await TestServers.isolatedSettings()
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let collections = ActiveCollections(client: mongo)
        let store = InMemoryEventStore()
        let router = try API.buildRouter(
            APIDependencies(
                commands: OrderCommands(store: store), orders: MongoOrderReadModel(collections: collections),
                inventory: MongoInventoryReadModel(collections: collections), sales: MongoSalesReadModel(collections: collections),
                events: store, tokens: nil, readinessChecks: []))
        // The console's static files are a page, not the API.
        let routed = Set(router.routes.filter { !$0.path.description.hasPrefix("/console") }.map { "\($0.method.rawValue) \($0.path.description)" })
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [], projector: false)
        let documented = try await app.test(.live) { client in
            let response = try await client.execute(uri: "/openapi.json", method: .get)
            #expect(response.headers[.contentType] == "application/json")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            var documented = Set<String>()
            for (path, operations) in paths {
                for method in operations.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                    documented.insert("\(method.uppercased()) \(path)")
                }
            }
            return documented
        }
        #expect(routed.count >= 15)
        #expect(routed.subtracting(documented).isEmpty, "routes missing from the document: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "documented but not routed: \(documented.subtracting(routed).sorted())")
    }

    /// Tokens and the signing secret never reach the logs, even at the most verbose level.
    @Test func noTokenOrSecretIsEverLogged() async throws {
        let settings = try await TestServers.isolatedSettings()
        let port = TestPorts.next()
        let api = try ChildProcess.orderly(
            ["api"], settings: settings, extra: ["ORDERLY_HTTP_PORT": "\(port)", "ORDERLY_HTTP_HOST": "127.0.0.1", "LOG_LEVEL": "trace"])
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let token = try await TestServers.bearer(.customer, subject: "c-log")
        let bad = token + "x"
        do {
            #expect(try await TestServers.answers("http://127.0.0.1:\(port)/health", http: http), "\(api.output)")
            for bearer in [token, bad] {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/orders")
                request.method = .POST
                request.headers.add(name: "Authorization", value: bearer)
                request.body = .bytes(
                    ByteBuffer(
                        string: #"{"customerId":"c-log","currency":"EUR","lines":[{"sku":"S","quantity":1,"unitPrice":1}],"paymentToken":"tok_ok"}"#))
                let response = try await http.execute(request, timeout: .seconds(10))
                let body = try await response.body.collect(upTo: 1 << 16)
                #expect(!String(buffer: body).contains(bearer.dropFirst(7)))
            }
        } catch {
            Issue.record(error)
        }
        try await http.shutdown()
        api.kill(SIGTERM)
        await api.process.exited()
        let log = api.output
        #expect(!log.isEmpty)
        #expect(!log.contains(token.dropFirst(7)), "a token was logged")
        #expect(!log.contains(bad.dropFirst(7)), "a rejected token was logged")
        #expect(!log.contains(TestServers.jwtSecret), "the signing secret was logged")
    }

    /// `/metrics` counts requests by route template, method and final status (problems included).
    @Test func requestsAreCountedByRouteAndStatus() async throws {
        let settings = try await TestServers.isolatedSettings()
        let port = TestPorts.next()
        let api = try ChildProcess.orderly(["api"], settings: settings, extra: ["ORDERLY_HTTP_PORT": "\(port)", "ORDERLY_HTTP_HOST": "127.0.0.1"])
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        var metrics = ""
        do {
            #expect(try await TestServers.answers("http://127.0.0.1:\(port)/health", http: http), "\(api.output)")
            let staff = try await TestServers.bearer(.staff)
            for (path, bearer) in [("/orders/o-1", staff), ("/orders/o-2", staff), ("/orders/o-3", nil), ("/nowhere", nil)] {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
                if let bearer { request.headers.add(name: "Authorization", value: bearer) }
                _ = try await http.execute(request, timeout: .seconds(10)).body.collect(upTo: 1 << 16)
            }
            let response = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(10))
            metrics = String(buffer: try await response.body.collect(upTo: 1 << 22))
        } catch {
            Issue.record(error)
        }
        try await http.shutdown()
        api.kill(SIGTERM)
        await api.process.exited()
        let lines = metrics.split(separator: "\n")
        func count(_ route: String, _ status: Int) -> String? {
            lines.first {
                $0.hasPrefix("hb_requests{") && $0.contains("http_route=\"\(route)\"") && $0.contains("http_response_status_code=\"\(status)\"")
            }
            .map { String($0.split(separator: " ").last ?? "") }
        }
        #expect(count("/orders/{id}", 404) == "2", "\(metrics.prefix(2000))")
        #expect(count("/orders/{id}", 401) == "1")
        #expect(count("NotFound", 404) == "1")
        #expect(metrics.contains("http_server_request_duration_bucket{http_route=\"/orders/{id}\""))
    }
}
