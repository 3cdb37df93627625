import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrderlyAPI
import OrderlyEventStore
import OrderlyProcesses
import OrderlyReadModels
import PostgresNIO
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The document server killed (kill -9; it keeps its data on disk) under a steady load of orders,
/// then started again: meanwhile commands are accepted, queries answer 503 `read-model-unavailable`
/// promptly, /ready names MongoDB; afterwards every order ends, each read model equals a fresh fold
/// of the log, and nothing was applied twice.
@Suite struct ReadModelOutageTests {
    @Test func theDocumentServerKilledUnderLoadCatchesUpByItself() async throws {
        var settings = try await TestServers.isolatedSettings()
        let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent(TestServers.uniqueName("nx"))
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dataDirectory) }
        let mongoPort = TestPorts.next()
        func startMongo() throws -> ChildProcess {
            try ChildProcess(
                executable: TestServers.repositoryRoot + "/.orderly/venv/bin/nx-27017",
                // A pid file of its own: without one nx-27017 uses /tmp/nx_27017.pid and refuses to start
                // while any other instance that wrote it is alive (a leftover of an earlier run was).
                arguments: ["--data-dir", dataDirectory.path, "-p", "\(mongoPort)", "--pid-file", dataDirectory.path + "/nx.pid"], environment: [:])
        }
        var mongo = try startMongo()
        settings.mongoURI = "mongodb://127.0.0.1:\(mongoPort)"
        let dev = try await DevUnderLoad.start(settings, stocking: "SKU-NX")
        let (http, base, admin) = (dev.http, dev.base, dev.admin)

        // 20 orders a second for 25 s; the document server is down from 5 s to 20 s.
        let started = ContinuousClock.now
        let load = Task { () -> [StoreOutageTests.Sent] in
            await withTaskGroup(of: StoreOutageTests.Sent.self) { group in
                for index in 0..<500 {
                    let due = started + .milliseconds(50 * index)
                    try? await Task.sleep(until: due)
                    group.addTask {
                        await StoreOutageTests.place(
                            customer: "c-nx-\(index % 40)", sku: "SKU-NX", base: base, token: admin, http: http, due: due)
                    }
                }
                var sent: [StoreOutageTests.Sent] = []
                for await result in group { sent.append(result) }
                return sent
            }
        }
        try await Task.sleep(until: started + .seconds(5))
        mongo.kill(SIGKILL)
        await mongo.process.exited()
        try await Task.sleep(for: .seconds(3))
        let asked = ContinuousClock.now
        var query = HTTPClientRequest(url: "\(base)/customers/c-nx-1/summary")
        query.headers.add(name: "Authorization", value: admin)
        let answer = try await http.execute(query, timeout: .seconds(30))
        let answerBody = String(buffer: try await answer.body.collect(upTo: 1 << 16))
        #expect(
            answer.status == .serviceUnavailable && answerBody.contains("read-model-unavailable"), "a query meanwhile: \(answer.status) \(answerBody)"
        )
        // 3 s of server selection on the server; the rest is this machine, which the whole suite shares.
        #expect(ContinuousClock.now - asked < .seconds(8), "the query took \(ContinuousClock.now - asked)")
        let ready = try await http.execute(HTTPClientRequest(url: "\(base)/ready"), timeout: .seconds(30))
        let readyBody = String(buffer: try await ready.body.collect(upTo: 1 << 16))
        #expect(ready.status == .serviceUnavailable && readyBody.contains("mongodb"), "/ready meanwhile: \(ready.status) \(readyBody)")
        try await Task.sleep(until: started + .seconds(20))
        mongo = try startMongo()
        let sent = await load.value

        #expect(sent.count == 500)
        #expect(
            sent.allSatisfy { $0.status == 202 },
            "commands refused: \(sent.filter { $0.status != 202 }.prefix(3).map { "\($0.status) \($0.error ?? "")" })")
        let orders = sent.compactMap(\.orderId)
        // Everything catches up by itself: every order ends (COMPLETED) in the read model.
        let unfinished = try await TestServers.eventually(timeout: .seconds(180), interval: .seconds(1)) { () -> Int? in
            var open = 0
            for orderId in orders {
                var get = HTTPClientRequest(url: "\(base)/orders/\(orderId)")
                get.headers.add(name: "Authorization", value: admin)
                let response = try await http.execute(get, timeout: .seconds(10))
                let body = try await response.body.collect(upTo: 1 << 20)
                let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
                if json?["status"] as? String != "COMPLETED" { open += 1 }
            }
            return open == 0 ? 0 : nil
        }
        #expect(unfinished == 0, "orders not completed in the read model after the document server came back")

        // Each read model equals a fresh fold of the log; the saga's invariants hold over the log.
        let client = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        try await TestServers.withPostgres(settings) { postgres in
            let store = PostgresEventStore(client: postgres, logger: TestServers.logger)
            for projection in [OrdersProjection.self, CustomerOrdersProjection.self, SalesDailyProjection.self, InventoryProjection.self]
                as [any ReadModelProjection.Type]
            {
                let differences = try await ProjectionTests.verify(projection, store: store, mongo: client)
                #expect(differences.isEmpty, "\(projection.name): \(differences.prefix(3))")
            }
        }
        #expect(try await SagaLog.load(settings).violations() == [])
        #expect(dev.child.process.isRunning, "orderly dev exited:\n\(dev.child.output.suffix(3000))")
        try await dev.stop()
        mongo.stop()
    }
}
