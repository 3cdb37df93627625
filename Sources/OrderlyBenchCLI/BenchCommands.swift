import ArgumentParser
import Foundation
import Logging
import OrderlyAPI
import OrderlyBench
import OrderlyDomain
import OrderlyEventStore
import OrderlyMessaging
import OrderlyProcesses
import OrderlyReadModels
import PostgresNIO

// `orderly-bench`: the load generator and the benchmarks `scripts/bench` runs beside raw baselines, an
// executable of its own so that the serving binary (`orderly`) carries no HTTP client or HdrHistogram.

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orderly-bench",
        abstract: "Load generators: `orderly-bench` drives the api (see `load`); scripts/bench runs the rest beside raw baselines.",
        subcommands: [BenchLoad.self, BenchStore.self, BenchRelay.self, BenchProjector.self, BenchOrderGet.self, BenchColdStock.self],
        defaultSubcommand: BenchLoad.self)
}

struct BenchStore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store", abstract: "Append to the event store with concurrent writers; prints events/s and latency.")

    @Option(help: "Concurrent writers.") var writers = 8
    @Option(help: "Events per append (each append goes to a new stream).") var batch = 1
    @Option(help: "Seconds to run.") var seconds = 10
    @Option(help: "The JSON data of each event.") var payload = #"{"orderId":"o-1","customerId":"c-1","total":2598}"#
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let logger = ProcessStart.logger("orderly.bench", defaultLevel: .warning)
        let result = try await Settings.fromEnvironment().withPostgres(logger: logger) { client in
            try await StoreBenchmark.run(
                store: PostgresEventStore(client: client, logger: logger), writers: self.writers, batch: self.batch,
                duration: .seconds(self.seconds), payload: self.payload)
        }
        if self.json {
            print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        } else {
            print(
                "\(result.events) events in \(result.appends) appends over \(String(format: "%.1f", result.seconds)) s: "
                    + "\(Int(result.eventsPerSecond)) events/s, p50 \(String(format: "%.2f", result.p50Milliseconds)) ms, "
                    + "p99 \(String(format: "%.2f", result.p99Milliseconds)) ms")
        }
    }
}

struct BenchColdStock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cold-stock",
        abstract: "Seed one SKU's stock stream, then time a cold load of it: folded whole, and from its snapshot; prints both.")

    @Option(help: "Events in the stock stream.") var events = 100_000
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let logger = ProcessStart.logger("orderly.bench", defaultLevel: .warning)
        let result = try await Settings.fromEnvironment().withPostgres(logger: logger) { client in
            try await SnapshotBenchmark.run(store: PostgresEventStore(client: client, logger: logger), events: self.events)
        }
        if self.json {
            print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        } else {
            print(
                "stock stream of \(result.events) events: whole fold \(String(format: "%.3f", result.wholeFoldSeconds)) s, "
                    + "from its snapshot (+\(result.tail) events) \(String(format: "%.3f", result.fromSnapshotSeconds)) s")
        }
    }
}

struct BenchRelay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay", abstract: "Append a backlog, then time the relay publishing it to a new topic; prints events/s.")

    @Option(help: "Events in the backlog.") var events = 100_000
    @Option(help: "Events the relay reads and publishes per batch.") var batchSize = 5000
    @Option(help: "The JSON data of each event.") var payload = #"{"orderId":"o-1","customerId":"c-1","total":2598}"#
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let logger = ProcessStart.logger("orderly.bench", defaultLevel: .warning)
        let settings = Settings.fromEnvironment()
        let topic = "bench-relay-\(UUID().uuidString.prefix(8).lowercased())"
        let result = try await settings.withPostgres(logger: logger) { client in
            let store = PostgresEventStore(client: client, logger: logger)
            try await RelayBenchmark.seed(store: store, count: self.events, payload: self.payload)
            try await KafkaAdmin.ensureTopic(topic, partitions: settings.topicPartitions, configuration: settings.kafka)
            let relay = EventRelay(
                store: store, producer: try KafkaProducer(configuration: settings.kafka),
                settings: .init(topic: topic, checkpointName: topic, batchSize: self.batchSize), logger: logger)
            return try await RelayBenchmark.drain(relay: relay, count: self.events)
        }
        if self.json {
            print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        } else {
            print("\(result.events) events relayed in \(String(format: "%.2f", result.seconds)) s: \(Int(result.eventsPerSecond)) events/s")
        }
    }
}

struct BenchLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Drive a running api over HTTP with concurrent clients and a mix of scenarios (the default bench).",
        discussion: """
            Flat out (closed loop) by default; with --rate, orders start on a fixed schedule (open loop) and latency
            counts from the scheduled start. Scenarios: happy (must complete), declined (card declined), out-of-stock
            (a SKU never stocked), cancel (placed, then cancelled at once). Reports requests/s, p50/p90/p99/max per
            request kind, errors by kind; with --saga also each order's time from when POST /orders was due to when its
            terminal status was seen in the orders read model (MongoDB from ORDERLY_MONGO_URI, looked for every --poll
            ms), checked against its scenario.
            Signs its own admin token with ORDERLY_JWT_SECRET (or ORDERLY_JWT_KEY_FILE), which must be the api's.
            """)

    @Option(help: "Base URL of a running api.") var url = "http://127.0.0.1:8080"
    @Option(help: "Concurrent clients (at a fixed rate: the most connections open at once).") var clients = 16
    @Option(help: "Orders started per second (open loop); flat out when not given.") var rate: Double?
    @Option(help: "How long to run, in seconds.") var seconds = 30.0
    @Option(help: "Scenario weights, NAME=WEIGHT,… (happy, declined, out-of-stock, cancel).")
    var mix = LoadGenerator.Mix.standard.description
    @Flag(help: "Wait for every order's terminal status and report placement → terminal times.") var saga = false
    @Option(help: "With --saga: how long to wait for the last orders to end, in seconds.") var settle = 60.0
    @Flag(help: "Orders carry a customer and a shipping address; with --saga a completed order ends when its parcel was delivered.")
    var delivery = false
    @Option(help: "With --saga: how often the orders not yet ended are looked for, in milliseconds (an order's time is overstated by at most this).")
    var poll = 100.0
    @Option(name: .shortAndLong, help: "Write the result as JSON to this file.") var output: String?
    @Flag(help: "Print the result as JSON instead of a summary.") var json = false

    func validate() throws {
        guard self.poll >= 10 else { throw ValidationError("--poll must be at least 10 ms") }
        guard self.clients > 0 else { throw ValidationError("--clients must be at least 1") }
        guard self.seconds > 0, self.settle >= 0 else { throw ValidationError("--seconds must be positive and --settle not negative") }
        if let rate = self.rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
        do { _ = try LoadGenerator.Mix(parsing: self.mix) } catch { throw ValidationError("\(error)") }
    }

    func run() async throws {
        _ = ProcessStart.logger("orderly.bench", defaultLevel: .warning)
        let settings = Settings.fromEnvironment()
        var options = LoadGenerator.Options(
            baseURL: self.url, bearer: try await benchBearer(), clients: self.clients, rate: self.rate,
            duration: .milliseconds(Int64(self.seconds * 1000)), mix: try LoadGenerator.Mix(parsing: self.mix), saga: self.saga,
            settleTimeout: .milliseconds(Int64(self.settle * 1000)))
        options.delivery = self.delivery
        options.outcomePollInterval = .milliseconds(Int64(self.poll))
        let mongo = self.saga ? try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase) : nil
        let bar = ProgressLine()
        let result = try await LoadGenerator.run(options, mongo: mongo) { progress in
            let rate = Double(progress.requests) / max(0.001, progress.elapsed.timeInterval)
            bar.show(
                phase: "load", done: Int64(progress.elapsed.timeInterval), total: Int64(progress.duration.timeInterval),
                unit: "s, \(progress.requests) requests, \(Int(rate))/s, \(progress.errors) errors")
        }
        bar.finish()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(result)
        if let output { try data.write(to: URL(fileURLWithPath: output)) }
        if self.json {
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(Self.summary(result))
        }
    }

    static func summary(_ result: LoadGenerator.Result) -> String {
        func ms(_ value: Double) -> String { String(format: "%.1f", value) }
        var lines = [
            "\(result.mode), \(result.clients) clients\(result.rate.map { ", \($0) orders/s" } ?? ""), mix \(result.mix), "
                + "\(ms(result.seconds)) s: \(result.requests) requests (\(Int(result.requestsPerSecond))/s), "
                + "\(result.orders) orders (\(Int(result.ordersPerSecond))/s), \(result.errorCount) errors"
        ]
        for (kind, latency) in result.latencyMilliseconds.sorted(by: { $0.key < $1.key }) {
            lines.append(
                "  \(kind): p50 \(ms(latency.p50)) ms, p90 \(ms(latency.p90)) ms, p99 \(ms(latency.p99)) ms, max \(ms(latency.max)) ms")
        }
        for (kind, count) in result.errors.sorted(by: { $0.key < $1.key }) { lines.append("  error \(kind): \(count)") }
        if let saga = result.saga {
            lines.append(
                "  saga: \(saga.completed) completed, \(saga.cancelled) cancelled, \(saga.unfinished) unfinished; POST → terminal "
                    + "seen p50 \(ms(saga.milliseconds.p50)) ms, p99 \(ms(saga.milliseconds.p99)) ms, max \(ms(saga.milliseconds.max)) ms"
                    + (saga.stampedMilliseconds.map { "; stamped by the projector p50 \(ms($0.p50)) ms, p99 \(ms($0.p99)) ms" } ?? ""))
            for (name, scenario) in result.scenarios.sorted(by: { $0.key < $1.key }) {
                lines.append(
                    "    \(name): \(scenario.orders) orders, \(scenario.endedAsExpected ?? 0) ended as expected, "
                        + "p99 \(ms(scenario.sagaMilliseconds?.p99 ?? 0)) ms")
            }
        }
        return lines.joined(separator: "\n")
    }
}

struct BenchProjector: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projector", abstract: "Publish a backlog of placed orders to a new topic and time the orders projection through it.")

    @Option(help: "Events (each a new order) in the backlog.") var events = 20_000
    @Option(help: "Write the orders' ids here, one a line (for `bench order-get` and the raw baseline).") var idsFile: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let logger = ProcessStart.logger("orderly.bench", defaultLevel: .warning)
        let settings = Settings.fromEnvironment()
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let result = try await ReadBenchmark.projector(settings: settings, mongo: mongo, count: self.events, idsFile: self.idsFile, logger: logger)
        if self.json {
            print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        } else {
            print("\(result.events) events projected in \(String(format: "%.2f", result.seconds)) s: \(Int(result.eventsPerSecond)) events/s")
        }
    }
}

struct BenchOrderGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-get", abstract: "Read orders by id over HTTP with concurrent clients (closed loop); prints requests/s.")

    @Option(help: "Base URL of a running api.") var url = "http://127.0.0.1:8080"
    @Option(help: "A file of order ids, one a line.") var idsFile: String
    @Option(help: "Concurrent clients.") var concurrency = 8
    @Option(help: "Seconds to run.") var seconds = 10
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        _ = ProcessStart.logger("orderly.bench", defaultLevel: .warning)
        let ids = try String(contentsOfFile: self.idsFile, encoding: .utf8).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        let result = try await ReadBenchmark.orderGets(
            baseURL: self.url, bearer: try await benchBearer(), ids: ids, concurrency: self.concurrency, duration: .seconds(self.seconds))
        if self.json {
            print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        } else {
            print(
                "\(result.requests) reads in \(String(format: "%.1f", result.seconds)) s: \(Int(result.requestsPerSecond))/s, "
                    + "p50 \(String(format: "%.2f", result.p50Milliseconds)) ms, p99 \(String(format: "%.2f", result.p99Milliseconds)) ms, "
                    + "\(result.errors) errors")
        }
    }
}

/// An admin token for the HTTP load generators, signed with the api's key from the environment.
func benchBearer() async throws -> String {
    guard let authority = try await Settings.fromEnvironment().makeTokenAuthority() else {
        throw ValidationError("set ORDERLY_JWT_SECRET (or ORDERLY_JWT_KEY_FILE) to the api's: the load generator signs its own admin token")
    }
    return "Bearer " + (try await authority.mint(subject: "bench", role: .admin, lifetime: .seconds(24 * 3600)))
}
