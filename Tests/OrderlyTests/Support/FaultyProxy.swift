import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP proxy in front of a real server (PostgreSQL, the document server) that a test can make
/// misbehave: freeze (connections stay open, nothing passes either way, as a hung server or a
/// network partition looks to a client) or cut one connection right after the server sent a given
/// reply (a commit answered by the server that the client never hears of). Plain threads and
/// sockets: each connection has two pumps, one per direction.
final class FaultyProxy: @unchecked Sendable {
    struct State {
        var frozen = false
        /// Down: as a crashed server looks to a client, every open connection is cut and new ones
        /// are closed at once.
        var down = false
        /// When set, the first server→client chunk holding these bytes is not passed on: both sides of
        /// that connection are closed instead, and the trap is spent.
        var cutAfterServerSends: [UInt8]?
        var cuts = 0
        var sockets: Set<Int32> = []
        var stopped = false
    }

    let port: Int
    private let target: Int
    private let listener: Int32
    private let state = Mutex(State())

    init(forwardingTo target: Int) throws {
        self.target = target
        self.port = TestPorts.next()
        self.listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(self.listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(self.port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(self.listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(self.listener, 128) == 0 else {
            close(self.listener)
            throw ProxyError(description: "cannot listen on \(self.port): errno \(errno)")
        }
        let thread = Thread { [self] in self.acceptLoop() }
        thread.start()
    }

    var freezeState: Bool {
        get { self.state.withLock { $0.frozen } }
        set { self.state.withLock { $0.frozen = newValue } }
    }

    func freeze() { self.freezeState = true }
    func thaw() { self.freezeState = false }

    /// Arms the trap: the next server reply holding `bytes` never reaches its client, whose connection ends.
    func cutAfterServerSends(_ bytes: [UInt8]) {
        self.state.withLock { $0.cutAfterServerSends = bytes }
    }

    var cuts: Int { self.state.withLock { $0.cuts } }

    /// Cuts every connection and refuses new ones until `up()`.
    func down() {
        let sockets = self.state.withLock { state in
            state.down = true
            return state.sockets
        }
        for socket in sockets { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    func up() {
        self.state.withLock { $0.down = false }
    }

    /// Safe to call again (tests call it, and so does deinit): only the first call closes the
    /// listener. A second close of its descriptor number closed whatever socket of the test process
    /// had been given that number since (NIO then trapped on EBADF, or a client saw its connection end).
    func stop() {
        let (sockets, first) = self.state.withLock { state in
            defer { state.stopped = true }
            return (state.sockets, !state.stopped)
        }
        guard first else { return }
        shutdown(self.listener, Int32(SHUT_RDWR))
        close(self.listener)
        for socket in sockets { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    deinit { self.stop() }

    private func acceptLoop() {
        while true {
            let client = accept(self.listener, nil, nil)
            guard client >= 0 else { return }
            // Registered at once, so that `down()` cuts it even before it reached the server.
            let (stopped, down) = self.state.withLock { state in
                if !state.stopped && !state.down { state.sockets.insert(client) }
                return (state.stopped, state.down)
            }
            if stopped {
                close(client)
                return
            }
            if down {
                close(client)
                continue
            }
            let thread = Thread { [self] in self.serve(client) }
            thread.start()
        }
    }

    private func serve(_ client: Int32) {
        // A frozen proxy does not even reach the server for a new connection.
        while self.freezeState { usleep(20_000) }
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(self.target)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        // Gone down meanwhile (the client socket was cut then, or is cut now): no connection passes.
        let cutOff = self.state.withLock { state -> Bool in
            if state.down || state.stopped { return true }
            if connected == 0 { state.sockets.insert(server) }
            return false
        }
        guard connected == 0, !cutOff else {
            shutdown(client, Int32(SHUT_RDWR))
            self.state.withLock { _ = $0.sockets.remove(client) }
            close(server)
            close(client)
            return
        }
        let upstream = Thread { [self] in self.pump(from: client, to: server, fromServer: false) }
        upstream.start()
        self.pump(from: server, to: client, fromServer: true)
    }

    private func pump(from source: Int32, to sink: Int32, fromServer: Bool) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        defer {
            shutdown(source, Int32(SHUT_RDWR))
            shutdown(sink, Int32(SHUT_RDWR))
            self.state.withLock {
                $0.sockets.remove(source)
                $0.sockets.remove(sink)
            }
            close(source)
        }
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            while self.freezeState { usleep(20_000) }
            let chunk = Array(buffer[0..<count])
            if fromServer {
                let cut = self.state.withLock { state -> Bool in
                    guard let trap = state.cutAfterServerSends, Self.contains(chunk, trap) else { return false }
                    state.cutAfterServerSends = nil
                    state.cuts += 1
                    return true
                }
                if cut { return }
            }
            var sent = 0
            while sent < chunk.count {
                let written = chunk[sent...].withUnsafeBytes { write(sink, $0.baseAddress, $0.count) }
                guard written > 0 else { return }
                sent += written
            }
        }
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return true
        }
        return false
    }

    private static func loopback(_ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}

struct ProxyError: Error, CustomStringConvertible {
    var description: String
}
