import Foundation
import OrderlyContracts
import OrderlyEventStore
import OrderlyProcesses
import PostgresNIO
import Synchronization
import Testing

/// The same contract, run against the in-memory store and the real PostgreSQL store.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case inMemory, postgres

    var testDescription: String { self.rawValue }

    func withStore(_ body: @Sendable (any EventStore) async throws -> Void) async throws {
        switch self {
        case .inMemory:
            try await body(InMemoryEventStore())
        case .postgres:
            let settings = try await TestServers.isolatedSettings()
            try await TestServers.withPostgres(settings) { client in
                try await body(PostgresEventStore(client: client, logger: TestServers.logger))
            }
        }
    }
}

/// The writing transactions still running in the cluster, oldest first: what holds a tailing reader.
func horizonHolders(_ store: any EventStore) async -> String {
    guard let postgres = store as? PostgresEventStore else { return "not a PostgreSQL store" }
    var lines: [String] = []
    do {
        let rows = try await postgres.client.query(
            """
            SELECT datname::text, backend_xid::text, (now() - xact_start)::text, state, left(query, 120)
            FROM pg_stat_activity WHERE backend_xid IS NOT NULL ORDER BY xact_start
            """, logger: TestServers.logger)
        for try await (database, xid, age, state, query) in rows.decode((String?, String?, String?, String?, String?).self) {
            lines.append("\(database ?? "") xid \(xid ?? "") for \(age ?? "") \(state ?? ""): \(query ?? "")")
        }
    } catch {
        return "could not ask pg_stat_activity: \(error)"
    }
    return lines.isEmpty ? "no writing transaction is running" : "writing transactions: " + lines.joined(separator: "; ")
}

/// The event store contract (OrderlyContracts) over the real PostgreSQL store.
@Suite struct PostgresEventStoreContractTests {
    @Test func openStreamsAreThoseStartedInTheWindowWithoutAnEndEvent() async throws {
        try await StoreKind.postgres.withStore { try await EventStoreContract.openStreamsAreThoseStartedInTheWindowWithoutAnEndEvent($0) }
    }
    @Test func appendThenReadTheStreamBack() async throws {
        try await StoreKind.postgres.withStore { try await EventStoreContract.appendThenReadTheStreamBack($0) }
    }
    @Test func expectedVersionsAreEnforced() async throws {
        try await StoreKind.postgres.withStore { try await EventStoreContract.expectedVersionsAreEnforced($0) }
    }
    @Test func concurrentAppendsWithTheSameExpectedVersionHaveOneWinner() async throws {
        try await StoreKind.postgres.withStore { try await EventStoreContract.concurrentAppendsWithTheSameExpectedVersionHaveOneWinner($0) }
    }
    @Test func readAllReturnsEveryEventOnceInOrderAndResumesFromACursor() async throws {
        try await StoreKind.postgres.withStore { try await EventStoreContract.readAllReturnsEveryEventOnceInOrderAndResumesFromACursor($0) }
    }
    @Test func checkpointsStartAtTheBeginningAndMoveWhenSaved() async throws {
        try await StoreKind.postgres.withStore { try await EventStoreContract.checkpointsStartAtTheBeginningAndMoveWhenSaved($0) }
    }
    @Test func anIdempotencyKeyAppendsOnceAndReplaysTheFirstResult() async throws {
        try await StoreKind.postgres.withStore { try await EventStoreContract.anIdempotencyKeyAppendsOnceAndReplaysTheFirstResult($0) }
    }
    @Test func aFailedAppendDoesNotConsumeItsIdempotencyKey() async throws {
        try await StoreKind.postgres.withStore { try await EventStoreContract.aFailedAppendDoesNotConsumeItsIdempotencyKey($0) }
    }
    @Test func concurrentRequestsWithOneKeyAppendOnce() async throws {
        try await StoreKind.postgres.withStore { try await EventStoreContract.concurrentRequestsWithOneKeyAppendOnce($0) }
    }
}

@Suite struct PostgresEventStoreTests {
    /// 16 writers append thousands of events, some inside deliberately slow transactions, while a
    /// reader tails the log: it must see every committed event exactly once, in order.
    @Test func aTailingReaderSeesEveryEventOnceUnderConcurrentWriters() async throws {
        let settings = try await TestServers.isolatedSettings()
        try await TestServers.withPostgres(settings) { client in
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            let writers = 16
            let appendsPerWriter = 60
            let eventsPerAppend = 3
            let expected = writers * appendsPerWriter * eventsPerAppend
            try await withThrowingTaskGroup(of: [RecordedEvent].self) { group in
                group.addTask { try await readVisible(store, count: expected, limit: 97, explain: horizonHolders) }
                for writer in 0..<writers {
                    group.addTask {
                        for append in 0..<appendsPerWriter {
                            let stream = "order-w\(writer)-\(append % 5)"
                            if writer % 4 == 0 && append % 10 == 0 {
                                // A slow writer: its positions are taken now, its commit comes 150 ms later.
                                try await slowAppend(client, to: stream, events: 3, holding: .milliseconds(150))
                            } else {
                                _ = try await store.append(makeEvents(eventsPerAppend), to: stream, expecting: .any)
                            }
                        }
                        return []
                    }
                }
                var seen: [RecordedEvent] = []
                for try await events in group { seen += events }
                #expect(seen.count == expected)
                #expect(Set(seen.map(\.id)).count == expected)
                #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.cursor < $1.cursor })
                for (stream, events) in Dictionary(grouping: seen, by: \.streamID) {
                    #expect(events.map(\.streamVersion) == Array(1...Int64(events.count)), "stream \(stream) out of order or with gaps")
                }
            }
            let stored = try await client.query("SELECT count(*) FROM events", logger: TestServers.logger)
            for try await count in stored.decode(Int.self) { #expect(count == expected) }
        }
    }

    /// Group commit: writers sharing a few streams (and slow transactions holding them) while a reader
    /// tails. Every stream must come out in version order, every event once; appends must really have
    /// shared transactions; conflicts and idempotency keys keep their meaning per command.
    @Test func groupCommitKeepsEachCommandsMeaningAndStreamOrder() async throws {
        let settings = try await TestServers.isolatedSettings()
        try await TestServers.withPostgres(settings) { client in
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            let writers = 16
            let appendsPerWriter = 40
            let expected = writers * appendsPerWriter * 2
            try await withThrowingTaskGroup(of: [RecordedEvent].self) { group in
                group.addTask { try await readVisible(store, count: expected, limit: 113, explain: horizonHolders) }
                for writer in 0..<writers {
                    group.addTask {
                        for append in 0..<appendsPerWriter {
                            let stream = "order-shared-\((writer + append) % 4)"
                            if writer % 8 == 0 && append % 10 == 0 {
                                // Holds a shared stream for 100 ms after taking its positions.
                                try await slowAppend(client, to: stream, events: 2, holding: .milliseconds(100))
                            } else {
                                _ = try await store.append(makeEvents(2), to: stream, expecting: .any)
                            }
                        }
                        return []
                    }
                }
                var seen: [RecordedEvent] = []
                for try await events in group { seen += events }
                expectEveryEventOnceInStreamOrder(seen, count: expected)
            }
            // Every acknowledged append is in the log, whatever a reader saw.
            for try await stored in try await client.query("SELECT count(*) FROM events", logger: TestServers.logger).decode(Int.self) {
                #expect(stored == expected)
            }
            // Some transactions carried more than one command (two events each).
            var largest = 0
            for try await count in try await client.query(
                "SELECT count(*) FROM events GROUP BY transaction_id ORDER BY 1 DESC LIMIT 1", logger: TestServers.logger
            ).decode(Int.self) {
                largest = count
            }
            #expect(largest > 2, "no two appends ever shared a transaction")

            // Concurrent commands with one expected version: exactly one wins, the rest conflict.
            let racers = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<12 {
                    group.addTask {
                        do {
                            _ = try await store.append(makeEvents(1), to: "order-race-gc", expecting: .noStream)
                            return true
                        } catch EventStoreError.wrongExpectedVersion(_, _, let actual) {
                            #expect(actual == 1)
                            return false
                        }
                    }
                }
                var wins = 0
                for try await won in group where won { wins += 1 }
                return wins
            }
            #expect(racers == 1)

            // One key, same request, many at once: one append, the same answer for all. Another
            // request under that key: refused.
            let answers = try await withThrowingTaskGroup(of: AppendResult.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        try await store.append(
                            makeEvents(1), to: "order-key-gc", expecting: .any, idempotency: IdempotencyKey(key: "gc-1", request: "same"))
                    }
                }
                var answers: [AppendResult] = []
                for try await answer in group { answers.append(answer) }
                return answers
            }
            #expect(Set(answers.map(\.position)).count == 1)
            #expect(answers.filter { !$0.isReplay }.count == 1)
            #expect(try await store.readStream("order-key-gc", from: 1).count == 1)
            // One key, two different requests at once: one request wins; the other is refused every time.
            let mixed = try await withThrowingTaskGroup(of: (String, Bool).self) { group in
                for index in 0..<8 {
                    let request = index % 2 == 0 ? "A" : "B"
                    group.addTask {
                        do {
                            _ = try await store.append(
                                makeEvents(1), to: "order-key-gc2", expecting: .any, idempotency: IdempotencyKey(key: "gc-2", request: request))
                            return (request, true)
                        } catch EventStoreError.idempotencyKeyReused {
                            return (request, false)
                        }
                    }
                }
                var results: [(String, Bool)] = []
                for try await result in group { results.append(result) }
                return results
            }
            let winners = Set(mixed.filter(\.1).map(\.0))
            #expect(winners.count == 1, "\(mixed)")
            #expect(mixed.filter { !$0.1 }.allSatisfy { !winners.contains($0.0) })
            #expect(try await store.readStream("order-key-gc2", from: 1).count == 1)
            await #expect(throws: EventStoreError.idempotencyKeyReused(key: "gc-1")) {
                try await store.append(makeEvents(1), to: "order-key-gc", expecting: .any, idempotency: IdempotencyKey(key: "gc-1", request: "other"))
            }
        }
    }

    /// Two stores on their own connection pools (two api replicas): their batches take no lock and
    /// race on the same streams, so some fail on the unique index and go again one by one. Every
    /// committed event must reach a tailing reader once, each stream in version order without gaps,
    /// and an append that was told "appended" must be there.
    @Test func twoProcessesRacingOnSharedStreamsKeepEveryStreamInOrder() async throws {
        let settings = try await TestServers.isolatedSettings()
        try await TestServers.withPostgres(settings) { first in
            try await TestServers.withPostgres(settings) { second in
                let stores = [
                    PostgresEventStore(client: first, logger: TestServers.logger), PostgresEventStore(client: second, logger: TestServers.logger),
                ]
                let writersPerStore = 5
                let appendsPerWriter = 24
                let expected = stores.count * writersPerStore * appendsPerWriter
                try await withThrowingTaskGroup(of: [RecordedEvent].self) { group in
                    group.addTask { try await readVisible(stores[0], count: expected, limit: 89, explain: horizonHolders) }
                    for store in stores {
                        for writer in 0..<writersPerStore {
                            group.addTask {
                                for append in 0..<appendsPerWriter {
                                    let stream = "stock-\((writer + append) % 3)"
                                    if append % 2 == 0 {
                                        _ = try await store.append(makeEvents(1), to: stream, expecting: .any)
                                        continue
                                    }
                                    // An aggregate's loop: append expecting the version it knows, on a
                                    // conflict take the actual version and try again.
                                    var version: Int64 = 0
                                    while true {
                                        do {
                                            _ = try await store.append(
                                                makeEvents(1), to: stream, expecting: version == 0 ? .noStream : .exact(version))
                                            break
                                        } catch EventStoreError.wrongExpectedVersion(_, _, let actual) {
                                            #expect(actual > version)
                                            version = actual
                                        }
                                    }
                                }
                                return []
                            }
                        }
                    }
                    var seen: [RecordedEvent] = []
                    for try await events in group { seen += events }
                    expectEveryEventOnceInStreamOrder(seen, count: expected)
                }
            }
        }
    }

    /// Group commit keeps a leased connection between batches; when the server drops it, the batch on
    /// it goes one command at a time through the pool and the next batch takes a new connection.
    @Test func appendsGoOnWhenTheServerDropsTheirConnections() async throws {
        let settings = try await TestServers.isolatedSettings()
        try await TestServers.withPostgres(settings) { client in
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            func appendConcurrently(_ count: Int) async throws {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<count { group.addTask { _ = try await store.append(makeEvents(1), to: "order-dropped", expecting: .any) } }
                    try await group.waitForAll()
                }
            }
            try await appendConcurrently(8)
            // From another client, so that every connection of the store's pool goes.
            let dropped = try await TestServers.withPostgres(settings) { other in
                var dropped = 0
                for try await count in try await other.query(
                    """
                    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid()
                    """, logger: TestServers.logger
                ).decode(Int.self) {
                    dropped = count
                }
                return dropped
            }
            #expect(dropped > 0, "no connection of the store was there to drop")
            try await appendConcurrently(24)
            let stream = try await store.readStream("order-dropped", from: 1)
            #expect(stream.map(\.streamVersion) == Array(1...32))
        }
    }

    /// Group-commit lanes hold pooled connections only while batches keep coming: on a pool of two,
    /// which busy lanes fill, an idle store leaves room for anyone else.
    @Test func anIdleStoreGivesItsConnectionsBack() async throws {
        let settings = try await TestServers.isolatedSettings()
        var configuration = try settings.postgresConfiguration()
        configuration.options.maximumConnections = 2
        let client = PostgresClient(configuration: configuration, backgroundLogger: TestServers.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            for _ in 0..<3 {
                try await withThrowingTaskGroup(of: Void.self) { writers in
                    for writer in 0..<8 {
                        writers.addTask { _ = try await store.append(makeEvents(1), to: "order-idle-\(writer)", expecting: .any) }
                    }
                    try await writers.waitForAll()
                }
            }
            try await Task.sleep(for: .seconds(1))
            // A lease that never comes would hang the test, so it is watched from outside.
            let leased = Mutex(false)
            let lease = Task {
                try await client.withConnection { connection in try await connection.run("SELECT 1", logger: TestServers.logger) }
                leased.withLock { $0 = true }
            }
            let answered = try await TestServers.eventually(timeout: .seconds(10)) { leased.withLock { $0 } ? true : nil }
            #expect(answered == true, "the store kept both connections of the pool while idle")
            if answered != true { lease.cancel() }
        }
    }

    /// An append is acknowledged only once its transaction has committed. PostgreSQL commits an
    /// extended-protocol statement at the Sync after it, while postgres-nio ends the rows at the
    /// statement's CommandComplete, before that: a commit that then failed (here a deferred trigger;
    /// in life a server crash before the WAL flush) was reported as a success.
    @Test func anAppendWhoseCommitFailsIsNotAcknowledged() async throws {
        let settings = try await TestServers.isolatedSettings()
        try await TestServers.withPostgres(settings) { client in
            try await client.run(
                """
                CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.stream_id = 'order-refused' THEN RAISE EXCEPTION 'refused at commit'; END IF;
                    RETURN NULL;
                END $$
                """, logger: TestServers.logger)
            try await client.run(
                """
                CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()
                """, logger: TestServers.logger)
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            for round in 0..<3 {
                // Alone, and beside appends that share its transaction.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        await #expect(throws: (any Error).self) {
                            try await store.append(makeEvents(1), to: "order-refused", expecting: .any)
                        }
                    }
                    for writer in 0..<(round * 3) {
                        group.addTask { _ = try await store.append(makeEvents(1), to: "order-fine-\(writer)", expecting: .any) }
                    }
                    try await group.waitForAll()
                }
            }
            #expect(try await store.readStream("order-refused", from: 1).isEmpty)
            #expect(try await store.readStream("order-fine-0", from: 1).count == 2)
            #expect(try await store.append(makeEvents(1), to: "order-fine-0", expecting: .exact(2)).streamVersion == 3)
        }
    }

    /// A writer that took a position but has not committed must hold readers back, not be skipped.
    @Test func aSlowTransactionIsWaitedForNotSkipped() async throws {
        let settings = try await TestServers.isolatedSettings()
        try await TestServers.withPostgres(settings) { client in
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            try await client.withConnection { slow in
                try await slow.query("BEGIN", logger: TestServers.logger)
                try await slow.query(
                    """
                    INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
                    VALUES (gen_random_uuid(), 'order-slow', 1, 'Tested', '{}', '{}')
                    """, logger: TestServers.logger)
                // A faster writer commits a higher position while the slow one is still open.
                _ = try await store.append(makeEvents(1), to: "order-fast", expecting: .noStream)
                #expect(try await store.readAll(after: .start, limit: 10).isEmpty)
                try await slow.query("COMMIT", logger: TestServers.logger)
            }
            let all = try await readVisible(store, count: 2, explain: horizonHolders)
            #expect(all.map(\.streamID) == ["order-slow", "order-fast"])
        }
    }

    @Test func migratingTwiceAndConcurrentlyIsSafe() async throws {
        let settings = try await TestServers.isolatedSettings()
        let migrations = try Migrator.load(from: TestServers.repositoryRoot + "/migrations")
        try await TestServers.withPostgres(settings) { client in
            let migrator = Migrator(client: client, logger: TestServers.logger)
            async let first = migrator.migrate(migrations)
            async let second = migrator.migrate(migrations)
            #expect(try await first.isEmpty)
            #expect(try await second.isEmpty)
            let rows = try await client.query("SELECT count(*) FROM schema_migrations", logger: TestServers.logger)
            for try await count in rows.decode(Int.self) { #expect(count == migrations.count) }
        }
    }

    /// An applied migration edited afterwards stops `migrate` naming it, before anything else is
    /// applied; rows from before checksums were recorded take today's file's checksum.
    @Test func aMigrationChangedAfterItWasAppliedStopsMigrateNamingIt() async throws {
        let settings = try await TestServers.isolatedSettings()
        let migrations = try Migrator.load(from: TestServers.repositoryRoot + "/migrations")
        try await TestServers.withPostgres(settings) { client in
            let migrator = Migrator(client: client, logger: TestServers.logger)
            try await client.query("UPDATE schema_migrations SET checksum = NULL", logger: TestServers.logger)
            #expect(try await migrator.migrate(migrations).isEmpty)
            let rows = try await client.query("SELECT count(*) FROM schema_migrations WHERE checksum IS NOT NULL", logger: TestServers.logger)
            for try await count in rows.decode(Int.self) { #expect(count == migrations.count) }

            var changed = migrations
            let edited = changed[1].name
            changed[1].sql += "\n-- a harmless-looking edit\n"
            changed.append(Migration(version: 9999, name: "9999_after.sql", sql: "CREATE TABLE after_the_edit (id int)"))
            do {
                try await migrator.migrate(changed)
                Issue.record("an edited migration was accepted")
            } catch let error as MigrationError {
                #expect("\(error)".contains(edited), "\(error)")
                #expect("\(error)".contains("changed after it was applied"))
            }
            let tables = try await client.query("SELECT count(*) FROM pg_tables WHERE tablename = 'after_the_edit'", logger: TestServers.logger)
            for try await count in tables.decode(Int.self) { #expect(count == 0, "a later migration was applied after the refusal") }
        }
    }

    @Test func concurrentFirstMigrationsApplyEachFileOnce() async throws {
        var settings = TestServers.settings
        let database = TestServers.uniqueName("orderly_test")
        try await TestServers.withPostgres(settings) { client in
            try await client.query("CREATE DATABASE \(unescaped: database)", logger: TestServers.logger)
        }
        var url = try #require(URLComponents(string: settings.databaseURL))
        url.path = "/" + database
        settings.databaseURL = try #require(url.string)
        let migrations = try Migrator.load(from: TestServers.repositoryRoot + "/migrations")
        try await TestServers.withPostgres(settings) { client in
            let applied = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<3 { group.addTask { try await Migrator(client: client, logger: TestServers.logger).migrate(migrations) } }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(applied == migrations.map(\.name))
        }
    }
}

/// `orderly_append` of `events` events in a transaction that commits only after `holding`: its
/// positions (and its stream) are taken now, its events become visible later. Like the store's own
/// single appends it tries again when a lock-free group commit wrote the stream's next version first
/// (a unique violation); its rows are read, so an error the function raises is not lost (it once was:
/// the aborted transaction's COMMIT rolled back in silence and the test saw one append missing).
func slowAppend(_ client: PostgresClient, to stream: String, events: Int, holding: Duration) async throws {
    let count = Int32(events)
    for attempt in 1... {
        do {
            try await client.withTransaction(logger: TestServers.logger) { connection in
                try await connection.run(
                    """
                    SELECT orderly_append(\(stream), NULL, (SELECT array_agg(gen_random_uuid()) FROM generate_series(1, \(count))),
                        array_fill('Tested'::text, ARRAY[\(count)]), array_fill(1, ARRAY[\(count)]), array_fill('{}'::jsonb, ARRAY[\(count)]),
                        array_fill('{}'::jsonb, ARRAY[\(count)]), NULL, NULL)
                    """, logger: TestServers.logger)
                try await Task.sleep(for: holding)
            }
            return
        } catch let error as PostgresTransactionError where attempt < 8 {
            guard let failure = error.closureError as? PSQLError, failure.serverInfo?[.sqlState] == "23505" else { throw error }
        }
    }
}
