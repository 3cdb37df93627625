import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import OrderlyAPI
import OrderlyEventStore
import OrderlyProcesses
import Testing

struct EventPage: Decodable {
    struct Event: Decodable {
        var position: Int64
        var streamId: String
        var streamVersion: Int64
        var type: String
    }

    var events: [Event]
    var next: Int64
}

/// The analysts' event routes over real HTTP, PostgreSQL and tokens.
@Suite struct EventsAPITests {
    @Test func onlyAnalystsAndAdminsReadEvents() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [], projector: false)
        let analyst = try await TestServers.bearer(.analyst)
        let tokens: [(String?, Int, String?)] = [
            (nil, 401, "unauthenticated"),
            (try await TestServers.bearer(.customer, subject: "c-1"), 403, "forbidden"),
            (try await TestServers.bearer(.staff), 403, "forbidden"),
            (analyst, 200, nil),
            (try await TestServers.bearer(.admin), 200, nil),
            ("Bearer not.a.token", 401, "invalid-token"),
            ("Basic dXNlcjpwYXNz", 401, "invalid-token"),
            (try await TestServers.bearer(.analyst, lifetime: .seconds(-60)), 401, "invalid-token"),
            (try await TestServers.bearer(.analyst, issuer: "someone-else"), 401, "invalid-token"),
            (
                "Bearer "
                    + (try await TokenAuthority.hmac(secret: String(repeating: "z", count: 40), issuer: "orderly").mint(
                        subject: "x", role: .analyst, lifetime: .seconds(60))),
                401, "invalid-token"
            ),
        ]
        try await app.test(.live) { client in
            try await TestServers.withPostgres(settings) { postgres in
                try await appendEach(
                    PostgresEventStore(client: postgres, logger: TestServers.logger), 1, type: "Alpha", stream: "order-a", correlation: "a")
            }
            for route in ["/events", "/streams/order-a/events"] {
                for (token, status, type) in tokens {
                    var headers: HTTPFields = [:]
                    if let token { headers[.authorization] = token }
                    let response = try await client.execute(uri: route, method: .get, headers: headers)
                    let body = String(buffer: response.body)
                    #expect(response.status.code == status, "\(route) with \(token?.prefix(20) ?? "no token"): \(body)")
                    if let type {
                        #expect(response.headers[.contentType] == "application/problem+json")
                        #expect(body.contains("\"type\":\"https://orderly.dev/problems/\(type)\""), "\(body)")
                        #expect(response.headers[.wwwAuthenticate] != nil || status == 403)
                    }
                    if let token, token.hasPrefix("Bearer ") {
                        #expect(!body.contains(token.dropFirst(7)), "a token is never echoed")
                    }
                }
            }
        }
    }

    @Test func eventsPageInLogOrderWithFilters() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [], projector: false)
        let analyst = try await TestServers.bearer(.analyst)
        let (alpha, beta) = try await TestServers.withPostgres(settings) { postgres in
            let store = PostgresEventStore(client: postgres, logger: TestServers.logger)
            let alpha = try await appendEach(store, 15, type: "Alpha", stream: "order-p", correlation: "p")
            let beta = try await appendEach(store, 10, type: "Beta", stream: "stock-p", correlation: "p")
            return (alpha, beta)
        }
        try await app.test(.live) { client in
            func page(_ query: String) async throws -> (Int, EventPage?, String) {
                let response = try await client.execute(uri: "/events?\(query)", method: .get, headers: [.authorization: analyst])
                let body = String(buffer: response.body)
                return (Int(response.status.code), try? JSONDecoder().decode(EventPage.self, from: Data(body.utf8)), body)
            }
            var seen: [Int64] = []
            var after: Int64 = 0
            // The newest events are listed once no transaction that began before them is still
            // open anywhere in the cluster (another test's database counts): wait for all of them.
            let listedBy = ContinuousClock.now + .seconds(20)
            repeat {
                seen = []
                after = 0
                for _ in 0..<10 {
                    let (status, result, body) = try await page("after=\(after)&limit=10")
                    #expect(status == 200, "\(body)")
                    guard let result, !result.events.isEmpty else { break }
                    seen += result.events.map(\.position)
                    after = result.next
                }
                if seen == (alpha + beta).sorted() { break }
                try await Task.sleep(for: .milliseconds(200))
            } while ContinuousClock.now < listedBy
            #expect(seen == (alpha + beta).sorted())
            let (_, empty, _) = try await page("after=\(after)")
            #expect(empty?.events.isEmpty == true)
            #expect(empty?.next == after)

            let (_, betas, _) = try await page("type=Beta&limit=100")
            #expect(betas?.events.map(\.position) == beta)
            let (_, both, _) = try await page("type=Beta,Alpha&limit=3&after=\(alpha[13])")
            #expect(both?.events.map(\.position) == [alpha[14], beta[0], beta[1]])
            let (_, streams, _) = try await page("streamPrefix=stock-&limit=100")
            #expect(streams?.events.allSatisfy { $0.streamId == "stock-p" } == true)
            #expect(streams?.events.count == 10)
            // Found by the fuzz run: the largest position crashed the server (an overflow).
            let (edgeStatus, edge, _) = try await page("after=9223372036854775807")
            #expect(edgeStatus == 200)
            #expect(edge?.events.isEmpty == true)
            let (_, future, _) = try await page("from=2999-01-01T00:00:00Z")
            #expect(future?.events.isEmpty == true)
            let (_, past, _) = try await page("to=2999-01-01&limit=1000")
            #expect(past?.events.count == 25)

            for bad in ["limit=0", "limit=1001", "after=-1", "after=x", "from=yesterday", "type=", "streamPrefix="] {
                let (status, _, body) = try await page(bad)
                #expect(status == 400, "\(bad): \(body)")
                #expect(body.contains("invalid-query"))
            }

            let stream = try await client.execute(uri: "/streams/order-p/events?fromVersion=14", method: .get, headers: [.authorization: analyst])
            struct StreamPage: Decodable {
                var streamId: String
                var events: [EventPage.Event]
                var nextVersion: Int64?
            }
            let streamPage = try JSONDecoder().decode(StreamPage.self, from: Data(stream.body.readableBytesView))
            #expect(streamPage.events.map(\.streamVersion) == [14, 15])
            let limited = try await client.execute(uri: "/streams/order-p/events?limit=5", method: .get, headers: [.authorization: analyst])
            #expect(try JSONDecoder().decode(StreamPage.self, from: Data(limited.body.readableBytesView)).nextVersion == 6)
            let unknown = try await client.execute(uri: "/streams/order-none/events", method: .get, headers: [.authorization: analyst])
            #expect(unknown.status == .notFound)
        }
    }

    /// The live tail sends what comes after Last-Event-ID, then new events as they commit, filtered.
    @Test func theLiveTailResumesFromLastEventIDAndFollowsNewEvents() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [], projector: false)
        let analyst = try await TestServers.bearer(.analyst)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            try await TestServers.withPostgres(settings) { postgres in
                let store = PostgresEventStore(client: postgres, logger: TestServers.logger)
                let first = try await appendEach(store, 5, type: "Alpha", stream: "order-live", correlation: "live")
                try await appendEach(store, 2, type: "Beta", stream: "stock-live", correlation: "live")

                let http = HTTPClient(eventLoopGroupProvider: .singleton)
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/events/live?type=Alpha")
                request.headers.add(name: "Authorization", value: analyst)
                request.headers.add(name: "Last-Event-ID", value: "\(first[1])")
                let response = try await http.execute(request, timeout: .seconds(30))
                #expect(response.status == .ok)
                #expect(response.headers.first(name: "Content-Type") == "text/event-stream")
                var text = ""
                var ids: [Int64] = []
                var appendedMore: [Int64] = []
                for try await chunk in response.body {
                    text += String(buffer: chunk)
                    ids = text.split(separator: "\n").compactMap { line in line.hasPrefix("id: ") ? Int64(line.dropFirst(4)) : nil }
                    if ids.count >= 3, appendedMore.isEmpty {
                        appendedMore = try await appendEach(store, 3, type: "Alpha", stream: "order-live", correlation: "live")
                        try await appendEach(store, 1, type: "Beta", stream: "stock-live", correlation: "live")
                    }
                    if ids.count >= 6 { break }
                }
                #expect(ids == Array(first[2...]) + appendedMore)
                #expect(text.contains("event: Alpha\ndata: {\"position\":\(first[2]),"))
                #expect(!text.contains("event: Beta"))
                try await http.shutdown()
            }
            let bad = try await client.execute(
                uri: "/events/live", method: .get, headers: [.authorization: analyst, HTTPField.Name("Last-Event-ID")!: "abc"])
            #expect(bad.status == .badRequest)
            let anonymous = try await client.execute(uri: "/events/live", method: .get)
            #expect(anonymous.status == .unauthorized)
        }
    }
}

@Suite struct TokenTests {
    @Test func keyFilesSignAndVerifyRS256AndES256() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func openssl(_ arguments: [String]) async throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = arguments
            process.currentDirectoryURL = directory
            process.standardError = FileHandle.nullDevice
            try process.runAlone()
            await process.exited()
            #expect(process.terminationStatus == 0, "openssl \(arguments)")
        }
        try await openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.pem"])
        try await openssl(["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub.pem"])
        try await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pem"])
        try await openssl(["pkey", "-in", "ec.pem", "-pubout", "-out", "ec.pub.pem"])
        for (name, algorithm) in [("rsa", "RS256"), ("ec", "ES256")] {
            let signer = try await TokenAuthority.keyFile(path: directory.appendingPathComponent("\(name).pem").path, issuer: "orderly")
            let verifier = try await TokenAuthority.keyFile(path: directory.appendingPathComponent("\(name).pub.pem").path, issuer: "orderly")
            #expect(signer.algorithm == algorithm)
            #expect(verifier.algorithm == algorithm)
            let token = try await signer.mint(subject: "ana", role: .analyst, lifetime: .seconds(60))
            let header = try #require(Data(base64Encoded: String(token.split(separator: ".")[0]).padding(toLength: 36, withPad: "=", startingAt: 0)))
            #expect(String(decoding: header, as: UTF8.self).contains(algorithm))
            #expect(try await verifier.verify(token) == Principal(subject: "ana", role: .analyst))
            var tampered = Array(token)
            let index = tampered.count - 5
            tampered[index] = tampered[index] == "A" ? "B" : "A"
            await #expect(throws: AuthError.self) { try await verifier.verify(String(tampered)) }
            await #expect(throws: AuthError.self) { try await verifier.mint(subject: "x", role: .admin, lifetime: .seconds(60)) }
        }
        await #expect(throws: AuthError.self) { try await TokenAuthority.hmac(secret: "short", issuer: "orderly") }
        await #expect(throws: AuthError.self) { try await TokenAuthority.keyFile(path: "/nonexistent.pem", issuer: "orderly") }
    }

    @Test func theTokenCommandMintsAVerifiableToken() async throws {
        let settings = try await TestServers.isolatedSettings()
        let child = try ChildProcess.orderly(["token", "--role", "staff", "--subject", "s-9", "--ttl", "120"], settings: settings)
        await child.process.exited()
        #expect(child.process.terminationStatus == 0, "\(child.output)")
        let token = try #require(child.output.split(separator: "\n").last.map(String.init))
        let principal = try await TokenAuthority.hmac(secret: TestServers.jwtSecret, issuer: "orderly").verify(token)
        #expect(principal == Principal(subject: "s-9", role: .staff))
        let bad = try ChildProcess.orderly(["token", "--role", "root", "--subject", "x"], settings: settings)
        await bad.process.exited()
        #expect(bad.process.terminationStatus != 0)
    }
}
