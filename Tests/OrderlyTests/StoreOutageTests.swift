import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrderlyAPI
import OrderlyApp
import PostgresNIO
import Synchronization
import Testing

/// PostgreSQL goes away under a steady load of orders (every connection cut, new ones refused, as a
/// crashed server looks to its clients) and comes back 10 s later. Meanwhile every command is
/// answered promptly with a 202 or a 503 `store-unavailable` (never a 500, never a hang), /ready
/// names PostgreSQL, no refused command is appended when the server is back, and every accepted
/// order is carried through its saga afterwards with no process restarted.
@Suite struct StoreOutageTests {
    struct Sent: Sendable {
        var customer: String
        var status: UInt
        var problemType: String?
        var orderId: String?
        var took: Duration
        var error: String?
    }

    final class Collected: Sendable {
        let sent = Mutex<[Sent]>([])
    }

    @Test func commandsAreRefusedPromptlyWhilePostgresIsDownAndTheSystemResumesByItself() async throws {
        let direct = try await TestServers.isolatedSettings()
        let proxy = try FaultyProxy(forwardingTo: try TestServers.databasePort(direct))
        defer { proxy.stop() }
        let dev = try await DevUnderLoad.start(try TestServers.settings(direct, databaseThrough: proxy), stocking: "SKU-OUT")
        let (http, base, admin) = (dev.http, dev.base, dev.admin)

        // Ten orders a second, each from a customer of its own, on a schedule (open loop).
        let results = Collected()
        let started = ContinuousClock.now
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    let due = started + .milliseconds(100 * index)
                    try? await Task.sleep(until: due)
                    group.addTask {
                        let sent = await Self.place(customer: "c-out-\(index)", base: base, token: admin, http: http, due: due)
                        results.sent.withLock { $0.append(sent) }
                    }
                }
            }
        }
        try await Task.sleep(until: started + .seconds(3))
        proxy.down()
        let wentDown = Date()
        try await Task.sleep(for: .seconds(5))
        let asked = ContinuousClock.now
        let ready = try await http.execute(HTTPClientRequest(url: "\(base)/ready"), timeout: .seconds(30))
        let readyBody = String(buffer: try await ready.body.collect(upTo: 1 << 16))
        let readyTook = ContinuousClock.now - asked
        #expect(ready.status == .serviceUnavailable && readyBody.contains("postgres"), "/ready during the outage: \(ready.status) \(readyBody)")
        #expect(readyTook < .seconds(5), "/ready took \(readyTook):\n\(dev.child.output.suffix(3000))")
        try await Task.sleep(until: started + .seconds(13))
        proxy.up()
        let cameBack = Date()
        await load.value

        let sent = results.sent.withLock { $0 }
        #expect(sent.count == 200)
        for request in sent {
            #expect(request.error == nil, "\(request.customer): \(request.error ?? "")")
            // The server fails an append unsent after 4 s without a connection and answers every
            // command within 10 s; what is measured here starts when the request was due, on a
            // machine the whole suite shares (15-16 s seen in loaded runs). The fault was a hang for
            // as long as the server was down, then a late append (checked below).
            #expect(request.took < .seconds(25), "\(request.customer) was answered after \(request.took)")
            #expect(
                request.status == 202 || (request.status == 503 && request.problemType?.hasSuffix("/store-unavailable") == true),
                "\(request.customer): \(request.status) \(request.problemType ?? "")")
        }
        let refused = sent.filter { $0.status == 503 }
        let accepted = sent.filter { $0.status == 202 }
        // About 60 are due in the first 6 s of the outage (those due later get a connection within
        // 4 s, when the server is back); 26-42 were seen on a loaded machine.
        #expect(refused.count >= 20, "only \(refused.count) commands were refused during a 10 s outage at 10/s")
        #expect(accepted.count >= 60, "only \(accepted.count) commands were accepted")

        // The log: each accepted order once; no refused command appended after the server came back.
        let placed = try await TestServers.withPostgres(direct) { client in
            var rows: [(String, Date)] = []
            for try await row in try await client.query(
                "SELECT data->>'customerId', recorded_at FROM events WHERE event_type = 'OrderPlaced'", logger: TestServers.logger
            ).decode((String, Date).self) {
                rows.append(row)
            }
            return rows
        }
        for request in accepted {
            #expect(placed.filter { $0.0 == request.customer }.count == 1, "\(request.customer) accepted but not stored exactly once")
        }
        for request in refused {
            for (_, at) in placed where placed.contains(where: { $0.0 == request.customer }) {
                #expect(at < cameBack, "\(request.customer) was refused, then appended at \(at), after the server came back at \(cameBack)")
            }
        }
        #expect(wentDown < cameBack)

        // Everything resumes by itself: every accepted order reaches its end (COMPLETED with tok_ok),
        // all within one deadline (an order still open when it passes is not waited for again).
        let deadline = ContinuousClock.now + .seconds(90)
        for request in accepted {
            let orderId = try #require(request.orderId)
            let status = try await TestServers.eventually(timeout: max(deadline - ContinuousClock.now, .zero), interval: .milliseconds(250)) {
                () -> String? in
                var get = HTTPClientRequest(url: "\(base)/orders/\(orderId)")
                get.headers.add(name: "Authorization", value: admin)
                let response = try await http.execute(get, timeout: .seconds(10))
                guard response.status == .ok else { return nil }
                let body = try await response.body.collect(upTo: 1 << 20)
                let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
                let status = json?["status"] as? String
                return status == "COMPLETED" || status == "CANCELLED" ? "\(status ?? "") \(json?["cancellationReason"] ?? "")" : nil
            }
            #expect(status == "COMPLETED ", "order \(orderId) of \(request.customer) ended \(status ?? "never")")
        }
        if !dev.child.process.isRunning || ContinuousClock.now > deadline {
            Issue.record("orderly dev after the outage (running: \(dev.child.process.isRunning)):\n\(dev.child.output.suffix(6000))")
        }
        try await dev.stop()
    }

    static func place(
        customer: String, sku: String = "SKU-OUT", base: String, token: String, http: HTTPClient, due: ContinuousClock.Instant
    ) async -> Sent {
        var request = HTTPClientRequest(url: "\(base)/orders")
        request.method = .POST
        request.headers.add(name: "Authorization", value: token)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(
            ByteBuffer(
                string:
                    #"{"customerId":"\#(customer)","currency":"EUR","lines":[{"sku":"\#(sku)","quantity":1,"unitPrice":500}],"paymentToken":"tok_ok"}"#
            ))
        do {
            let response = try await http.execute(request, timeout: .seconds(20))
            let body = try await response.body.collect(upTo: 1 << 20)
            let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
            return Sent(
                customer: customer, status: response.status.code, problemType: json?["type"] as? String, orderId: json?["orderId"] as? String,
                took: ContinuousClock.now - due)
        } catch {
            return Sent(customer: customer, status: 0, took: ContinuousClock.now - due, error: "\(error)")
        }
    }
}
