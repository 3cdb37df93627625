import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrderlyAPI
import OrderlyProcesses
import PostgresNIO
import Synchronization
import Testing

/// PostgreSQL goes away under a steady load of orders (every connection cut, new ones refused, as a
/// crashed server looks to its clients) and comes back 10 s later. Meanwhile every command is
/// answered promptly with a 202 or a 503 `store-unavailable` (never a 500, never a hang), /ready
/// names PostgreSQL, no refused command is appended when the server is back, and every accepted
/// order is carried through its saga afterwards with no process restarted (but for a known crash of
/// postgres-nio, recorded as such).
@Suite struct StoreOutageTests {
    struct Sent: Sendable {
        var customer: String
        var status: UInt
        var problemType: String?
        var orderId: String?
        var took: Duration
        var error: String?
        /// The first try ended without an answer (the connection closed) and was sent again.
        var retried: String?
    }

    final class Collected: Sendable {
        let sent = Mutex<[Sent]>([])
    }

    @Test func commandsAreRefusedPromptlyWhilePostgresIsDownAndTheSystemResumesByItself() async throws {
        let direct = try await TestServers.isolatedSettings()
        let proxy = try FaultyProxy(forwardingTo: try TestServers.databasePort(direct))
        defer { proxy.stop() }
        var dev = try await DevUnderLoad.start(try TestServers.settings(direct, databaseThrough: proxy), stocking: "SKU-OUT")
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
        if let ready = try? await http.execute(HTTPClientRequest(url: "\(base)/ready"), timeout: .seconds(30)) {
            let readyBody = String(buffer: try await ready.body.collect(upTo: 1 << 16))
            let readyTook = ContinuousClock.now - asked
            #expect(ready.status == .serviceUnavailable && readyBody.contains("postgres"), "/ready during the outage: \(ready.status) \(readyBody)")
            #expect(readyTook < .seconds(5), "/ready took \(readyTook):\n\(dev.child.output.suffix(3000))")
        } else {
            // Only a process that is gone may leave it unanswered (see `restartAfterKnownCrash`, below).
            #expect(!dev.child.process.isRunning, "/ready did not answer during the outage")
        }
        try await Task.sleep(until: started + .seconds(13))
        proxy.up()
        let cameBack = Date()
        await load.value

        var sent = results.sent.withLock { $0 }
        #expect(sent.count == 200)
        if !dev.child.process.isRunning {
            // Requests sent while it was down have no answer and an unknown outcome.
            dev = try await Self.restartAfterKnownCrash(dev, settings: dev.settings)
            sent.removeAll { $0.error != nil }
        }
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
        let retried = sent.filter { $0.retried != nil }
        #expect(retried.count <= 3, "\(retried.count) commands had their connection closed with no answer: \(retried.map(\.customer))")
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
            for (customer, at) in placed where customer == request.customer {
                #expect(at < cameBack, "\(request.customer) was refused, then appended at \(at), after the server came back at \(cameBack)")
            }
        }
        #expect(wentDown < cameBack)

        // Everything resumes by itself: every accepted order reaches its end (COMPLETED with tok_ok),
        // all within one deadline.
        var ended: [String: String] = [:]
        let deadline = ContinuousClock.now + .seconds(90)
        while ended.count < accepted.count, ContinuousClock.now < deadline {
            if !dev.child.process.isRunning { dev = try await Self.restartAfterKnownCrash(dev, settings: dev.settings) }
            for request in accepted {
                guard let orderId = request.orderId, ended[orderId] == nil else { continue }
                var get = HTTPClientRequest(url: "\(dev.base)/orders/\(orderId)")
                get.headers.add(name: "Authorization", value: dev.admin)
                guard let response = try? await dev.http.execute(get, timeout: .seconds(10)), response.status == .ok else { continue }
                let body = try await response.body.collect(upTo: 1 << 20)
                let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
                let status = json?["status"] as? String
                if status == "COMPLETED" || status == "CANCELLED" { ended[orderId] = "\(status ?? "") \(json?["cancellationReason"] ?? "")" }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        for request in accepted {
            let orderId = try #require(request.orderId)
            #expect(ended[orderId] == "COMPLETED ", "order \(orderId) of \(request.customer) ended \(ended[orderId] ?? "never")")
        }
        if ended.count < accepted.count {
            Issue.record("orderly dev after the outage (running: \(dev.child.process.isRunning)):\n\(dev.child.output.suffix(6000))")
        }
        try await dev.stop()
    }

    /// postgres-nio 1.33.2 traps when a connection closes while a result is being streamed to a
    /// reader that has not yet asked for more (`RowStreamStateMachine.channelReadComplete`: "How can
    /// we receive a body part, after a channelReadComplete, but no read has been forwarded yet"), as
    /// the proxy's cut can make it do. That crash is a known issue of the library, recorded as such;
    /// the process is started again, as a supervisor would, and the test goes on. Any other exit fails.
    static func restartAfterKnownCrash(_ dev: DevUnderLoad, settings: Settings) async throws -> DevUnderLoad {
        let output = dev.child.output
        if output.contains("RowStreamStateMachine.swift") && output.contains("How can we receive a body part") {
            withKnownIssue("postgres-nio traps on a connection closed mid-row-stream", isIntermittent: true) {
                Issue.record("orderly dev crashed in postgres-nio's RowStreamStateMachine; started again")
            }
        } else {
            Issue.record("orderly dev exited:\n\(output.suffix(6000))")
        }
        try await dev.stop()
        return try await DevUnderLoad.start(settings, stocking: "SKU-OUT")
    }

    static func place(
        customer: String, sku: String = "SKU-OUT", base: String, token: String, http: HTTPClient, due: ContinuousClock.Instant
    ) async -> Sent {
        var request = HTTPClientRequest(url: "\(base)/orders")
        request.method = .POST
        request.headers.add(name: "Authorization", value: token)
        request.headers.add(name: "Content-Type", value: "application/json")
        // As README tells clients: a command whose outcome is unknown is sent again with its key.
        request.headers.add(name: "Idempotency-Key", value: "outage-\(customer)")
        request.body = .bytes(
            ByteBuffer(
                string:
                    #"{"customerId":"\#(customer)","currency":"EUR","lines":[{"sku":"\#(sku)","quantity":1,"unitPrice":500}],"paymentToken":"tok_ok"}"#
            ))
        var retried: String?
        while true {
            do {
                let response = try await http.execute(request, timeout: .seconds(20))
                let body = try await response.body.collect(upTo: 1 << 20)
                let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
                return Sent(
                    customer: customer, status: response.status.code, problemType: json?["type"] as? String,
                    orderId: json?["orderId"] as? String, took: ContinuousClock.now - due, retried: retried)
            } catch let error as HTTPClientError where error == .remoteConnectionClosed && retried == nil {
                // Seen once in a few loaded runs, cause not yet found: the connection closed with no
                // answer. Counted by the test (a handful at most), and sent again once.
                retried = "\(error)"
            } catch {
                return Sent(customer: customer, status: 0, took: ContinuousClock.now - due, error: "\(error)", retried: retried)
            }
        }
    }
}
