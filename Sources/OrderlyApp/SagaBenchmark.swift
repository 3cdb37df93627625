import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrderlyDomain
import OrderlyReadModels

/// End-to-end saga latency: places orders over HTTP at a steady rate (open loop: a slow answer does
/// not slow the schedule) and measures, per order, from sending `POST /orders` to `COMPLETED` being
/// visible in the `orders` read model. The projector stamps `statusChangedAt` with its clock when it
/// writes a new status, so no polling interval adds to the figures; client and projector share the
/// machine's clock.
public enum SagaBenchmark {
    public struct Result: Codable, Sendable {
        public var rate: Double
        public var seconds: Double
        public var orders: Int
        public var accepted: Int
        public var errors: [String: Int]
        public var completed: Int
        public var cancelled: Int
        public var unfinished: Int
        public var p50Milliseconds: Double
        public var p90Milliseconds: Double
        public var p99Milliseconds: Double
        public var maxMilliseconds: Double
        public var placeP50Milliseconds: Double
        public var placeP99Milliseconds: Double
    }

    /// Orders spread over this many SKUs, round robin, like a shop's catalogue (one SKU for every
    /// order would measure a single hot aggregate instead).
    public static let skus = 100
    static let unitPrice = 100

    static func sku(_ index: Int) -> String { "SKU-BENCH-\(index % self.skus)" }

    public static func run(
        baseURL: String, bearer: String, mongo: MongoClient, rate: Double, duration: Duration, settleTimeout: Duration
    ) async throws -> Result {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { _ = client.shutdown() }

        for index in 0..<self.skus {
            _ = try await self.post(
                bearer,
                client, "\(baseURL)/inventory/\(self.sku(index))/restock", #"{"quantity":1000000,"unitPrice":\#(self.unitPrice)}"#)
        }
        let total = Int(rate * duration.timeInterval)
        let started = ContinuousClock.now
        let placements = try await withThrowingTaskGroup(of: Placement.self) { group in
            for index in 0..<total {
                try await Task.sleep(until: started + .seconds(Double(index) / rate))
                group.addTask { await self.place(client, baseURL: baseURL, bearer: bearer, index: index) }
            }
            return try await group.reduce(into: [Placement]()) { $0.append($1) }
        }
        let accepted = placements.compactMap { placement -> (String, Date, Duration)? in
            guard case .accepted(let id, let sentAt, let latency) = placement.outcome else { return nil }
            return (id, sentAt, latency)
        }
        var errors: [String: Int] = [:]
        for placement in placements {
            if case .failed(let kind) = placement.outcome { errors[kind, default: 0] += 1 }
        }
        let views = try await self.waitForOutcomes(mongo: mongo, ids: accepted.map(\.0), timeout: settleTimeout)
        var latencies: [Double] = []
        var completed = 0
        var cancelled = 0
        for (id, sentAt, _) in accepted {
            guard let view = views[id] else { continue }
            if view.status == "COMPLETED",
                let changed = view.statusChangedAt.flatMap({ try? Date($0, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) })
            {
                completed += 1
                latencies.append(max(0, changed.timeIntervalSince(sentAt)) * 1000)
            } else if view.status == "CANCELLED" {
                cancelled += 1
            }
        }
        latencies.sort()
        let placeLatencies = accepted.map { $0.2.timeInterval * 1000 }.sorted()
        return Result(
            rate: rate, seconds: duration.timeInterval, orders: total, accepted: accepted.count, errors: errors, completed: completed,
            cancelled: cancelled, unfinished: accepted.count - completed - cancelled, p50Milliseconds: percentile(latencies, 0.5),
            p90Milliseconds: percentile(latencies, 0.9), p99Milliseconds: percentile(latencies, 0.99), maxMilliseconds: latencies.last ?? 0,
            placeP50Milliseconds: percentile(placeLatencies, 0.5), placeP99Milliseconds: percentile(placeLatencies, 0.99))
    }

    struct Placement: Sendable {
        enum Outcome: Sendable {
            case accepted(String, Date, Duration)
            case failed(String)
        }
        var outcome: Outcome
    }

    static func place(_ client: HTTPClient, baseURL: String, bearer: String, index: Int) async -> Placement {
        let body =
            #"{"customerId":"bench-\#(index % 1000)","currency":"EUR","lines":[{"sku":"\#(self.sku(index))","quantity":1,"unitPrice":\#(self.unitPrice)}],"paymentToken":"tok_ok"}"#
        let sentAt = Date()
        let before = ContinuousClock.now
        do {
            let (status, data) = try await self.post(bearer, client, "\(baseURL)/orders", body)
            guard status == 202 else { return Placement(outcome: .failed("http \(status)")) }
            struct Placed: Decodable { var orderId: String }
            let placed = try JSONDecoder().decode(Placed.self, from: data)
            return Placement(outcome: .accepted(placed.orderId, sentAt, ContinuousClock.now - before))
        } catch {
            return Placement(outcome: .failed("\(type(of: error))"))
        }
    }

    static func post(_ bearer: String, _ client: HTTPClient, _ url: String, _ body: String) async throws -> (UInt, Data) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: bearer)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (response.status.code, Data(bytes.readableBytesView))
    }

    /// Reads the orders from MongoDB until each has ended (or `timeout` passes).
    static func waitForOutcomes(mongo: MongoClient, ids: [String], timeout: Duration) async throws -> [String: OrderView] {
        let orders = try await ActiveCollections(client: mongo).collection(OrdersProjection.name)
        var done: [String: OrderView] = [:]
        let deadline = ContinuousClock.now + timeout
        while done.count < ids.count, ContinuousClock.now < deadline {
            let pending = ids.filter { done[$0] == nil }
            for start in stride(from: 0, to: pending.count, by: 500) {
                let chunk = pending[start..<min(start + 500, pending.count)]
                let documents = try await orders.find(["_id": ["$in": .array(chunk.map { .string($0) })]])
                for document in documents {
                    let view = try JSONDecoder().decode(OrderView.self, from: try document.jsonData())
                    if view.status == "COMPLETED" || view.status == "CANCELLED" { done[view.orderId] = view }
                }
            }
            if done.count < ids.count { try await Task.sleep(for: .seconds(1)) }
        }
        return done
    }

    /// The value at `fraction` (0.5: median) of already sorted values; 0 for none.
    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }
}
