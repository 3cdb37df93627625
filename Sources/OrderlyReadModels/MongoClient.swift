import CMongoc
import Foundation
import Logging
import Metrics
import OrderlyDomain
import OrderlyEventStore
import Synchronization

public struct MongoError: Error, Sendable, CustomStringConvertible {
    public var domain: UInt32
    public var code: UInt32
    public var message: String

    /// E11000: with a conditional upsert (`{_id, v: {$lt: n}}`) this means "already applied".
    public var isDuplicateKey: Bool { self.code == 11000 }

    /// The server could not be reached (none selectable in time, a connection that broke): the
    /// read model is unavailable, not wrong.
    public var isUnavailable: Bool {
        self.domain == MONGOC_ERROR_SERVER_SELECTION.rawValue || self.domain == MONGOC_ERROR_STREAM.rawValue
    }

    public var description: String { "MongoDB error \(self.domain).\(self.code): \(self.message)" }

    init(_ error: bson_error_t) {
        var error = error
        self.domain = error.domain
        self.code = error.code
        self.message = withUnsafeBytes(of: &error.message) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    init(message: String) {
        self.domain = 0
        self.code = 0
        self.message = message
    }
}

/// libmongoc needs `mongoc_init()` once per process, before anything else. Its own log lines (a
/// server that does not answer, …) then go through swift-log at their level under
/// `orderly.libmongoc`, in the process's JSON format, instead of raw on stderr. The handler is set
/// first: `mongoc_init` itself may warn ("Falling back to malloc for counters" when a shared-memory
/// segment of a dead process with the same pid is still in /dev/shm).
private let mongocInitialised: Bool = {
    mongoc_log_set_handler(logFromLibmongoc, nil)
    mongoc_init()
    return true
}()

private let libmongocLogger = Logger(label: "orderly.libmongoc")

private func logFromLibmongoc(
    _ level: mongoc_log_level_t, _ domain: UnsafePointer<CChar>?, _ text: UnsafePointer<CChar>?, _: UnsafeMutableRawPointer?
) {
    let level: Logger.Level =
        switch level {
        case MONGOC_LOG_LEVEL_ERROR: .error
        case MONGOC_LOG_LEVEL_CRITICAL: .critical
        case MONGOC_LOG_LEVEL_WARNING: .warning
        case MONGOC_LOG_LEVEL_MESSAGE: .notice
        case MONGOC_LOG_LEVEL_INFO: .info
        case MONGOC_LOG_LEVEL_DEBUG: .debug
        default: .trace
        }
    libmongocLogger.log(
        level: level, "\(text.map { String(cString: $0) } ?? "")", metadata: ["mongoc.domain": "\(domain.map { String(cString: $0) } ?? "")"])
}

/// A pool of libmongoc clients. Every operation pops a client on a dedicated dispatch queue (libmongoc
/// blocks), uses it on that thread only and pushes it back; nothing C escapes this file.
public final class MongoClient: Sendable {
    private let pool: PoolHandle
    private let queue = DispatchQueue(label: "orderly-mongo", attributes: .concurrent)
    public let databaseName: String

    public init(uri: String, database: String, maxPoolSize: Int32 = 32) throws {
        precondition(mongocInitialised)
        var error = bson_error_t()
        guard let parsed = mongoc_uri_new_with_error(uri, &error) else { throw MongoError(error) }
        defer { mongoc_uri_destroy(parsed) }
        // libmongoc waits 30 s for a server by default: a query then hangs that long while the
        // document server is down. 3 s unless the URI says otherwise (then 503, and writers retry).
        if mongoc_uri_get_option_as_int32(parsed, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0) == 0 {
            mongoc_uri_set_option_as_int32(parsed, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 3000)
        }
        guard let pool = mongoc_client_pool_new(parsed) else { throw MongoError(message: "cannot make a client pool for \(uri)") }
        mongoc_client_pool_set_error_api(pool, 2)
        mongoc_client_pool_max_size(pool, UInt32(maxPoolSize))
        self.pool = PoolHandle(pointer: pool)
        self.databaseName = database
    }

    public func collection(_ name: String) -> MongoCollection {
        MongoCollection(client: self, name: name)
    }

    /// Round trip to the server (for readiness).
    public func ping() async throws {
        _ = try await self.withClient { client in
            try BSON.withDocument(["ping": 1]) { command in
                try BSON.withReply { reply in
                    var error = bson_error_t()
                    guard mongoc_client_command_simple(client, "admin", command, nil, reply, &error) else { throw MongoError(error) }
                }
            }
        }
    }

    /// Drops this client's database (tests and rebuilds).
    public func dropDatabase() async throws {
        let name = self.databaseName
        try await self.withClient { client in
            guard let database = mongoc_client_get_database(client, name) else { throw MongoError(message: "no database \(name)") }
            defer { mongoc_database_destroy(database) }
            var error = bson_error_t()
            guard mongoc_database_drop_with_opts(database, nil, &error) else { throw MongoError(error) }
        }
    }

    /// The names of this client's database's collections (what a full dump of the read models reads).
    public func collectionNames() async throws -> [String] {
        let name = self.databaseName
        return try await self.withClient { client in
            guard let database = mongoc_client_get_database(client, name) else { throw MongoError(message: "no database \(name)") }
            defer { mongoc_database_destroy(database) }
            var error = bson_error_t()
            guard let names = mongoc_database_get_collection_names_with_opts(database, nil, &error) else { throw MongoError(error) }
            defer { bson_strfreev(names) }
            var found: [String] = []
            var index = 0
            while let entry = names[index] {
                found.append(String(cString: entry))
                index += 1
            }
            return found.sorted()
        }
    }

    func withClient<T: Sendable>(_ work: @escaping @Sendable (OpaquePointer) throws -> T) async throws -> T {
        let pool = self.pool
        let calls = self.calls
        return try await runBlocking(on: self.queue) {
            guard let client = mongoc_client_pool_pop(pool.pointer) else { throw MongoError(message: "no client from the pool") }
            defer { mongoc_client_pool_push(pool.pointer, client) }
            let started = ContinuousClock.now
            defer { calls.recordNanoseconds((ContinuousClock.now - started).nanoseconds) }
            return try work(client)
        }
    }

    /// How long each call to the document server takes, from sending to the answer (the local
    /// stand-in serves one request at a time per database: its queue shows here).
    private let calls = Timer(label: "orderly_document_server_call_seconds")

    func withCollection<T: Sendable>(_ name: String, _ work: @escaping @Sendable (OpaquePointer) throws -> T) async throws -> T {
        let database = self.databaseName
        return try await self.withClient { client in
            guard let collection = mongoc_client_get_collection(client, database, name) else {
                throw MongoError(message: "no collection \(database).\(name)")
            }
            defer { mongoc_collection_destroy(collection) }
            return try work(collection)
        }
    }
}

/// Owns the `mongoc_client_pool_t`, which is thread-safe; clients popped from it are not and stay on one thread.
private final class PoolHandle: @unchecked Sendable {
    let pointer: OpaquePointer

    init(pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        mongoc_client_pool_destroy(self.pointer)
    }
}

public enum UpsertOutcome: Sendable, Equatable {
    case applied
    /// The filter's version guard rejected the update (duplicate key): it was applied before.
    case alreadyApplied
}

/// One collection of the client's database.
public struct MongoCollection: Sendable {
    let client: MongoClient
    public let name: String

    /// `update_one` with `upsert: true`. A duplicate-key error means a version-guarded filter did not
    /// match an existing document, i.e. the update was already applied.
    public func upsert(filter: Document, update: Document) async throws -> UpsertOutcome {
        try await self.client.withCollection(self.name) { collection in
            try BSON.withDocument(filter) { filter in
                try BSON.withDocument(update) { update in
                    try BSON.withDocument(["upsert": true]) { options in
                        var error = bson_error_t()
                        if mongoc_collection_update_one(collection, filter, update, options, nil, &error) { return .applied }
                        let failure = MongoError(error)
                        if failure.isDuplicateKey { return .alreadyApplied }
                        throw failure
                    }
                }
            }
        }
    }

    /// Many `update_one` upserts in one unordered bulk write (one round trip). Returns the indexes of
    /// the writes whose guard rejected them (duplicate key: applied before, or moved on by another
    /// writer); any other failure throws.
    public func bulkUpsert(_ writes: [(filter: Document, update: Document)]) async throws -> Set<Int> {
        try await self.bulkUpsert(json: writes.map { (try $0.filter.jsonData(), try $0.update.jsonData()) })
    }

    /// `bulkUpsert` of filters and updates already in JSON.
    public func bulkUpsert(json writes: [(filter: Data, update: Data)]) async throws -> Set<Int> {
        try await self.bulkWrite(writes.map { ($0.filter, $0.update) }, replacing: false)
    }

    /// Many `replace_one` upserts in one unordered bulk write, filters and documents in JSON; like
    /// `bulkUpsert`, returns the indexes of the writes whose guard rejected them.
    public func bulkReplace(json writes: [(filter: Data, replacement: Data)]) async throws -> Set<Int> {
        try await self.bulkWrite(writes.map { ($0.filter, $0.replacement) }, replacing: true)
    }

    func bulkWrite(_ writes: [(filter: Data, document: Data)], replacing: Bool) async throws -> Set<Int> {
        guard !writes.isEmpty else { return [] }
        return try await TraceContext.databaseCall(system: "mongodb", operation: "bulkWrite", collection: self.name) {
            try await self.bulkWriteUntraced(writes, replacing: replacing)
        }
    }

    private func bulkWriteUntraced(_ writes: [(filter: Data, document: Data)], replacing: Bool) async throws -> Set<Int> {
        try await self.client.withCollection(self.name) { collection in
            try BSON.withDocument(["ordered": false]) { bulkOptions in
                guard let bulk = mongoc_collection_create_bulk_operation_with_opts(collection, bulkOptions) else {
                    throw MongoError(message: "could not create a bulk operation")
                }
                defer { mongoc_bulk_operation_destroy(bulk) }
                try BSON.withDocument(["upsert": true]) { upsert in
                    for write in writes {
                        try BSON.withJSON(write.filter) { filter in
                            try BSON.withJSON(write.document) { document in
                                var error = bson_error_t()
                                let added =
                                    replacing
                                    ? mongoc_bulk_operation_replace_one_with_opts(bulk, filter, document, upsert, &error)
                                    : mongoc_bulk_operation_update_one_with_opts(bulk, filter, document, upsert, &error)
                                if !added { throw MongoError(error) }
                            }
                        }
                    }
                }
                return try BSON.withReply { reply in
                    var error = bson_error_t()
                    let succeeded = mongoc_bulk_operation_execute(bulk, reply, &error) != 0
                    if succeeded { return [] }
                    // Failed writes are listed in the reply; only duplicate keys are expected.
                    guard case .array(let writeErrors)? = try BSON.document(from: reply)["writeErrors"], !writeErrors.isEmpty else {
                        throw MongoError(error)
                    }
                    var rejected = Set<Int>()
                    for writeError in writeErrors {
                        guard case .int(let code)? = writeError["code"], code == 11000, case .int(let index)? = writeError["index"] else {
                            throw MongoError(error)
                        }
                        rejected.insert(Int(index))
                    }
                    return rejected
                }
            }
        }
    }

    /// Drops the collection; one that does not exist is fine.
    public func drop() async throws {
        try await self.client.withCollection(self.name) { collection in
            var error = bson_error_t()
            if !mongoc_collection_drop_with_opts(collection, nil, &error) {
                let failure = MongoError(error)
                // 26: NamespaceNotFound.
                if failure.code != 26, !failure.message.contains("ns not found") { throw failure }
            }
        }
    }

    /// Creates indexes by name and key (`createIndexes`); one that exists with the same key is kept.
    public func createIndexes(_ indexes: [(name: String, keys: Document)]) async throws {
        guard !indexes.isEmpty else { return }
        let command: Document = [
            "createIndexes": .string(self.name),
            "indexes": .array(indexes.map { ["name": .string($0.name), "key": $0.keys] }),
        ]
        try await self.client.withCollection(self.name) { collection in
            try BSON.withDocument(command) { command in
                try BSON.withReply { reply in
                    var error = bson_error_t()
                    if !mongoc_collection_write_command_with_opts(collection, command, nil, reply, &error) { throw MongoError(error) }
                }
            }
        }
    }

    /// The names of the collection's indexes.
    public func indexNames() async throws -> [String] {
        try await self.client.withCollection(self.name) { collection in
            guard let cursor = mongoc_collection_find_indexes_with_opts(collection, nil) else { throw MongoError(message: "no index cursor") }
            defer { mongoc_cursor_destroy(cursor) }
            var names: [String] = []
            var current: OpaquePointer?
            while mongoc_cursor_next(cursor, &current) {
                if let current, case .string(let name)? = try BSON.document(from: current)["name"] { names.append(name) }
            }
            var error = bson_error_t()
            if mongoc_cursor_error(cursor, &error) { throw MongoError(error) }
            return names
        }
    }

    public func find(_ filter: Document, sort: Document? = nil, limit: Int64? = nil) async throws -> [Document] {
        try await self.findJSON(filter, sort: sort, limit: limit).map { try JSONDecoder().decode(Document.self, from: $0) }
    }

    /// Documents decoded straight from libbson's relaxed JSON (no `Document` in between: the read
    /// path of every query and projector batch). Fields `T` does not know (`_id`) are ignored.
    /// With a `projection` (`["status": 1]`), only those fields come back: less for the server to
    /// send and for the caller to decode when it needs a few fields of large documents.
    public func find<T: Decodable>(
        _ filter: Document, sort: Document? = nil, limit: Int64? = nil, projection: Document? = nil, as type: T.Type
    ) async throws -> [T] {
        let decoder = JSONDecoder()
        return try await self.findJSON(filter, sort: sort, limit: limit, projection: projection).map { try decoder.decode(type, from: $0) }
    }

    /// Each matching document as relaxed extended JSON.
    func findJSON(_ filter: Document, sort: Document?, limit: Int64?, projection: Document? = nil) async throws -> [Data] {
        var options: [(String, Document)] = []
        if let sort { options.append(("sort", sort)) }
        if let limit { options.append(("limit", .int(limit))) }
        if let projection { options.append(("projection", projection)) }
        let optionsDocument = Document.object(options)
        return try await self.client.withCollection(self.name) { collection in
            try BSON.withDocument(filter) { filter in
                try BSON.withDocument(optionsDocument) { options in
                    guard let cursor = mongoc_collection_find_with_opts(collection, filter, options, nil) else {
                        throw MongoError(message: "find returned no cursor")
                    }
                    defer { mongoc_cursor_destroy(cursor) }
                    var documents: [Data] = []
                    var current: OpaquePointer?
                    while mongoc_cursor_next(cursor, &current) {
                        if let current { documents.append(try BSON.json(from: current)) }
                    }
                    var error = bson_error_t()
                    if mongoc_cursor_error(cursor, &error) { throw MongoError(error) }
                    return documents
                }
            }
        }
    }

    public func findOne(_ filter: Document) async throws -> Document? {
        try await self.find(filter, limit: 1).first
    }

    public func findOne<T: Decodable>(_ filter: Document, as type: T.Type) async throws -> T? {
        try await self.find(filter, limit: 1, as: type).first
    }

    public func count(_ filter: Document = [:]) async throws -> Int64 {
        try await self.client.withCollection(self.name) { collection in
            try BSON.withDocument(filter) { filter in
                var error = bson_error_t()
                let count = mongoc_collection_count_documents(collection, filter, nil, nil, nil, &error)
                if count < 0 { throw MongoError(error) }
                return count
            }
        }
    }
}

/// Conversions between `Document` and libbson, through relaxed extended JSON.
enum BSON {
    static func withDocument<T>(_ document: Document, _ body: (OpaquePointer) throws -> T) throws -> T {
        try self.withJSON(try document.jsonData(), body)
    }

    static func withJSON<T>(_ json: Data, _ body: (OpaquePointer) throws -> T) throws -> T {
        var error = bson_error_t()
        let bson = json.withUnsafeBytes { bytes in
            bson_new_from_json(bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, &error)
        }
        guard let bson else { throw MongoError(error) }
        defer { bson_destroy(bson) }
        return try body(bson)
    }

    /// A reply document that libmongoc initialises: `bson_t` is 128-byte aligned, which Swift cannot
    /// declare, so it lives in raw storage we own and destroy.
    static func withReply<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        let reply = OpaquePointer(storage)
        // An initialised inline bson_t, so bson_destroy below never frees our storage.
        bson_init(reply)
        defer {
            bson_destroy(reply)
            storage.deallocate()
        }
        return try body(reply)
    }

    static func document(from bson: OpaquePointer) throws -> Document {
        try JSONDecoder().decode(Document.self, from: try self.json(from: bson))
    }

    static func json(from bson: OpaquePointer) throws -> Data {
        var length = 0
        guard let json = bson_as_relaxed_extended_json(bson, &length) else { throw MongoError(message: "unreadable BSON") }
        defer { bson_free(json) }
        return Data(bytes: json, count: length)
    }
}

/// Runs blocking libmongoc calls off Swift's cooperative pool, on the client's own queue.
private func runBlocking<T: Sendable>(on queue: DispatchQueue, _ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        queue.async {
            continuation.resume(with: Result { try work() })
        }
    }
}
