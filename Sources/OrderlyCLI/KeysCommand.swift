import ArgumentParser
import OrderlyEventStore

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the keys Orderly's processes are configured with.", subcommands: [KeysPaymentToken.self])
}

struct KeysPaymentToken: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payment-token",
        abstract: "A new key pair for payment tokens, as environment lines.",
        discussion: """
            The api seals every payment token with the public key before the append; only the payment service, \
            holding the private key, opens it. Give ORDERLY_PAYMENT_TOKEN_PUBLIC_KEY to the api and \
            ORDERLY_PAYMENT_TOKEN_PRIVATE_KEY to the payment service (orderly dev needs only the private key). \
            Keep the private key as secret as the database password: tokens sealed for a lost key cannot be charged.
            """)

    func run() async throws {
        let pair = PaymentTokenSealing.generateKeyPair()
        print("ORDERLY_PAYMENT_TOKEN_PRIVATE_KEY=\(pair.privateKey)")
        print("ORDERLY_PAYMENT_TOKEN_PUBLIC_KEY=\(pair.publicKey)")
    }
}
