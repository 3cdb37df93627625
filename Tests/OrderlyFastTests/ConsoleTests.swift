import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import OrderlyAPI
import Testing

/// The console's files as the api serves them, and the order history route its order page reads.
/// (Its flows run in a real browser in scripts/console-test.)
@Suite struct ConsoleTests {
    @Test func theConsoleIsServedWithAStrictPolicyAndRevalidated() async throws {
        try await RouterTests.withAPI { client, _ in
            let page = try await client.execute(uri: "/console", method: .get)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            let policy = try #require(page.headers[.contentSecurityPolicy])
            #expect(policy.contains("script-src 'self'") && policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"))
            #expect(!policy.contains("unsafe"), "no inline script or eval may be allowed: \(policy)")
            #expect(page.headers[.cacheControl] == "no-cache")
            #expect(page.headers[.xContentTypeOptions] == "nosniff")
            let etag = try #require(page.headers[.eTag])
            let again = try await client.execute(uri: "/console", method: .get, headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified)
            #expect(again.body.readableBytes == 0)
            let missing = try await client.execute(uri: "/console/nothing-here.js", method: .get)
            #expect(missing.status == .notFound)
        }
    }

    /// Every module the page loads, followed from index.html through the imports, is served with
    /// its type, and none builds HTML from strings: event data (SKUs, ids, reasons, token subjects)
    /// must reach the page as text, whatever it contains.
    @Test func everyModuleIsServedAndNoneWritesHTMLFromStrings() async throws {
        try await RouterTests.withAPI { client, _ in
            let index = String(buffer: try await client.execute(uri: "/console", method: .get).body)
            var pending = Self.references(in: index, pattern: #"(?:src|href)="(/console/[^"]+)""#)
            #expect(pending.contains("/console/app.js") && pending.contains("/console/console.css"))
            var seen = Set<String>()
            while let path = pending.popLast() {
                guard seen.insert(path).inserted else { continue }
                let file = try await client.execute(uri: path, method: .get)
                #expect(file.status == .ok, "\(path)")
                let text = String(buffer: file.body)
                if path.hasSuffix(".js") {
                    #expect(file.headers[.contentType] == "text/javascript; charset=utf-8", "\(path)")
                    pending += Self.references(in: text, pattern: #"from '(/console/[^']+)'"#)
                    for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
                        #expect(!text.contains(sink), "\(path) uses \(sink)")
                    }
                }
            }
            #expect(seen.count >= 8, "\(seen.sorted())")
        }
    }

    @Test func anOrdersHistoryFoldsItsEventsAsOfAMoment() async throws {
        try await RouterTests.withAPI { client, tokens in
            let customer = try await tokens.bearer(.customer, "c-h")
            let placed = try await RouterTests.call(client, .post, "/orders", bearer: customer, body: RouterTests.order(customer: "c-h"))
            let id = try #require(placed.json["orderId"] as? String)
            let staff = try await tokens.bearer(.staff, "s-1")
            let now = try await RouterTests.call(client, .get, "/orders/\(id)/history", bearer: staff)
            #expect(now.status == .ok)
            let events = try #require(now.json["events"] as? [[String: Any]])
            #expect(events.map { $0["type"] as? String } == ["OrderPlaced"])
            #expect(events.first?["stream"] as? String == "order-\(id)")
            #expect(events.first?["actor"] as? String == "c-h")
            #expect(events.first?["applied"] as? Bool == true)
            #expect(events.first?["data"] == nil, "the history carries no event data (the payment token is in it)")
            #expect((now.json["state"] as? [String: Any])?["status"] as? String == "PLACED")
            // Before it was placed: no state, nothing applied.
            let before = try await RouterTests.call(client, .get, "/orders/\(id)/history?asOf=2020-01-01T00:00:00Z", bearer: staff)
            #expect(before.status == .ok)
            #expect(before.json["state"] == nil || before.json["state"] is NSNull)
            #expect((before.json["events"] as? [[String: Any]])?.first?["applied"] as? Bool == false)
            RouterTests.expectProblem(
                try await RouterTests.call(client, .get, "/orders/\(id)/history?asOf=yesterday", bearer: staff), .badRequest, "invalid-query")
            RouterTests.expectProblem(try await RouterTests.call(client, .get, "/orders/no-such/history", bearer: staff), .notFound, "not-found")
            RouterTests.expectProblem(try await RouterTests.call(client, .get, "/orders/\(id)/history", bearer: customer), .forbidden, "forbidden")
        }
    }

    static func references(in text: String, pattern: String) -> [String] {
        guard let expression = try? NSRegularExpression(pattern: pattern) else { return [] }
        return expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { match in
            Range(match.range(at: 1), in: text).map { String(text[$0]) }
        }
    }
}
