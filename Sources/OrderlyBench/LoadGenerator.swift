import AsyncHTTPClient
import Foundation
import Histogram
import NIOCore
import NIOHTTP1
import OrderlyDomain
import OrderlyReadModels
import Synchronization

/// `orderly bench`: drives a running api over HTTP the way its users do, with a mix of scenarios,
/// either flat out (closed loop: each client sends its next request when the last one answered) or
/// at a fixed rate (open loop: orders start on schedule whatever the answers, and latency counts from
/// the scheduled start, so a stalled server is not hidden by clients that waited for it).
///
/// Reports requests/s, latency percentiles per request kind (HdrHistogram, microsecond resolution),
/// errors by kind, and in saga mode the time from when `POST /orders` was due to when the order's
/// terminal status was seen in the `orders` read model (a watcher reads the orders not yet ended
/// every `outcomePollInterval` while the load runs: what it sees is durable, so the figure includes
/// the projector's write and at most one interval more; the projector's own `statusChangedAt`, taken
/// before its write, is reported beside it), with each scenario's outcome checked against what it
/// must be.
public enum LoadGenerator {
    /// What one simulated customer does.
    public enum Scenario: String, CaseIterable, Codable, Sendable {
        /// Stocked SKU, approved card: must end COMPLETED.
        case happy
        /// Card declined: must end CANCELLED (PAYMENT_DECLINED).
        case declined
        /// A SKU with no stock: must end CANCELLED (OUT_OF_STOCK).
        case outOfStock = "out-of-stock"
        /// Places an order and cancels it at once: ends CANCELLED, or COMPLETED when the saga won the race
        /// (the cancel then answers 409 order-ended, which is not an error).
        case cancel

        var paymentToken: String { self == .declined ? "tok_declined" : "tok_ok" }
    }

    /// Scenario weights, e.g. `happy=70,declined=10,out-of-stock=10,cancel=10`. Orders take scenarios
    /// in a fixed interleaving by index, so two runs of one mix do the same work.
    public struct Mix: Sendable, CustomStringConvertible {
        public var weights: [(scenario: Scenario, weight: Int)]
        private let wheel: [Scenario]

        public init(_ weights: [(scenario: Scenario, weight: Int)]) throws {
            guard weights.contains(where: { $0.weight > 0 }) else {
                throw LoadGeneratorError("the mix needs at least one scenario with a positive weight")
            }
            self.init(checked: weights)
        }

        private init(checked weights: [(scenario: Scenario, weight: Int)]) {
            let kept = weights.filter { $0.weight > 0 }
            self.weights = kept
            // Spread each scenario evenly over the wheel instead of running them in blocks.
            let total = kept.map(\.weight).reduce(0, +)
            var slots: [(at: Double, order: Int, scenario: Scenario)] = []
            for (order, (scenario, weight)) in kept.enumerated() {
                for index in 0..<weight { slots.append(((Double(index) + 0.5) / Double(weight) * Double(total), order, scenario)) }
            }
            self.wheel = slots.sorted { ($0.at, $0.order) < ($1.at, $1.order) }.map(\.scenario)
        }

        /// `happy=70,declined=10`; names are the scenarios' raw values.
        public init(parsing text: String) throws {
            var weights: [(scenario: Scenario, weight: Int)] = []
            for part in text.split(separator: ",") {
                let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pair.count == 2, let scenario = Scenario(rawValue: pair[0]), let weight = Int(pair[1]), weight >= 0 else {
                    throw LoadGeneratorError(
                        "bad mix entry '\(part)': use NAME=WEIGHT with NAME one of \(Scenario.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                weights.append((scenario, weight))
            }
            try self.init(weights)
        }

        public static let standard = Mix(checked: [(.happy, 70), (.declined, 10), (.outOfStock, 10), (.cancel, 10)])

        public func scenario(for index: Int) -> Scenario { self.wheel[index % self.wheel.count] }

        public var description: String { self.weights.map { "\($0.scenario.rawValue)=\($0.weight)" }.joined(separator: ",") }
    }

    public struct Options: Sendable {
        public var baseURL: String
        public var bearer: String
        /// Concurrent clients flat out; at a fixed rate, the most connections open at once.
        public var clients: Int
        /// Orders started per second; nil: flat out.
        public var rate: Double?
        public var duration: Duration
        public var mix: Mix
        /// Wait for every order's terminal status in the read model and report placement → terminal.
        public var saga: Bool
        public var settleTimeout: Duration
        /// Orders carry a customer and a shipping address, and in saga mode a completed order ends
        /// only when its parcel was delivered (measured to when that became visible).
        public var delivery = false
        /// In saga mode, how often the orders not yet ended are looked for in the read model: an
        /// order's time is overstated by at most this (and one look's time).
        public var outcomePollInterval: Duration = .milliseconds(100)

        public init(
            baseURL: String, bearer: String, clients: Int, rate: Double?, duration: Duration, mix: Mix, saga: Bool, settleTimeout: Duration
        ) {
            self.baseURL = baseURL
            self.bearer = bearer
            self.clients = clients
            self.rate = rate
            self.duration = duration
            self.mix = mix
            self.saga = saga
            self.settleTimeout = settleTimeout
        }
    }

    /// Milliseconds.
    public struct Latency: Codable, Sendable {
        public var count: UInt64
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var max: Double
        public var mean: Double
    }

    public struct ScenarioResult: Codable, Sendable {
        public var orders: Int
        public var accepted: Int
        /// Saga mode: orders that ended as the scenario must.
        public var endedAsExpected: Int?
        /// Saga mode: placement → terminal status.
        public var sagaMilliseconds: Latency?
    }

    public struct SagaResult: Codable, Sendable {
        public var completed: Int
        public var cancelled: Int
        /// Accepted orders with no terminal status when the wait ended.
        public var unfinished: Int
        /// Placement due → terminal status seen in the read model, every scenario.
        public var milliseconds: Latency
        /// Placement due → the projector's `statusChangedAt` (taken as it folds the event, before its
        /// write): a lower bound, beside `milliseconds`, the upper one.
        public var stampedMilliseconds: Latency?
    }

    public struct Result: Codable, Sendable {
        public var mode: String
        public var clients: Int
        public var rate: Double?
        public var mix: String
        public var seconds: Double
        public var requests: Int
        public var requestsPerSecond: Double
        public var orders: Int
        public var ordersPerSecond: Double
        /// By request kind: `place_order`, `cancel_order`; `all` for every request.
        public var latencyMilliseconds: [String: Latency]
        /// By kind: `place_order: http 500`, `cancel_order: timeout`, `unexpected-outcome <scenario>: …`, …
        public var errors: [String: Int]
        public var errorCount: Int
        public var scenarios: [String: ScenarioResult]
        public var saga: SagaResult?
    }

    /// Moments of a run, for a progress line.
    public struct Progress: Sendable {
        public var elapsed: Duration
        public var duration: Duration
        public var requests: Int
        public var errors: Int
    }

    /// Orders' SKUs: stocked ones spread round robin (one SKU for all would measure a single hot
    /// aggregate), and one that is never stocked.
    static let stockedSKUs = 100
    static let unitPrice = 100
    static let emptySKU = "SKU-BENCH-EMPTY"
    static func sku(_ index: Int) -> String { "SKU-BENCH-\(index % Self.stockedSKUs)" }

    public static func run(_ options: Options, mongo: MongoClient?, progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws
        -> Result
    {
        guard !options.saga || mongo != nil else { throw LoadGeneratorError("saga mode reads the orders read model: give it MongoDB") }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: options.clients)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { _ = client.shutdown() }
        let http = Requests(client: client, baseURL: options.baseURL, bearer: options.bearer)

        for index in 0..<Self.stockedSKUs {
            let (status, body) = try await http.send(
                "/inventory/\(Self.sku(index))/restock", #"{"quantity":1000000,"unitPrice":\#(Self.unitPrice)}"#)
            guard status == 202 else {
                throw LoadGeneratorError("restocking \(Self.sku(index)) answered HTTP \(status): \(String(decoding: body, as: UTF8.self))")
            }
        }

        let recorder = Recorder()
        let started = ContinuousClock.now
        let end = started + options.duration
        let loadDone = Flag()
        let watcher: Task<[String: Outcome], any Error>? =
            options.saga
            ? mongo.map { mongo in
                Task {
                    try await Self.watchOutcomes(
                        mongo: mongo, recorder: recorder, loadDone: loadDone, interval: options.outcomePollInterval,
                        settleTimeout: options.settleTimeout, delivery: options.delivery)
                }
            } : nil
        defer { watcher?.cancel() }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                let (requests, errors) = recorder.counts
                progress(Progress(elapsed: ContinuousClock.now - started, duration: options.duration, requests: requests, errors: errors))
            }
        }
        defer { ticker.cancel() }

        if let rate = options.rate {
            let total = Int(rate * options.duration.timeInterval)
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<total {
                    let scheduled = started + .seconds(Double(index) / rate)
                    try? await Task.sleep(until: scheduled)
                    group.addTask {
                        await Self.order(index, options.mix.scenario(for: index), http, recorder, startedAt: scheduled, delivery: options.delivery)
                    }
                }
            }
        } else {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<options.clients {
                    group.addTask {
                        while ContinuousClock.now < end {
                            let index = recorder.nextIndex()
                            await Self.order(index, options.mix.scenario(for: index), http, recorder, startedAt: .now, delivery: options.delivery)
                        }
                    }
                }
            }
        }
        let seconds = (ContinuousClock.now - started).timeInterval
        ticker.cancel()

        loadDone.raise()
        var saga: SagaResult?
        if let watcher {
            saga = recorder.judge(try await watcher.value, delivery: options.delivery)
        }
        return recorder.result(options: options, seconds: seconds, saga: saga)
    }

    /// One order of a scenario: place it (and cancel it), recording each request.
    static func order(
        _ index: Int, _ scenario: Scenario, _ http: Requests, _ recorder: Recorder, startedAt: ContinuousClock.Instant, delivery: Bool = false
    ) async {
        let sku = scenario == .outOfStock ? Self.emptySKU : Self.sku(index)
        let personal =
            delivery
            ? #","customer":{"name":"Bench Customer \#(index % 1000)","email":"bench-\#(index % 1000)@example.org"},"#
                + #""shippingAddress":{"line1":"\#(index) Bench Street","city":"Testville","postalCode":"10115","country":"DE"}"# : ""
        let body =
            #"{"customerId":"bench-\#(index % 1000)","currency":"EUR","lines":[{"sku":"\#(sku)","quantity":1,"unitPrice":\#(Self.unitPrice)}],"paymentToken":"\#(scenario.paymentToken)"\#(personal)}"#
        // The saga's time counts from when the order was due (open loop), not from when its task ran.
        let sentAt = Date().addingTimeInterval(-(ContinuousClock.now - startedAt).timeInterval)
        let placed: String?
        do {
            let (status, data) = try await http.send("/orders", body)
            if status == 202, let id = Self.orderID(in: data) {
                placed = id
                recorder.request("place_order", since: startedAt)
            } else {
                placed = nil
                recorder.failure("place_order", "http \(status)")
            }
        } catch {
            placed = nil
            recorder.failure("place_order", Self.kind(of: error))
        }
        recorder.order(scenario, id: placed, sentAt: sentAt)
        guard scenario == .cancel, let placed else { return }
        let cancelStart = ContinuousClock.now
        do {
            let (status, _) = try await http.send("/orders/\(placed)/cancel", "")
            // 409: the saga ended the order first; the right answer, not a failure.
            if status == 202 || status == 409 {
                recorder.request("cancel_order", since: cancelStart)
            } else {
                recorder.failure("cancel_order", "http \(status)")
            }
        } catch {
            recorder.failure("cancel_order", Self.kind(of: error))
        }
    }

    static func orderID(in data: Data) -> String? {
        struct Placed: Decodable { var orderId: String }
        return try? JSONDecoder().decode(Placed.self, from: data).orderId
    }

    static func kind(of error: any Error) -> String {
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout { return "timeout" }
            return "http client: \(error.shortDescription)"
        }
        return "\(type(of: error))"
    }

    /// Raised once, read from another task (the load has ended).
    final class Flag: Sendable {
        private let value = Atomic(false)
        var isRaised: Bool { self.value.load(ordering: .acquiring) }
        func raise() { self.value.store(true, ordering: .releasing) }
    }

    /// An order's terminal state and when the watcher first saw it.
    struct Outcome: Sendable {
        var view: WatchedOrder
        var seenAt: Date
    }

    /// The fields of an order's read-model document the watcher checks: asked for alone, so the
    /// document server sends a few hundred bytes per ended order instead of the whole view
    /// (timeline, sealed personal data), and decoding them costs the load generator little (whole
    /// views, decoded twice, were a third of its CPU at 100 orders/s, 2026-12-05).
    struct WatchedOrder: Decodable, Sendable {
        struct Fulfilment: Decodable, Sendable { var status: String }
        var orderId: String
        var status: String
        var cancellationReason: String?
        var fulfilment: Fulfilment?
        var statusChangedAt: String?
        var fulfilmentChangedAt: String?

        /// The whole `fulfilment` (a few fields): NX-27017 answers a projection of `fulfilment.status`
        /// with a flat `"fulfilment.status"` key where MongoDB nests it.
        static let projection: Document = [
            "orderId": 1, "status": 1, "cancellationReason": 1, "fulfilment": 1, "statusChangedAt": 1, "fulfilmentChangedAt": 1,
        ]

        /// The shipment reached an end: delivered, failed or skipped.
        var hasShipmentEnded: Bool { self.fulfilment.flatMap { Shipment.Status(rawValue: $0.status) }?.hasEnded ?? false }
    }

    /// Reads the placed orders not yet ended from MongoDB every `interval`, from the start of the load
    /// until each has ended (or `settleTimeout` after the load ended). Only ended orders come back
    /// (`status` is filtered by the server), so each look costs little more than what ended since the
    /// last. A document server that is down or restarting (the chaos run kills it) is asked again a
    /// second later: orders that never end are the finding, not the outage.
    static func watchOutcomes(
        mongo: MongoClient, recorder: Recorder, loadDone: Flag, interval: Duration, settleTimeout: Duration,
        delivery: Bool
    ) async throws -> [String: Outcome] {
        var done: [String: Outcome] = [:]
        var settleDeadline: ContinuousClock.Instant?
        // Made once: it keeps which collection is active for a while, instead of asking every look.
        let collections = ActiveCollections(client: mongo)
        while true {
            // Read before the look: an order placed after it is looked for next time.
            let finished = loadDone.isRaised
            if finished, settleDeadline == nil { settleDeadline = .now + settleTimeout }
            let placed = recorder.placed
            var failed = false
            do {
                let orders = try await collections.collection(OrdersProjection.name)
                let pending = placed.map(\.orderId).filter { done[$0] == nil }
                for start in stride(from: 0, to: pending.count, by: 500) {
                    let chunk = pending[start..<min(start + 500, pending.count)]
                    let views = try await orders.find(
                        Self.endedOrders(among: chunk, delivery: delivery), projection: WatchedOrder.projection, as: WatchedOrder.self)
                    let seenAt = Date()
                    for view in views {
                        if view.status == "CANCELLED" || (view.status == "COMPLETED" && (!delivery || view.hasShipmentEnded)) {
                            done[view.orderId] = Outcome(view: view, seenAt: seenAt)
                        }
                    }
                }
            } catch let error as MongoError {
                failed = true
                FileHandle.standardError.write(Data("the orders read model cannot be read (\(error)); asking again\n".utf8))
            }
            if finished, done.count >= placed.count { return done }
            if let settleDeadline, ContinuousClock.now >= settleDeadline { return done }
            try await Task.sleep(for: failed ? .seconds(1) : interval)
        }
    }
}

extension LoadGenerator.Latency {
    /// Microseconds, 1 µs to an hour, three significant digits.
    static func histogram() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    }

    static func microseconds(_ duration: Duration) -> UInt64 { UInt64(Swift.max(0, duration.timeInterval * 1_000_000)) }

    /// The percentiles of a histogram of microseconds, in milliseconds.
    init(_ histogram: Histogram<UInt64>) {
        func ms(_ micros: UInt64) -> Double { Double(micros) / 1000 }
        guard histogram.totalCount > 0 else {
            self.init(count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0)
            return
        }
        self.init(
            count: histogram.totalCount, p50: ms(histogram.valueAtPercentile(50)), p90: ms(histogram.valueAtPercentile(90)),
            p99: ms(histogram.valueAtPercentile(99)), max: ms(histogram.max), mean: histogram.mean / 1000)
    }

    /// The percentiles of measured durations (the store and read benchmarks).
    init(_ durations: [Duration]) {
        var histogram = Self.histogram()
        for duration in durations { _ = histogram.record(Self.microseconds(duration)) }
        self.init(histogram)
    }
}

public struct LoadGeneratorError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension HTTPClientError {
    /// The error's case name without its payload.
    fileprivate var shortDescription: String { String(describing: self).split(separator: "(").first.map(String.init) ?? "error" }
}

/// The api's routes as the load generator calls them: JSON bodies, the bench's bearer token.
struct Requests: Sendable {
    let client: HTTPClient
    let baseURL: String
    let bearer: String

    func send(_ path: String, _ body: String) async throws -> (status: UInt, body: Data) {
        var request = HTTPClientRequest(url: self.baseURL + path)
        request.method = .POST
        request.headers.add(name: "Authorization", value: self.bearer)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await self.client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (response.status.code, Data(bytes.readableBytesView))
    }
}

/// Everything a run records, shared by its tasks.
final class Recorder: Sendable {
    struct Placed: Sendable {
        var orderId: String
        var scenario: LoadGenerator.Scenario
        var sentAt: Date
    }

    private struct State {
        var latencies: [String: Histogram<UInt64>] = [:]
        var errors: [String: Int] = [:]
        var requests = 0
        var errorCount = 0
        var orders: [LoadGenerator.Scenario: Int] = [:]
        var placed: [Placed] = []
        var scenarioResults: [LoadGenerator.Scenario: (expected: Int, histogram: Histogram<UInt64>)] = [:]
    }

    private let state = Mutex(State())
    private let issued = Atomic<Int>(0)

    /// The next order's index, for clients running flat out.
    func nextIndex() -> Int { self.issued.add(1, ordering: .relaxed).oldValue }

    func request(_ kind: String, since start: ContinuousClock.Instant) {
        let micros = LoadGenerator.Latency.microseconds(ContinuousClock.now - start)
        self.state.withLock { state in
            state.requests += 1
            _ = state.latencies[kind, default: LoadGenerator.Latency.histogram()].record(micros)
            _ = state.latencies["all", default: LoadGenerator.Latency.histogram()].record(micros)
        }
    }

    func failure(_ kind: String, _ reason: String) {
        self.state.withLock { state in
            state.requests += 1
            state.errorCount += 1
            state.errors["\(kind): \(reason)", default: 0] += 1
        }
    }

    func order(_ scenario: LoadGenerator.Scenario, id: String?, sentAt: Date) {
        self.state.withLock { state in
            state.orders[scenario, default: 0] += 1
            if let id { state.placed.append(Placed(orderId: id, scenario: scenario, sentAt: sentAt)) }
        }
    }

    var counts: (requests: Int, errors: Int) { self.state.withLock { ($0.requests, $0.errorCount) } }
    var placed: [Placed] { self.state.withLock { $0.placed } }

    /// Checks each accepted order's terminal status against its scenario and measures placement →
    /// terminal. An order that ended otherwise is an error of kind `unexpected-outcome <scenario>`.
    func judge(_ outcomes: [String: LoadGenerator.Outcome], delivery: Bool = false) -> LoadGenerator.SagaResult {
        self.state.withLock { state in
            var all = LoadGenerator.Latency.histogram()
            var stamped = LoadGenerator.Latency.histogram()
            var completed = 0
            var cancelled = 0
            for placed in state.placed {
                guard let outcome = outcomes[placed.orderId] else { continue }
                let view = outcome.view
                if view.status == "COMPLETED" { completed += 1 } else { cancelled += 1 }
                let expected: Bool =
                    switch placed.scenario {
                    case .happy: view.status == "COMPLETED" && (!delivery || view.fulfilment?.status == "DELIVERED")
                    case .declined: view.status == "CANCELLED" && view.cancellationReason == "PAYMENT_DECLINED"
                    case .outOfStock: view.status == "CANCELLED" && view.cancellationReason == "OUT_OF_STOCK"
                    case .cancel: view.status == "COMPLETED" || view.cancellationReason == "CUSTOMER_REQUEST"
                    }
                var entry = state.scenarioResults[placed.scenario] ?? (0, LoadGenerator.Latency.histogram())
                if expected {
                    entry.expected += 1
                } else {
                    state.errorCount += 1
                    state.errors["unexpected-outcome \(placed.scenario.rawValue): \(view.status) \(view.cancellationReason ?? "")", default: 0] +=
                        1
                }
                let seen = UInt64(max(0, outcome.seenAt.timeIntervalSince(placed.sentAt)) * 1_000_000)
                _ = entry.histogram.record(seen)
                _ = all.record(seen)
                // With delivery, a completed order's stamp is its parcel's last step.
                let stampedAt = delivery && view.status == "COMPLETED" ? view.fulfilmentChangedAt : view.statusChangedAt
                if let changed = stampedAt.flatMap(UTCTime.parse) {
                    _ = stamped.record(UInt64(max(0, changed.timeIntervalSince(placed.sentAt)) * 1_000_000))
                }
                state.scenarioResults[placed.scenario] = entry
            }
            return LoadGenerator.SagaResult(
                completed: completed, cancelled: cancelled, unfinished: state.placed.count - completed - cancelled,
                milliseconds: LoadGenerator.Latency(all), stampedMilliseconds: LoadGenerator.Latency(stamped))
        }
    }

    func result(options: LoadGenerator.Options, seconds: Double, saga: LoadGenerator.SagaResult?) -> LoadGenerator.Result {
        self.state.withLock { state in
            var scenarios: [String: LoadGenerator.ScenarioResult] = [:]
            for (scenario, orders) in state.orders {
                let judged = state.scenarioResults[scenario]
                scenarios[scenario.rawValue] = LoadGenerator.ScenarioResult(
                    orders: orders, accepted: state.placed.count(where: { $0.scenario == scenario }),
                    endedAsExpected: saga == nil ? nil : judged?.expected ?? 0,
                    sagaMilliseconds: saga == nil ? nil : judged.map { LoadGenerator.Latency($0.histogram) })
            }
            var errors = state.errors
            if let saga, saga.unfinished > 0 { errors["unfinished saga", default: 0] += saga.unfinished }
            let orders = state.orders.values.reduce(0, +)
            return LoadGenerator.Result(
                mode: options.rate == nil ? "flat-out" : "fixed-rate", clients: options.clients, rate: options.rate,
                mix: options.mix.description, seconds: seconds, requests: state.requests,
                requestsPerSecond: Double(state.requests) / seconds, orders: orders, ordersPerSecond: Double(orders) / seconds,
                latencyMilliseconds: state.latencies.mapValues(LoadGenerator.Latency.init), errors: errors,
                errorCount: state.errorCount + (saga?.unfinished ?? 0), scenarios: scenarios, saga: saga)
        }
    }
}

extension LoadGenerator {
    /// The filter for the orders among `ids` that have ended, so that a look returns each order about
    /// once. With delivery a paid order ends when its shipment does: asking for every COMPLETED one read
    /// each order on its way to the carrier again every look, and that reading took the document
    /// server's time from the projector (returning a document costs it about 0.15 ms, so 300 orders in
    /// transit read 10 times a second would hold it 45% of the time; 2026-12-05). Only conditions joined
    /// by "and": NX-27017 answers `$or` by scanning the collection in Python (548 ms over 10,000 orders).
    /// A paid order whose shipment is not requested yet has no `fulfilment` and still matches (as in
    /// MongoDB, `$nin` matches a missing field); the caller passes over it until its shipment ends.
    static func endedOrders(among ids: some Collection<String>, delivery: Bool) -> Document {
        let idFilter: Document = ["$in": .array(ids.map { .string($0) })]
        let ended: Document = ["$in": ["COMPLETED", "CANCELLED"]]
        guard delivery else { return ["_id": idFilter, "status": ended] }
        let underway = Shipment.Status.allCases.filter { !$0.hasEnded }.map { Document.string($0.rawValue) }
        return ["_id": idFilter, "status": ended, "fulfilment.status": ["$nin": .array(underway)]]
    }
}
