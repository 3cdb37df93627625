import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Group commit for appends: while a round trip is under way, appends that arrive wait and then go
/// together, in one transaction, through `orderly_append_many` (migrations/0004). Many concurrent
/// writers then share one commit, and its WAL flush, instead of paying one each; a lone writer goes
/// straight through with no added wait. Each command keeps its own outcome: its expected version,
/// its idempotency key, a conflict that writes nothing for it alone. If a whole batch fails (a
/// unique-index race on an idempotency key, a lost connection), each of its commands is tried again
/// on its own, so one command's failure is never another's.
final class GroupCommit: Sendable {
    typealias AppendCall = PostgresEventStore.AppendCall

    struct Pending: Sendable {
        var call: AppendCall
        var expected: ExpectedVersion
        var continuation: CheckedContinuation<AppendResult, any Error>
    }

    struct State {
        var queue: [Pending] = []
        var inFlight = 0
    }

    let client: PostgresClient
    let logger: Logger
    /// Round trips under way at once; appends arriving meanwhile queue for the next one.
    let maxInFlight: Int
    /// Commands per transaction at most.
    let maxBatch: Int
    private let state = Mutex(State())

    init(client: PostgresClient, logger: Logger, maxInFlight: Int = 2, maxBatch: Int = 64) {
        self.client = client
        self.logger = logger
        self.maxInFlight = maxInFlight
        self.maxBatch = maxBatch
    }

    func append(_ call: AppendCall, expected: ExpectedVersion) async throws -> AppendResult {
        // orderly_append_many reads -1 as "any version"; a nonsense version goes alone (a conflict).
        if let version = call.expected, version < 0 {
            return try await PostgresEventStore.appendAlone(call, expected: expected, client: self.client, logger: self.logger)
        }
        return try await withCheckedThrowingContinuation { continuation in
            let batch = self.state.withLock { state -> [Pending]? in
                state.queue.append(Pending(call: call, expected: expected, continuation: continuation))
                guard state.inFlight < self.maxInFlight else { return nil }
                state.inFlight += 1
                return Self.take(&state.queue, upTo: self.maxBatch)
            }
            if let batch { Task { await self.drain(starting: batch) } }
        }
    }

    private static func take(_ queue: inout [Pending], upTo limit: Int) -> [Pending] {
        let batch = Array(queue.prefix(limit))
        queue.removeFirst(batch.count)
        return batch
    }

    /// Sends `batch`, then whatever queued meanwhile, until the queue is empty.
    private func drain(starting batch: [Pending]) async {
        var batch = batch
        while !batch.isEmpty {
            await self.send(batch)
            batch = self.state.withLock { state in
                if state.queue.isEmpty {
                    state.inFlight -= 1
                    return []
                }
                return Self.take(&state.queue, upTo: self.maxBatch)
            }
        }
    }

    private func send(_ batch: [Pending]) async {
        if batch.count == 1, let only = batch.first {
            await Self.resume(only) {
                try await PostgresEventStore.appendAlone(only.call, expected: only.expected, client: self.client, logger: self.logger)
            }
            return
        }
        let outcomes: [Outcome]
        do {
            outcomes = try await self.appendMany(batch.map(\.call))
        } catch {
            self.logger.debug(
                "group commit failed; appending its commands one by one", metadata: ["error": "\(error)", "commands": "\(batch.count)"])
            await withTaskGroup(of: Void.self) { group in
                for pending in batch {
                    group.addTask {
                        await Self.resume(pending) {
                            try await PostgresEventStore.appendAlone(
                                pending.call, expected: pending.expected, client: self.client, logger: self.logger)
                        }
                    }
                }
            }
            return
        }
        for (pending, outcome) in zip(batch, outcomes) {
            switch outcome {
            case .appended(let result):
                pending.continuation.resume(returning: result)
            case .wrongExpectedVersion(let actual):
                pending.continuation.resume(
                    throwing: EventStoreError.wrongExpectedVersion(stream: pending.call.stream, expected: pending.expected, actual: actual))
            case .keyReused:
                pending.continuation.resume(throwing: EventStoreError.idempotencyKeyReused(key: pending.call.idempotencyKey ?? ""))
            }
        }
    }

    private static func resume(_ pending: Pending, with body: () async throws -> AppendResult) async {
        do {
            pending.continuation.resume(returning: try await body())
        } catch {
            pending.continuation.resume(throwing: error)
        }
    }

    enum Outcome {
        case appended(AppendResult)
        case wrongExpectedVersion(actual: Int64)
        case keyReused
    }

    /// One call of `orderly_append_many`: one outcome per command, in command order.
    private func appendMany(_ calls: [AppendCall]) async throws -> [Outcome] {
        var many = AppendManyCall()
        for (index, call) in calls.enumerated() {
            many.streams.append(call.stream)
            many.expected.append(call.expected ?? -1)
            many.counts.append(Int32(call.ids.count))
            many.keys.append(call.idempotencyKey ?? "")
            many.requests.append(call.request ?? "")
            many.eventCommand.append(contentsOf: repeatElement(Int32(index + 1), count: call.ids.count))
            many.ids.append(contentsOf: call.ids)
            many.types.append(contentsOf: call.types)
            many.schemaVersions.append(contentsOf: call.schemaVersions)
            many.data.append(contentsOf: call.data)
            many.metadata.append(contentsOf: call.metadata)
        }
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(calls.count)
        for try await (_, status, version, position, replayed, actual, stream) in try await self.client.execute(many, logger: self.logger) {
            switch status {
            case 1: outcomes.append(.wrongExpectedVersion(actual: actual))
            case 2: outcomes.append(.keyReused)
            default:
                outcomes.append(.appended(AppendResult(streamID: stream, streamVersion: version, position: position, isReplay: replayed)))
            }
        }
        guard outcomes.count == calls.count else { throw GroupCommitError.missingOutcomes(expected: calls.count, got: outcomes.count) }
        return outcomes
    }

    struct AppendManyCall: PostgresPreparedStatement {
        typealias Row = (Int32, Int32, Int64, Int64, Bool, Int64, String)

        static let sql = """
            SELECT out_command, out_status, out_version, out_position, out_replayed, out_actual, out_stream
            FROM orderly_append_many($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text[]::jsonb[], $11::text[]::jsonb[])
            """
        static let bindingDataTypes: [PostgresDataType] = [
            .textArray, .int8Array, .int4Array, .textArray, .textArray, .int4Array, .uuidArray, .textArray, .int4Array, .textArray, .textArray,
        ]

        var streams: [String] = []
        var expected: [Int64] = []
        var counts: [Int32] = []
        var keys: [String] = []
        var requests: [String] = []
        var eventCommand: [Int32] = []
        var ids: [UUID] = []
        var types: [String] = []
        var schemaVersions: [Int32] = []
        var data: [String] = []
        var metadata: [String] = []

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 11)
            bindings.append(self.streams)
            bindings.append(self.expected)
            bindings.append(self.counts)
            bindings.append(self.keys)
            bindings.append(self.requests)
            bindings.append(self.eventCommand)
            bindings.append(self.ids)
            bindings.append(self.types)
            bindings.append(self.schemaVersions)
            bindings.append(self.data)
            bindings.append(self.metadata)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            try row.decode(Row.self)
        }
    }
}

enum GroupCommitError: Error {
    case missingOutcomes(expected: Int, got: Int)
}
