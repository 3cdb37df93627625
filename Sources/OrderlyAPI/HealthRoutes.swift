import HTTPTypes
import Hummingbird
import Metrics
import NIOCore

/// `/health` (the process is up), `/ready` (every part it depends on answers) and `/metrics` (Prometheus).
struct HealthRoutes {
    let checks: [(String, @Sendable () async throws -> Void)]
    let metricsText: @Sendable () -> [UInt8]

    struct Status: Encodable, Sendable {
        var status: String
        var checks: [String: String]?
    }

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/health") { _, _ in JSONBody(value: Status(status: "ok")) }
        router.get("/ready") { _, _ in await self.ready() }
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: self.metricsText())))
        }
    }

    func ready() async -> JSONBody<Status> {
        var results: [String: String] = [:]
        await withTaskGroup(of: (String, String).self) { group in
            for (name, check) in self.checks {
                group.addTask {
                    let answered = await answers(within: .seconds(2), check)
                    return (name, answered ? "ok" : "unavailable")
                }
            }
            for await (name, result) in group { results[name] = result }
        }
        let isReady = results.values.allSatisfy { $0 == "ok" }
        // What the last readiness probe found, for the "api not ready" alert: 1 ready, 0 not, per
        // part it depends on (the probes of the load balancer or the orchestrator keep it fresh).
        for (name, result) in results {
            Gauge(label: "orderly_ready", dimensions: [("check", name)]).record(result == "ok" ? 1 : 0)
        }
        return JSONBody(status: isReady ? .ok : .serviceUnavailable, value: Status(status: isReady ? "ready" : "not ready", checks: results))
    }
}
