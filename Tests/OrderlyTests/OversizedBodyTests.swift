import Foundation
import HummingbirdTesting
import OrderlyAPI
import OrderlyProcesses
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A client that sends a body far over the limit without `Expect: 100-continue` (Python's urllib,
/// many HTTP libraries) writes the whole body before it reads: after the 413 the api must read and
/// throw away the rest or close, so the client's send ends at once instead of blocking until its
/// own timeout.
@Suite struct OversizedBodyTests {
    @Test func aClientSendingEightMebibytesGetsItsAnswerAtOnce() async throws {
        let settings = try await TestServers.isolatedSettings()
        let app = try await Processes.api(settings, logger: TestServers.logger)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let token = try await TestServers.bearer(.admin)
            let outcome = await withCheckedContinuation { (done: CheckedContinuation<RawPostOutcome, Never>) in
                DispatchQueue.global().async { done.resume(returning: rawPost(port: port, bodyBytes: 8 << 20, authorization: token)) }
            }
            #expect(outcome.statusLine.hasPrefix("HTTP/1.1 413"), "answered: \(outcome.statusLine)")
            #expect(outcome.response.contains("body-too-large"))
            #expect(outcome.sendEnded < .seconds(5), "the client's send blocked for \(outcome.sendEnded)")
        }
    }
}

struct RawPostOutcome {
    var statusLine: String
    var response: String
    /// From the first byte sent until the whole body was written or the server closed the connection.
    var sendEnded: Duration
}

/// POST /orders with a `bodyBytes` body over a plain socket, written in full before reading (each
/// blocking call gives up after 20 s), then reads the answer to the end.
func rawPost(port: Int, bodyBytes: Int, authorization: String) -> RawPostOutcome {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var timeout = timeval(tv_sec: 20, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return RawPostOutcome(statusLine: "connect failed", response: "", sendEnded: .zero) }
    let head =
        "POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: \(authorization)\r\nContent-Type: application/json\r\n"
        + "Content-Length: \(bodyBytes)\r\nConnection: close\r\n\r\n"
    let started = ContinuousClock.now
    var payload = Array(head.utf8) + [UInt8](repeating: UInt8(ascii: " "), count: bodyBytes)
    var sent = 0
    while sent < payload.count {
        let written = payload[sent...].withUnsafeMutableBytes { send(descriptor, $0.baseAddress, min($0.count, 65_536), Int32(MSG_NOSIGNAL)) }
        if written <= 0 { break }
        sent += written
    }
    let sendEnded = ContinuousClock.now - started
    payload = []
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16_384)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        response += buffer[0..<count]
    }
    let text = String(decoding: response, as: UTF8.self)
    return RawPostOutcome(statusLine: String(text.prefix { $0 != "\r" }), response: text, sendEnded: sendEnded)
}
