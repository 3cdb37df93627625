import Synchronization
import Tracing

/// W3C trace context as Orderly carries it between processes: a `traceparent` in each event's
/// metadata (written by whoever appended it) and in each Kafka message's headers (the relay's
/// publish span), so one order's saga is one trace across the api, the relay, the services and the
/// projector. Off until a process bootstraps a tracer (`OTEL_EXPORTER_OTLP_ENDPOINT`); while off,
/// every function here returns at its first line.
///
/// Only a sampled trace travels: an unsampled request's events carry no `traceparent` and no
/// database spans are made for it, so at 1% sampling the other 99% of orders cost the relay and
/// the consumers nothing (with the parent-based sampler nothing under an unsampled span would be
/// exported anyway).
public enum TraceContext {
    private static let on = Atomic<Bool>(false)

    /// Whether this process exports traces.
    public static var enabled: Bool { self.on.load(ordering: .relaxed) }

    /// Called once the tracer is bootstrapped.
    public static func enable() {
        self.on.store(true, ordering: .relaxed)
    }

    /// The `traceparent` of the current span, if tracing is on and a span is current: the one
    /// `remembering(_:)` or `withParent` recorded in the context, else asked of the tracer.
    public static func currentTraceparent() -> String? {
        guard self.enabled, let context = ServiceContext.current else { return nil }
        if let known = context[KnownTraceparentKey.self] { return known }
        return self.traceparent(of: context)
    }

    /// The current context with its span's `traceparent` recorded in it, so appends and database
    /// calls under it read it back instead of asking the tracer to write it out again (for a
    /// request: once instead of three times). Spans started under it must not use this context.
    public static func remembering(_ traceparent: String, in context: ServiceContext) -> ServiceContext {
        var context = context
        context[KnownTraceparentKey.self] = traceparent
        return context
    }

    /// The `traceparent` of the current span if it is sampled (exported): the trace to continue.
    public static func currentSampledTraceparent() -> String? {
        guard let traceparent = self.currentTraceparent(), self.isSampled(traceparent) else { return nil }
        return traceparent
    }

    /// Whether a `traceparent` (`00-<trace id>-<span id>-<flags>`) has its sampled flag set.
    public static func isSampled(_ traceparent: String) -> Bool {
        // The flags are the last two hex digits; the sampled bit is the low bit of the last one.
        let utf8 = traceparent.utf8
        guard utf8.count >= 4, utf8[utf8.index(utf8.endIndex, offsetBy: -3)] == UInt8(ascii: "-"), let last = utf8.last,
            let digit = UInt8(String(UnicodeScalar(last)), radix: 16)
        else { return false }
        return digit & 1 == 1
    }

    /// Ends spans started for a batch of messages, marking each failed when the batch failed.
    public static func end(_ spans: [any Span], failure: (any Error)?) {
        for span in spans {
            if let failure {
                span.recordError(failure)
                span.setStatus(SpanStatus(code: .error))
            }
            span.end()
        }
    }

    /// The `traceparent` of `context`'s span.
    public static func traceparent(of context: ServiceContext) -> String? {
        guard self.enabled else { return nil }
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryInjector())
        return carrier["traceparent"]
    }

    /// A context whose current span is the one `traceparent` names (a remote parent): spans started
    /// in it are its children. Top level when there is none or it cannot be read.
    public static func context(traceparent: String?) -> ServiceContext {
        var context = ServiceContext.topLevel
        guard self.enabled, let traceparent else { return context }
        InstrumentationSystem.instrument.extract(["traceparent": traceparent], into: &context, using: DictionaryExtractor())
        return context
    }

    /// The other sampled traces a batch call serves (a projector's bulk write of many orders' events
    /// is one call, spanned under the first order's trace): its database span links to each.
    @TaskLocal public static var batchLinks: [String] = []

    /// Runs a batch's work under the first sampled `traceparent` of `traceparents`, its database
    /// calls linked to the others'.
    public static func withBatch<T>(_ traceparents: [String?], _ body: () async throws -> T) async rethrows -> T {
        guard self.enabled else { return try await body() }
        let sampled = traceparents.compactMap { $0 }.filter(self.isSampled)
        return try await self.withParent(sampled.first) {
            try await self.$batchLinks.withValue(Array(sampled.dropFirst())) { try await body() }
        }
    }

    /// Runs `body` with the span `traceparent` names as the current one (so what it appends carries
    /// it on), or outside any span when there is none (an event of an unsampled order handled in a
    /// batch with a sampled one must not join that one's trace); just runs it when tracing is off.
    public static func withParent<T>(_ traceparent: String?, _ body: () async throws -> T) async rethrows -> T {
        guard self.enabled else { return try await body() }
        let context = self.context(traceparent: traceparent)
        let known = traceparent.map { self.remembering($0, in: context) } ?? context
        return try await ServiceContext.withValue(known) {
            try await self.$batchLinks.withValue([]) { try await body() }
        }
    }

    /// `body` in a client span for one call to a database (PostgreSQL, the document server), with
    /// OpenTelemetry's database attributes: the system, the operation and the table or collection,
    /// never a statement's parameters. Just `body` when tracing is off or the current trace is not
    /// sampled (a call outside any trace would start a trace of its own).
    public static func databaseCall<T>(
        system: String, operation: String, collection: String, _ body: () async throws -> T
    ) async throws -> T {
        guard self.currentSampledTraceparent() != nil else { return try await body() }
        return try await withSpan("\(operation) \(collection)", ofKind: .client) { span in
            span.updateAttributes { attributes in
                attributes["db.system.name"] = system
                attributes["db.operation.name"] = operation
                attributes["db.collection.name"] = collection
            }
            for link in self.batchLinks { span.addLink(SpanLink(context: self.context(traceparent: link), attributes: [:])) }
            return try await body()
        }
    }

    /// The events, each stamped with the current span's `traceparent` where it has none, if that
    /// span is sampled.
    static func stamped(_ events: [NewEvent]) -> [NewEvent] {
        guard let traceparent = self.currentSampledTraceparent() else { return events }
        return events.map { event in
            var event = event
            if event.metadata.traceparent == nil { event.metadata.traceparent = traceparent }
            return event
        }
    }
}

/// The current span's `traceparent`, once known (`TraceContext.remembering`).
private enum KnownTraceparentKey: ServiceContextKey {
    typealias Value = String
}

struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}
