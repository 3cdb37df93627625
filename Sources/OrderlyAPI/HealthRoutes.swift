import HTTPTypes
import Hummingbird
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
        return JSONBody(status: isReady ? .ok : .serviceUnavailable, value: Status(status: isReady ? "ready" : "not ready", checks: results))
    }
}
