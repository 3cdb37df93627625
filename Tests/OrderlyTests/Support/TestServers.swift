import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import OrderlyAPI
import OrderlyEventStore
import OrderlyMessaging
import OrderlyProcesses
import PostgresNIO
import Testing

/// Where the real local servers are (scripts/test starts them). A missing server fails the test
/// loudly; nothing is skipped.
enum TestServers {
    static let settings = Settings.fromEnvironment()
    static let logger: Logger = {
        var logger = Logger(label: "orderly.tests")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .error
        return logger
    }()

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// The HS256 secret every test api runs with.
    static let jwtSecret = "orderly-test-secret-0123456789abcdef"
    static let paymentTokenKeys = PaymentTokenSealing.generateKeyPair()

    /// `Authorization: Bearer …` for a role, signed with the test secret.
    static func bearer(_ role: Role, subject: String = "tester", issuer: String = "orderly", lifetime: Duration = .seconds(600)) async throws
        -> String
    {
        "Bearer " + (try await TokenAuthority.hmac(secret: jwtSecret, issuer: issuer).mint(subject: subject, role: role, lifetime: lifetime))
    }

    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12))"
    }

    /// Settings pointing at a fresh, migrated PostgreSQL database, a fresh topic, consumer group and
    /// MongoDB database: tests run in parallel without seeing each other's data.
    static func isolatedSettings() async throws -> Settings {
        var settings = self.settings
        let database = uniqueName("orderly_test")
        try await withPostgres(settings) { client in
            try await client.query("CREATE DATABASE \(unescaped: database)", logger: logger)
        }
        guard var url = URLComponents(string: settings.databaseURL) else { throw SettingsError(description: "bad database URL") }
        url.path = "/" + database
        settings.databaseURL = url.string ?? settings.databaseURL
        let migrations = try Migrator.load(from: repositoryRoot + "/migrations")
        try await withPostgres(settings) { client in
            try await Migrator(client: client, logger: logger).migrate(migrations)
        }
        settings.topic = uniqueName("events")
        settings.deadLetterTopic = settings.topic + "-dlq"
        settings.projectorGroup = uniqueName("projector")
        settings.serviceGroupPrefix = uniqueName("saga")
        settings.mongoDatabase = uniqueName("orderly_test")
        settings.httpHost = "127.0.0.1"
        settings.httpPort = 0
        settings.jwtSecret = Self.jwtSecret
        // Tests place orders as fast as they can from one token; the limit itself has its own test.
        settings.rateLimitPerSecond = 100_000
        settings.rateLimitBurst = 100_000
        return settings
    }

    /// Runs `body` with a running PostgresClient for `settings`.
    @discardableResult
    static func withPostgres<T: Sendable>(
        _ settings: Settings, _ body: @Sendable (PostgresClient) async throws -> T
    ) async throws -> T {
        try await settings.withPostgres(logger: logger, body)
    }

    /// Whether `url` answers 200 within `timeout` (a child process's server coming up).
    static func answers(_ url: String, http: HTTPClient, timeout: Duration = .seconds(30)) async throws -> Bool {
        let up = try await self.eventually(timeout: timeout, interval: .milliseconds(200)) { () -> Bool? in
            let response = try? await http.execute(HTTPClientRequest(url: url), timeout: .seconds(2))
            return response?.status == .ok ? true : nil
        }
        return up == true
    }

    /// Polls `probe` until it returns a value or `timeout` passes.
    static func eventually<T>(
        timeout: Duration = .seconds(30), interval: Duration = .milliseconds(100), _ probe: () async throws -> T?
    ) async throws -> T? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let value = try await probe() { return value }
            try await Task.sleep(for: interval)
        }
        return try await probe()
    }
}

extension TestClientProtocol {
    /// `execute` with a bearer token for `role` (admin unless told): every route but the operational
    /// ones needs one.
    func send(
        uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil, as role: Role = .admin,
        subject: String = "tester"
    ) async throws -> TestResponse {
        var headers = headers
        headers[.authorization] = try await TestServers.bearer(role, subject: subject)
        return try await self.execute(uri: uri, method: method, headers: headers, body: body)
    }
}
