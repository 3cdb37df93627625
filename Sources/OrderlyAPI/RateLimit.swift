import Foundation
import HTTPTypes
import Hummingbird
import OrderlyDomain
import Synchronization

/// Token buckets per caller: `ratePerSecond` commands a second on average, `burst` at once. A
/// caller is the token's subject, or the client address without a token. In memory, per api
/// replica: behind a balancer each replica allows the rate on its own.
public final class RateLimiter: Sendable {
    public let ratePerSecond: Double
    public let burst: Double
    private let buckets = Mutex<[String: Bucket]>([:])

    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    public init(ratePerSecond: Double, burst: Double) {
        self.ratePerSecond = ratePerSecond
        self.burst = max(1, burst)
    }

    /// Takes one token for `caller`: nil when allowed, else how long until one is there.
    public func take(for caller: String, now: ContinuousClock.Instant = .now) -> Duration? {
        self.buckets.withLock { buckets in
            if buckets.count > 100_000 { Self.forgetIdle(&buckets, now: now, rate: self.ratePerSecond, burst: self.burst) }
            var bucket = buckets[caller] ?? Bucket(tokens: self.burst, updated: now)
            let elapsed = (now - bucket.updated).timeInterval
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.ratePerSecond)
            bucket.updated = now
            defer { buckets[caller] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return .milliseconds(Int64(((1 - bucket.tokens) / self.ratePerSecond * 1000).rounded(.up)))
        }
    }

    /// Buckets that have filled up again hold no information: drop them so memory stays bounded.
    private static func forgetIdle(_ buckets: inout [String: Bucket], now: ContinuousClock.Instant, rate: Double, burst: Double) {
        buckets = buckets.filter { _, bucket in bucket.tokens + (now - bucket.updated).timeInterval * rate < burst }
    }
}

/// Limits command routes (POST) per caller (the token's subject; without one, the client's address,
/// from `X-Forwarded-For` only when a trusted proxy sent it); answers 429 `rate-limited` with `Retry-After` in whole
/// seconds. Queries are not limited.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = OrderlyRequestContext
    let limiter: RateLimiter
    let trustedProxies: TrustedProxies

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post else { return try await next(request, context) }
        let forwardedFor = HTTPField.Name("X-Forwarded-For").map { request.headers[values: $0] } ?? []
        let caller =
            context.principal.map { "sub:\($0.subject)" }
            ?? "addr:\(self.trustedProxies.clientAddress(peer: context.clientAddress, forwardedFor: forwardedFor))"
        if let wait = self.limiter.take(for: caller) {
            let seconds = max(1, Int(wait.timeInterval.rounded(.up)))
            var problem = Problem(
                status: .tooManyRequests, type: "rate-limited", title: "Too many requests",
                detail:
                    "at most \(Self.describe(self.limiter.ratePerSecond)) commands a second (bursts of \(Int(self.limiter.burst))); retry after \(seconds) s"
            )
            problem.headers[.retryAfter] = String(seconds)
            throw problem
        }
        return try await next(request, context)
    }

    static func describe(_ rate: Double) -> String {
        rate == rate.rounded() ? String(Int(rate)) : String(format: "%.2f", rate)
    }
}
