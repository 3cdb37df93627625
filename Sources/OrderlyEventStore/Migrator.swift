import Foundation
import Logging
import OrderlyDomain
import PostgresNIO

public struct Migration: Sendable, Equatable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Of the file's exact text: recorded when it is applied, compared on every later run.
    public var checksum: String { Checksum.fnv1a64(self.sql.utf8) }
}

public enum MigrationError: Error, CustomStringConvertible {
    case directoryNotFound(String)
    case badFileName(String)
    case duplicateVersion(Int)
    /// An applied migration's file no longer has the text that was applied: the database and the
    /// file disagree about the schema, so nothing more is applied until a person looks.
    case changedAfterApplied(name: String, applied: String, now: String)

    public var description: String {
        switch self {
        case .directoryNotFound(let path): "migrations directory not found: \(path) (set ORDERLY_MIGRATIONS_DIR)"
        case .badFileName(let name): "migration file \(name) must be named NNNN_description.sql"
        case .duplicateVersion(let version): "two migration files share version \(version)"
        case .changedAfterApplied(let name, let applied, let now):
            "migration \(name) was changed after it was applied (checksum \(applied) when applied, \(now) now): "
                + "restore the file as it was and put the change in a new migration"
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
        // Databases migrated before checksums were recorded get the column, and their rows the
        // checksum of today's file (taken as the one applied).
        try await connection.query("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text", logger: self.logger)
        var done: [Int: String?] = [:]
        for try await (version, checksum) in try await connection.query(
            "SELECT version, checksum FROM schema_migrations", logger: self.logger
        ).decode((Int, String?).self) {
            done[version] = checksum
        }
        for migration in migrations {
            guard let recorded = done[migration.version] else { continue }
            guard let recorded else {
                try await connection.query(
                    "UPDATE schema_migrations SET checksum = \(migration.checksum) WHERE version = \(migration.version)", logger: self.logger)
                continue
            }
            if recorded != migration.checksum {
                throw MigrationError.changedAfterApplied(name: migration.name, applied: recorded, now: migration.checksum)
            }
        }
        var applied: [String] = []
        for migration in migrations where done[migration.version] == nil {
            try await connection.withTransaction(logger: self.logger) { connection in
                for statement in SQLScript.statements(in: migration.sql) {
                    try await connection.run(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))",
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
