import Logging
import PostgresNIO

/// One active instance among many (the relay): `whileLeader` runs `body` only while this process holds
/// the lock, waiting for it otherwise.
public protocol LeaderLock: Sendable {
    func whileLeader(_ body: @escaping @Sendable () async throws -> Void) async throws
}

/// A single process is always the leader (in-memory setups and tests).
public struct SoleLeader: LeaderLock {
    public init() {}

    public func whileLeader(_ body: @escaping @Sendable () async throws -> Void) async throws {
        try await body()
    }
}

/// Leadership by a PostgreSQL session advisory lock, held on a connection of its own. When the leader
/// dies its connection closes and the lock is free: a standby polling every `retryInterval` takes over.
/// The leader checks its lock connection every `checkInterval` and stops leading if it broke.
public struct PostgresLeaderLock: LeaderLock {
    let client: PostgresClient
    let key: Int64
    let retryInterval: Duration
    let checkInterval: Duration
    let logger: Logger

    public init(client: PostgresClient, key: Int64, retryInterval: Duration = .seconds(1), checkInterval: Duration = .seconds(1), logger: Logger) {
        self.client = client
        self.key = key
        self.retryInterval = retryInterval
        self.checkInterval = checkInterval
        self.logger = logger
    }

    public func whileLeader(_ body: @escaping @Sendable () async throws -> Void) async throws {
        var announcedStandby = false
        while !Task.isCancelled {
            let led = try await self.client.withConnection { connection in
                try await self.leadIfFree(on: connection, body)
            }
            if led { return }
            if !announcedStandby {
                self.logger.info("standing by: another instance holds the leader lock", metadata: ["lock.key": "\(self.key)"])
                announcedStandby = true
            }
            try await Task.sleep(for: self.retryInterval)
        }
    }

    /// False when another session holds the lock; otherwise runs `body` under it and returns true.
    private func leadIfFree(on connection: PostgresConnection, _ body: @escaping @Sendable () async throws -> Void) async throws -> Bool {
        // Bounded, like every statement here: one sent on a connection that had just closed is
        // never answered, and the relay would stand still for good.
        let acquired = try await self.bounded(on: connection, "the leader lock") {
            var acquired = false
            for try await value in try await connection.query("SELECT pg_try_advisory_lock(\(self.key))", logger: self.logger).decode(Bool.self) {
                acquired = value
            }
            return acquired
        }
        guard acquired else { return false }
        self.logger.info("leading: holding the leader lock", metadata: ["lock.key": "\(self.key)"])
        defer { self.logger.info("no longer leading", metadata: ["lock.key": "\(self.key)"]) }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    // The lock lives and dies with this session; a failed check means it may be gone.
                    while true {
                        try await Task.sleep(for: self.checkInterval)
                        try await self.bounded(on: connection, "the leader lock's check") {
                            try await connection.run("SELECT 1", logger: self.logger)
                        }
                    }
                }
                defer { group.cancelAll() }
                try await group.next()
            }
        } catch {
            await self.release(on: connection)
            throw error
        }
        await self.release(on: connection)
        return true
    }

    /// Gives the lock back, whatever ended the leading: the connection goes back to the pool, and a
    /// session still holding the lock there would keep every instance standing by. If the unlock is
    /// not answered the connection is closed, which ends the session and its lock.
    private func release(on connection: PostgresConnection) async {
        do {
            try await self.bounded(on: connection, "the leader lock's release") {
                try await connection.run("SELECT pg_advisory_unlock(\(self.key))", logger: self.logger)
            }
        } catch {
            try? await connection.close()
        }
    }

    /// `work` on `connection`, answered within 5 s; past that the connection is closed.
    private func bounded<T: Sendable>(on connection: PostgresConnection, _ what: String, _ work: @escaping @Sendable () async throws -> T)
        async throws -> T
    {
        do {
            return try await Deadline.run(within: .seconds(5), timeout: { DeadlinePassed(what, limit: .seconds(5)) }, work)
        } catch let error as DeadlinePassed {
            try? await connection.close()
            throw error
        }
    }
}
