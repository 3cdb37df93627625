import Foundation
import OrderlyMessaging
import OrderlyProcesses
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

private let spawnLock = NSLock()

extension Process {
    /// `run()`, one at a time across the whole test process: Foundation's Process.run on Linux is
    /// not safe to call from two threads at once (it crashed in memmove when two tests started
    /// children together).
    func runAlone() throws {
        try spawnLock.withLock { try self.run() }
    }
}

/// A real `orderly` (or broker) process for crash and failover tests: started with settings in its
/// environment, killed with SIGKILL like a crash, its stderr kept in a file to read.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let logFile: URL

    init(executable: String, arguments: [String], environment: [String: String]) throws {
        self.logFile = FileManager.default.temporaryDirectory.appendingPathComponent("orderly-test-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: self.logFile.path, contents: nil)
        let handle = try FileHandle(forWritingTo: self.logFile)
        self.process.executableURL = URL(fileURLWithPath: executable)
        self.process.arguments = arguments
        self.process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        self.process.standardOutput = handle
        self.process.standardError = handle
        try self.process.runAlone()
    }

    /// `orderly SUBCOMMAND` (or another of Orderly's executables) with the test's settings.
    static func orderly(
        _ arguments: [String], settings: Settings, extra: [String: String] = [:], executable: String = "orderly"
    ) throws -> ChildProcess {
        var environment = [
            "ORDERLY_DATABASE_URL": settings.databaseURL, "ORDERLY_KAFKA_BROKERS": settings.kafka.brokers,
            "ORDERLY_MONGO_URI": settings.mongoURI, "ORDERLY_MONGO_DATABASE": settings.mongoDatabase, "ORDERLY_TOPIC": settings.topic,
            "ORDERLY_DEAD_LETTER_TOPIC": settings.deadLetterTopic, "ORDERLY_PROJECTOR_GROUP": settings.projectorGroup,
            "ORDERLY_SERVICE_GROUP_PREFIX": settings.serviceGroupPrefix,
            // The tests' own limits: a child api at the default 50/s refused a flat-out bench (429).
            "ORDERLY_RATE_LIMIT_PER_SECOND": "\(settings.rateLimitPerSecond)", "ORDERLY_RATE_LIMIT_BURST": "\(settings.rateLimitBurst)",
            "ORDERLY_SAGA_DEADLINE_SECONDS": "\(settings.sagaDeadline.components.seconds)",
            "ORDERLY_OPS_PORT": "0", "LOG_LEVEL": "info", "ORDERLY_JWT_SECRET": settings.jwtSecret ?? "",
        ]
        environment.merge(extra) { $1 }
        return try ChildProcess(
            executable: TestServers.repositoryRoot + "/.build/debug/" + executable, arguments: arguments, environment: environment)
    }

    var output: String { (try? String(contentsOf: self.logFile, encoding: .utf8)) ?? "" }

    func kill(_ signal: Int32 = SIGKILL) {
        Glibc.kill(self.process.processIdentifier, signal)
    }

    func stop() {
        if self.process.isRunning {
            self.kill(SIGKILL)
            self.process.waitUntilExit()
        }
    }

    deinit {
        self.stop()
        try? FileManager.default.removeItem(at: self.logFile)
    }
}

/// A private Tansu broker on a port of its own, for tests that take the broker down.
final class PrivateBroker: @unchecked Sendable {
    let port: Int
    /// The port clients are told to use (a proxy in front of the broker), if not `port`.
    let advertisedPort: Int
    private(set) var child: ChildProcess?

    init(port: Int = TestPorts.next(), advertisedPort: Int? = nil) {
        self.port = port
        self.advertisedPort = advertisedPort ?? port
    }

    var brokers: String { "127.0.0.1:\(self.advertisedPort)" }

    func start() throws {
        self.child = try ChildProcess(
            executable: TestServers.repositoryRoot + "/.orderly/run/tansu",
            arguments: [
                "broker", "--listener-url", "tcp://127.0.0.1:\(self.port)", "--advertised-listener-url",
                "tcp://127.0.0.1:\(self.advertisedPort)",
                "--storage-engine", "memory://tansu/",
            ], environment: [:])
    }

    /// Kills the broker (SIGKILL) and starts a new one on the same port: it comes back empty, with
    /// no topics, messages or group offsets (this Tansu keeps them in memory only).
    func restartEmpty() async throws {
        if let child = self.child {
            child.kill(SIGCONT)
            child.kill(SIGKILL)
            await child.process.exited()
        }
        try self.start()
    }

    /// Freezes the broker (it keeps its state but answers nothing) or thaws it.
    func freeze() { self.child?.kill(SIGSTOP) }
    func thaw() { self.child?.kill(SIGCONT) }

    deinit {
        self.child?.kill(SIGCONT)
        self.child?.stop()
    }
}

/// Ports for the tests' own servers (apis, ops endpoints, brokers, Prometheus): below Linux's
/// ephemeral range (32768 and up), where the many client connections of tests running in parallel
/// take their local ports and a random server port there was seen taken ("Address already in
/// use"); never handed out twice in one run; and free when handed out.
enum TestPorts {
    private static let handedOut = Mutex<Set<Int>>([])

    static func next() -> Int {
        while true {
            let port = Int.random(in: 20_000..<32_000)
            guard self.handedOut.withLock({ $0.insert(port).inserted }), self.isFree(port) else { continue }
            return port
        }
    }

    /// Whether 127.0.0.1:port can be bound right now.
    static func isFree(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// Waiting for a child without holding a thread of Swift's cooperative pool: these machines give
/// that pool two threads, and a test blocked in `waitUntilExit` or a pipe read stalls every other
/// test of the run for as long (a tailing reader beside it could then see no progress for a minute).
extension Process {
    func exited() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.waitUntilExit()
                done.resume()
            }
        }
    }
}

extension FileHandle {
    /// Everything up to end of file, read on a thread of its own (see `Process.exited`).
    func readToEndOfFile() async -> Data {
        await withCheckedContinuation { (done: CheckedContinuation<Data, Never>) in
            DispatchQueue.global().async { done.resume(returning: self.readDataToEndOfFile()) }
        }
    }
}
