import AsyncHTTPClient
import Foundation
import OrderlyMessaging
import OrderlyProcesses
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Every Orderly process exits within 10 s of SIGTERM whatever its dependencies do: here all of them
/// hang at once (PostgreSQL and the document server behind frozen proxies, the broker frozen with
/// SIGSTOP) after each process was up and working, as when a terminal's Ctrl-C or Kubernetes stops
/// everything together.
@Suite struct ShutdownTests {
    @Test func everyProcessKindExitsWithinTenSecondsOfSigtermWithEveryDependencyHung() async throws {
        var settings = try await TestServers.isolatedSettings()
        let postgres = try FaultyProxy(forwardingTo: try TestServers.databasePort(settings))
        let mongo = try FaultyProxy(forwardingTo: try #require(URLComponents(string: settings.mongoURI)?.port))
        let broker = PrivateBroker()
        try broker.start()
        settings = try TestServers.settings(settings, databaseThrough: postgres)
        settings.mongoURI = "mongodb://127.0.0.1:\(mongo.port)"
        settings.kafka.brokers = broker.brokers

        let kinds: [(name: String, arguments: [String], portVariable: String)] = [
            ("api", ["api"], "ORDERLY_HTTP_PORT"), ("dev", ["dev"], "ORDERLY_HTTP_PORT"), ("relay", ["relay"], "ORDERLY_OPS_PORT"),
            ("projector", ["project"], "ORDERLY_OPS_PORT"), ("order", ["service", "order"], "ORDERLY_OPS_PORT"),
            ("inventory", ["service", "inventory"], "ORDERLY_OPS_PORT"), ("payment", ["service", "payment"], "ORDERLY_OPS_PORT"),
            ("notification", ["service", "notification"], "ORDERLY_OPS_PORT"),
        ]
        var running: [(name: String, child: ChildProcess)] = []
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        for kind in kinds {
            let port = TestPorts.next()
            let child = try ChildProcess.orderly(
                kind.arguments, settings: settings,
                extra: [kind.portVariable: "\(port)", "ORDERLY_HTTP_HOST": "127.0.0.1", "ORDERLY_SAGA_DEADLINE_SECONDS": "60"])
            running.append((kind.name, child))
            let up = try await TestServers.answers("http://127.0.0.1:\(port)/health", http: http, timeout: .seconds(90))
            #expect(up, "\(kind.name) did not come up:\n\(child.output.suffix(3000))")
        }
        try await http.shutdown()
        // Some work under way when everything hangs: events for the relay, consumers and projector.
        _ = try await seedEvents(TestServers.settingsWithDirectDatabase(settings), streams: 4, eventsPerStream: 5)
        try await Task.sleep(for: .seconds(2))

        postgres.freeze()
        mongo.freeze()
        broker.freeze()
        // Long enough for every retry loop to be waiting on a dependency that does not answer.
        try await Task.sleep(for: .seconds(3))

        let stopped = ContinuousClock.now
        for (_, child) in running { child.kill(SIGTERM) }
        await withTaskGroup(of: (String, Duration, Bool).self) { group in
            for (name, child) in running {
                group.addTask {
                    let exited = await child.process.exited(within: .seconds(15))
                    return (name, ContinuousClock.now - stopped, exited)
                }
            }
            for await (name, took, exited) in group {
                let log = running.first { $0.name == name }?.child.output.suffix(2000) ?? ""
                #expect(exited && took < .seconds(10), "\(name) took \(took) to exit (exited: \(exited)):\n\(log)")
            }
        }
        postgres.thaw()
        mongo.thaw()
        broker.thaw()
        postgres.stop()
        mongo.stop()
    }

    /// With every dependency answering, a stop is clean: each process kind exits 0 soon after SIGTERM,
    /// which a supervisor counts as a stop, not a crash (processes that had stopped cleanly sometimes
    /// died in OpenSSL's exit-time cleanup inside librdkafka: exit 139). Two rounds, as that was rare.
    @Test func everyProcessKindExitsZeroSoonAfterSigtermWhenItsDependenciesAnswer() async throws {
        let kinds: [(name: String, arguments: [String], portVariable: String)] = [
            ("api", ["api"], "ORDERLY_HTTP_PORT"), ("relay", ["relay"], "ORDERLY_OPS_PORT"), ("projector", ["project"], "ORDERLY_OPS_PORT"),
            ("order", ["service", "order"], "ORDERLY_OPS_PORT"), ("inventory", ["service", "inventory"], "ORDERLY_OPS_PORT"),
            ("payment", ["service", "payment"], "ORDERLY_OPS_PORT"), ("notification", ["service", "notification"], "ORDERLY_OPS_PORT"),
        ]
        for round in 1...2 {
            let settings = try await TestServers.isolatedSettings()
            var running: [(name: String, child: ChildProcess)] = []
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            for kind in kinds {
                let port = TestPorts.next()
                let child = try ChildProcess.orderly(
                    kind.arguments, settings: settings, extra: [kind.portVariable: "\(port)", "ORDERLY_HTTP_HOST": "127.0.0.1"])
                running.append((kind.name, child))
                let up = try await TestServers.answers("http://127.0.0.1:\(port)/health", http: http, timeout: .seconds(90))
                #expect(up, "\(kind.name) did not come up:\n\(child.output.suffix(3000))")
            }
            try await http.shutdown()
            _ = try await seedEvents(settings, streams: 4, eventsPerStream: 5)
            try await Task.sleep(for: .seconds(2))

            let stopped = ContinuousClock.now
            for (_, child) in running { child.kill(SIGTERM) }
            for (name, child) in running {
                let exited = await child.process.exited(within: .seconds(15))
                let took = ContinuousClock.now - stopped
                #expect(exited && took < .seconds(10), "round \(round): \(name) took \(took) to exit")
                guard exited else { continue }
                #expect(
                    child.process.terminationReason == .exit && child.process.terminationStatus == 0,
                    "round \(round): \(name) ended with \(child.process.terminationReason == .exit ? "exit" : "signal") \(child.process.terminationStatus):\n\(child.output.suffix(2000))"
                )
            }
        }
    }
}

extension TestServers {
    /// `settings` with the database URL of the shared server itself (not through a test's proxy).
    static func settingsWithDirectDatabase(_ settings: Settings) throws -> Settings {
        var direct = settings
        guard var url = URLComponents(string: settings.databaseURL), let shared = URLComponents(string: Self.settings.databaseURL) else {
            throw SettingsError(description: "bad database URL")
        }
        url.port = shared.port
        direct.databaseURL = url.string ?? settings.databaseURL
        return direct
    }
}

extension Process {
    /// Whether the process ended within `limit` (it is left running otherwise).
    func exited(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if !self.isRunning { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return !self.isRunning
    }
}
