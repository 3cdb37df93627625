import Hummingbird
import Logging
import OrderlyAPI
import OrderlyEventStore
import OrderlyMessaging
import OrderlyReadModels
import OrderlyServices
import PostgresNIO
import ServiceLifecycle

/// Builds each Orderly process from settings. `orderly api|relay|project|dev` and the end-to-end
/// tests all come through here, so what is tested is what runs.
public enum Processes {
    /// The api: commands append to PostgreSQL, queries read MongoDB.
    public static func api(
        _ settings: Settings, logger: Logger, extraServices: [any Service] = [],
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let postgres = try settings.makePostgresClient(logger: logger)
        let store = PostgresEventStore(client: postgres, logger: logger)
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let probe = try KafkaProducer(configuration: settings.kafka)
        let dependencies = APIDependencies(
            commands: OrderCommands(store: store),
            orders: MongoOrderReadModel(client: mongo),
            readinessChecks: [
                ("postgres", { try await store.ping() }),
                ("kafka", { try await probe.ping() }),
                ("mongodb", { try await mongo.ping() }),
            ]
        )
        return Application(
            router: API.buildRouter(dependencies),
            configuration: .init(address: .hostname(settings.httpHost, port: settings.httpPort), serverName: "orderly"),
            services: [postgres] + extraServices,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? settings.httpPort) },
            logger: logger
        )
    }

    /// The relay: tails the event log and publishes it to Kafka.
    public static func relay(_ settings: Settings, logger: Logger) async throws -> [any Service] {
        let postgres = try settings.makePostgresClient(logger: logger)
        return [postgres, try await self.relayService(settings, postgres: postgres, logger: logger)]
    }

    static func relayService(_ settings: Settings, postgres: PostgresClient, logger: Logger) async throws -> EventRelay {
        try await self.ensureTopic(settings, logger: logger)
        let producer = try KafkaProducer(configuration: settings.kafka)
        return EventRelay(
            store: PostgresEventStore(client: postgres, logger: logger), producer: producer,
            settings: .init(topic: settings.topic), logger: logger)
    }

    /// The projector: consumes the topic and maintains the MongoDB read models.
    public static func projector(_ settings: Settings, logger: Logger) async throws -> [any Service] {
        try await self.ensureTopic(settings, logger: logger)
        let consumer = try KafkaConsumer(configuration: settings.kafka, groupID: settings.projectorGroup, topics: [settings.topic])
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        return [Projector(consumer: consumer, client: mongo, logger: logger)]
    }

    /// Everything in one process, for a laptop and for end-to-end tests.
    public static func dev(
        _ settings: Settings, logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> some ApplicationProtocol {
        let relayPostgres = try settings.makePostgresClient(logger: logger)
        let relay = try await self.relayService(settings, postgres: relayPostgres, logger: logger)
        let projector = try await self.projector(settings, logger: logger)
        return try self.api(settings, logger: logger, extraServices: [relayPostgres, relay] + projector, onServerRunning: onServerRunning)
    }

    /// The topic must exist with its partition count before anyone produces: a broker that
    /// auto-creates it would pick its own count. Retries while the broker comes up.
    static func ensureTopic(_ settings: Settings, logger: Logger) async throws {
        var attempt = 0
        while true {
            do {
                try await KafkaAdmin.ensureTopic(settings.topic, partitions: settings.topicPartitions, configuration: settings.kafka)
                return
            } catch let error as KafkaError where error.isRetriable && attempt < 30 {
                attempt += 1
                logger.warning("topic not ready; retrying", metadata: ["topic": "\(settings.topic)", "error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}
