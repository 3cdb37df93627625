import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrderlyDomain
import OrderlyEventStore
import ServiceLifecycle
import Synchronization

/// The event history for analysts (role analyst or admin): `GET /events`, `GET /streams/{id}/events`
/// and the live tail `GET /events/live` (server-sent events).
///
/// Positions are what clients see and pass back (`after`, `Last-Event-ID`). The log is read in
/// (transaction id, position) order with the store's visibility horizon, so a page or a tail never
/// skips an event that a slower transaction commits later with a lower position: the server turns
/// the client's position into the log cursor of that event and goes on from there.
struct EventRoutes {
    let store: any EventStore
    /// How often the live tail looks for new events once it has caught up.
    let livePollInterval: Duration
    /// A comment line on an idle tail, so proxies and clients see the connection is alive.
    let keepAliveInterval: Duration

    static let maxLimit: Int64 = 1000

    func register(on router: Router<OrderlyRequestContext>) {
        router.get("/events") { request, context in
            try context.require(.analyst)
            return try await self.events(request)
        }
        router.get("/events/live") { request, context in
            try context.require(.analyst)
            return try await self.live(request)
        }
        router.get("/streams/{id}/events") { request, context in
            try context.require(.analyst)
            return try await self.stream(request, context)
        }
    }

    /// `GET /events?after=&limit=&type=&from=&to=&streamPrefix=`:
    /// `{"events": [...], "next": position}`; pass `next` as `after` for the following page.
    func events(_ request: Request) async throws -> Response {
        let after = try QueryParameter.integer(request, "after", in: 0...Int64.max) ?? 0
        let limit = Int(try QueryParameter.integer(request, "limit", in: 1...Self.maxLimit) ?? 100)
        var (cursor, filter) = try await self.start(after: after, field: "after")
        try Self.addFilters(request, to: &filter)
        let events = try await self.store.readAll(after: cursor, limit: limit, matching: filter)
        cursor = events.last?.cursor ?? cursor
        var json = JSONWriter(capacity: 512 * max(events.count, 1))
        json.object { json in
            json.key("events")
            json.array(events) { json, event in EventJSON.write(event, to: &json) }
            json.field("next", events.last?.position ?? after)
        }
        return Self.response(json.bytes)
    }

    /// `GET /streams/{id}/events?fromVersion=&limit=`: one stream in version order.
    func stream(_ request: Request, _ context: OrderlyRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard IdentifierRules.isWellFormed(id, maxLength: 200) else { throw Problem.notFound("no stream \(id.prefix(200))") }
        let from = try QueryParameter.integer(request, "fromVersion", in: 1...Int64.max) ?? 1
        let limit = Int(try QueryParameter.integer(request, "limit", in: 1...Self.maxLimit) ?? Self.maxLimit)
        let events = try await self.store.readStream(id, from: from, limit: limit)
        if events.isEmpty, from == 1 { throw Problem.notFound("no stream \(id)") }
        var json = JSONWriter(capacity: 512 * max(events.count, 1))
        json.object { json in
            json.field("streamId", id)
            json.key("events")
            json.array(events) { json, event in EventJSON.write(event, to: &json) }
            if events.count == limit, let last = events.last { json.field("nextVersion", last.streamVersion + 1) }
        }
        return Self.response(json.bytes)
    }

    /// `GET /events/live?after=&type=&streamPrefix=` as `text/event-stream`: every event from the
    /// position on (`after=latest`: from the newest one appended) (or from `Last-Event-ID`, which wins, as browsers send it when reconnecting), then
    /// new ones as they commit, until the client goes away. Each event's `id` is its position.
    func live(_ request: Request) async throws -> Response {
        let resumeFrom: Int64
        if let name = HTTPField.Name("Last-Event-ID"), let lastEventID = request.headers[name] {
            guard let position = Int64(lastEventID.trimmingCharacters(in: .whitespaces)), position >= 0 else {
                throw Problem.invalidQuery("Last-Event-ID must be an event position this api sent", field: "Last-Event-ID")
            }
            resumeFrom = position
        } else if request.uri.queryParameters["after"] == "latest" {
            // A tail of what happens from now on (the console's live page), not the whole history.
            resumeFrom = try await self.store.latestPosition()
        } else {
            resumeFrom = try QueryParameter.integer(request, "after", in: 0...Int64.max) ?? 0
        }
        let (start, startFilter) = try await self.start(after: resumeFrom, field: "after")
        var wanted = EventFilter()
        try Self.addFilters(request, to: &wanted)
        let filter = wanted
        let store = self.store
        let pollInterval = self.livePollInterval
        let keepAliveInterval = self.keepAliveInterval
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let body = ResponseBody { writer in
            // A server shutting down ends the tail (clients reconnect with Last-Event-ID) instead of
            // waiting for every client to leave.
            let stopping = StopFlag()
            try await withGracefulShutdownHandler {
                try await Self.follow(
                    store: store, from: start, startFilter: startFilter, filter: filter, pollInterval: pollInterval,
                    keepAliveInterval: keepAliveInterval, until: stopping, writer: &writer)
            } onGracefulShutdown: {
                stopping.stop()
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    private static func follow(
        store: any EventStore, from start: LogCursor, startFilter: EventFilter, filter: EventFilter, pollInterval: Duration,
        keepAliveInterval: Duration, until stopping: StopFlag, writer: inout any ResponseBodyWriter
    ) async throws {
        var cursor = start
        var lastWrite = ContinuousClock.now
        // The tail reads every event and filters here, so its cursor moves past events it does
        // not send: an idle filter never rescans the same stretch of the log.
        while !Task.isCancelled, !stopping.isStopped {
            let batch = try await store.readAll(after: cursor, limit: 500, matching: startFilter)
            var out = ByteBuffer()
            for event in batch where filter.matches(event) {
                out.writeString("id: \(event.position)\nevent: \(event.type)\ndata: ")
                out.writeBytes(EventJSON.bytes(event))
                out.writeString("\n\n")
            }
            if let last = batch.last { cursor = last.cursor }
            if out.readableBytes > 0 {
                try await writer.write(out)
                lastWrite = .now
            } else if ContinuousClock.now - lastWrite >= keepAliveInterval {
                try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                lastWrite = .now
            }
            if batch.count < 500 { try await Task.sleep(for: pollInterval) }
        }
    }

    /// The log cursor to read after, for a position a client passed. A position with no event (never
    /// handed out, or an aborted transaction's) reads from the start with a position floor instead.
    private func start(after position: Int64, field: String) async throws -> (LogCursor, EventFilter) {
        if position == 0 { return (.start, EventFilter()) }
        if let cursor = try await self.store.cursor(atPosition: position) { return (cursor, EventFilter()) }
        // After the largest position there is nothing (and `+ 1` would overflow).
        guard position < Int64.max else { return (.start, EventFilter(fromPosition: Int64.max, toPosition: Int64.min)) }
        return (.start, EventFilter(fromPosition: position + 1))
    }

    static func addFilters(_ request: Request, to filter: inout EventFilter) throws {
        let query = request.uri.queryParameters
        let types = query.getAll("type").flatMap { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        for type in types where !IdentifierRules.isWellFormed(type, maxLength: 100) {
            throw Problem.invalidQuery("type must be an event type name such as OrderPlaced", field: "type")
        }
        filter.types = types
        if let prefix = query["streamPrefix"].map(String.init) {
            guard IdentifierRules.isWellFormed(prefix, maxLength: 200) else {
                throw Problem.invalidQuery("streamPrefix must be 1 to 200 ASCII letters, digits and - _ . :", field: "streamPrefix")
            }
            filter.streamPrefix = prefix
        }
        filter.recordedFrom = try QueryParameter.time(request, "from").map { Date(timeIntervalSince1970: Double($0) / 1000) }
        filter.recordedBefore = try QueryParameter.time(request, "to").map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }

    static func response(_ bytes: [UInt8]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// Set once, read often: tells a long-running response to end.
final class StopFlag: Sendable {
    private let stopped = Atomic(false)

    func stop() { self.stopped.store(true, ordering: .relaxed) }
    var isStopped: Bool { self.stopped.load(ordering: .relaxed) }
}
