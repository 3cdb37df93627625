import ArgumentParser
import Foundation
import OrderlyAPI
import OrderlyProcesses

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mint a bearer token for local use and tests (signed with ORDERLY_JWT_SECRET or the private key in ORDERLY_JWT_KEY_FILE).")

    @Option(help: "customer, staff, analyst or admin.") var role: String
    @Option(help: "Who the token is for (a customer's id for the customer role).") var subject: String
    @Option(help: "Seconds until it expires.") var ttl: Int = 3600

    func validate() throws {
        guard Role(rawValue: self.role) != nil else { throw ValidationError("--role must be customer, staff, analyst or admin") }
        guard !self.subject.isEmpty, self.subject.utf8.count <= 64 else { throw ValidationError("--subject must be 1 to 64 characters") }
        guard self.ttl > 0, self.ttl <= 31 * 24 * 3600 else { throw ValidationError("--ttl must be 1 second to 31 days") }
    }

    func run() async throws {
        guard let authority = try await Settings.fromEnvironment().makeTokenAuthority(), let role = Role(rawValue: self.role) else {
            throw ValidationError("set ORDERLY_JWT_SECRET (32 bytes or more) or ORDERLY_JWT_KEY_FILE to mint tokens")
        }
        print(try await authority.mint(subject: self.subject, role: role, lifetime: .seconds(self.ttl)))
    }
}
