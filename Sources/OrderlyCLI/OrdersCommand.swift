import ArgumentParser
import Foundation
import OrderlyDomain
import OrderlyEventStore
import OrderlyProcesses
import OrderlyReadModels
import OrderlyServices

struct Orders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look into one order's past.", subcommands: [OrdersHistory.self])
}

struct OrdersHistory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "An order's timeline (every event of its streams) and its state as it was at a time, folded from its events.")

    @Argument(help: "The order id.") var id: String
    @Option(help: "Show the state as it was at this time (ISO 8601 or yyyy-MM-dd); default now.") var asOf: String?
    @Flag(help: "Print one JSON document instead of text.") var json = false

    func run() async throws {
        let logger = ProcessStart.logger("orderly.history")
        let asOf = try self.asOf.map { try parseTime($0, option: "--as-of") }
        let id = self.id
        let history = try await Settings.fromEnvironment().withPostgres(logger: logger) { client in
            var history = try await OrderHistory.load(
                orderID: id, streams: StreamNames.ofOrder(id), store: PostgresEventStore(client: client, logger: logger), asOf: asOf)
            // Operators see the customer's personal data as staff do in the api (or that it was erased).
            history.state = try await history.state?.opened(with: PersonalDataVault(keys: PostgresCustomerKeyStore(client: client, logger: logger)))
            return history
        }
        guard !history.events.isEmpty else { throw ValidationError("no order \(id)") }
        print(self.json ? HistoryText.json(history) : HistoryText.text(history))
    }
}

/// How `orders history` prints.
enum HistoryText {
    static func text(_ history: OrderHistory) -> String {
        var lines = ["order \(history.orderID): \(history.events.count) events" + (history.asOf.map { ", state as of \(UTCTime.iso8601($0))" } ?? "")]
        let applied = history.applied.count
        for (index, event) in history.events.enumerated() {
            if index == applied { lines.append("  -- after \(history.asOf.map(UTCTime.iso8601) ?? "now") --") }
            lines.append(
                "  \(UTCTime.iso8601(event.recordedAt))  #\(event.position)  \(event.type) (\(event.streamID) v\(event.streamVersion))"
                    + (event.metadata.actor.map { " by \($0)" } ?? ""))
        }
        guard let state = history.state else {
            lines.append("state: not placed yet")
            return lines.joined(separator: "\n")
        }
        lines.append("state: \(state.status), total \(state.total) \(state.currency), \(state.lines.count) line(s)")
        if let reason = state.cancellationReason { lines.append("  cancelled: \(reason)") }
        if let payment = state.payment { lines.append("  payment: \(payment.status)" + (payment.reason.map { " (\($0))" } ?? "")) }
        if let customer = state.customer { lines.append("  customer: \(customer.name) <\(customer.email)>") }
        if let address = state.shippingAddress {
            let parts = [address.line1, address.line2 ?? "", address.postalCode + " " + address.city, address.country]
            lines.append("  ships to: \(parts.filter { !$0.isEmpty }.joined(separator: ", "))")
        }
        if state.personalDataErased == true { lines.append("  personal data: erased at the customer's request") }
        return lines.joined(separator: "\n")
    }

    static func json(_ history: OrderHistory) -> String {
        var json = JSONWriter()
        json.object { json in
            json.field("orderId", history.orderID)
            json.field("asOf", history.asOf.map(UTCTime.iso8601))
            json.key("timeline")
            json.array(history.events) { json, event in EventJSON.write(event, to: &json) }
            json.field("appliedEvents", Int64(history.applied.count))
            json.key("state")
            json.raw(history.state.flatMap { try? EventCodec.makeEncoder().encode($0) } ?? Data("null".utf8))
        }
        return String(decoding: json.bytes, as: UTF8.self)
    }
}
