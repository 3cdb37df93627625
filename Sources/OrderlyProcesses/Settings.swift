import Foundation
import Logging
import NIOPosix
import NIOSSL
import OrderlyAPI
import OrderlyEventStore
import OrderlyMessaging
import PostgresNIO

public struct SettingsError: Error, CustomStringConvertible {
    public var description: String

    public init(description: String) {
        self.description = description
    }
}

/// Everything a process needs to find its parts, read from the environment (`ORDERLY_*`).
public struct Settings: Sendable {
    public var databaseURL: String
    public var kafka: KafkaConfiguration
    public var mongoURI: String
    public var mongoDatabase: String
    /// `ORDERLY_NOTIFICATIONS_DATABASE`; nil: `<mongoDatabase>_notifications`.
    public var notificationsDatabaseName: String?
    /// Where the recording notification sender keeps its messages: a database of its own, apart from
    /// the read models. It stands for a mail gateway, not a read model, and a document server that
    /// serves one request at a time per database (the local NX-27017) need not queue the notification
    /// service's writes behind the projector's.
    public var notificationsDatabase: String { self.notificationsDatabaseName ?? "\(self.mongoDatabase)_notifications" }
    public var topic: String
    public var topicPartitions: Int32
    /// `ORDERLY_TOPIC_REPLICATION_FACTOR` (default 1: one broker) and `ORDERLY_TOPIC_MIN_INSYNC_REPLICAS`
    /// (unset: the broker's default) for the topics Orderly creates; a real cluster wants 3 and 2.
    public var topicReplicationFactor: Int32 = 1
    public var topicMinInsyncReplicas: Int?

    /// The topic settings Orderly creates its topics with.
    public var topicConfig: [String: String] {
        self.topicMinInsyncReplicas.map { ["min.insync.replicas": String($0)] } ?? [:]
    }
    /// Where consumers put events they can never handle, with the reason.
    public var deadLetterTopic: String
    public var projectorGroup: String
    /// The saga services' consumer groups are `<prefix>-order`, `<prefix>-inventory`, ...
    public var serviceGroupPrefix: String
    /// An order with no terminal state this long after placement is cancelled and compensated.
    public var sagaDeadline: Duration
    /// How often the order service looks for sagas past their deadline.
    public var sagaSweepInterval: Duration
    /// Events the relay reads and publishes per batch.
    public var relayBatchSize: Int
    /// Batches the relay keeps waiting for the broker's acknowledgement at once.
    public var relayBatchesInFlight: Int = 4
    /// Port of the small /health and /metrics server of the relay and projector processes (0: any free port).
    public var opsPort: Int?
    public var httpHost: String
    public var httpPort: Int
    /// HS256 secret for bearer tokens (at least 32 bytes). Never logged.
    public var jwtSecret: String?
    /// `ORDERLY_PAYMENT_TOKEN_PUBLIC_KEY`: the api seals payment tokens with it (base64 X25519; made
    /// by `orderly keys payment-token`). Without it (and without the private key, from which `dev`
    /// derives it) tokens are stored as sent.
    public var paymentTokenPublicKey: String?
    /// `ORDERLY_PAYMENT_TOKEN_PRIVATE_KEY`: the payment service opens sealed tokens with it. Never logged.
    public var paymentTokenPrivateKey: String?
    /// A PEM key file for RS256 or ES256 tokens (private to mint and verify, public to verify only);
    /// used instead of the secret when set.
    public var jwtKeyFile: String?
    /// The `iss` every token must carry.
    public var jwtIssuer: String = "orderly"
    /// `ORDERLY_JWKS_FILE`: an identity provider's public keys as a JSON Web Key Set (wins over the
    /// key file and the secret); `ORDERLY_JWT_AUDIENCE`: the `aud` every token must name.
    public var jwksFile: String?
    /// `ORDERLY_JWKS_URL`: the provider's key set URL, read at start and again as keys rotate (wins
    /// over the file).
    public var jwksURL: String?
    public var jwtAudience: String?
    /// Commands (POST) per second each caller may send on average, and in one burst; 0 turns the
    /// limit off.
    public var rateLimitPerSecond: Double = 50
    public var rateLimitBurst: Double = 100
    /// `ORDERLY_TRUSTED_PROXIES`: addresses and CIDR ranges whose `X-Forwarded-For` names the client
    /// (parsed when the api starts; an invalid entry stops it naming the entry).
    public var trustedProxies: String = ""
    /// `ORDERLY_DATABASE_POOL_SIZE`: connections each process may hold to PostgreSQL (default 40).
    public var databasePoolSize: Int = 40
    /// `ORDERLY_SIMULATED_CARRIER_ADVANCES`: whether the simulated carrier delivers (or reports a
    /// failure) by itself right after dispatch (default true); `false` leaves every update to
    /// `POST /shipments/{orderId}/events`, as a real carrier's.
    public var simulatedCarrierAdvances: Bool = true
    /// A shipment requested and neither dispatched nor failed this long after is failed (the carrier
    /// never answered its booking), and so refunded (`ORDERLY_SHIPMENT_BOOKING_DEADLINE_SECONDS`).
    public var shipmentBookingDeadline: Duration = .seconds(600)
    /// How often the delivery service looks for shipments past their booking deadline.
    public var shipmentSweepInterval: Duration = .seconds(10)
    /// A parcel dispatched this long ago and neither delivered nor failed is overdue: the api reports
    /// how many (`orderly_shipments_overdue`, `ORDERLY_SHIPMENT_OVERDUE_SECONDS`, default 7 days),
    /// counted every `shipmentOverdueInterval` (`ORDERLY_SHIPMENT_OVERDUE_CHECK_MS`, default 60 s).
    public var shipmentOverdueAfter: Duration = .seconds(7 * 86_400)
    public var shipmentOverdueInterval: Duration = .seconds(60)
    /// How long a consumer's poll waits for a message before its loop goes round (`ORDERLY_CONSUMER_POLL_MS`).
    /// librdkafka answers as soon as one arrives and a shutdown ends the wait, so a longer wait only
    /// spares an idle process wake-ups; but each waiting poll holds a thread, so an embedder running
    /// dozens of consumers in one process keeps it short. The `orderly` commands wait up to a second.
    public var consumerPollTimeout: Duration = .milliseconds(100)
    /// How often, at most, a consumer commits its handled offsets while batches keep coming
    /// (`ORDERLY_CONSUMER_COMMIT_MS`; see `EventConsumer.Settings.commitInterval`).
    public var consumerCommitInterval: Duration = .milliseconds(250)
    /// The most events the projector takes in one batch (`ORDERLY_PROJECTOR_MAX_BATCH`). A projector
    /// that fell behind catches up by taking more at once: an order's events that come together cost
    /// one write of its document instead of one per batch (with 500, the saga with delivery at 100
    /// orders/s kept it behind for the whole minute on a slow host, 2026-12-05).
    public var projectorMaxBatch = 2000

    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Settings {
        var settings = Settings(
            databaseURL: environment["ORDERLY_DATABASE_URL"] ?? "postgres://orderly@127.0.0.1:5432/orderly",
            kafka: KafkaConfiguration.fromEnvironment(environment),
            mongoURI: environment["ORDERLY_MONGO_URI"] ?? "mongodb://127.0.0.1:27017",
            mongoDatabase: environment["ORDERLY_MONGO_DATABASE"] ?? "orderly",
            topic: environment["ORDERLY_TOPIC"] ?? "order-events",
            topicPartitions: environment["ORDERLY_TOPIC_PARTITIONS"].flatMap { Int32($0) } ?? 10,
            deadLetterTopic: environment["ORDERLY_DEAD_LETTER_TOPIC"] ?? "order-events-dlq",
            projectorGroup: environment["ORDERLY_PROJECTOR_GROUP"] ?? "orderly-projector",
            serviceGroupPrefix: environment["ORDERLY_SERVICE_GROUP_PREFIX"] ?? "orderly",
            sagaDeadline: .milliseconds(environment["ORDERLY_SAGA_DEADLINE_SECONDS"].flatMap { Double($0) }.map { Int64($0 * 1000) } ?? 60_000),
            sagaSweepInterval: .milliseconds(environment["ORDERLY_SAGA_SWEEP_MS"].flatMap { Int64($0) } ?? 1000),
            relayBatchSize: environment["ORDERLY_RELAY_BATCH_SIZE"].flatMap { Int($0) } ?? 5000,
            opsPort: environment["ORDERLY_OPS_PORT"].flatMap { Int($0) },
            httpHost: environment["ORDERLY_HTTP_HOST"] ?? "0.0.0.0",
            httpPort: environment["ORDERLY_HTTP_PORT"].flatMap { Int($0) } ?? 8080,
            jwtSecret: environment["ORDERLY_JWT_SECRET"].flatMap { $0.isEmpty ? nil : $0 },
            jwtKeyFile: environment["ORDERLY_JWT_KEY_FILE"].flatMap { $0.isEmpty ? nil : $0 },
            jwtIssuer: environment["ORDERLY_JWT_ISSUER"] ?? "orderly",
            rateLimitPerSecond: environment["ORDERLY_RATE_LIMIT_PER_SECOND"].flatMap { Double($0) } ?? 50,
            rateLimitBurst: environment["ORDERLY_RATE_LIMIT_BURST"].flatMap { Double($0) } ?? 100
        )
        settings.trustedProxies = environment["ORDERLY_TRUSTED_PROXIES"] ?? ""
        settings.paymentTokenPublicKey = environment["ORDERLY_PAYMENT_TOKEN_PUBLIC_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        settings.paymentTokenPrivateKey = environment["ORDERLY_PAYMENT_TOKEN_PRIVATE_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        settings.simulatedCarrierAdvances = environment["ORDERLY_SIMULATED_CARRIER_ADVANCES"].map { $0.lowercased() != "false" && $0 != "0" } ?? true
        if let seconds = environment["ORDERLY_SHIPMENT_BOOKING_DEADLINE_SECONDS"].flatMap({ Double($0) }), seconds > 0 {
            settings.shipmentBookingDeadline = .milliseconds(Int64(seconds * 1000))
        }
        if let milliseconds = environment["ORDERLY_SHIPMENT_SWEEP_MS"].flatMap({ Int64($0) }), milliseconds > 0 {
            settings.shipmentSweepInterval = .milliseconds(milliseconds)
        }
        if let milliseconds = environment["ORDERLY_CONSUMER_POLL_MS"].flatMap({ Int64($0) }), milliseconds > 0 {
            settings.consumerPollTimeout = .milliseconds(milliseconds)
        }
        if let milliseconds = environment["ORDERLY_CONSUMER_COMMIT_MS"].flatMap({ Int64($0) }), milliseconds > 0 {
            settings.consumerCommitInterval = .milliseconds(milliseconds)
        }
        if let events = environment["ORDERLY_PROJECTOR_MAX_BATCH"].flatMap({ Int($0) }), events > 0 { settings.projectorMaxBatch = events }
        if let seconds = environment["ORDERLY_SHIPMENT_OVERDUE_SECONDS"].flatMap({ Double($0) }), seconds > 0 {
            settings.shipmentOverdueAfter = .milliseconds(Int64(seconds * 1000))
        }
        if let milliseconds = environment["ORDERLY_SHIPMENT_OVERDUE_CHECK_MS"].flatMap({ Int64($0) }), milliseconds > 0 {
            settings.shipmentOverdueInterval = .milliseconds(milliseconds)
        }
        settings.databasePoolSize = environment["ORDERLY_DATABASE_POOL_SIZE"].flatMap { Int($0) }.map { max(1, $0) } ?? 40
        settings.jwksFile = environment["ORDERLY_JWKS_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        settings.jwksURL = environment["ORDERLY_JWKS_URL"].flatMap { $0.isEmpty ? nil : $0 }
        settings.jwtAudience = environment["ORDERLY_JWT_AUDIENCE"].flatMap { $0.isEmpty ? nil : $0 }
        settings.topicReplicationFactor = environment["ORDERLY_TOPIC_REPLICATION_FACTOR"].flatMap { Int32($0) } ?? 1
        settings.topicMinInsyncReplicas = environment["ORDERLY_TOPIC_MIN_INSYNC_REPLICAS"].flatMap { Int($0) }
        settings.notificationsDatabaseName = environment["ORDERLY_NOTIFICATIONS_DATABASE"].flatMap { $0.isEmpty ? nil : $0 }
        if let inFlight = environment["ORDERLY_RELAY_BATCHES_IN_FLIGHT"].flatMap({ Int($0) }) { settings.relayBatchesInFlight = max(1, inFlight) }
        return settings
    }

    /// The token signer/verifier the settings name: the key file if set, else the secret, else none.
    /// What the api seals payment tokens with: the public key, else the one of the private key
    /// (one process holding both, as `dev`); nil when neither is set.
    public func makePaymentTokenSealer() throws -> PaymentTokenSealer? {
        if let publicKey = self.paymentTokenPublicKey { return try PaymentTokenSealer(publicKey: publicKey) }
        guard let privateKey = self.paymentTokenPrivateKey else { return nil }
        return try PaymentTokenSealer(publicKey: try PaymentTokenSealing.publicKey(ofPrivateKey: privateKey))
    }

    /// What the payment service opens sealed tokens with; nil when no private key is set.
    public func makePaymentTokenOpener() throws -> PaymentTokenOpener? {
        try self.paymentTokenPrivateKey.map { try PaymentTokenOpener(privateKey: $0) }
    }

    public func makeTokenAuthority() async throws -> TokenAuthority? {
        var authority: TokenAuthority
        if let url = self.jwksURL {
            authority = try await TokenAuthority.keySet(url: url, issuer: self.jwtIssuer)
        } else if let path = self.jwksFile {
            authority = try await TokenAuthority.keySet(file: path, issuer: self.jwtIssuer)
        } else if let path = self.jwtKeyFile {
            authority = try await TokenAuthority.keyFile(path: path, issuer: self.jwtIssuer)
        } else if let secret = self.jwtSecret {
            authority = try await TokenAuthority.hmac(secret: secret, issuer: self.jwtIssuer)
        } else {
            return nil
        }
        authority.audience = self.jwtAudience
        return authority
    }

    /// `postgres://user[:password]@host[:port]/database`
    public func postgresConfiguration() throws -> PostgresClient.Configuration {
        guard let url = URLComponents(string: self.databaseURL), url.scheme == "postgres" || url.scheme == "postgresql",
            let host = url.host, let user = url.user
        else {
            throw SettingsError(description: "ORDERLY_DATABASE_URL must look like postgres://user:password@host:port/database")
        }
        let database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        var configuration = PostgresClient.Configuration(
            host: host, port: url.port ?? 5432, username: user, password: url.password,
            database: database.isEmpty ? user : database, tls: try Self.postgresTLS(url.queryItems ?? []).client)
        configuration.options.maximumConnections = self.databasePoolSize
        return configuration
    }

    /// TLS as libpq's `sslmode` and `sslrootcert` say (`?sslmode=verify-full&sslrootcert=/etc/ca.pem`):
    /// `disable` (the default), `prefer`, `require` (encrypted, server not verified), `verify-ca`
    /// (its certificate chains to the CA), `verify-full` (and names the host). Without `sslrootcert`
    /// the system's trusted CAs are used. Any other parameter is refused, so a misspelt one cannot
    /// quietly leave the connection unencrypted.
    struct PostgresTLS {
        /// What the pool uses.
        var client: PostgresClient.Configuration.TLS
        /// The TLS settings a connection must succeed with (`require` and stricter); nil otherwise.
        var required: TLSConfiguration?
    }

    static func postgresTLS(_ items: [URLQueryItem]) throws -> PostgresTLS {
        var mode = "disable"
        var rootCertificate: String?
        for item in items {
            switch item.name {
            case "sslmode": mode = item.value ?? ""
            case "sslrootcert": rootCertificate = item.value
            default:
                throw SettingsError(description: "ORDERLY_DATABASE_URL: unknown parameter \(item.name) (known: sslmode, sslrootcert)")
            }
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let rootCertificate {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificate))
            } catch {
                throw SettingsError(description: "ORDERLY_DATABASE_URL: sslrootcert \(rootCertificate) is not a readable PEM certificate (\(error))")
            }
        }
        switch mode {
        case "disable":
            return PostgresTLS(client: .disable, required: nil)
        case "prefer":
            tls.certificateVerification = .none
            return PostgresTLS(client: .prefer(tls), required: nil)
        case "require":
            tls.certificateVerification = .none
            return PostgresTLS(client: .require(tls), required: tls)
        case "verify-ca":
            tls.certificateVerification = .noHostnameVerification
            return PostgresTLS(client: .require(tls), required: tls)
        case "verify-full":
            tls.certificateVerification = .fullVerification
            return PostgresTLS(client: .require(tls), required: tls)
        default:
            throw SettingsError(
                description: "ORDERLY_DATABASE_URL: sslmode \(mode) is not one of disable, prefer, require, verify-ca, verify-full")
        }
    }

    public func makePostgresClient(logger: Logger) throws -> PostgresClient {
        PostgresClient(configuration: try self.postgresConfiguration(), backgroundLogger: logger)
    }

    /// The client, after one connection shows that PostgreSQL's certificate is accepted (with
    /// `sslmode=require` or stricter): a wrong CA or host name stops the process at start with a
    /// message saying so, instead of a pool that retries for ever. PostgreSQL being down is not
    /// refused here (the pool waits for it, as everywhere).
    public func makeCheckedPostgresClient(logger: Logger) async throws -> PostgresClient {
        try await self.checkPostgresTLS(logger: logger)
        return try self.makePostgresClient(logger: logger)
    }

    public func checkPostgresTLS(logger: Logger) async throws {
        let configuration = try self.postgresConfiguration()
        let query = URLComponents(string: self.databaseURL)?.queryItems ?? []
        guard let tls = try Self.postgresTLS(query).required else { return }
        let connectionConfiguration = PostgresConnection.Configuration(
            host: configuration.host ?? "127.0.0.1", port: configuration.port ?? 5432, username: configuration.username,
            password: configuration.password, database: configuration.database, tls: .require(try NIOSSLContext(configuration: tls)))
        do {
            let connection = try await PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.any(), configuration: connectionConfiguration, id: 0, logger: logger
            ).get()
            try await connection.close()
        } catch {
            let text = String(reflecting: error)
            guard ["SSL", "TLS", "certificate", "Certificate", "handshake"].contains(where: text.contains) else {
                logger.warning("PostgreSQL does not answer yet; going on", metadata: ["error": "\(error)"])
                return
            }
            throw SettingsError(
                description:
                    "PostgreSQL at \(configuration.host ?? "?"):\(configuration.port ?? 5432): the TLS handshake failed "
                    + "(\(String(describing: error).prefix(300))): check sslmode and sslrootcert in ORDERLY_DATABASE_URL")
        }
    }

    /// Runs `body` with a running PostgresClient, then stops it: for one-shot commands (migrate,
    /// bench) and tests. Long-running processes put the client in their ServiceGroup instead.
    @discardableResult
    public func withPostgres<T: Sendable>(logger: Logger, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        // The body may ask for a connection before `run()` has started; the client then warns,
        // harmlessly (the lease waits). One-shot commands keep only its errors.
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .error)
        let client = try await self.makeCheckedPostgresClient(logger: quiet)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}
