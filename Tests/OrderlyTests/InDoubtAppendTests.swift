import Foundation
import OrderlyContracts
import OrderlyDomain
import OrderlyEventStore
import OrderlyProcesses
import PostgresNIO
import Testing

/// The connection to PostgreSQL drops after the server committed an append and before its answer
/// reached Orderly (a proxy cuts it right after the server's reply to the commit): the store must
/// find out that the events are stored and answer their positions, storing nothing twice and
/// reporting no false conflict, whatever the expected version, with or without an idempotency key.
@Suite struct InDoubtAppendTests {
    @Test func anAppendWhoseAnswerWasLostIsStoredOnceAndAnsweredWithItsPositions() async throws {
        let direct = try await TestServers.isolatedSettings()
        let proxy = try FaultyProxy(forwardingTo: try TestServers.databasePort(direct))
        defer { proxy.stop() }
        let settings = try TestServers.settings(direct, databaseThrough: proxy)

        let cases: [(name: String, stream: String, expected: ExpectedVersion, key: String?, versionAfter: Int64)] = [
            ("any", "order-doubt-any", .any, nil, 2),
            ("no stream", "order-doubt-new", .noStream, nil, 2),
            ("exact", "order-doubt-new", .exact(2), nil, 4),
            ("no stream with a key", "order-doubt-key", .noStream, "doubt-key-1", 2),
        ]
        try await TestServers.withPostgres(settings) { client in
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            for (index, testCase) in cases.enumerated() {
                let events = makeEvents(2, correlation: testCase.stream)
                // The group commit's CALL, answered by the server after its COMMIT: that answer is cut.
                proxy.cutAfterServerSends(Array("CALL\0".utf8))
                let result = try await store.append(
                    events, to: testCase.stream, expecting: testCase.expected,
                    idempotency: testCase.key.map { IdempotencyKey(key: $0, request: "r") })
                #expect(proxy.cuts == index + 1, "\(testCase.name): the proxy never cut the answer, so nothing was in doubt")
                #expect(result.streamVersion == testCase.versionAfter, "\(testCase.name)")

                let stored = try await TestServers.withPostgres(direct) { client in
                    var rows: [(UUID, Int64)] = []
                    for try await row in try await client.query(
                        "SELECT event_id, position FROM events WHERE stream_id = \(testCase.stream) ORDER BY position", logger: TestServers.logger
                    ).decode((UUID, Int64).self) {
                        rows.append(row)
                    }
                    return rows
                }
                #expect(stored.count == Int(testCase.versionAfter), "\(testCase.name): \(stored.count) events in the stream")
                let mine = stored.filter { row in events.contains { $0.id == row.0 } }
                #expect(mine.count == 2, "\(testCase.name): the command's events are stored \(mine.count / 2) times")
                #expect(mine.last?.1 == result.position, "\(testCase.name): answered position \(result.position), stored \(mine.map(\.1))")
            }
        }
    }
}
