import OrderlyAPI
import Testing

/// Whose X-Forwarded-For names the client: only a trusted proxy's, and then the right-most hop it
/// did not write itself.
@Suite struct TrustedProxiesTests {
    @Test func onlyATrustedPeersHeaderCounts() throws {
        let proxies = try TrustedProxies(parsing: "10.0.0.0/8, 192.168.1.5, fd00::/8")
        #expect(proxies.clientAddress(peer: "203.0.113.1", forwardedFor: ["198.51.100.7"]) == "203.0.113.1")
        #expect(proxies.clientAddress(peer: "10.1.2.3", forwardedFor: ["198.51.100.7"]) == "198.51.100.7")
        #expect(proxies.clientAddress(peer: "192.168.1.5", forwardedFor: ["198.51.100.7, 10.9.9.9"]) == "198.51.100.7")
        #expect(proxies.clientAddress(peer: "fd12::1", forwardedFor: ["2001:db8::5"]) == "2001:db8::5")
        // Spoofed entries left of the first untrusted hop are ignored; several header lines join.
        #expect(proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["1.1.1.1", "198.51.100.7, 10.0.0.2"]) == "198.51.100.7")
        // Every hop trusted: the left-most; garbage stops the walk at the last good hop.
        #expect(proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["10.0.0.3, 10.0.0.2"]) == "10.0.0.3")
        #expect(proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["junk, 198.51.100.7"]) == "198.51.100.7")
        #expect(proxies.clientAddress(peer: "10.0.0.1", forwardedFor: []) == "10.0.0.1")
        #expect(!proxies.trusts("11.0.0.1") && proxies.trusts("10.255.255.255") && !proxies.trusts("192.168.1.6"))
        #expect(!TrustedProxies.none.trusts("127.0.0.1"))
    }

    @Test func aBadEntryIsRefusedNamingIt() {
        for bad in ["10.0.0.0/33", "nginx", "::1/129", "10.0.0.0/x"] {
            #expect(throws: TrustedProxiesError(entry: bad)) { try TrustedProxies(parsing: "127.0.0.1, \(bad)") }
        }
        #expect((try? TrustedProxies(parsing: " ")) == TrustedProxies.none)
    }
}
