import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The proxies (load balancers) whose `X-Forwarded-For` the api believes, as addresses or CIDR
/// ranges (`ORDERLY_TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1,fd00::/8`). Behind nginx every
/// connection comes from nginx: without this, callers keyed by address would share one bucket; with
/// it, anyone could claim any address unless only the proxies' own header counts.
public struct TrustedProxies: Sendable, Equatable {
    struct Range: Sendable, Equatable {
        var bytes: [UInt8]
        var prefixLength: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == self.bytes.count else { return false }
            var remaining = self.prefixLength
            for (mine, theirs) in zip(self.bytes, address) where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if mine & mask != theirs & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    let ranges: [Range]

    public static let none = TrustedProxies(ranges: [])

    init(ranges: [Range]) {
        self.ranges = ranges
    }

    /// Parses a comma-separated list; an entry that is not an address or a range is an error naming it.
    public init(parsing list: String) throws(TrustedProxiesError) {
        var ranges: [Range] = []
        for entry in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
            guard let bytes = Self.addressBytes(parts[0]) else { throw TrustedProxiesError(entry: entry) }
            var prefix = bytes.count * 8
            if parts.count == 2 {
                guard let length = Int(parts[1]), (0...bytes.count * 8).contains(length) else { throw TrustedProxiesError(entry: entry) }
                prefix = length
            }
            ranges.append(Range(bytes: bytes, prefixLength: prefix))
        }
        self.ranges = ranges
    }

    public func trusts(_ address: String) -> Bool {
        guard let bytes = Self.addressBytes(address) else { return false }
        return self.ranges.contains { $0.contains(bytes) }
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the right-most
    /// address in `X-Forwarded-For` that is not itself a trusted proxy (entries to its left were
    /// written by the client or untrusted hops and prove nothing).
    public func clientAddress(peer: String, forwardedFor: [String]) -> String {
        guard self.trusts(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        var client = peer
        for hop in hops.reversed() {
            guard Self.addressBytes(hop) != nil else { break }
            client = hop
            if !self.trusts(hop) { break }
        }
        return client
    }

    /// The address's bytes (4 for IPv4, 16 for IPv6), or nil when it is not an address.
    static func addressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

public struct TrustedProxiesError: Error, Sendable, Equatable, CustomStringConvertible {
    public var entry: String

    public init(entry: String) {
        self.entry = entry
    }

    public var description: String {
        "ORDERLY_TRUSTED_PROXIES: \(self.entry) is not an IP address or a CIDR range (such as 10.0.0.0/8 or fd00::/8)"
    }
}
