import Hummingbird
import Logging
import OrderlyAPI
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import OrderlyMessaging
import OrderlyReadModels
import OrderlyServices
import PostgresNIO
import Prometheus
import ServiceLifecycle

/// Builds each Orderly process from settings. `orderly api|relay|project|dev` and the end-to-end
/// tests all come through here, so what is tested is what runs.
public enum Processes {
    /// The api: commands append to PostgreSQL, queries read MongoDB.
    public static func api(
        _ settings: Settings, logger: Logger, extraServices: [any Service] = [],
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> some ApplicationProtocol {
        let tokens = try await settings.makeTokenAuthority()
        if tokens == nil {
            logger.warning(
                "no ORDERLY_JWT_SECRET, ORDERLY_JWT_KEY_FILE, ORDERLY_JWKS_FILE or ORDERLY_JWKS_URL: no bearer token is accepted, routes that need a role answer 401"
            )
        }
        let postgres = try await settings.makeCheckedPostgresClient(logger: logger)
        let store = PostgresEventStore(client: postgres, logger: logger)
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let collections = ActiveCollections(client: mongo)
        let probe = try KafkaProducer(configuration: settings.kafka)
        let trustedProxies = try TrustedProxies(parsing: settings.trustedProxies)
        let vault = PersonalDataVault(keys: CachedCustomerKeyStore(PostgresCustomerKeyStore(client: postgres, logger: logger)))
        let paymentTokens = try settings.makePaymentTokenSealer()
        if paymentTokens == nil {
            logger.warning(
                "no ORDERLY_PAYMENT_TOKEN_PUBLIC_KEY: payment tokens are stored in the event log as sent (readers never see them); make a key pair with `orderly keys payment-token`"
            )
        }
        let orders = MongoOrderReadModel(collections: collections)
        let overdueShipments = ShipmentsOverdueGauge(
            orders: orders, overdueAfter: settings.shipmentOverdueAfter, interval: settings.shipmentOverdueInterval, logger: logger)
        var dependencies = APIDependencies(
            commands: OrderCommands(store: store, vault: vault, paymentTokens: paymentTokens),
            orders: orders,
            inventory: MongoInventoryReadModel(collections: collections),
            sales: MongoSalesReadModel(collections: collections),
            events: store, tokens: tokens,
            rateLimiter: settings.rateLimitPerSecond > 0
                ? RateLimiter(ratePerSecond: settings.rateLimitPerSecond, burst: settings.rateLimitBurst) : nil,
            readinessChecks: [
                ("postgres", { try await store.ping() }),
                ("kafka", { try await probe.ping() }),
                ("mongodb", { try await mongo.ping() }),
            ],
            metricsText: { Observability.registry.emitToBuffer() },
            projections: ProjectionAdministration(
                client: mongo, store: store, definitions: try ReadModelCatalog.definitions(from: ProjectionDefinition.defaultDirectory()),
                logger: logger),
            deadLetters: { [kafka = settings.kafka, topic = settings.deadLetterTopic] limit in
                try await DeadLetterTopic.newest(topic, limit: limit, configuration: kafka)
            }
        )
        dependencies.trustedProxies = trustedProxies
        dependencies.vault = vault
        return Application(
            router: try API.buildRouter(dependencies),
            server: API.server,
            configuration: .init(address: .hostname(settings.httpHost, port: settings.httpPort), serverName: "orderly"),
            services: [postgres, probe, overdueShipments] + extraServices,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? settings.httpPort) },
            logger: logger
        )
    }

    /// The relay: tails the event log and publishes it to Kafka. Serves /health and /metrics on `opsPort`.
    public static func relay(_ settings: Settings, opsPort: Int, logger: Logger) async throws -> [any Service] {
        let postgres = try await settings.makeCheckedPostgresClient(logger: logger)
        return [
            postgres, try await self.relayService(settings, postgres: postgres, logger: logger),
            self.opsServer(settings, port: opsPort, postgres: postgres, logger: logger),
        ]
    }

    /// The small /health, /ready and /metrics server of processes that have no api. `/ready` asks
    /// PostgreSQL and the broker (and the document server when `mongo` is given), as the api's does.
    static func opsServer(_ settings: Settings, port: Int, postgres: PostgresClient, mongo: MongoClient? = nil, logger: Logger) -> some Service {
        let store = PostgresEventStore(client: postgres, logger: logger)
        let broker = BrokerProbe(configuration: settings.kafka)
        var checks: [(String, @Sendable () async throws -> Void)] = [
            ("postgres", { try await store.ping() }), ("kafka", { try await broker.ping() }),
        ]
        if let mongo { checks.append(("mongodb", { try await mongo.ping() })) }
        return Application(
            router: API.buildOpsRouter(checks: checks) { Observability.registry.emitToBuffer() },
            configuration: .init(address: .hostname(settings.httpHost, port: port), serverName: "orderly-ops"),
            logger: logger)
    }

    static func relayService(_ settings: Settings, postgres: PostgresClient, logger: Logger) async throws -> EventRelay {
        try await self.ensureTopic(settings.topic, settings, logger: logger)
        let producer = try KafkaProducer(configuration: settings.kafka, createsTopics: false)
        return EventRelay(
            store: PostgresEventStore(client: postgres, logger: logger), producer: producer,
            leaderLock: PostgresLeaderLock(client: postgres, key: Self.relayLockKey(topic: settings.topic), logger: logger),
            appendSignal: PostgresAppendSignal(client: postgres, logger: logger),
            settings: .init(
                topic: settings.topic, checkpointName: "relay:\(settings.topic)", batchSize: settings.relayBatchSize,
                guardedPartitions: settings.topicPartitions, topicReplicationFactor: settings.topicReplicationFactor,
                topicConfig: settings.topicConfig, maxBatchesInFlight: settings.relayBatchesInFlight),
            logger: logger)
    }

    /// One leader per topic: relays publishing to different topics do not exclude each other.
    static func relayLockKey(topic: String) -> Int64 {
        // Stable across processes and releases, unlike Hasher.
        Int64(bitPattern: Checksum.fnv1a64Value("orderly-relay:\(topic)".utf8))
    }

    /// The projector: keeps every read model in `projections/` up to date from one consumer group,
    /// and rebuilds one whose definition's version went up. Serves
    /// /health and /metrics on `opsPort` when given one.
    public static func projector(_ settings: Settings, opsPort: Int?, logger: Logger) async throws -> [any Service] {
        let mongo = try MongoClient(uri: settings.mongoURI, database: settings.mongoDatabase)
        let definitions = try ReadModelCatalog.definitions(from: ProjectionDefinition.defaultDirectory())
        // Indexes on each model's live collection (a rebuild may have moved it) before the first
        // write; MongoDB may still be starting.
        let catalog = ProjectionCatalog(client: mongo)
        var attempt = 0
        while true {
            do {
                for (_, definition) in definitions {
                    try await definition.ensureIndexes(mongo, in: try await catalog.ensureState(definition).collection)
                }
                break
            } catch let error as MongoError where attempt < 60 {
                attempt += 1
                logger.warning("cannot create the read models' indexes yet; retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
        var services: [any Service] = []
        var members: [FanOutHandler.Member] = []
        let postgres = try await settings.makeCheckedPostgresClient(logger: logger)
        let store = PostgresEventStore(client: postgres, logger: logger)
        var watched: [any WatchedProjection] = []
        for (projection, definition) in definitions {
            let (member, live, rebuild) = self.projectionServices(projection, definition: definition, mongo: mongo, store: store, logger: logger)
            members.append(member)
            watched.append(live)
            services.append(rebuild)
        }
        services.append(ProjectionWatcher(watching: watched, client: mongo, logger: logger))
        // One consumer group for every read model: one fetch loop at the broker instead of one per
        // model (each group costs it a loop, at rest too); the group's offsets move once every model
        // has applied a batch.
        let handler = FanOutHandler(members)
        let handledTypes = definitions.reduce(into: Set<String>()) { $0.formUnion($1.0.handledTypes) }
        services.append(
            try await self.consumer(
                settings, group: settings.projectorGroup, handler: handler, handledTypes: handledTypes, maxBatch: settings.projectorMaxBatch,
                logger: logger))
        services.append(postgres)
        guard let opsPort else { return services }
        return services + [self.opsServer(settings, port: opsPort, postgres: postgres, mongo: mongo, logger: logger)]
    }

    /// A read model's live projection: the member to feed from the projector's consumer, the
    /// projection for the projector's watcher (which follows a rebuild's switch-over), and the
    /// rebuild on a new version.
    static func projectionServices<P: ReadModelProjection>(
        _ projection: P.Type, definition: ProjectionDefinition, mongo: MongoClient, store: PostgresEventStore, logger: Logger
    ) -> (FanOutHandler.Member, any WatchedProjection, any Service) {
        var logger = logger
        logger[metadataKey: "projection"] = "\(P.name)"
        let live = LiveProjection(projection, definition: definition, client: mongo, logger: logger)
        let rebuilder = ProjectionRebuilder(projection, definition: definition, store: store, client: mongo, logger: logger)
        // Every event the group takes, not only its own types: the newest position it saw is how far
        // it is caught up (the lag `GET /projections` shows); it passes over the others itself.
        return (FanOutHandler.Member(live, handledTypes: nil, leads: P.writtenFirst), live, RebuildOnNewVersion(rebuilder: rebuilder, logger: logger))
    }

    /// A consumer-group member running `handler` over the event topic, with its dead-letter topic.
    public static func consumer(
        _ settings: Settings, group: String, handler: any EventHandler, handledTypes: Set<String>? = nil,
        maxBatch: Int = EventConsumer.Settings.defaultMaxBatch,
        logger: Logger
    ) async throws -> EventConsumer {
        try await self.ensureTopic(settings.topic, settings, logger: logger)
        try await self.ensureTopic(settings.deadLetterTopic, settings, logger: logger)
        let consumer = try KafkaConsumer(configuration: settings.kafka, groupID: group, topics: [settings.topic])
        return EventConsumer(
            consumer: consumer, deadLetters: try KafkaProducer(configuration: settings.kafka), handler: handler,
            settings: .init(
                group: group, deadLetterTopic: settings.deadLetterTopic, maxBatch: maxBatch, handledTypes: handledTypes,
                commitInterval: settings.consumerCommitInterval, pollTimeout: settings.consumerPollTimeout),
            logger: logger)
    }

    /// Everything in one process (api, relay, projector, the four saga services), for a laptop and for
    /// end-to-end tests.
    /// `sagaServices` picks which saga services run inside (tests leave one out to run it as its own
    /// process, or to hold a saga at a step); so does `projector` for the projector.
    public static func dev(
        _ settings: Settings, logger: Logger, sagaServices: [SagaServiceKind] = SagaServiceKind.allCases, projector withProjector: Bool = true,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> some ApplicationProtocol {
        let relayPostgres = try await settings.makeCheckedPostgresClient(logger: logger)
        let relay = try await self.relayService(settings, postgres: relayPostgres, logger: logger)
        let projector = withProjector ? try await self.projector(settings, opsPort: nil, logger: logger) : []
        var saga: [any Service] = []
        for kind in sagaServices {
            saga += try await self.sagaService(kind, settings, postgres: relayPostgres, opsPort: nil, logger: logger)
        }
        return try await self.api(
            settings, logger: logger, extraServices: [relayPostgres, relay] + projector + saga, onServerRunning: onServerRunning)
    }

    /// The topic must exist with its partition count before anyone produces: a broker that
    /// auto-creates it would pick its own count. Retries while the broker comes up.
    public static func ensureTopic(_ topic: String, _ settings: Settings, logger: Logger) async throws {
        var attempt = 0
        while true {
            do {
                try await KafkaAdmin.ensureTopic(
                    topic, partitions: settings.topicPartitions, replicationFactor: settings.topicReplicationFactor,
                    topicConfig: settings.topicConfig,
                    configuration: settings.kafka)
                return
            } catch let error as KafkaError where error.isRetriable && attempt < 120 {
                attempt += 1
                logger.warning("topic not ready; retrying", metadata: ["topic": "\(topic)", "error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}
