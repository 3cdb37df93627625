import CRdKafka
import Foundation
import ServiceLifecycle
import Synchronization

/// An idempotent Kafka producer (`enable.idempotence=true`, hence `acks=all` and no reordering).
/// `send` returns only when every message's delivery report has arrived, and throws if any failed,
/// so a caller can move a checkpoint after it returns.
public final class KafkaProducer: Sendable {
    private let handle: KafkaHandle
    private let deliveries: DeliveryTracker
    private let poller: Poller
    /// What it was made with, to make a fresh one (`renewed()`).
    public let configuration: KafkaConfiguration

    /// Whether producing to a topic the broker lacks may create it (with the broker's own partition
    /// count).
    public let createsTopics: Bool

    /// `createsTopics: false` for a producer that must never put messages into a topic made behind
    /// its back (the relay: a broker that came back empty is refilled from the log instead).
    public init(configuration: KafkaConfiguration, createsTopics: Bool = true) throws {
        self.configuration = configuration
        self.createsTopics = createsTopics
        let deliveries = DeliveryTracker()
        self.deliveries = deliveries
        self.handle = try KafkaHandle.make(
            type: RD_KAFKA_PRODUCER, configuration: configuration,
            defaults: [
                "enable.idempotence": "true",
                "acks": "all",
                "linger.ms": "5",
                "message.timeout.ms": "30000",
                "partitioner": "murmur2_random",
                "allow.auto.create.topics": createsTopics ? "true" : "false",
            ],
            callbackContext: deliveries
        ) { conf in
            // The handle keeps `deliveries` alive, so the unretained pointer is valid for every callback.
            rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(deliveries).toOpaque())
            rd_kafka_conf_set_dr_msg_cb(conf, deliveryReportCallback)
        }
        self.poller = Poller(handle: self.handle, deliveries: deliveries)
    }

    /// Never blocks the thread that drops the last reference (an event loop, maybe): the poll thread
    /// flushes what is in flight (bounded) and then lets the handle go.
    deinit {
        self.poller.stop(waiting: false)
    }

    /// A new producer with the same configuration, hence a new producer id. After deliveries timed
    /// out (a broker unreachable for longer than `message.timeout.ms`) an idempotent producer bumps
    /// its epoch, and a broker may then answer it only with PRODUCER_FENCED, for good (Tansu does):
    /// a fresh producer is the way out. Its first messages may repeat ones already delivered, which
    /// consumers drop.
    public func renewed() throws -> KafkaProducer {
        try KafkaProducer(configuration: self.configuration, createsTopics: self.createsTopics)
    }

    /// Closes the producer: sends from now on throw at once, what is in flight is flushed (for at
    /// most 2 s) and waiting sends then fail. Returns when that is done; safe to call again.
    public func shutdown() async {
        let poller = self.poller
        _ = try? await runBlocking(on: DispatchQueue.global()) { poller.stop(waiting: true) }
    }

    /// Running, closing (flushing) or closed.
    public var phase: KafkaClientPhase { self.deliveries.phase }

    /// Drops every message not yet delivered (waiting sends fail), then shuts down: for messages
    /// that must not arrive late, ahead of ones sent again after them.
    public func discard() async {
        rd_kafka_purge(self.handle.pointer, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING))
        await self.shutdown()
    }

    /// Each partition's high watermark (the offset the next message will get) for `topic`, or nil
    /// when the broker answers that it has no such topic. Throws when the broker does not answer.
    public func highWatermarks(of topic: String, timeout: Duration = .seconds(2)) async throws -> [Int32: Int64]? {
        let handle = self.handle
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return try await runBlocking(on: DispatchQueue.global()) { try handle.highWatermarks(of: topic, timeoutMilliseconds: milliseconds) }
    }

    /// Produces every message and waits for all of their delivery reports.
    public func send(_ messages: [KafkaOutgoingMessage]) async throws {
        guard !messages.isEmpty else { return }
        try await self.enqueue(messages).wait()
    }

    /// Hands every message to librdkafka, in order, and returns without waiting for the broker (it
    /// waits only while librdkafka's local queue is full). Deliveries enqueued one after another keep
    /// their order on each partition (an idempotent producer does not reorder), so a caller can keep
    /// several in flight and still move a checkpoint in order, each after its `wait()`.
    public func enqueue(_ messages: [KafkaOutgoingMessage]) async throws -> KafkaDelivery {
        let batch = try self.deliveries.open(expecting: messages.count)
        let delivery = KafkaDelivery(batch: batch, tracker: self.deliveries)
        for (index, message) in messages.enumerated() {
            while true {
                let code = self.produce(message, batch: batch)
                if code == RD_KAFKA_RESP_ERR_NO_ERROR { break }
                if code == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                    // The local queue drains as delivery reports are served; wait a moment and retry.
                    try? await Task.sleep(for: .milliseconds(5))
                    continue
                }
                let error = KafkaError(code: code.rawValue, message: KafkaHandle.describe(code), isRetriable: true)
                self.deliveries.abandon(batch, count: messages.count - index, error: error)
                return delivery
            }
        }
        return delivery
    }

    /// Waits until the broker answers a metadata request.
    public func ping(timeout: Duration = .seconds(2)) async throws {
        let handle = self.handle
        let milliseconds = Int32(timeout.components.seconds * 1000)
        try await runBlocking(on: DispatchQueue.global()) { try handle.ping(timeoutMilliseconds: milliseconds) }
    }

    private func produce(_ message: KafkaOutgoingMessage, batch: UInt) -> rd_kafka_resp_err_t {
        let arena = CArena()
        defer { arena.release() }
        var values: [rd_kafka_vu_t] = []
        values.reserveCapacity(5 + message.headers.count)
        var topic = rd_kafka_vu_t()
        topic.vtype = RD_KAFKA_VTYPE_TOPIC
        topic.u.cstr = arena.cString(message.topic)
        values.append(topic)
        var key = rd_kafka_vu_t()
        key.vtype = RD_KAFKA_VTYPE_KEY
        key.u.mem.ptr = arena.bytes(message.key)
        key.u.mem.size = message.key.count
        values.append(key)
        var value = rd_kafka_vu_t()
        value.vtype = RD_KAFKA_VTYPE_VALUE
        value.u.mem.ptr = arena.bytes(message.value)
        value.u.mem.size = message.value.count
        values.append(value)
        var flags = rd_kafka_vu_t()
        flags.vtype = RD_KAFKA_VTYPE_MSGFLAGS
        flags.u.i = RD_KAFKA_MSG_F_COPY
        values.append(flags)
        var opaque = rd_kafka_vu_t()
        opaque.vtype = RD_KAFKA_VTYPE_OPAQUE
        opaque.u.ptr = UnsafeMutableRawPointer(bitPattern: batch)
        values.append(opaque)
        for (name, bytes) in message.headers {
            var header = rd_kafka_vu_t()
            header.vtype = RD_KAFKA_VTYPE_HEADER
            header.u.header.name = arena.cString(name)
            header.u.header.val = UnsafeRawPointer(arena.bytes(bytes))
            header.u.header.size = bytes.count
            values.append(header)
        }
        guard let error = rd_kafka_produceva(self.handle.pointer, values, values.count) else {
            return RD_KAFKA_RESP_ERR_NO_ERROR
        }
        let code = rd_kafka_error_code(error)
        rd_kafka_error_destroy(error)
        return code
    }
}

/// A producer kept for the life of a process (the api's and the order service's broker probes) runs
/// as a service: it closes when the process shuts down gracefully.
extension KafkaProducer: Service {
    public func run() async throws {
        try? await gracefulShutdown()
        await self.shutdown()
    }
}

/// Serves librdkafka's delivery reports on a thread of its own until the producer closes, then
/// flushes what is in flight and fails what was not delivered.
private final class Poller: Sendable {
    private let deliveries: DeliveryTracker
    private let finished = DispatchSemaphore(value: 0)

    init(handle: KafkaHandle, deliveries: DeliveryTracker) {
        self.deliveries = deliveries
        let thread = Thread { [self] in
            while self.deliveries.phase == .running {
                rd_kafka_poll(handle.pointer, 100)
            }
            // Bounded: with the broker gone a flush would wait out message.timeout.ms; what is not
            // delivered was never checkpointed or committed, so it goes out again after a restart.
            rd_kafka_flush(handle.pointer, 2_000)
            deliveries.failAll(KafkaError(code: -1, message: "producer shut down before delivery"))
            self.finished.signal()
        }
        thread.name = "orderly-kafka-producer"
        thread.start()
    }

    /// Starts closing (sends throw from now on); `waiting`: returns once closed. Safe to call more
    /// than once: a later waiting call waits too.
    func stop(waiting: Bool) {
        self.deliveries.beginClosing()
        guard waiting, self.deliveries.phase != .closed else { return }
        self.finished.wait()
        // Let any other waiter through as well.
        self.finished.signal()
    }
}

/// A Kafka client's life: it works while running; closing, it finishes what is in flight and takes
/// nothing new; closed, it does nothing. Kept in one lock with what it guards.
public enum KafkaClientPhase: Sendable, Equatable {
    case running, closing, closed
}

/// Counts delivery reports per `send` call. Touched from librdkafka's callback (on the poll thread) and
/// from async callers, so all state sits behind one lock; continuations are resumed outside it.
/// Messages enqueued together (`KafkaProducer.enqueue`): whether the broker has answered for all of
/// them, and a wait for that.
public struct KafkaDelivery: Sendable {
    fileprivate let batch: UInt
    fileprivate let tracker: DeliveryTracker

    /// Every message's delivery report has arrived (successful or not): `wait()` returns at once.
    public var isSettled: Bool { self.tracker.isSettled(self.batch) }

    /// Returns once every message is reported, throwing the first failure.
    public func wait() async throws { try await self.tracker.wait(for: self.batch) }

    /// For a caller that gives up on these messages without waiting (they may still arrive): the
    /// tracker forgets them once they are reported.
    public func forget() { self.tracker.forget(self.batch) }
}

final class DeliveryTracker: Sendable {
    private struct Batch {
        var remaining: Int
        var error: KafkaError?
        var continuation: CheckedContinuation<Void, any Error>?
        /// Its sender stopped waiting: it gets a CancellationError, never a success.
        var cancelled = false
    }

    private struct State {
        var phase = KafkaClientPhase.running
        var nextID: UInt = 1
        var batches: [UInt: Batch] = [:]
    }

    private let state = Mutex(State())

    var phase: KafkaClientPhase { self.state.withLock { $0.phase } }

    /// A batch for a send; throws at once once the producer is closing or closed (nothing would
    /// serve its delivery reports).
    func open(expecting count: Int) throws -> UInt {
        try self.state.withLock { state in
            guard state.phase == .running else {
                throw KafkaError(code: -1, message: "the producer is \(state.phase == .closing ? "closing" : "closed"): nothing more is sent")
            }
            let id = state.nextID
            state.nextID += 1
            state.batches[id] = Batch(remaining: count)
            return id
        }
    }

    func beginClosing() {
        self.state.withLock { state in
            if state.phase == .running { state.phase = .closing }
        }
    }

    func delivered(batch: UInt, error: KafkaError?) {
        self.settle(batch, count: 1, error: error)
    }

    func abandon(_ batch: UInt, count: Int, error: KafkaError) {
        self.settle(batch, count: count, error: error)
    }

    private func settle(_ batch: UInt, count: Int, error: KafkaError?) {
        let ready: (CheckedContinuation<Void, any Error>, KafkaError?)? = self.state.withLock { state in
            guard var entry = state.batches[batch] else { return nil }
            entry.remaining -= count
            if entry.error == nil { entry.error = error }
            if entry.remaining <= 0, entry.cancelled {
                state.batches[batch] = nil
                return nil
            }
            if entry.remaining <= 0, let continuation = entry.continuation {
                state.batches[batch] = nil
                return (continuation, entry.error)
            }
            state.batches[batch] = entry
            return nil
        }
        if let (continuation, error) = ready { Self.resume(continuation, error) }
    }

    func isSettled(_ batch: UInt) -> Bool {
        self.state.withLock { state in (state.batches[batch]?.remaining ?? 0) <= 0 }
    }

    func forget(_ batch: UInt) {
        self.state.withLock { state in
            guard var entry = state.batches[batch] else { return }
            entry.cancelled = true
            state.batches[batch] = entry.remaining <= 0 ? nil : entry
        }
    }

    /// Returns once every message of `batch` is reported, throwing the first failure; a cancelled
    /// caller stops waiting at once with a CancellationError (its messages may still arrive).
    func wait(for batch: UInt) async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let ready: Result<Void, any Error>? = self.state.withLock { state in
                    guard var entry = state.batches[batch] else { return .success(()) }
                    if entry.cancelled {
                        if entry.remaining <= 0 { state.batches[batch] = nil }
                        return .failure(CancellationError())
                    }
                    if entry.remaining <= 0 {
                        state.batches[batch] = nil
                        return entry.error.map { .failure($0) } ?? .success(())
                    }
                    entry.continuation = continuation
                    state.batches[batch] = entry
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            let waiting = self.state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard var entry = state.batches[batch] else { return nil }
                let continuation = entry.continuation
                entry.continuation = nil
                entry.cancelled = true
                state.batches[batch] = entry.remaining <= 0 ? nil : entry
                return continuation
            }
            waiting?.resume(throwing: CancellationError())
        }
    }

    /// Closes: fails every open batch, a waiting sender at once, one not yet waiting when it does.
    func failAll(_ error: KafkaError) {
        let waiting = self.state.withLock { state in
            state.phase = .closed
            var continuations: [CheckedContinuation<Void, any Error>] = []
            for (id, var entry) in state.batches {
                if let continuation = entry.continuation {
                    continuations.append(continuation)
                    state.batches[id] = nil
                } else {
                    entry.remaining = 0
                    entry.error = entry.error ?? error
                    state.batches[id] = entry
                }
            }
            return continuations
        }
        for continuation in waiting { continuation.resume(throwing: error) }
    }

    private static func resume(_ continuation: CheckedContinuation<Void, any Error>, _ error: KafkaError?) {
        if let error { continuation.resume(throwing: error) } else { continuation.resume() }
    }
}

/// librdkafka calls this on the poll thread for every message, successful or not.
private let deliveryReportCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, message, opaque in
    guard let message, let opaque else { return }
    let tracker = Unmanaged<DeliveryTracker>.fromOpaque(opaque).takeUnretainedValue()
    let batch = UInt(bitPattern: message.pointee._private)
    let code = message.pointee.err
    let error =
        code == RD_KAFKA_RESP_ERR_NO_ERROR
        ? nil : KafkaError(code: code.rawValue, message: KafkaHandle.describe(code), isRetriable: true)
    tracker.delivered(batch: batch, error: error)
}

/// Holds C copies of strings and bytes for the length of one librdkafka call.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    func cString(_ string: String) -> UnsafePointer<CChar> {
        let utf8 = Array(string.utf8CString)
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
        pointer.initialize(from: utf8, count: utf8.count)
        self.allocations.append(UnsafeMutableRawPointer(pointer))
        return UnsafePointer(pointer)
    }

    func bytes(_ bytes: [UInt8]) -> UnsafeMutableRawPointer {
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { pointer.copyMemory(from: base, byteCount: bytes.count) }
        }
        self.allocations.append(pointer)
        return pointer
    }

    func release() {
        for pointer in self.allocations { pointer.deallocate() }
        self.allocations.removeAll()
    }
}

/// A broker ping for readiness checks, with a producer made on the first ping and kept: processes
/// that are never asked (no orchestrator probing them) pay for no extra client.
public final class BrokerProbe: Sendable {
    let configuration: KafkaConfiguration
    private let producer = Mutex<KafkaProducer?>(nil)

    public init(configuration: KafkaConfiguration) {
        self.configuration = configuration
    }

    public func ping(timeout: Duration = .seconds(2)) async throws {
        let producer = try self.producer.withLock { current in
            if let current { return current }
            let made = try KafkaProducer(configuration: self.configuration, createsTopics: false)
            current = made
            return made
        }
        try await producer.ping(timeout: timeout)
    }
}
