import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import OrderlyAPI
import OrderlyDomain
import OrderlyEventStore
import OrderlyMessaging
import OrderlyProcesses
import OrderlyReadModels
import PostgresNIO
import Testing

/// Personal data through every real part: orders placed over HTTP with a name, email and address
/// run the whole saga (`orderly dev`); then everything Orderly stores is dumped (every PostgreSQL
/// table, the whole Kafka topic, every MongoDB collection, JSON Lines and CSV exports, the events
/// API) and searched for the plaintext. Forgetting a customer (api and CLI) erases it for every
/// reader while the orders' figures stay, and a rebuilt read model still verifies.
@Suite struct PersonalDataTests {
    static let ada = (
        name: "Ada Lovelace", email: "ada.lovelace@example.org", line1: "12 St James Square", city: "Londinium", postalCode: "SW1Y 4JH"
    )
    static let grace = (name: "Grace Hopper", email: "grace.hopper@example.net", line1: "1 Navy Yard Road", city: "Arlingtonia", postalCode: "22201")
    static var plaintexts: [String] {
        [ada.name, ada.email, ada.line1, ada.city, ada.postalCode, grace.name, grace.email, grace.line1, grace.city]
    }

    static func body(customer: String, name: String, email: String, line1: String, city: String, postalCode: String, country: String) -> String {
        #"{"customerId":"\#(customer)","currency":"EUR","paymentToken":"tok_ok","lines":[{"sku":"SKU-PD","quantity":2,"unitPrice":1250}],"#
            + #""customer":{"name":"\#(name)","email":"\#(email)"},"#
            + #""shippingAddress":{"line1":"\#(line1)","line2":"Floor 2","city":"\#(city)","postalCode":"\#(postalCode)","country":"\#(country)"}}"#
    }

    static func json(_ response: TestResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]) ?? [:]
    }

    @Test func personalDataIsStoredOnlySealedAndForgettingErasesItForEveryReader() async throws {
        var configured = try await TestServers.isolatedSettings()
        // Payment tokens sealed for the payment service, as a deployment runs (dev holds both keys).
        (configured.paymentTokenPrivateKey, configured.paymentTokenPublicKey) = TestServers.paymentTokenKeys
        let settings = configured
        let app = try await Processes.dev(settings, logger: TestServers.logger)
        try await app.test(.live) { client in
            let restock = try await client.send(
                uri: "/inventory/SKU-PD/restock", method: .post, body: ByteBuffer(string: #"{"quantity":100,"unitPrice":1250}"#), as: .staff)
            #expect(restock.status == .accepted)
            var adaOrders: [String] = []
            for _ in 0..<2 {
                let placed = try await client.send(
                    uri: "/orders", method: .post,
                    body: ByteBuffer(
                        string: Self.body(
                            customer: "c-ada", name: Self.ada.name, email: Self.ada.email, line1: Self.ada.line1, city: Self.ada.city,
                            postalCode: Self.ada.postalCode, country: "GB")), as: .customer, subject: "c-ada")
                #expect(placed.status == .accepted, "\(String(buffer: placed.body))")
                adaOrders.append(try #require(Self.json(placed)["orderId"] as? String))
            }
            let gracePlaced = try await client.send(
                uri: "/orders", method: .post,
                body: ByteBuffer(
                    string: Self.body(
                        customer: "c-grace", name: Self.grace.name, email: Self.grace.email, line1: Self.grace.line1, city: Self.grace.city,
                        postalCode: Self.grace.postalCode, country: "US")), as: .customer, subject: "c-grace")
            let graceOrder = try #require(Self.json(gracePlaced)["orderId"] as? String)

            // Bad personal data is refused before anything is stored.
            let badEmail = Self.body(
                customer: "c-ada", name: "Ada", email: "ada-at-example.org", line1: "x", city: "y", postalCode: "z", country: "GB")
            let refused = try await client.send(uri: "/orders", method: .post, body: ByteBuffer(string: badEmail), as: .customer, subject: "c-ada")
            #expect(refused.status == .unprocessableContent)
            #expect(Self.json(refused)["field"] as? String == "customer.email")

            // Every order runs the whole saga with its data sealed, delivery included (the delivery
            // service opened the address to book the carrier); its reader sees it opened.
            for id in adaOrders + [graceOrder] {
                let completed = try await TestServers.eventually { () -> [String: Any]? in
                    let order = Self.json(try await client.send(uri: "/orders/\(id)", method: .get, as: .staff))
                    let fulfilment = order["fulfilment"] as? [String: Any]
                    return order["status"] as? String == "COMPLETED" && fulfilment?["status"] as? String == "DELIVERED" ? order : nil
                }
                #expect(completed != nil, "order \(id) was never delivered")
            }
            let adaView = Self.json(try await client.send(uri: "/orders/\(adaOrders[0])", method: .get, as: .customer, subject: "c-ada"))
            #expect((adaView["customer"] as? [String: Any])?["email"] as? String == Self.ada.email)
            #expect((adaView["shippingAddress"] as? [String: Any])?["city"] as? String == Self.ada.city)
            #expect((adaView["shippingAddress"] as? [String: Any])?["line2"] as? String == "Floor 2")
            #expect(adaView["personalData"] == nil, "the sealed form is never served")
            #expect(adaView["personalDataErased"] == nil)
            let analystHistory = try await client.send(uri: "/orders/\(adaOrders[0])/history", method: .get, as: .analyst)
            #expect(analystHistory.status == .ok)
            #expect(!String(buffer: analystHistory.body).contains(Self.ada.email), "analysts never see personal data")
            let staffHistory = Self.json(try await client.send(uri: "/orders/\(adaOrders[0])/history", method: .get, as: .staff))
            #expect(((staffHistory["state"] as? [String: Any])?["customer"] as? [String: Any])?["name"] as? String == Self.ada.name)
            let summaryBefore = String(buffer: try await client.send(uri: "/customers/c-ada/summary", method: .get, as: .staff).body)

            // The notification service opened the order to address each message: the mail record
            // says it was addressed and keeps whom to only sealed, which opens to Ada.
            let adaRecipient = try await Self.recordedRecipient(settings, customerId: "c-ada", orderId: adaOrders[0], outcome: "DELIVERED")
            #expect(adaRecipient == .customer(CustomerDetails(name: Self.ada.name, email: Self.ada.email)))

            // Everything stored, everywhere, holds no plaintext; what analysts read has no payment token.
            try await Self.expectNoPlaintextStored(settings, client: client)

            // Forgetting: admin only; then every reader shows the fields as erased, figures unchanged.
            #expect(try await client.send(uri: "/customers/c-ada/personal-data", method: .delete, as: .staff).status == .forbidden)
            #expect(
                try await client.send(uri: "/customers/c-ada/personal-data", method: .delete, as: .customer, subject: "c-ada").status
                    == .forbidden)
            let erased = try await client.send(uri: "/customers/c-ada/personal-data", method: .delete, as: .admin, subject: "dpo-1")
            #expect(erased.status == .accepted, "\(String(buffer: erased.body))")
            #expect(Self.json(erased)["keysDeleted"] as? Int == 1)
            #expect(Self.json(erased)["erasedBy"] as? String == "dpo-1")
            for id in adaOrders {
                let order = Self.json(try await client.send(uri: "/orders/\(id)", method: .get, as: .customer, subject: "c-ada"))
                #expect(order["personalDataErased"] as? Bool == true, "\(order)")
                #expect(order["customer"] == nil && order["shippingAddress"] == nil && order["personalData"] == nil)
                #expect(order["status"] as? String == "COMPLETED")
                #expect(order["total"] as? Int == 2500)
            }
            let page = String(buffer: try await client.send(uri: "/orders", method: .get, as: .customer, subject: "c-ada").body)
            #expect(!page.contains(Self.ada.email) && page.contains("\"personalDataErased\":true"), "\(page)")
            let history = String(buffer: try await client.send(uri: "/orders/\(adaOrders[1])/history", method: .get, as: .staff).body)
            #expect(!history.contains(Self.ada.email) && history.contains("\"personalDataErased\":true"))
            #expect(String(buffer: try await client.send(uri: "/customers/c-ada/summary", method: .get, as: .staff).body) == summaryBefore)
            #expect(
                try await Self.recordedRecipient(settings, customerId: "c-ada", orderId: adaOrders[0], outcome: "DELIVERED") == .erased,
                "the mail record forgets too")
            let graceView = Self.json(try await client.send(uri: "/orders/\(graceOrder)", method: .get, as: .staff))
            #expect((graceView["customer"] as? [String: Any])?["name"] as? String == Self.grace.name, "another customer is untouched")
            let again = try await client.send(uri: "/customers/c-ada/personal-data", method: .delete, as: .admin)
            #expect(again.status == .accepted && Self.json(again)["keysDeleted"] as? Int == 0, "a repeat is harmless")

            // The CLI reader shows the erasure; the CLI's own forget reaches the api within its key cache's time.
            let cliHistory = try ChildProcess.orderly(["orders", "history", adaOrders[0], "--json"], settings: settings)
            await cliHistory.process.exited()
            #expect(cliHistory.process.terminationStatus == 0, "\(cliHistory.output)")
            #expect(cliHistory.output.contains("\"personalDataErased\":true") && !cliHistory.output.contains(Self.ada.email), "\(cliHistory.output)")
            let cliGrace = try ChildProcess.orderly(["orders", "history", graceOrder], settings: settings)
            await cliGrace.process.exited()
            #expect(cliGrace.output.contains(Self.grace.email), "staff-side CLI opens what is not erased: \(cliGrace.output)")
            // Read (and so cached in the api) just before the CLI deletes the key behind the api's back.
            #expect(Self.json(try await client.send(uri: "/orders/\(graceOrder)", method: .get, as: .staff))["customer"] != nil)
            let forget = try ChildProcess.orderly(["customers", "forget", "c-grace", "--by", "dpo-2"], settings: settings)
            await forget.process.exited()
            #expect(forget.process.terminationStatus == 0, "\(forget.output)")
            let graceErased = try await TestServers.eventually(timeout: .seconds(15), interval: .milliseconds(500)) { () -> Bool? in
                let order = Self.json(try await client.send(uri: "/orders/\(graceOrder)", method: .get, as: .staff))
                return order["personalDataErased"] as? Bool == true ? true : nil
            }
            #expect(graceErased == true, "the api still opened Grace's data 15 s after the CLI forgot her")

            // A forgotten customer who orders again gets a new key: the new order opens, the old ones stay erased.
            let newer = try await client.send(
                uri: "/orders", method: .post,
                body: ByteBuffer(
                    string: Self.body(
                        customer: "c-ada", name: "A. King", email: "countess@example.org", line1: "Ockham Park", city: "Ripley",
                        postalCode: "GU23", country: "GB")), as: .customer, subject: "c-ada")
            let newerID = try #require(Self.json(newer)["orderId"] as? String)
            let newerView = try await TestServers.eventually { () -> [String: Any]? in
                let order = Self.json(try await client.send(uri: "/orders/\(newerID)", method: .get, as: .staff))
                return order["customer"] == nil ? nil : order
            }
            #expect((newerView?["customer"] as? [String: Any])?["email"] as? String == "countess@example.org")
            #expect(Self.json(try await client.send(uri: "/orders/\(adaOrders[0])", method: .get, as: .staff))["personalDataErased"] as? Bool == true)

            // A rebuilt orders model holds the same (sealed) documents and verifies against the log.
            #expect(try await client.send(uri: "/projections/orders/rebuild", method: .post).status == .accepted)
            let rebuilt = try await TestServers.eventually(timeout: .seconds(60)) { () -> Bool? in
                let state = Self.json(try await client.send(uri: "/projections/orders", method: .get, as: .analyst))
                let done = (state["rebuild"] == nil || state["rebuild"] is NSNull) && (state["collection"] as? String)?.hasPrefix("orders_v") == true
                return done ? true : nil
            }
            #expect(rebuilt == true, "the rebuild never switched readers over")
            #expect(try await client.send(uri: "/projections/orders/verify", method: .post).status == .accepted)
            let verified = try await TestServers.eventually(timeout: .seconds(60)) { () -> [String: Any]? in
                let status = Self.json(try await client.send(uri: "/projections/orders/verify", method: .get, as: .analyst))
                return status["state"] as? String == "running" ? nil : status
            }
            #expect(verified?["state"] as? String == "passed", "\(verified ?? [:])")
            let afterRebuild = Self.json(try await client.send(uri: "/orders/\(adaOrders[0])", method: .get, as: .staff))
            #expect(afterRebuild["personalDataErased"] as? Bool == true && afterRebuild["total"] as? Int == 2500)
            try await Self.expectNoPlaintextStored(settings, client: client)
        }
    }

    /// Whom the recording notification sender's message for the order and outcome was addressed to,
    /// opened as staff would open it; nil when it has no sealed recipient.
    enum RecordedRecipient: Equatable {
        case customer(CustomerDetails)
        case erased
    }

    static func recordedRecipient(_ settings: Settings, customerId: String, orderId: String, outcome: String) async throws -> RecordedRecipient? {
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.notificationsDatabase)
        let found = try await mongo.collection(RecordingNotificationSender.collection).find(["_id": .string("\(orderId):\(outcome)")])
        let record = try #require(found.first, "no notification \(outcome) recorded for \(orderId)")
        #expect(record["addressed"] == .bool(true))
        guard let recipient = record["recipient"] else { return nil }
        let sealed = try JSONDecoder().decode(SealedPersonalData.self, from: try recipient.jsonData())
        let opened = try await TestServers.withPostgres(settings) { postgres in
            try await PersonalDataVault(keys: PostgresCustomerKeyStore(client: postgres, logger: TestServers.logger))
                .open(sealed, customerId: customerId)
        }
        switch opened {
        case .erased: return .erased
        case .available(let data): return data.customer.map { .customer($0) }
        }
    }

    /// Dumps every PostgreSQL table, the whole topic, every MongoDB collection, both export formats
    /// and the events API, and fails on any plaintext personal data (or, where analysts read, the
    /// payment token).
    static func expectNoPlaintextStored(_ settings: Settings, client: some TestClientProtocol, sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        var dumps: [(String, String)] = []
        let (tables, exported) = try await TestServers.withPostgres(settings) { postgres in
            var names: [String] = []
            let listed = try await postgres.query(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
                logger: TestServers.logger)
            for try await name in listed.decode(String.self) { names.append(name) }
            var tables: [(String, String)] = []
            for name in names {
                var text = ""
                let rows = try await postgres.query(
                    "SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM \(unescaped: name) t", logger: TestServers.logger)
                for try await dump in rows.decode(String.self) { text = dump }
                tables.append(("postgres \(name)", text))
            }
            let store = PostgresEventStore(client: postgres, logger: TestServers.logger)
            var exports: [(String, String)] = []
            for format in EventExportFormat.allCases {
                var writer = EventExportWriter(format: format)
                writer.header()
                var cursor = LogCursor.start
                while true {
                    let page = try await store.readAll(after: cursor, limit: 500)
                    guard let last = page.last else { break }
                    for event in page { writer.append(event) }
                    cursor = LogCursor(transactionID: last.transactionID, position: last.position)
                }
                var text = ""
                writer.take { text = String(decoding: $0, as: UTF8.self) }
                exports.append(("export \(format.rawValue)", text))
            }
            return (tables, exports)
        }
        #expect(tables.count >= 8, "\(tables.map(\.0))", sourceLocation: sourceLocation)
        #expect(tables.contains { $0.0 == "public.events" || $0.0 == "postgres public.events" }, sourceLocation: sourceLocation)
        dumps += tables
        let records = try await KafkaTopicReader.newest(settings.topic, limit: 100_000, configuration: settings.kafka)
        #expect(records.contains { String(decoding: $0.value, as: UTF8.self).contains("\"personalData\"") }, sourceLocation: sourceLocation)
        dumps.append(
            ("kafka \(settings.topic)", records.map { String(decoding: $0.value + $0.headers.flatMap(\.1), as: UTF8.self) }.joined(separator: "\n")))
        for database in [settings.mongoDatabase, settings.notificationsDatabase] {
            let mongo = try MongoClient(uri: settings.mongoURI, database: database)
            for name in try await mongo.collectionNames() {
                let documents = try await mongo.collection(name).find([:])
                dumps.append(("mongodb \(name)", try documents.map { String(decoding: try $0.jsonData(), as: UTF8.self) }.joined(separator: "\n")))
            }
        }
        #expect(dumps.contains { $0.0 == "mongodb notifications" }, "\(dumps.map(\.0))", sourceLocation: sourceLocation)
        #expect(dumps.contains { $0.0.hasPrefix("mongodb orders") && $0.1.contains("\"sealed\"") }, sourceLocation: sourceLocation)
        let analystReads =
            exported + [("events api", String(buffer: try await client.send(uri: "/events?limit=1000", method: .get, as: .analyst).body))]
        for (place, text) in analystReads {
            let text = text.replacingOccurrences(of: "\"\"", with: "\"")  // CSV doubles quotes
            let shown = (withheld: text.contains("\"token\":\"withheld\""), requested: text.contains("\"paymentToken\":\"withheld\""))
            #expect(
                shown.withheld && shown.requested, "\(place): no OrderPlaced or PaymentRequested with the token withheld",
                sourceLocation: sourceLocation)
            if text.contains("tok_ok") { Issue.record("\(place) shows the payment token", sourceLocation: sourceLocation) }
        }
        for (place, text) in dumps + analystReads {
            // The payment token is sealed for the payment service in the log and Kafka too.
            for plain in Self.plaintexts + ["tok_ok"] where text.contains(plain) {
                Issue.record("\(place) holds \"\(plain)\" in plaintext", sourceLocation: sourceLocation)
            }
        }
    }
}
