import ArgumentParser
import Foundation
import OrderlyDomain
import OrderlyEventStore
import OrderlyProcesses

struct Customers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Customers' personal data (names, emails, shipping addresses; sealed with a data key per customer).",
        subcommands: [CustomersForget.self])
}

struct CustomersForget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Erase a customer's personal data everywhere (the same as DELETE /customers/{id}/personal-data).",
        discussion: """
            Deletes the customer's data keys from PostgreSQL and records who did it. The log, Kafka, exports and \
            read models keep only what was sealed with those keys, so from now on every reader shows the \
            fields as erased. Orders, totals, statuses and sales figures do not change. Repeating it is harmless.
            """)

    @Argument(help: "The customer id.") var id: String
    @Option(help: "Who asks (recorded with the erasure).") var by = ProcessInfo.processInfo.environment["USER"].map { "cli:\($0)" } ?? "cli"

    func validate() throws {
        guard IdentifierRules.isWellFormed(self.id) else {
            throw ValidationError("a customer id is 1 to \(Limits.maxIdentifierLength) ASCII letters, digits or - _ . :")
        }
    }

    func run() async throws {
        let logger = ProcessStart.logger("orderly.customers")
        let (id, by) = (self.id, self.by)
        let erasure = try await Settings.fromEnvironment().withPostgres(logger: logger) { client in
            try await PostgresCustomerKeyStore(client: client, logger: logger).forget(id, by: by)
        }
        print(
            erasure.keysDeleted == 0
                ? "customer \(id): no data key left (already forgotten, or never ordered with personal data); erasure recorded"
                : "customer \(id): \(erasure.keysDeleted) data key(s) deleted; their personal data is erased everywhere")
    }
}
