import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrderlyAPI
import OrderlyBench
import OrderlyMessaging
import OrderlyProcesses
import OrderlyReadModels
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The whole system as separate processes (api, relay, projector, four saga services), driven by the
/// load generator, scraped by a real Prometheus: what an operator relies on.
@Suite struct ObservabilityTests {
    /// Every process with its /metrics port.
    struct System {
        var processes: [String: ChildProcess] = [:]
        var metricsPorts: [String: Int] = [:]
        var apiPort = 0

        static func start(_ settings: Settings) throws -> System {
            var system = System()
            system.apiPort = TestPorts.next()
            system.processes["api"] = try ChildProcess.orderly(
                ["api"], settings: settings, extra: ["ORDERLY_HTTP_PORT": "\(system.apiPort)", "ORDERLY_HTTP_HOST": "127.0.0.1"])
            system.metricsPorts["api"] = system.apiPort
            let others: [(String, [String])] = [
                ("relay", ["relay"]), ("projector", ["project"]), ("order", ["service", "order"]), ("inventory", ["service", "inventory"]),
                ("payment", ["service", "payment"]), ("notification", ["service", "notification"]),
            ]
            for (name, arguments) in others {
                let port = TestPorts.next()
                system.processes[name] = try ChildProcess.orderly(arguments, settings: settings, extra: ["ORDERLY_OPS_PORT": "\(port)"])
                system.metricsPorts[name] = port
            }
            return system
        }

        func stop() {
            // All told first, then waited for: they shut down side by side.
            for process in self.processes.values { process.kill(SIGTERM) }
            for process in self.processes.values { process.process.waitUntilExit() }
        }

        func output(_ name: String) -> String { self.processes[name]?.output ?? "" }
    }

    @Test func loadGeneratorLogsMetricsAndDashboardAgreeOnOneRun() async throws {
        let settings = try await TestServers.isolatedSettings()
        let system = try System.start(settings)
        let prometheus = try Prometheus.start(targets: system.metricsPorts)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer {
            system.stop()
            prometheus.process.stop()
            _ = http.shutdown()
        }
        let ready = try await TestServers.answers("http://127.0.0.1:\(system.apiPort)/ready", http: http, timeout: .seconds(60))
        try #require(ready, "the api never got ready:\n\(system.output("api").suffix(2000))")

        // 60 orders at 20/s, every scenario, each order followed to its end.
        let options = LoadGenerator.Options(
            baseURL: "http://127.0.0.1:\(system.apiPort)", bearer: try await TestServers.bearer(.admin), clients: 8, rate: 20,
            duration: .seconds(3), mix: .standard, saga: true, settleTimeout: .seconds(120))
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let result = try await LoadGenerator.run(options, mongo: mongo)
        #expect(result.orders == 60)
        #expect(result.errorCount == 0, "\(result.errors)\n\(system.output("order").suffix(2000))")
        #expect(result.saga?.unfinished == 0)
        #expect(result.saga.map { $0.completed + $0.cancelled } == 60)
        #expect(Set(result.scenarios.keys) == ["happy", "declined", "out-of-stock", "cancel"])
        for (name, scenario) in result.scenarios {
            #expect(scenario.orders > 0 && scenario.accepted == scenario.orders, "\(name)")
            #expect(scenario.endedAsExpected == scenario.orders, "\(name) ended otherwise")
        }
        let placing = try #require(result.latencyMilliseconds["place_order"])
        #expect(placing.count == 60)
        #expect(placing.p50 > 0 && placing.p50 <= placing.p99 && placing.p99 <= placing.max)
        #expect(result.latencyMilliseconds["cancel_order"]?.count == UInt64(result.scenarios["cancel"]?.orders ?? -1))
        let saga = try #require(result.saga?.milliseconds)
        #expect(saga.count == 60 && saga.p50 > 0 && saga.p99 <= saga.max)
        // Seen in the read model only after the projector's write, so never before its stamp.
        let stamped = try #require(result.saga?.stampedMilliseconds)
        #expect(stamped.count == 60 && stamped.p50 <= saga.p50 && stamped.max <= saga.max, "stamped \(stamped), seen \(saga)")

        // The command line: flat out for a second, the result written as a JSON file.
        let resultFile = FileManager.default.temporaryDirectory.appendingPathComponent("orderly-bench-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: resultFile) }
        let bench = try ChildProcess.orderly(
            ["--url", "http://127.0.0.1:\(system.apiPort)", "--clients", "2", "--seconds", "1", "--mix", "happy=1", "-o", resultFile.path],
            settings: settings, executable: "orderly-bench")
        await bench.process.exited()
        #expect(bench.process.terminationStatus == 0, "\(bench.output)")
        let written = try JSONDecoder().decode(LoadGenerator.Result.self, from: Data(contentsOf: resultFile))
        #expect(written.mode == "flat-out" && written.clients == 2 && written.mix == "happy=1")
        #expect(written.orders > 0 && written.errorCount == 0 && written.scenarios.keys.sorted() == ["happy"], "\(written)")
        #expect(bench.output.contains("place_order: p50"), "the summary goes to stdout:\n\(bench.output)")

        // Logs: JSON lines, and one completed order's saga followed through every process by its correlation id.
        for (name, process) in system.processes {
            for line in process.output.split(separator: "\n") where line.hasPrefix("{") {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["time"] is String && object?["level"] is String && object?["message"] is String, "\(name): \(line)")
            }
        }
        let completed = try #require(
            Self.appended(in: system.output("order")).first { $0.types == ["OrderCompleted"] },
            "the order service logged no completion:\n\(system.output("order").suffix(2000))")
        let order = completed.correlationId
        let expected: [(process: String, type: String, actor: String)] = [
            ("api", "OrderPlaced", "tester"), ("inventory", "StockReserved", "inventory-service"),
            ("payment", "PaymentProcessed", "payment-service"), ("order", "OrderCompleted", "order-service"),
            ("notification", "NotificationSent", "notification-service"),
        ]
        var causes: Set<String> = []
        for step in expected {
            let line = Self.appended(in: system.output(step.process)).first { $0.correlationId == order && $0.types.contains(step.type) }
            #expect(line != nil, "\(step.process) logged no \(step.type) for order \(order)")
            #expect(line?.actor == step.actor)
            if let cause = line?.causationId, !cause.isEmpty { causes.insert(cause) }
        }
        #expect(causes.count == expected.count, "each step is caused by a different event: \(causes)")

        // Metrics: the api counted exactly what the load generator saw accepted.
        let apiMetrics = try await httpGet("http://127.0.0.1:\(system.apiPort)/metrics")
        let placedByCLI = Int64(written.orders)
        #expect(apiMetrics.contains(#"orderly_commands_total{command="place_order",outcome="accepted"} \#(60 + placedByCLI)"#), "\(apiMetrics)")
        #expect(apiMetrics.contains(#"orderly_events_appended_total{type="OrderPlaced"} \#(60 + placedByCLI)"#))
        // No delivery service here: no parcel is on its way, so none is overdue (counted at start).
        #expect(apiMetrics.contains("orderly_shipments_overdue 0"), "\(apiMetrics)")
        // The projector counts the documents each model wrote: for `orders` at least one per saga
        // order (each ended, so it is in the model), and never more than the events it applied (a
        // batch writes a changed document once).
        let projectorPort = try #require(system.metricsPorts["projector"])
        let projectorMetrics = try await httpGet("http://127.0.0.1:\(projectorPort)/metrics")
        let documents = try #require(Self.sample(#"orderly_projection_documents_written_total{projection="orders"}"#, in: projectorMetrics))
        let applied = try #require(Self.sample(#"orderly_projection_events_applied_total{projection="orders"}"#, in: projectorMetrics))
        #expect(documents >= 60 && documents <= applied, "documents \(documents), events \(applied)")
        // A saga service takes only the event types it acts on: the inventory service (placed,
        // completed, cancelled, payment failed, shipment failed) about two of the eight or so events
        // an order brings, passed over the rest before decoding them.
        let relayPort = try #require(system.metricsPorts["relay"]), inventoryPort = try #require(system.metricsPorts["inventory"])
        let published = try #require(
            Self.sample("orderly_relay_published_after_append_seconds_count", in: try await httpGet("http://127.0.0.1:\(relayPort)/metrics")))
        let inventoryMetrics = try await httpGet("http://127.0.0.1:\(inventoryPort)/metrics")
        let received = try #require(Self.sample("orderly_consumer_received_after_append_seconds_count", in: inventoryMetrics))
        #expect(received >= Double(2 * 60) && received < published / 2, "the inventory service received \(received) of \(published) events")

        // The dashboard: every query returns series from these processes (so no panel names a
        // metric or label that does not exist), read through Prometheus as Grafana would.
        let dashboard = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: TestServers.repositoryRoot + "/deploy/grafana/dashboards/orderly.json")))
        let panels = try #require((dashboard as? [String: Any])?["panels"] as? [[String: Any]])
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(expressions.count >= 12)
        let prometheusReady = try await TestServers.answers("http://127.0.0.1:\(prometheus.port)/-/ready", http: http)
        try #require(prometheusReady, "prometheus did not start:\n\(prometheus.process.output.suffix(2000))")
        for expression in expressions {
            // Labels the query groups by (its legend shows them) must be on the series it returns.
            let grouped = Self.groupingLabels(expression)
            let series = try await TestServers.eventually(timeout: .seconds(30)) { () -> [[String: Any]]? in
                let series = try await prometheus.query(expression, http: http)
                return series.isEmpty ? nil : series
            }
            #expect(series != nil, "the dashboard query \(expression) returns nothing")
            let labels = Set((series ?? []).flatMap { (($0["metric"] as? [String: Any]) ?? [:]).keys })
            #expect(grouped.isSubset(of: labels), "\(expression): no series has the labels \(grouped.subtracting(labels))")
        }
        // The alert rules: every metric they name exists in these processes (a renamed metric would
        // silence an alert for good), and Prometheus evaluates each without error.
        _ = try await httpGet("http://127.0.0.1:\(system.apiPort)/ready")
        let rules = try String(contentsOfFile: TestServers.repositoryRoot + "/deploy/alerts.yml", encoding: .utf8)
        let named = Set(Self.metricNames(in: rules))
        #expect(named.count >= 8, "\(named.sorted())")
        for metric in named.sorted() {
            let present = try await TestServers.eventually(timeout: .seconds(30)) { () -> Bool? in
                try await prometheus.query("count({__name__=\"\(metric)\"})", http: http).isEmpty ? nil : true
            }
            #expect(present == true, "the alert rules name \(metric), which no process exports")
        }
        let ruleCount = rules.components(separatedBy: "- alert:").count - 1
        #expect(ruleCount >= 9)
        let healthy = try await TestServers.eventually(timeout: .seconds(30)) { () -> Int? in
            let health = try await prometheus.ruleHealth(http: http)
            return health.count == ruleCount && health.allSatisfy({ $0 == "ok" }) ? health.count : nil
        }
        let health = try await prometheus.ruleHealth(http: http)
        #expect(healthy == ruleCount, "Prometheus did not evaluate the \(ruleCount) alert rules cleanly: \(health)")

        let placed = try await TestServers.eventually { () -> Double? in
            let value = try await prometheus.value(#"sum(orderly_commands_total{command="place_order",outcome="accepted"})"#, http: http)
            return value == Double(60 + placedByCLI) ? value : nil
        }
        #expect(placed == Double(60 + placedByCLI), "Prometheus did not scrape the api's count")
    }

    /// The value of `series` in a Prometheus scrape. A name without labels also matches the first
    /// series of that name whatever its labels (a consumer's, labelled with its group).
    static func sample(_ series: String, in scrape: String) -> Double? {
        scrape.split(separator: "\n").lazy.compactMap { line -> Double? in
            guard line.hasPrefix(series + " ") || (!series.contains("{") && line.hasPrefix(series + "{")) else { return nil }
            return line.split(separator: " ").last.flatMap { Double($0) }
        }.first
    }

    /// The metric names in the `expr:` lines of a rules file: `orderly_…`, `hb_requests`, `up`.
    static func metricNames(in rules: String) -> [String] {
        guard let expression = try? NSRegularExpression(pattern: #"\b(orderly_[a-z_]+|hb_requests|up)\b"#) else { return [] }
        var names: [String] = []
        var inExpr = false
        for line in rules.split(separator: "\n").map(String.init) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("expr:") { inExpr = true } else if trimmed.hasPrefix("for:") || trimmed.hasPrefix("labels:") { inExpr = false }
            guard inExpr else { continue }
            for match in expression.matches(in: line, range: NSRange(line.startIndex..., in: line)) {
                if let range = Range(match.range(at: 1), in: line) { names.append(String(line[range])) }
            }
        }
        return names
    }

    /// The labels of every `by (…)` in a PromQL expression, but `le` (histogram buckets, consumed by
    /// `histogram_quantile`).
    static func groupingLabels(_ expression: String) -> Set<String> {
        var labels: Set<String> = []
        var rest = Substring(expression)
        while let range = rest.range(of: "by (") {
            rest = rest[range.upperBound...]
            guard let close = rest.firstIndex(of: ")") else { break }
            for label in rest[..<close].split(separator: ",") { labels.insert(label.trimmingCharacters(in: .whitespaces)) }
        }
        labels.remove("le")
        return labels
    }

    struct AppendedLine {
        var correlationId: String
        var causationId: String
        var actor: String
        var types: [String]
    }

    /// The "appended" log lines of a process.
    static func appended(in output: String) -> [AppendedLine] {
        output.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                object["message"] as? String == "appended", let correlation = object["correlationId"] as? String
            else { return nil }
            return AppendedLine(
                correlationId: correlation, causationId: object["causationId"] as? String ?? "", actor: object["actor"] as? String ?? "",
                types: object["eventTypes"] as? [String] ?? [])
        }
    }
}

/// A real Prometheus (Debian's, installed by scripts/install) scraping the test's processes every second.
struct Prometheus {
    let process: ChildProcess
    let port: Int

    static func start(targets: [String: Int]) throws -> Prometheus {
        let executable = "/usr/bin/prometheus"
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw PrometheusMissing(description: "no \(executable): scripts/install installs Debian's prometheus package")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orderly-prometheus-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // With the alert rules compose runs (deploy/alerts.yml), so their expressions are evaluated
        // against real series.
        try FileManager.default.copyItem(
            atPath: TestServers.repositoryRoot + "/deploy/alerts.yml", toPath: directory.appendingPathComponent("alerts.yml").path)
        var config = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - alerts.yml\nscrape_configs:\n"
        for (name, port) in targets.sorted(by: { $0.key < $1.key }) {
            config += "  - job_name: \(name)\n    static_configs:\n      - targets: ['127.0.0.1:\(port)']\n"
        }
        try Data(config.utf8).write(to: directory.appendingPathComponent("prometheus.yml"))
        let port = TestPorts.next()
        let process = try ChildProcess(
            executable: executable,
            arguments: [
                "--config.file=\(directory.path)/prometheus.yml", "--storage.tsdb.path=\(directory.path)/data",
                "--web.listen-address=127.0.0.1:\(port)",
            ], environment: [:])
        return Prometheus(process: process, port: port)
    }

    func query(_ expression: String, http: HTTPClient) async throws -> [[String: Any]] {
        var components = URLComponents(string: "http://127.0.0.1:\(self.port)/api/v1/query")
        components?.queryItems = [URLQueryItem(name: "query", value: expression)]
        let url = try #require(components?.url?.absoluteString)
        let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 22)
        let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        guard object?["status"] as? String == "success" else {
            throw PrometheusMissing(description: "query \(expression) failed: \(String(buffer: body))")
        }
        return ((object?["data"] as? [String: Any])?["result"] as? [[String: Any]]) ?? []
    }

    /// The single value an aggregating query returns.
    /// The health (`ok`, `err`, `unknown`) of every loaded rule.
    func ruleHealth(http: HTTPClient) async throws -> [String] {
        let response = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(self.port)/api/v1/rules"), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 22)
        let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        let groups = ((object?["data"] as? [String: Any])?["groups"] as? [[String: Any]]) ?? []
        return groups.flatMap { ($0["rules"] as? [[String: Any]] ?? []).compactMap { $0["health"] as? String } }
    }

    func value(_ expression: String, http: HTTPClient) async throws -> Double? {
        let sample = try await self.query(expression, http: http).first?["value"] as? [Any]
        return (sample?.last as? String).flatMap(Double.init)
    }
}

struct PrometheusMissing: Error, CustomStringConvertible {
    var description: String
}

@Suite struct LoadMixTests {
    /// librdkafka's and libmongoc's own lines (a broker or document server that does not answer)
    /// come out through swift-log in the process's JSON format, at their level, never raw on stderr.
    @Test func theCLibrariesLogThroughTheProcessLogger() async throws {
        var settings = try await TestServers.isolatedSettings()
        settings.kafka.brokers = "127.0.0.1:\(TestPorts.next())"
        let relay = try ChildProcess.orderly(["relay"], settings: settings, extra: ["ORDERLY_OPS_PORT": "\(TestPorts.next())"])
        settings.mongoURI = "mongodb://127.0.0.1:\(TestPorts.next())/?serverSelectionTimeoutMS=500"
        let projector = try ChildProcess.orderly(
            ["project"], settings: settings, extra: ["ORDERLY_OPS_PORT": "\(TestPorts.next())", "LOG_LEVEL": "debug"])
        let seen = try await TestServers.eventually(timeout: .seconds(30)) { () -> Bool? in
            relay.output.contains(#""logger":"orderly.librdkafka""#) && projector.output.contains(#""logger":"orderly.libmongoc""#) ? true : nil
        }
        relay.kill(SIGTERM)
        projector.kill(SIGTERM)
        relay.process.waitUntilExit()
        projector.process.waitUntilExit()
        #expect(seen == true, "relay:\n\(relay.output.suffix(2000))\nprojector:\n\(projector.output.suffix(2000))")
        for (name, output) in [("relay", relay.output), ("projector", projector.output)] {
            for line in output.split(separator: "\n") where !line.isEmpty {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["level"] != nil, "\(name) wrote a line that is not a JSON log line: \(line)")
            }
        }
        let refused = relay.output.split(separator: "\n").first {
            $0.contains(#""logger":"orderly.librdkafka""#) && $0.contains("Connection refused")
        }
        #expect(refused?.contains(#""level":"error""#) == true, "\(refused ?? "")")
    }

    @Test func aMixSpreadsEachScenarioEvenlyByItsWeight() throws {
        let mix = try LoadGenerator.Mix(parsing: "happy=6, declined=2,out-of-stock=1,cancel=1")
        let first = (0..<10).map { mix.scenario(for: $0) }
        #expect(first.count { $0 == .happy } == 6)
        #expect(first.count { $0 == .declined } == 2)
        #expect(first.count { $0 == .outOfStock } == 1 && first.count { $0 == .cancel } == 1)
        // Spread, not in blocks: no scenario takes more than 2 orders in a row here.
        #expect(!zip(first, zip(first.dropFirst(), first.dropFirst(2))).contains { $0 == $1.0 && $1.0 == $1.1 })
        #expect((0..<20).map { mix.scenario(for: $0) } == first + first)
        #expect(mix.description == "happy=6,declined=2,out-of-stock=1,cancel=1")
        #expect(try LoadGenerator.Mix(parsing: "happy=1,cancel=0").description == "happy=1")
    }

    @Test func aBadMixIsRefusedWithTheNamesItTakes() {
        for text in ["happy", "happy=-1", "sad=3", "happy=0", "", "happy=x"] {
            #expect(throws: LoadGeneratorError.self, "\(text)") { try LoadGenerator.Mix(parsing: text) }
        }
        do {
            _ = try LoadGenerator.Mix(parsing: "sad=3")
            Issue.record("an unknown scenario was accepted")
        } catch {
            #expect("\(error)".contains("happy, declined, out-of-stock, cancel"))
        }
    }
}
