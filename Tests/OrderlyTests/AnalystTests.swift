import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import OrderlyAPI
import OrderlyContracts
import OrderlyDomain
import OrderlyEventStore
import OrderlyMessaging
import OrderlyProcesses
import OrderlyReadModels
import OrderlyServices
import PostgresNIO
import Testing

/// Appends `count` events of `type` to `stream`, one append each (so each has its own transaction).
@discardableResult
func appendEach(_ store: any EventStore, _ count: Int, type: String, stream: String, correlation: String) async throws -> [Int64] {
    var positions: [Int64] = []
    for index in 0..<count {
        let event = NewEvent(
            type: type, data: Data(#"{"n":\#(index),"text":"a, \"quoted\"\nline"}"#.utf8),
            metadata: EventMetadata(correlationId: correlation, actor: "test"))
        positions.append(try await store.append([event], to: stream, expecting: .any).position)
    }
    return positions
}

/// OrderPlaced exactly as Orderly stored it before schema version 2 (top-level `paymentToken`).
func insertVersion1OrderPlaced(_ client: PostgresClient, orderID: String, customer: String, sku: String, quantity: Int, unitPrice: Int64) async throws
{
    let placedAt = UTCTime.iso8601(Date())
    let data =
        #"{"currency":"EUR","customerId":"\#(customer)","lines":[{"quantity":\#(quantity),"sku":"\#(sku)","unitPrice":\#(unitPrice)}],"orderId":"\#(orderID)","paymentToken":"tok_ok","placedAt":"\#(placedAt)","total":\#(Int64(quantity) * unitPrice)}"#
    let metadata = #"{"actor":"\#(customer)","correlationId":"\#(orderID)"}"#
    let stream = "order-\(orderID)"
    try await client.query(
        """
        INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, data, metadata)
        VALUES (\(UUID()), \(stream), 1, 'OrderPlaced', 1, \(data)::jsonb, \(metadata)::jsonb)
        """, logger: TestServers.logger)
}

@Suite struct UpcastingTests {
    @Test func aVersion1OrderPlacedReadsAsTheCurrentShape() throws {
        let version1 = Data(
            #"{"currency":"EUR","customerId":"c-1","lines":[{"quantity":2,"sku":"S-1","unitPrice":650}],"orderId":"o-1","paymentToken":"tok_declined","placedAt":"2026-03-01T10:00:00.250Z","total":1300}"#
                .utf8)
        let event = try EventCodec.decode(EncodedEvent(type: "OrderPlaced", schemaVersion: 1, data: version1))
        guard case .orderPlaced(let placed) = event else {
            Issue.record("decoded \(event)")
            return
        }
        #expect(placed.payment == PaymentDetails(method: "card", token: "tok_declined"))
        #expect(placed.lines == [OrderLine(sku: "S-1", quantity: 2, unitPrice: 650)])
        #expect(placed.total == 1300)
        #expect(UTCTime.iso8601(placed.placedAt) == "2026-03-01T10:00:00.250Z")

        let upcast = try EventCodec.upcast(EncodedEvent(type: "OrderPlaced", schemaVersion: 1, data: version1))
        #expect(upcast.schemaVersion == OrderPlaced.schemaVersion)
        #expect(try EventCodec.decode(upcast) == event)
        // The current version comes back byte for byte; a newer one than this build knows is refused.
        let current = try EventCodec.encode(event)
        #expect(try EventCodec.upcast(current) == current)
        #expect(throws: EventDecodingError.unsupportedSchemaVersion(type: "OrderPlaced", version: 4)) {
            try EventCodec.decode(EncodedEvent(type: "OrderPlaced", schemaVersion: 4, data: current.data))
        }
        #expect(throws: EventDecodingError.self) {
            try EventCodec.decode(EncodedEvent(type: "OrderPlaced", schemaVersion: 1, data: Data(#"{"orderId":"o-1"}"#.utf8)))
        }
    }

    /// A version 1 OrderPlaced row in the real table drives the whole saga (the payment service needs
    /// the token the upcaster moves), the read model, the export and the order's history.
    @Test func aStoredVersion1OrderGoesThroughEverything() async throws {
        let settings = try await TestServers.isolatedSettings()
        try await TestServers.withPostgres(settings) { client in
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            _ = try await OrderCommands(store: store).restock(sku: "SKU-OLD", quantity: 10, unitPrice: 500, actor: "staff")
            try await insertVersion1OrderPlaced(client, orderID: "legacy-1", customer: "c-old", sku: "SKU-OLD", quantity: 2, unitPrice: 500)
        }
        let app = try await Processes.dev(settings, logger: TestServers.logger)
        try await app.test(.live) { client in
            // As long as the other saga tests give a saga (the whole suite shares two cores).
            let view = try await TestServers.eventually(timeout: .seconds(120)) { () -> OrderView? in
                let response = try await client.send(uri: "/orders/legacy-1", method: .get)
                guard response.status == .ok else { return nil }
                let view = try JSONDecoder().decode(OrderView.self, from: Data(response.body.readableBytesView))
                return view.status == "COMPLETED" ? view : nil
            }
            let completed = try #require(view, "the version 1 order never completed")
            #expect(completed.total == 1000)
            #expect(completed.customerId == "c-old")
        }
        try await TestServers.withPostgres(settings) { client in
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID()).jsonl")
            defer { try? FileManager.default.removeItem(at: file) }
            try await EventExporter(store: store, filter: EventFilter(types: ["OrderPlaced"]), format: .jsonLines)
                .export(to: try OutputFile(path: file.path))
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 1)
            let exported = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
            #expect(exported?["schemaVersion"] as? Int == 3)
            let data = exported?["data"] as? [String: Any]
            // Moved by the upcaster, and withheld from the export like every payment token.
            #expect((data?["payment"] as? [String: Any])?["token"] as? String == "withheld")
            #expect(data?["paymentToken"] == nil)

            let history = try await OrderHistory.load(
                orderID: "legacy-1", streams: StreamNames.ofOrder("legacy-1"), store: store, asOf: nil)
            #expect(history.state?.status == "COMPLETED")
            #expect(history.events.first?.schemaVersion == 1, "history lists the stored event as stored")
        }
        // A rebuild of the orders model from the table folds the old shape too.
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let report = try await TestServers.withPostgres(settings) { client in
            try await ProjectionRebuilder(
                OrdersProjection.self, definition: try ordersDefinition(), store: PostgresEventStore(client: client, logger: TestServers.logger),
                client: mongo, logger: TestServers.logger
            ).rebuild { _ in }
        }
        #expect(report.unreadable == 0)
        let rebuilt = try await MongoOrderReadModel(collections: ActiveCollections(client: mongo)).order(id: "legacy-1")
        #expect(rebuilt?.status == "COMPLETED")
    }
}

func ordersDefinition() throws -> ProjectionDefinition {
    let all = try ReadModelCatalog.definitions(from: TestServers.repositoryRoot + "/projections")
    return try #require(all.first { $0.0.name == OrdersProjection.name }).1
}

@Suite struct EventExportTests {
    @Test(arguments: StoreKind.allCases) func filtersPickTheRightEventsInPositionOrder(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let a = try await appendEach(store, 5, type: "Alpha", stream: "order-x1", correlation: "x1")
            let b = try await appendEach(store, 4, type: "Beta", stream: "stock-S", correlation: "x2")
            let c = try await appendEach(store, 3, type: "Alpha", stream: "order-x3", correlation: "x3")
            let all = try await readVisible(store, count: 12, explain: horizonHolders)
            func scanned(_ filter: EventFilter) async throws -> [Int64] {
                var positions: [Int64] = []
                try await store.scan(matching: filter) { positions.append($0.position) }
                #expect(try await store.count(matching: filter) == Int64(positions.count))
                return positions
            }
            #expect(try await scanned(.all) == all.map(\.position).sorted())
            #expect(try await scanned(EventFilter(types: ["Alpha"])) == a + c)
            #expect(try await scanned(EventFilter(types: ["Beta", "Alpha"])) == (a + b + c).sorted())
            #expect(try await scanned(EventFilter(streamPrefix: "order-")) == a + c)
            #expect(try await scanned(EventFilter(streamPrefix: "order_")) == [], "LIKE wildcards in a prefix are literal")
            #expect(try await scanned(EventFilter(fromPosition: b[1], toPosition: c[0])) == [b[1], b[2], b[3], c[0]])
            let middle = all.first { $0.position == b[0] }?.recordedAt ?? Date()
            let fromMiddle = try await scanned(EventFilter(recordedFrom: middle))
            #expect(fromMiddle == all.filter { $0.recordedAt >= middle }.map(\.position).sorted())
            #expect(try await scanned(EventFilter(recordedBefore: middle)) == all.filter { $0.recordedAt < middle }.map(\.position).sorted())

            // readAll with a filter pages through the log in log order.
            var paged: [Int64] = []
            var cursor = LogCursor.start
            while true {
                let page = try await store.readAll(after: cursor, limit: 2, matching: EventFilter(types: ["Alpha"]))
                guard let last = page.last else { break }
                paged += page.map(\.position)
                cursor = last.cursor
            }
            #expect(paged == a + c)
            #expect(try await store.cursor(atPosition: b[2]) == all.first { $0.position == b[2] }?.cursor)
            #expect(try await store.cursor(atPosition: 999_999) == nil)
        }
    }

    @Test func jsonLinesAndCSVHoldEveryFieldAndQuoteSafely() async throws {
        let store = InMemoryEventStore()
        try await appendEach(store, 3, type: "Alpha", stream: "order-q,1", correlation: "c\"1")
        for format in EventExportFormat.allCases {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID()).\(format.rawValue)")
            defer { try? FileManager.default.removeItem(at: file) }
            // A tiny flush threshold: the writer hands over many small chunks.
            let written = try await EventExporter(store: store, filter: .all, format: format, flushBytes: 64).export(
                to: try OutputFile(path: file.path))
            #expect(written == 3)
            let text = try String(contentsOf: file, encoding: .utf8)
            switch format {
            case .jsonLines:
                let lines = text.split(separator: "\n")
                #expect(lines.count == 3)
                for (index, line) in lines.enumerated() {
                    let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                    #expect(object["position"] as? Int == index + 1)
                    #expect(object["streamId"] as? String == "order-q,1")
                    #expect(object["streamVersion"] as? Int == index + 1)
                    #expect(object["type"] as? String == "Alpha")
                    #expect((object["metadata"] as? [String: Any])?["correlationId"] as? String == "c\"1")
                    #expect((object["data"] as? [String: Any])?["text"] as? String == "a, \"quoted\"\nline")
                    #expect(UTCTime.parse(object["recordedAt"] as? String ?? "") != nil)
                }
            case .csv:
                let rows = parseCSV(text)
                #expect(rows.count == 4)
                #expect(rows[0] == EventExportWriter.csvHeader.dropLast().split(separator: ",").map(String.init))
                for (index, row) in rows.dropFirst().enumerated() {
                    #expect(row.count == 11)
                    #expect(row[0] == "\(index + 1)")
                    #expect(row[2] == "order-q,1")
                    #expect(row[7] == "c\"1")
                    let data = try #require(try JSONSerialization.jsonObject(with: Data(row[10].utf8)) as? [String: Any])
                    #expect(data["text"] as? String == "a, \"quoted\"\nline")
                }
            }
        }
    }

    /// The CLI writes the same bytes to a piped stdout as the library writes to a file, and says
    /// nothing on stderr when not on a terminal.
    @Test func theExportCommandStreamsToStdout() async throws {
        let settings = try await TestServers.isolatedSettings()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID()).csv")
        defer { try? FileManager.default.removeItem(at: file) }
        try await TestServers.withPostgres(settings) { client in
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            try await appendEach(store, 40, type: "Alpha", stream: "order-cli", correlation: "cli")
            try await appendEach(store, 10, type: "Beta", stream: "stock-cli", correlation: "cli")
            try await EventExporter(store: store, filter: EventFilter(types: ["Alpha"], fromPosition: 5), format: .csv)
                .export(to: try OutputFile(path: file.path))
        }
        let out = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestServers.repositoryRoot + "/.build/debug/orderly")
        process.arguments = ["events", "export", "--format", "csv", "--type", "Alpha", "--from-position", "5"]
        process.environment = ProcessInfo.processInfo.environment.merging(["ORDERLY_DATABASE_URL": settings.databaseURL, "LOG_LEVEL": "error"]) { $1 }
        process.standardOutput = out
        let errors = Pipe()
        process.standardError = errors
        try process.runAlone()
        let printed = await out.fileHandleForReading.readToEndOfFile()
        await process.exited()
        #expect(process.terminationStatus == 0)
        #expect(printed == (try Data(contentsOf: file)))
        #expect(parseCSV(String(decoding: printed, as: UTF8.self)).count == 37)
        let said = errors.fileHandleForReading.readDataToEndOfFile()
        #expect(said.isEmpty, "stderr: \(String(decoding: said, as: UTF8.self))")
    }
}

/// RFC 4180 rows (quoted fields may hold commas, quotes and line breaks).
func parseCSV(_ text: String) -> [[String]] {
    var rows: [[String]] = []
    var row: [String] = []
    var field = ""
    var quoted = false
    var characters = Array(text).makeIterator()
    var pending: Character? = nil
    while let character = pending ?? characters.next() {
        pending = nil
        if quoted {
            if character == "\"" {
                if let next = characters.next() {
                    if next == "\"" { field.append("\"") } else { quoted = false; pending = next }
                } else {
                    quoted = false
                }
            } else {
                field.append(character)
            }
        } else if character == "\"" {
            quoted = true
        } else if character == "," {
            row.append(field)
            field = ""
        } else if character == "\n" {
            row.append(field)
            rows.append(row)
            row = []
            field = ""
        } else {
            field.append(character)
        }
    }
    if !field.isEmpty || !row.isEmpty {
        row.append(field)
        rows.append(row)
    }
    return rows
}

@Suite struct OrderHistoryTests {
    @Test func historyFoldsTheOrderAsItWasAtATime() async throws {
        let settings = try await TestServers.isolatedSettings()
        let asOf = try await TestServers.withPostgres(settings) { client in
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            let placed = DomainEvent.orderPlaced(
                OrderPlaced(
                    orderId: "h-1", customerId: "c-h", currency: "EUR", lines: [OrderLine(sku: "S", quantity: 1, unitPrice: 700)], total: 700,
                    paymentToken: "tok_ok", placedAt: Date()))
            try await append(placed, to: "order-h-1", store: store)
            let placedAt = Date()
            try await Task.sleep(for: .milliseconds(50))
            let asOf = Date()
            try await Task.sleep(for: .milliseconds(50))
            try await append(
                .stockReserved(StockReserved(orderId: "h-1", lines: [OrderLine(sku: "S", quantity: 1, unitPrice: 700)], total: 700)),
                to: "reservation-h-1", store: store)
            try await append(
                .paymentProcessed(PaymentProcessed(orderId: "h-1", amount: 700, currency: "EUR", chargeId: "ch-1")), to: "payment-h-1", store: store)
            try await append(
                .orderCompleted(OrderCompleted(orderId: "h-1", customerId: "c-h", total: 700, currency: "EUR", completedAt: Date())), to: "order-h-1",
                store: store)
            let then = try await OrderHistory.load(orderID: "h-1", streams: StreamNames.ofOrder("h-1"), store: store, asOf: asOf)
            #expect(then.events.count == 4)
            #expect(then.applied.count == 1)
            #expect(then.state?.status == "PLACED")
            #expect(then.state?.timeline.map(\.type) == ["OrderPlaced"])
            let now = try await OrderHistory.load(orderID: "h-1", streams: StreamNames.ofOrder("h-1"), store: store, asOf: nil)
            #expect(now.state?.status == "COMPLETED")
            #expect(now.state?.timeline.map(\.type) == ["OrderPlaced", "StockReserved", "PaymentProcessed", "OrderCompleted"])
            let before = try await OrderHistory.load(
                orderID: "h-1", streams: StreamNames.ofOrder("h-1"), store: store, asOf: placedAt.addingTimeInterval(-3600))
            #expect(before.state == nil)
            // The premise, as the store recorded it: the order was placed before `asOf`, the rest after.
            let recorded = now.events.map(\.recordedAt)
            #expect(recorded.first.map { $0 <= asOf } == true && recorded.dropFirst().allSatisfy { $0 > asOf }, "recorded \(recorded), as of \(asOf)")
            return asOf
        }
        let child = try ChildProcess.orderly(["orders", "history", "h-1", "--as-of", UTCTime.iso8601(asOf), "--json"], settings: settings)
        await child.process.exited()
        #expect(child.process.terminationStatus == 0, "\(child.output)")
        let jsonText = try #require(child.output.split(separator: "\n").last { $0.hasPrefix("{") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(jsonText.utf8)) as? [String: Any])
        #expect((object["timeline"] as? [Any])?.count == 4)
        #expect(object["appliedEvents"] as? Int == 1)
        #expect((object["state"] as? [String: Any])?["status"] as? String == "PLACED")

        let unknown = try ChildProcess.orderly(["orders", "history", "nope"], settings: settings)
        await unknown.process.exited()
        #expect(unknown.process.terminationStatus != 0)
        #expect(unknown.output.contains("no order nope"))
    }

    private func append(_ event: DomainEvent, to stream: String, store: any EventStore) async throws {
        let encoded = try EventCodec.encode(event)
        _ = try await store.append(
            [NewEvent(type: encoded.type, schemaVersion: encoded.schemaVersion, data: encoded.data, metadata: EventMetadata(correlationId: "h-1"))],
            to: stream, expecting: .any)
    }
}

@Suite struct EventReplayTests {
    /// A replay for a new group goes to its own topic, from the position asked, in log order per key;
    /// the live topic and a group that has read it see nothing new. Run again, it resumes (nothing
    /// left to send).
    @Test func replayRepublishesHistoryForANewGroupOnly() async throws {
        let settings = try await TestServers.isolatedSettings()
        let positions = try await TestServers.withPostgres(settings) { client in
            let store = PostgresEventStore(client: client, logger: TestServers.logger)
            var positions: [Int64] = []
            for key in ["k1", "k2", "k3"] {
                positions += try await appendEach(store, 10, type: "Alpha", stream: "order-\(key)", correlation: key)
            }
            try await Processes.ensureTopic(settings.topic, settings, logger: TestServers.logger)
            let relay = EventRelay(
                store: store, producer: try KafkaProducer(configuration: settings.kafka),
                settings: .init(topic: settings.topic, checkpointName: "relay:\(settings.topic)"), logger: TestServers.logger)
            #expect(try await relay.catchUp() == 30)
            return positions
        }
        let existing = try KafkaConsumer(configuration: settings.kafka, groupID: TestServers.uniqueName("existing"), topics: [settings.topic])
        let live = try await consume(existing, count: 30)
        try await existing.commit(live)
        #expect(live.count == 30)

        let from = positions.sorted()[12]
        let group = "analytics-\(UUID().uuidString.prefix(8))"
        let published = try await TestServers.withPostgres(settings) { client in
            try await EventReplay.relay(group: group, fromPosition: from, settings: settings, postgres: client, logger: TestServers.logger).catchUp()
        }
        #expect(published == 18)
        let replayed = try await consume(
            try KafkaConsumer(
                configuration: settings.kafka, groupID: group, topics: [EventReplay.topic(for: group, settings: settings)]), count: 18)
        let events = try replayed.map { try EventMessageCodec.event(from: $0) }
        #expect(Set(events.map(\.position)) == Set(positions.filter { $0 >= from }))
        for key in ["k1", "k2", "k3"] {
            let versions = events.filter { $0.metadata.correlationId == key }.map(\.streamVersion)
            #expect(versions == versions.sorted(), "one key's events stay in order")
        }
        // The existing group has nothing new; the live topic holds exactly the 30 it had.
        #expect(try await existing.poll(max: 100, timeout: .seconds(2)).isEmpty)
        await existing.close()
        let fresh = try KafkaConsumer(configuration: settings.kafka, groupID: TestServers.uniqueName("fresh"), topics: [settings.topic])
        // Joining a new group can take a while on a loaded machine: wait for the 30, then make sure no 31st follows.
        let everything = try await consume(fresh, count: 30)
        let more = try await fresh.poll(max: 100, timeout: .seconds(3))
        #expect(everything.count == 30 && more.isEmpty, "the live topic holds \(everything.count) + \(more.count) records, not 30")
        await fresh.close()

        let again = try await TestServers.withPostgres(settings) { client in
            try await EventReplay.relay(group: group, fromPosition: from, settings: settings, postgres: client, logger: TestServers.logger).catchUp()
        }
        #expect(again == 0, "a second run resumes from its checkpoint")
        #expect(!EventReplay.isValidGroup("bad group/name"))
        #expect(EventReplay.isValidGroup("team.analytics_v2-1"))
    }

    /// Polls until `count` records came or `patience` passed without one.
    private func consume(_ consumer: KafkaConsumer, count: Int, patience: Duration = .seconds(30)) async throws -> [KafkaRecord] {
        var records: [KafkaRecord] = []
        var lastProgress = ContinuousClock.now
        while records.count < count, ContinuousClock.now - lastProgress < patience {
            let batch = try await consumer.poll(max: 100, timeout: .milliseconds(200))
            if !batch.isEmpty { lastProgress = .now }
            records += batch
        }
        return records
    }
}

@Suite struct EventJSONTests {
    @Test func idsAndEscapesAreWrittenLikeFoundationDoes() throws {
        for _ in 0..<1000 {
            let id = UUID()
            var json = JSONWriter()
            json.value(id)
            #expect(String(decoding: json.bytes, as: UTF8.self) == "\"\(id.uuidString.lowercased())\"")
        }
        let tricky = "quote \" backslash \\ tab \t newline \n bell \u{7} é 🙂"
        var json = JSONWriter()
        json.object { json in json.field("text", tricky) }
        let decoded = try JSONSerialization.jsonObject(with: Data(json.bytes)) as? [String: String]
        #expect(decoded?["text"] == tricky)
    }
}
