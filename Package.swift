// swift-tools-version:6.1
import PackageDescription

// Upcoming features every target builds with; the language mode is Swift 6 (complete concurrency checking).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Orderly",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "orderly", targets: ["OrderlyCLI"]),
        .executable(name: "orderly-bench", targets: ["OrderlyBenchCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // Traces over OTLP/HTTP only: the gRPC exporter's packages are not built.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // C libraries, each behind a small Swift wrapper in the module that uses it.
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CMongoc", pkgConfig: "libmongoc-1.0", providers: [.apt(["libmongoc-dev"])]),

        // Pure domain: events, aggregates, validation. No I/O.
        .target(name: "OrderlyDomain", swiftSettings: swiftSettings),
        // The PostgreSQL event log and its in-memory twin.
        .target(
            name: "OrderlyEventStore",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "OrderlyDomain",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                // AES-GCM for customers' personal data (PersonalDataKeys.swift).
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // What reacts to events (saga services, projections) and what delivers them agree on this
        // contract only: handlers, delivered events, poison events; and the long-lived loop they all run.
        .target(
            name: "OrderlyHandling",
            dependencies: [
                "OrderlyDomain", "OrderlyEventStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Kafka through librdkafka: producer, consumer, admin, and the event relay.
        .target(
            name: "OrderlyMessaging",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "CRdKafka", "OrderlyDomain", "OrderlyEventStore", "OrderlyHandling",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // MongoDB through libmongoc: the client wrapper, projections and the projector.
        .target(
            name: "OrderlyReadModels",
            dependencies: [
                "CMongoc", "OrderlyDomain", "OrderlyEventStore", "OrderlyHandling",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Command handlers and the saga services (order, inventory, payment, notification) on the event store.
        .target(
            name: "OrderlyServices",
            dependencies: [
                "OrderlyDomain", "OrderlyEventStore", "OrderlyHandling",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The REST api.
        .target(
            name: "OrderlyAPI",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "OrderlyDomain", "OrderlyEventStore", "OrderlyHandling", "OrderlyServices", "OrderlyReadModels",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                // Only to read an identity provider's JWKS URL.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("openapi.json"), .copy("console")],
            swiftSettings: swiftSettings
        ),
        // Assembles the processes (api, relay, projector, services, dev) from settings: the only
        // module that knows which transport feeds which handler. The CLI and the tests share it.
        .target(
            name: "OrderlyProcesses",
            dependencies: [
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "OrderlyDomain", "OrderlyEventStore", "OrderlyMessaging", "OrderlyReadModels", "OrderlyServices", "OrderlyAPI",
                "OrderlyHandling",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Benchmarks and the load generator (`orderly bench`, `scripts/bench`): the serving modules
        // do not carry HdrHistogram.
        .target(
            name: "OrderlyBench",
            dependencies: [
                "OrderlyDomain", "OrderlyEventStore", "OrderlyHandling", "OrderlyMessaging", "OrderlyReadModels", "OrderlyProcesses",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `orderly` command line.
        .executableTarget(
            name: "OrderlyCLI",
            dependencies: [
                "OrderlyAPI", "OrderlyProcesses", "OrderlyDomain", "OrderlyEventStore", "OrderlyHandling", "OrderlyMessaging",
                "OrderlyReadModels", "OrderlyServices",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["BuildInfo"]
        ),
        // Writes the commit and build time into the CLI (`orderly --version`; scripts/build-info.sh).
        .plugin(name: "BuildInfo", capability: .buildTool()),
        // `orderly-bench`: the load generator and the benchmarks, apart from the serving binary.
        .executableTarget(
            name: "OrderlyBenchCLI",
            dependencies: [
                "OrderlyAPI", "OrderlyBench", "OrderlyDomain", "OrderlyEventStore", "OrderlyMessaging", "OrderlyProcesses", "OrderlyReadModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // What every store behind a port must do (event store, read models), written once and run by
        // both test tiers over their adapters; and events made by hand.
        .target(
            name: "OrderlyContracts",
            dependencies: ["OrderlyDomain", "OrderlyEventStore", "OrderlyReadModels", "OrderlyServices"],
            path: "Tests/OrderlyContracts",
            swiftSettings: swiftSettings
        ),
        // The fast tier: no server, in-memory adapters, the router through Hummingbird's test client
        // (`scripts/test --fast`).
        .testTarget(
            name: "OrderlyFastTests",
            dependencies: [
                "OrderlyContracts", "OrderlyDomain", "OrderlyEventStore", "OrderlyHandling", "OrderlyReadModels", "OrderlyServices", "OrderlyAPI",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The integration tier: every adapter against the real PostgreSQL, broker and document server.
        .testTarget(
            name: "OrderlyTests",
            dependencies: [
                "OrderlyContracts", "OrderlyProcesses", "OrderlyBench", "OrderlyHandling", "OrderlyDomain", "OrderlyEventStore", "OrderlyMessaging",
                "OrderlyReadModels", "OrderlyServices", "OrderlyAPI",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
