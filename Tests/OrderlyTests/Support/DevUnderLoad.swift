import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrderlyAPI
import OrderlyProcesses
import Testing

/// `orderly dev` as a child process with an HTTP client for it, for the fault tests that load it
/// with orders: its api is up and one SKU stocked when `start` returns.
struct DevUnderLoad {
    let child: ChildProcess
    /// What it was started with (to start it again).
    let settings: Settings
    let http: HTTPClient
    let base: String
    let admin: String

    /// `settings` for the child; `sku` gets 100,000 units at 500. The saga deadline is long: these
    /// tests are about the faults, not about sagas that expire.
    static func start(_ settings: Settings, stocking sku: String) async throws -> DevUnderLoad {
        let port = TestPorts.next()
        let child = try ChildProcess.orderly(
            ["dev"], settings: settings,
            extra: ["ORDERLY_HTTP_PORT": "\(port)", "ORDERLY_HTTP_HOST": "127.0.0.1", "ORDERLY_SAGA_DEADLINE_SECONDS": "300"])
        // Enough connections for every request in flight (open loop): the client's default of 8 would
        // queue requests in the test itself.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 200)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let dev = DevUnderLoad(
            child: child, settings: settings, http: http, base: "http://127.0.0.1:\(port)", admin: try await TestServers.bearer(.admin))
        do {
            try await dev.stock(sku)
        } catch {
            // A client dropped unshut traps (AsyncHTTPClient), which would end the whole test run.
            try? await dev.stop()
            throw error
        }
        return dev
    }

    private func stock(_ sku: String) async throws {
        let (dev, child, http) = (self, self.child, self.http)
        #expect(
            try await TestServers.answers("\(dev.base)/ready", http: http, timeout: .seconds(90)), "dev never ready:\n\(child.output.suffix(3000))")
        var restock = HTTPClientRequest(url: "\(dev.base)/inventory/\(sku)/restock")
        restock.method = .POST
        restock.headers.add(name: "Authorization", value: dev.admin)
        restock.headers.add(name: "Content-Type", value: "application/json")
        restock.body = .bytes(ByteBuffer(string: #"{"quantity": 100000, "unitPrice": 500}"#))
        #expect(try await http.execute(restock, timeout: .seconds(10)).status == .accepted)
    }

    func stop() async throws {
        self.child.stop()
        try await self.http.shutdown()
    }
}

extension TestServers {
    /// `settings` whose database URL goes through `proxy` (which forwards to the database's port).
    static func settings(_ settings: Settings, databaseThrough proxy: FaultyProxy) throws -> Settings {
        var proxied = settings
        guard var url = URLComponents(string: settings.databaseURL) else { throw SettingsError(description: "bad database URL") }
        url.port = proxy.port
        proxied.databaseURL = url.string ?? settings.databaseURL
        return proxied
    }

    /// The port of the database in `settings`.
    static func databasePort(_ settings: Settings) throws -> Int {
        guard let port = URLComponents(string: settings.databaseURL)?.port else { throw SettingsError(description: "no port in the database URL") }
        return port
    }
}
