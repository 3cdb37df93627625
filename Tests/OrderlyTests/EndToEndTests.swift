import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import OrderlyDomain
import OrderlyProcesses
import OrderlyReadModels
import PostgresNIO
import Testing

/// Through every real part: HTTP → PostgreSQL event log → relay → Kafka → projector → MongoDB → HTTP.
@Suite struct EndToEndTests {
    @Test func anOrderPlacedOverHTTPIsReadBackOverHTTP() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [])
        try await app.test(.live) { client in
            let ready = try await client.send(uri: "/ready", method: .get)
            #expect(ready.status == .ok, "\(String(buffer: ready.body))")

            let body = #"{"customerId":"c-1","currency":"EUR","lines":[{"sku":"SKU-1","quantity":2,"unitPrice":1299}],"paymentToken":"tok_ok"}"#
            let placed = try await client.send(
                uri: "/orders", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: body))
            #expect(placed.status == .accepted)
            struct Placed: Decodable {
                var orderId: String
                var position: Int64
            }
            let result = try JSONDecoder().decode(Placed.self, from: Data(placed.body.readableBytesView))
            #expect(result.position >= 1)

            let order = try await TestServers.eventually { () -> OrderView? in
                let response = try await client.send(uri: "/orders/\(result.orderId)", method: .get)
                guard response.status == .ok else { return nil }
                return try JSONDecoder().decode(OrderView.self, from: Data(response.body.readableBytesView))
            }
            let view = try #require(order, "the order never reached the read model")
            #expect(view.orderId == result.orderId)
            #expect(view.customerId == "c-1")
            #expect(view.status == "PLACED")
            #expect(view.total == 2598)
            #expect(view.currency == "EUR")
            #expect(view.lines.map(\.sku) == ["SKU-1"])
            #expect(view.timeline.map(\.type) == ["OrderPlaced"])
            #expect(view.position == result.position)
        }
    }

    @Test func clientMistakesGetProblemJSONNeverA500() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [])
        try await app.test(.live) { client in
            let cases: [(String, Int, String)] = [
                ("{not json", 400, "invalid-body"),
                (
                    #"{"customerId":"c-1","currency":"EUR","lines":[{"sku":"S","quantity":"2","unitPrice":1}],"paymentToken":"tok_ok"}"#, 400,
                    "invalid-body"
                ),
                (
                    #"{"customerId":"c-1","currency":"EUR","lines":[{"sku":"S","quantity":-2,"unitPrice":1}],"paymentToken":"tok_ok"}"#, 422,
                    "validation-failed"
                ),
                (#"{"currency":"EUR","lines":[],"paymentToken":"tok_ok"}"#, 400, "invalid-body"),
                (String(repeating: " ", count: 70_000) + "{}", 413, "body-too-large"),
            ]
            for (body, status, type) in cases {
                let response = try await client.send(uri: "/orders", method: .post, body: ByteBuffer(string: body))
                #expect(Int(response.status.code) == status, "\(body.prefix(60))")
                #expect(response.headers[.contentType] == "application/problem+json")
                let problem = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                #expect((problem?["type"] as? String)?.hasSuffix("/\(type)") == true, "\(body.prefix(60))")
            }
            let missing = try await client.send(uri: "/orders/does-not-exist", method: .get)
            #expect(missing.status == .notFound)
            #expect(missing.headers[.contentType] == "application/problem+json")
            let health = try await client.send(uri: "/health", method: .get)
            #expect(health.status == .ok)
        }
    }

    @Test func anIdempotencyKeyMakesARetriedPostSafe() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.dev(settings, logger: TestServers.logger, sagaServices: [])
        try await app.test(.live) { client in
            let body = #"{"customerId":"c-9","currency":"EUR","lines":[{"sku":"SKU-1","quantity":1,"unitPrice":500}],"paymentToken":"tok_ok"}"#
            let reordered = #"{"paymentToken":"tok_ok","lines":[{"unitPrice":500,"quantity":1,"sku":"SKU-1"}],"currency":"EUR","customerId":"c-9"}"#
            let key = try #require(HTTPField.Name("Idempotency-Key"))
            let first = try await client.send(uri: "/orders", method: .post, headers: [key: "retry-1"], body: ByteBuffer(string: body))
            let second = try await client.send(uri: "/orders", method: .post, headers: [key: "retry-1"], body: ByteBuffer(string: reordered))
            #expect(first.status == .accepted)
            #expect(second.status == .accepted)
            #expect(String(buffer: second.body) == String(buffer: first.body))

            let changed = body.replacingOccurrences(of: #""quantity":1"#, with: #""quantity":2"#)
            let mismatch = try await client.send(uri: "/orders", method: .post, headers: [key: "retry-1"], body: ByteBuffer(string: changed))
            #expect(mismatch.status == .unprocessableContent)
            #expect(String(buffer: mismatch.body).contains("idempotency-key-reused"))

            let badKey = try await client.send(uri: "/orders", method: .post, headers: [key: "has space"], body: ByteBuffer(string: body))
            #expect(badKey.status == .badRequest)
            #expect(String(buffer: badKey.body).contains("invalid-idempotency-key"))

            let other = try await client.send(uri: "/orders", method: .post, headers: [key: "retry-2"], body: ByteBuffer(string: body))
            #expect(other.status == .accepted)
            #expect(String(buffer: other.body) != String(buffer: first.body))
        }
        let count = try await TestServers.withPostgres(settings) { client in
            var total = 0
            for try await count in try await client.query("SELECT count(*) FROM events", logger: TestServers.logger).decode(Int.self) {
                total = count
            }
            return total
        }
        #expect(count == 2)
    }
}
