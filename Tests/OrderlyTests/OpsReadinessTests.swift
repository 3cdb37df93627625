import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrderlyProcesses
import Testing

/// The ops servers of the relay, projector and saga services answer `/ready` as the api does: ready
/// only while PostgreSQL and the broker (and for the projector and the notification service, the
/// document server) answer, so an orchestrator stops sending them work when one does not.
@Suite struct OpsReadinessTests {
    static func ready(_ port: Int, http: HTTPClient) async throws -> (status: UInt, body: String) {
        let response = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/ready"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 16)
        return (response.status.code, String(buffer: body))
    }

    @Test func aServiceIsReadyOnlyWhileItsDatabaseAnswers() async throws {
        var settings = try await TestServers.isolatedSettings()
        let postgres = try FaultyProxy(forwardingTo: try TestServers.databasePort(settings))
        defer { postgres.stop() }
        settings = try TestServers.settings(settings, databaseThrough: postgres)
        let port = TestPorts.next()
        let child = try ChildProcess.orderly(
            ["service", "notification"], settings: settings, extra: ["ORDERLY_OPS_PORT": "\(port)", "ORDERLY_HTTP_HOST": "127.0.0.1"])
        defer { child.stop() }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }

        let ready = try await TestServers.eventually(timeout: .seconds(60), interval: .milliseconds(500)) { () -> String? in
            guard let answer = try? await Self.ready(port, http: http), answer.status == 200 else { return nil }
            return answer.body
        }
        let body = try #require(ready, "the service never became ready:\n\(child.output.suffix(2000))")
        for check in ["postgres", "kafka", "mongodb"] { #expect(body.contains(#""\#(check)":"ok""#), "\(body)") }

        postgres.down()
        let notReady = try await TestServers.eventually(timeout: .seconds(30), interval: .milliseconds(500)) { () -> String? in
            guard let answer = try? await Self.ready(port, http: http), answer.status == 503 else { return nil }
            return answer.body
        }
        #expect(notReady?.contains(#""postgres":"unavailable""#) == true, "\(notReady ?? "never 503")")

        postgres.up()
        let back = try await TestServers.eventually(timeout: .seconds(60), interval: .milliseconds(500)) { () -> Bool? in
            (try? await Self.ready(port, http: http))?.status == 200 ? true : nil
        }
        #expect(back == true, "the service did not become ready again once the database answered")
    }
}
