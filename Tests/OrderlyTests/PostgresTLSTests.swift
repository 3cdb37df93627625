import Foundation
import OrderlyProcesses
import PostgresNIO
import Testing

/// TLS to PostgreSQL from `ORDERLY_DATABASE_URL` (`sslmode`, `sslrootcert`), against the local server,
/// which scripts/services starts with a certificate from a CA of its own (`.orderly/postgres/tls`).
@Suite struct PostgresTLSTests {
    static var localCA: String {
        (ProcessInfo.processInfo.environment["ORDERLY_STATE"] ?? TestServers.repositoryRoot + "/.orderly") + "/postgres/tls/ca.pem"
    }

    static func settings(_ query: String) async throws -> Settings {
        var settings = try await TestServers.isolatedSettings()
        settings.databaseURL += "?" + query
        return settings
    }

    /// Whether the session the client got is encrypted, as the server sees it.
    static func encrypted(_ settings: Settings) async throws -> Bool {
        try await settings.withPostgres(logger: TestServers.logger) { client in
            let rows = try await client.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: TestServers.logger)
            for try await ssl in rows.decode(Bool.self) { return ssl }
            return false
        }
    }

    /// A CA that signed nothing the server has, made with openssl here.
    static func strangerCA() async throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orderly-ca-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=A stranger",
            "-keyout", directory.appendingPathComponent("ca.key").path, "-out", directory.appendingPathComponent("ca.pem").path,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.runAlone()
        await process.exited()
        return directory.appendingPathComponent("ca.pem").path
    }

    @Test func verifyFullConnectsWithTheRightCAAndRefusesAWrongOneAtStart() async throws {
        #expect(FileManager.default.fileExists(atPath: Self.localCA), "scripts/services makes \(Self.localCA)")
        #expect(try await Self.encrypted(try await Self.settings("sslmode=verify-full&sslrootcert=\(Self.localCA)")))

        let wrong = try await Self.settings("sslmode=verify-full&sslrootcert=\(try await Self.strangerCA())")
        await #expect {
            try await wrong.checkPostgresTLS(logger: TestServers.logger)
        } throws: { error in
            let text = "\(error)"
            return text.contains("TLS handshake failed") && text.contains("sslrootcert")
        }
        // The command-line tools stop the same way (migrate is the first a deployment runs).
        let migrate = try ChildProcess.orderly(["migrate"], settings: wrong)
        await migrate.process.exited()
        #expect(migrate.process.terminationStatus != 0)
        #expect(migrate.output.contains("TLS handshake failed"), "\(migrate.output.suffix(1000))")
    }

    @Test func requireEncryptsDisableDoesNotAndAMistakeIsNamed() async throws {
        #expect(try await Self.encrypted(try await Self.settings("sslmode=require")))
        #expect(try await !Self.encrypted(try await Self.settings("sslmode=disable")))
        #expect(try await !Self.encrypted(try await TestServers.isolatedSettings()), "no sslmode: as before, unencrypted")
        for (query, named) in [
            ("sslmode=sometimes", "sslmode sometimes"), ("ssl_mode=require", "unknown parameter ssl_mode"),
            ("sslmode=verify-full&sslrootcert=/no/such/ca.pem", "/no/such/ca.pem"),
        ] {
            let settings = try await Self.settings(query)
            #expect {
                try settings.postgresConfiguration()
            } throws: { error in
                "\(error)".contains(named)
            }
        }
    }
}
