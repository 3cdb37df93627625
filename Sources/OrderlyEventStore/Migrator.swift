import Foundation
import Logging
import PostgresNIO

public struct Migration: Sendable, Equatable {
    public var version: Int
    public var name: String
    public var sql: String
}

public enum MigrationError: Error, CustomStringConvertible {
    case directoryNotFound(String)
    case badFileName(String)
    case duplicateVersion(Int)

    public var description: String {
        switch self {
        case .directoryNotFound(let path): "migrations directory not found: \(path) (set ORDERLY_MIGRATIONS_DIR)"
        case .badFileName(let name): "migration file \(name) must be named NNNN_description.sql"
        case .duplicateVersion(let version): "two migration files share version \(version)"
        }
    }
}

/// Applies the numbered SQL files of `migrations/` in order, each once, each in its own transaction.
/// An advisory lock makes concurrent runs (two processes starting at once) wait for each other.
public struct Migrator: Sendable {
    /// Arbitrary but fixed: the advisory lock key all `orderly migrate` runs agree on.
    static let advisoryLockKey: Int64 = 0x4F52_4445_524C_5931

    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Finds the migrations folder: `ORDERLY_MIGRATIONS_DIR`, else `./migrations`, else next to the binary.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        dataDirectory("migrations", variable: "ORDERLY_MIGRATIONS_DIR", environment: environment)
    }

    public static func load(from directory: String) throws -> [Migration] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw MigrationError.directoryNotFound(directory)
        }
        var migrations: [Migration] = []
        for name in names.sorted() where name.hasSuffix(".sql") {
            guard let underscore = name.firstIndex(of: "_"), let version = Int(name[..<underscore]) else {
                throw MigrationError.badFileName(name)
            }
            if migrations.contains(where: { $0.version == version }) { throw MigrationError.duplicateVersion(version) }
            let sql = try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
            migrations.append(Migration(version: version, name: name, sql: sql))
        }
        return migrations.sorted { $0.version < $1.version }
    }

    /// Applies what is missing; returns the names of the migrations it applied.
    @discardableResult
    public func migrate(_ migrations: [Migration]) async throws -> [String] {
        try await self.client.withConnection { connection in
            try await connection.run("SELECT pg_advisory_lock(\(Self.advisoryLockKey))", logger: self.logger)
            do {
                let applied = try await self.applyMissing(migrations, on: connection)
                try await connection.run("SELECT pg_advisory_unlock(\(Self.advisoryLockKey))", logger: self.logger)
                return applied
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.advisoryLockKey))", logger: self.logger)
                throw error
            }
        }
    }

    private func applyMissing(_ migrations: [Migration], on connection: PostgresConnection) async throws -> [String] {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
            """, logger: self.logger)
        var done = Set<Int>()
        for try await version in try await connection.query("SELECT version FROM schema_migrations", logger: self.logger)
            .decode(Int.self)
        {
            done.insert(version)
        }
        var applied: [String] = []
        for migration in migrations where !done.contains(migration.version) {
            try await connection.withTransaction(logger: self.logger) { connection in
                for statement in SQLScript.statements(in: migration.sql) {
                    try await connection.run(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: self.logger)
            }
            self.logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
            applied.append(migration.name)
        }
        return applied
    }
}

/// Splits a SQL script into statements, since the extended query protocol takes one at a time.
/// Understands quotes, dollar quoting and comments, so a `;` inside them does not split.
public enum SQLScript {
    public static func statements(in script: String) -> [String] {
        var statements: [String] = []
        var current = ""
        var characters = Array(script)[...]
        while let character = characters.popFirst() {
            switch character {
            case "-" where characters.first == "-":
                while let next = characters.first, next != "\n" { characters.removeFirst() }
            case "'", "\"":
                current.append(character)
                while let next = characters.popFirst() {
                    current.append(next)
                    if next == character { break }
                }
            case "$":
                let tagBody = characters.prefix { $0 != "$" && ($0.isLetter || $0.isNumber || $0 == "_") }
                if characters.dropFirst(tagBody.count).first == "$" {
                    let tag = "$" + String(tagBody) + "$"
                    current.append(tag)
                    characters.removeFirst(tagBody.count + 1)
                    var body = ""
                    while let next = characters.popFirst() {
                        body.append(next)
                        if body.hasSuffix(tag) { break }
                    }
                    current.append(body)
                } else {
                    current.append(character)
                }
            case ";":
                Self.flush(&current, into: &statements)
            default:
                current.append(character)
            }
        }
        Self.flush(&current, into: &statements)
        return statements
    }

    private static func flush(_ current: inout String, into statements: inout [String]) {
        let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !trimmed.isEmpty { statements.append(trimmed) }
        current = ""
    }
}

/// Where a folder of Orderly's data files (`migrations`, `projections`) is: the environment variable,
/// else `./NAME` in the working directory (a checkout), else `../share/orderly/NAME` next to the binary
/// (an installation, the Docker image).
public func dataDirectory(_ name: String, variable: String, environment: [String: String]) -> String {
    if let configured = environment[variable] { return configured }
    let local = FileManager.default.currentDirectoryPath + "/" + name
    if FileManager.default.fileExists(atPath: local) { return local }
    let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").deletingLastPathComponent()
    return executable.appendingPathComponent("../share/orderly/" + name).standardized.path
}
