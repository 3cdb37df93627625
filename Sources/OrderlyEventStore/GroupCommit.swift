import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Group commit for appends: while a round trip is under way, appends that arrive wait and then go
/// together, in one transaction, as one statement (`AppendBatch`). Many concurrent writers then
/// share one commit, and its WAL flush, instead of paying one each; a lone writer goes straight
/// through with no added wait. Each command keeps its own outcome: its expected version, its
/// idempotency key, a conflict that writes nothing for it alone.
///
/// The batch statement is optimistic: it takes no lock, reads each stream's version in its snapshot
/// and lets the unique indexes (stream and version; idempotency key) catch a concurrent writer. If a
/// whole batch fails that way (or on a lost connection), each of its commands is tried again on its
/// own through `orderly_append`, which waits for its stream's lock, so one command's failure is never
/// another's and a contended stream still makes progress. A command is answered only once its
/// transaction has committed (migrations/0006).
///
/// Round trips go out on lanes, at most `maxInFlight`: a lane holds one pooled connection and sends
/// batch after batch on it, parked in between, until it has waited `laneIdleLimit` for one.
final class GroupCommit: Sendable {
    typealias AppendCall = PostgresEventStore.AppendCall

    struct Pending: Sendable {
        var call: AppendCall
        var expected: ExpectedVersion
        var continuation: CheckedContinuation<AppendResult, any Error>
    }

    /// A lane waiting, on its leased connection, for its next batch (nil: it has been idle too long).
    struct ParkedLane {
        var continuation: CheckedContinuation<[Pending]?, Never>
        var since: ContinuousClock.Instant
    }

    /// What an arriving append sets going: a parked lane woken with a batch, or a new lane.
    enum Start {
        case wake(CheckedContinuation<[Pending]?, Never>, [Pending])
        case newLane([Pending], startReaper: Bool)
    }

    struct State {
        var scheduler = BatchScheduler<Pending>()
        /// Lanes parked waiting for their next batch (each other lane is sending one of the
        /// scheduler's round trips), and whether the task that ends lanes idle for `laneIdleLimit` runs.
        var parked: [ParkedLane] = []
        var reaperRunning = false
    }

    let client: PostgresClient
    let logger: Logger
    /// Round trips under way at once; appends arriving meanwhile queue for the next one. Two: at 8
    /// writers, 1 left the database idle while answers came back, 3 or more split the writers into
    /// smaller batches and cost more than they overlapped (measured with `orderly bench store`).
    let maxInFlight: Int
    /// How long a batch may wait for its answer before its connection is taken for dead.
    static let batchDeadline: Duration = .seconds(15)
    /// Commands per transaction at most.
    let maxBatch: Int
    /// How long a lane keeps its connection with nothing to send.
    let laneIdleLimit: Duration
    /// How long a command may wait for a connection before it fails unsent (`unavailable`).
    let connectionWait: Duration
    private let state = Mutex(State())

    init(
        client: PostgresClient, logger: Logger, maxInFlight: Int = 2, maxBatch: Int = 64, laneIdleLimit: Duration = .milliseconds(250),
        connectionWait: Duration = .seconds(4)
    ) {
        self.client = client
        self.logger = logger
        self.maxInFlight = maxInFlight
        self.maxBatch = maxBatch
        self.laneIdleLimit = laneIdleLimit
        self.connectionWait = connectionWait
    }

    func append(_ call: AppendCall, expected: ExpectedVersion) async throws -> AppendResult {
        // The batch reads -1 as "any version"; a nonsense version goes alone (a conflict).
        if let version = call.expected, version < 0 {
            return try await PostgresEventStore.appendAlone(
                call, expected: expected, client: self.client, connectionWait: self.connectionWait, logger: self.logger)
        }
        return try await withCheckedThrowingContinuation { continuation in
            let start = self.state.withLock { state -> Start? in
                state.scheduler.queue.append(Pending(call: call, expected: expected, continuation: continuation))
                guard let batch = state.scheduler.takeIfDue(maxInFlight: self.maxInFlight, maxBatch: self.maxBatch) else { return nil }
                if let lane = state.parked.popLast() { return .wake(lane.continuation, batch) }
                // A batch is due only below maxInFlight, so with no lane parked fewer than maxInFlight live.
                let startReaper = !state.reaperRunning
                state.reaperRunning = true
                return .newLane(batch, startReaper: startReaper)
            }
            switch start {
            case .wake(let lane, let batch):
                lane.resume(returning: batch)
            case .newLane(let batch, let startReaper):
                Task { await self.runLane(first: batch) }
                if startReaper { Task { await self.endIdleLanes() } }
            case nil:
                break
            }
        }
    }

    /// A lane sends batches one after another on one leased connection for as long as they keep
    /// coming. Leasing a connection, starting a task and the pool's idle timers for every batch cost
    /// the client more CPU than encoding and sending the batch itself (perf on `orderly bench store`).
    private func runLane(first: [Pending]) async {
        var next: [Pending]? = first
        while let batch = next {
            next = await self.sendOnOneConnection(startingWith: batch)
        }
    }

    /// Sends `first` and the batches after it on one connection; gives the connection back after a
    /// failed batch or when the server closed it, and returns the batch still to send, or nil once
    /// the lane has been idle for `laneIdleLimit`.
    private func sendOnOneConnection(startingWith first: [Pending]) async -> [Pending]? {
        do {
            return try await self.client.withConnection(leasedWithin: self.connectionWait) { connection in
                var batch = first
                // A statement written to a connection already closed is never answered (postgres-nio
                // fails only those under way when it closes), so a lane checks before each batch: the
                // server may have dropped the connection while the lane waited.
                while !connection.isClosed {
                    let sent = await self.send(batch, on: connection)
                    guard let next = await self.nextBatch(after: batch) else { return nil }
                    guard sent else { return next }
                    batch = next
                }
                return batch
            }
        } catch let error as EventStoreError {
            // No connection within the bound (the database is down): this batch and every command
            // queued behind it fail now, unsent, so none is appended later when the server is back,
            // long after its caller gave up.
            self.logger.warning("no connection to the event store; failing the waiting appends", metadata: ["error": "\(error)"])
            let queued = self.state.withLock { state in
                defer { state.scheduler.queue.removeAll() }
                return state.scheduler.queue
            }
            for pending in first + queued { pending.continuation.resume(throwing: error) }
            return await self.nextBatch(after: first)
        } catch {
            // The connection failed under a batch (which `send` already settled) or could not be
            // made: each command still waiting goes on its own, with its own error.
            await self.appendOneByOne(first, after: error)
            return await self.nextBatch(after: first)
        }
    }

    /// Marks `finished` done and waits for the lane's next batch: at once if one is due, else parked
    /// until an append makes one due, or nil when the lane is ended for idleness.
    private func nextBatch(after finished: [Pending]) async -> [Pending]? {
        await withCheckedContinuation { (continuation: CheckedContinuation<[Pending]?, Never>) in
            let batch = self.state.withLock { state -> [Pending]? in
                state.scheduler.finished(finished)
                if let batch = state.scheduler.takeIfDue(maxInFlight: self.maxInFlight, maxBatch: self.maxBatch) { return batch }
                state.parked.append(ParkedLane(continuation: continuation, since: .now))
                return nil
            }
            if let batch { continuation.resume(returning: batch) }
        }
    }

    /// Ends lanes parked for longer than `laneIdleLimit`, so an idle store holds no connection; one
    /// timer for all lanes, not one per batch. Stops when no lane is left.
    private func endIdleLanes() async {
        while true {
            try? await Task.sleep(for: self.laneIdleLimit)
            let (ended, done) = self.state.withLock { state in
                let now = ContinuousClock.now
                let ended = state.parked.filter { now - $0.since >= self.laneIdleLimit }.map(\.continuation)
                state.parked.removeAll { now - $0.since >= self.laneIdleLimit }
                let noLaneLeft = state.scheduler.inFlight == 0 && state.parked.isEmpty
                if noLaneLeft { state.reaperRunning = false }
                return (ended, noLaneLeft)
            }
            for lane in ended { lane.resume(returning: nil) }
            if done { return }
        }
    }

    /// Sends one batch on `connection` and resumes each command's caller; false if the batch failed
    /// as a whole (its commands then went one by one through the pool).
    private func send(_ batch: [Pending], on connection: PostgresConnection) async -> Bool {
        let outcomes: [Outcome]
        do {
            // Bounded: a batch written to a connection the server dropped without a word is never
            // answered. Past the bound the connection is closed and the batch settled like one whose
            // connection broke (each command on its own, found by its event ids if it was stored).
            let calls = batch.map(\.call)
            outcomes = try await Deadline.run(within: Self.batchDeadline, timeout: { DeadlinePassed("a group commit", limit: Self.batchDeadline) }) {
                try await self.appendMany(calls, on: connection)
            }
        } catch let error as DeadlinePassed {
            try? await connection.close()
            await self.appendOneByOne(batch, after: error)
            return false
        } catch let error as GroupCommitError {
            // An answer came, so the batch committed: appending its commands again would store them
            // twice. Each caller gets the error instead.
            for pending in batch { pending.continuation.resume(throwing: error) }
            return true
        } catch {
            await self.appendOneByOne(batch, after: error)
            return false
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
        return true
    }

    /// After a batch failed as a whole (a unique-index race, a lost connection), each command is
    /// appended on its own, so one command's failure is never another's.
    private func appendOneByOne(_ batch: [Pending], after error: any Error) async {
        self.logger.debug(
            "group commit failed; appending its commands one by one", metadata: ["error": "\(error)", "commands": "\(batch.count)"])
        await withTaskGroup(of: Void.self) { group in
            for pending in batch {
                group.addTask {
                    await Self.resume(pending) {
                        try await PostgresEventStore.appendAlone(
                            pending.call, expected: pending.expected, client: self.client, connectionWait: self.connectionWait,
                            logger: self.logger)
                    }
                }
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

    /// One execution of `AppendBatch`: one outcome per command, in command order.
    private func appendMany(_ calls: [AppendCall], on connection: PostgresConnection) async throws -> [Outcome] {
        var many = AppendBatch()
        for (index, call) in calls.enumerated() {
            many.streams.append(call.stream)
            many.expected.append(call.expected ?? -1)
            many.counts.append(Int32(call.ids.count))
            many.keys.append(call.idempotencyKey ?? "")
            many.requests.append(call.request ?? "")
            many.eventCommand.append(contentsOf: repeatElement(Int32(index + 1), count: call.ids.count))
            many.eventStep.append(contentsOf: 1...Int32(call.ids.count))
            many.ids.append(contentsOf: call.ids)
            many.types.append(contentsOf: call.types)
            many.schemaVersions.append(contentsOf: call.schemaVersions)
            many.data.append(contentsOf: call.data)
            many.metadata.append(contentsOf: call.metadata)
        }
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(calls.count)
        for try await (statuses, versions, positions, replays, actuals, streams) in try await connection.execute(many, logger: self.logger) {
            guard [statuses.count, versions.count, positions.count, replays.count, actuals.count, streams.count].allSatisfy({ $0 == calls.count })
            else { throw GroupCommitError.missingOutcomes(expected: calls.count, got: statuses.count) }
            for index in 0..<calls.count {
                switch statuses[index] {
                case 1: outcomes.append(.wrongExpectedVersion(actual: actuals[index]))
                case 2: outcomes.append(.keyReused)
                default:
                    let result = AppendResult(
                        streamID: streams[index], streamVersion: versions[index], position: positions[index], isReplay: replays[index])
                    outcomes.append(.appended(result))
                }
            }
        }
        guard outcomes.count == calls.count else { throw GroupCommitError.missingOutcomes(expected: calls.count, got: outcomes.count) }
        return outcomes
    }

    /// One CALL of `orderly_append_batch_committed` (migrations/0006), which runs
    /// `orderly_append_batch` (0005): the appends of many commands as one statement, with no lock, the
    /// unique indexes catching concurrent writers (why that keeps each stream in version order for
    /// tailing readers is in 0005), then COMMITs before it answers, so an answer means the events are
    /// stored (postgres-nio ends a statement's rows before the implicit commit that follows it).
    /// Streams and keys are distinct within a batch (`take`); if they were not, the unique indexes
    /// would fail the batch and its commands would go one by one.
    struct AppendBatch: PostgresPreparedStatement {
        /// Each command's status, version, position, replayed flag, actual version and stream.
        typealias Row = ([Int32], [Int64], [Int64], [Bool], [Int64], [String])

        static let sql = """
            CALL orderly_append_batch_committed(
                $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text[]::jsonb[], $12::text[]::jsonb[], NULL, NULL, NULL, NULL, NULL, NULL)
            """
        static let bindingDataTypes: [PostgresDataType] = [
            .textArray, .int8Array, .int4Array, .textArray, .textArray, .int4Array, .int4Array, .uuidArray, .textArray, .int4Array,
            .textArray, .textArray,
        ]

        var streams: [String] = []
        var expected: [Int64] = []
        var counts: [Int32] = []
        var keys: [String] = []
        var requests: [String] = []
        var eventCommand: [Int32] = []
        var eventStep: [Int32] = []
        var ids: [UUID] = []
        var types: [String] = []
        var schemaVersions: [Int32] = []
        var data: [String] = []
        var metadata: [String] = []

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 12)
            bindings.append(self.streams)
            bindings.append(self.expected)
            bindings.append(self.counts)
            bindings.append(self.keys)
            bindings.append(self.requests)
            bindings.append(self.eventCommand)
            bindings.append(self.eventStep)
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

/// What the group commit needs to know of a command to batch it.
protocol BatchedCommand {
    var stream: String { get }
    var idempotencyKey: String? { get }
}

extension GroupCommit.Pending: BatchedCommand {
    var stream: String { self.call.stream }
    var idempotencyKey: String? { self.call.idempotencyKey }
}

/// Which waiting commands go in the next round trip, and when. Pure, so its rules are tested
/// without a database.
struct BatchScheduler<Command: BatchedCommand> {
    var queue: [Command] = []
    /// Round trips under way, the commands they carry, and their streams and idempotency keys.
    var inFlight = 0
    var inFlightCommands = 0
    var busyStreams: Set<String> = []
    var busyKeys: Set<String> = []

    /// The next batch, if one should start now: always when nothing is under way; beside a
    /// round trip under way only once the queue holds as many commands as that one carries.
    /// Taking whatever waits whenever a connection is free split 8 writers into ever smaller
    /// batches (2.6 a transaction); holding back keeps two even halves that overlap.
    mutating func takeIfDue(maxInFlight: Int, maxBatch: Int) -> [Command]? {
        guard !self.queue.isEmpty, self.inFlight < maxInFlight else { return nil }
        if self.inFlight > 0, self.queue.count < self.inFlightCommands / self.inFlight { return nil }
        let batch = self.take(upTo: maxBatch)
        guard !batch.isEmpty else { return nil }
        self.inFlight += 1
        self.inFlightCommands += batch.count
        return batch
    }

    mutating func finished(_ batch: [Command]) {
        self.inFlight -= 1
        self.inFlightCommands -= batch.count
        for pending in batch {
            self.busyStreams.remove(pending.stream)
            if let key = pending.idempotencyKey { self.busyKeys.remove(key) }
        }
    }

    /// Up to `limit` commands from the front of the queue, at most one per stream and per
    /// idempotency key, none whose stream or key a round trip under way carries: two on one
    /// stream would read the same version and one would fail; this way a stream's commands go
    /// one round trip after another, in order. Sorted by stream, so every batch inserts in one
    /// global order and two batches never wait for each other's rows in a cycle.
    private mutating func take(upTo limit: Int) -> [Command] {
        var batch: [Command] = []
        var left: [Command] = []
        for pending in self.queue {
            let key = pending.idempotencyKey
            if batch.count < limit, !self.busyStreams.contains(pending.stream), key.map({ !self.busyKeys.contains($0) }) ?? true {
                self.busyStreams.insert(pending.stream)
                if let key { self.busyKeys.insert(key) }
                batch.append(pending)
            } else {
                left.append(pending)
            }
        }
        self.queue = left
        return batch.sorted { $0.stream < $1.stream }
    }
}
