import Foundation
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import Synchronization

/// A read-model document: found by `_id` = `documentID`, and written only if it still has the
/// revision it was read with (optimistic concurrency between projector instances).
public protocol ProjectedView: Codable, Sendable, Equatable {
    var documentID: String { get }
    /// Bumped on every write. Absent in documents written before revisions existed.
    var revision: Int64? { get set }
}

/// A read model as a pure fold: which documents an event touches and what each becomes. The same
/// fold serves the live projector (events from Kafka), a rebuild (events from the log) and `verify`
/// (in memory), so the three cannot drift apart.
public protocol ReadModelProjection: Sendable {
    associatedtype View: ProjectedView
    static var name: String { get }
    /// The event types it applies; its definition in `projections/` lists the same.
    static var handledTypes: Set<String> { get }
    /// The ids of the documents `event` changes.
    static func documentIDs(of event: DomainEvent, recorded: RecordedEvent) -> [String]
    /// The document after `event`, or nil when the event changes nothing: applied before, or about
    /// a document that cannot start with it. `source` is where the event came from ("p3": Kafka
    /// partition 3; "log": the event store in log order): within one source events come in log
    /// order, which projections that count across many streams rely on to drop repeats.
    static func apply(_ event: DomainEvent, recorded: RecordedEvent, source: String, to current: View?, id: String, now: Date) -> View?
    /// Whether `event` is the first of the document's life (an order's placement, a stream's first
    /// version), so the document most likely does not exist yet and need not be read before the
    /// write: the write's guard still catches one that does (a repeat), which is then read and
    /// folded again. By default false.
    static func startsDocument(_ event: DomainEvent, recorded: RecordedEvent) -> Bool
    /// Whether clients wait on this model for each order (the `orders` model: an order's status after
    /// a command), so the live projector writes it before the other models in every batch. By default false.
    static var writtenFirst: Bool { get }
    /// Fields a fresh fold of the log cannot reproduce (the projector's clock, write counters, which
    /// source applied what); `verify` leaves them out.
    static var unverifiedFields: Set<String> { get }
}

/// An event on its way into a projection, decoded, with its source (see `ReadModelProjection.apply`).
public struct SourcedEvent: Sendable {
    public var event: DomainEvent
    public var recorded: RecordedEvent
    public var source: String

    public init(event: DomainEvent, recorded: RecordedEvent, source: String) {
        self.event = event
        self.recorded = recorded
        self.source = source
    }

    /// The source name of Kafka partition `partition`.
    public static func source(partition: Int32) -> String { "p\(partition)" }
    /// The source name of the event store read in log order (rebuilds, verify).
    public static let logSource = "log"
}

extension ReadModelProjection {
    public static func startsDocument(_ event: DomainEvent, recorded: RecordedEvent) -> Bool { false }
    public static var writtenFirst: Bool { false }

    /// Folds `events` (in the order they came) into `documents`; returns the ids of the documents
    /// that changed, in first-touched order. Pure.
    public static func fold(_ events: [SourcedEvent], into documents: inout [String: View], now: Date) -> [String] {
        var changed: [String] = []
        var seen = Set<String>()
        for item in events {
            for id in self.documentIDs(of: item.event, recorded: item.recorded) {
                guard let next = self.apply(item.event, recorded: item.recorded, source: item.source, to: documents[id], id: id, now: now)
                else { continue }
                documents[id] = next
                if seen.insert(id).inserted { changed.append(id) }
            }
        }
        return changed
    }

    /// `view` as its write over `previous` stores it: with the next revision.
    static func revised(_ view: View, replacing previous: View?) -> View {
        var view = view
        view.revision = (previous?.revision ?? 0) + 1
        return view
    }

    /// The guarded write of `view` over the stored `previous` (nil: there was none): it matches only
    /// if nobody wrote the document since it was read.
    public static func write(_ view: View, replacing previous: View?) throws -> ProjectionWrite {
        let view = self.revised(view, replacing: previous)
        let guardValue: Document =
            switch previous {
            case nil: .int(0)
            case let previous? where previous.revision == nil: ["$exists": false]
            case let previous?: .int(previous.revision ?? 0)
            }
        // The view's own JSON with `_id` in front: one encoding per write. (The replacement carries
        // `_id` itself: NX-27017 gives an upserted replacement without one a new ObjectId.)
        let body: Data
        if let writable = view as? any JSONWritable {
            var writer = JSONWriter()
            writable.write(to: &writer)
            body = Data(writer.bytes)
        } else {
            body = try JSONEncoder().encode(view)
        }
        var id = JSONWriter(capacity: 64)
        id.value(view.documentID)
        var replacement = Data(#"{"_id":"#.utf8)
        replacement.append(contentsOf: id.bytes)
        if body.count > 2 { replacement.append(UInt8(ascii: ",")) }
        replacement.append(body.dropFirst())
        return ProjectionWrite(
            filter: try Document.object([("_id", .string(view.documentID)), ("revision", guardValue)]).jsonData(), replacement: replacement)
    }

    /// Applies `events` to the documents in `collection`: one read of every document they touch,
    /// one unordered bulk write of each changed document. A write whose document another writer
    /// moved on meanwhile is read and folded again, until none is left. Returns how many documents
    /// were written.
    /// With a `cache` (the live projector's), documents this writer wrote last are taken from it
    /// instead of read back: the revision guard still refuses one that another writer moved on, which
    /// is then dropped from the cache and read.
    @discardableResult
    public static func apply(
        _ events: [SourcedEvent], to collection: MongoCollection, cache: WrittenViews<View>? = nil, now: Date = Date()
    ) async throws -> Int {
        var pending: [String] = []
        var fresh = Set<String>()
        var seen = Set<String>()
        for item in events {
            for id in self.documentIDs(of: item.event, recorded: item.recorded) where seen.insert(id).inserted {
                pending.append(id)
                if self.startsDocument(item.event, recorded: item.recorded) { fresh.insert(id) }
            }
        }
        var written = 0
        var firstRound = true
        while !pending.isEmpty {
            var stored: [String: View] = [:]
            var toRead = pending.filter { !fresh.contains($0) }
            if firstRound, let cache {
                stored = cache.views(pending, in: collection.name)
                toRead.removeAll { stored[$0] != nil }
            }
            firstRound = false
            if !toRead.isEmpty {
                for view in try await collection.find(["_id": ["$in": .array(toRead.map { .string($0) })]], as: View.self) {
                    stored[view.documentID] = view
                }
            }
            let wanted = Set(pending)
            var documents = stored
            let changed = self.fold(
                events.filter { self.documentIDs(of: $0.event, recorded: $0.recorded).contains(where: wanted.contains) },
                into: &documents, now: now)
            var writes: [(id: String, write: ProjectionWrite)] = []
            for id in changed where wanted.contains(id) {
                guard let view = documents[id] else { continue }
                writes.append((id, try self.write(view, replacing: stored[id])))
            }
            let rejected = try await collection.bulkReplace(json: writes.map { ($0.write.filter, $0.write.replacement) })
            written += writes.count - rejected.count
            if let cache {
                var accepted: [View] = []
                for (index, write) in writes.enumerated() where !rejected.contains(index) {
                    guard let view = documents[write.id] else { continue }
                    accepted.append(self.revised(view, replacing: stored[write.id]))
                }
                cache.remember(accepted, forgetting: rejected.map { writes[$0].id }, in: collection.name)
            }
            pending = rejected.sorted().map { writes[$0].id }
            // A guard that rejected an unread document: it existed after all; read it next round.
            fresh.removeAll()
        }
        return written
    }
}

extension ReadModelProjection {
    /// `recorded` decoded for this projection, or nil when it does not apply that type. A known type
    /// that does not decode is a `PoisonEvent`.
    public static func sourced(_ recorded: RecordedEvent, source: String) throws -> SourcedEvent? {
        guard self.handledTypes.contains(recorded.type), let event = try recorded.domainEventForHandler() else { return nil }
        return SourcedEvent(event: event, recorded: recorded, source: source)
    }
}

/// The documents a live projector wrote last, as written (with their revisions), so that the next
/// batch that touches them need not read them back from the document server. Only a shortcut: a
/// write still carries the revision it expects, so an entry that another writer moved past is refused,
/// forgotten and read. Tied to one collection (a rebuild's switch-over starts it over). Two
/// generations: when the newer one is full it becomes the older and the oldest is dropped, so the
/// documents written recently (the orders in flight) stay.
public final class WrittenViews<View: ProjectedView>: Sendable {
    private struct Generations {
        var collection = ""
        var newer: [String: View] = [:]
        var older: [String: View] = [:]
    }

    private let generations = Mutex(Generations())
    private let capacity: Int

    public init(capacity: Int = 20_000) {
        self.capacity = max(2, capacity)
    }

    /// The remembered documents among `ids` in `collection`.
    func views(_ ids: [String], in collection: String) -> [String: View] {
        self.generations.withLock { generations in
            guard generations.collection == collection else { return [:] }
            var found: [String: View] = [:]
            for id in ids {
                if let view = generations.newer[id] ?? generations.older[id] { found[id] = view }
            }
            return found
        }
    }

    func remember(_ views: [View], forgetting refused: [String], in collection: String) {
        self.generations.withLock { generations in
            if generations.collection != collection { generations = Generations(collection: collection) }
            for id in refused {
                generations.newer[id] = nil
                generations.older[id] = nil
            }
            for view in views {
                generations.older[view.documentID] = nil
                generations.newer[view.documentID] = view
                if generations.newer.count >= self.capacity / 2 {
                    generations.older = generations.newer
                    generations.newer = [:]
                }
            }
        }
    }
}
