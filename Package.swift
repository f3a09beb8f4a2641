// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "webhook-gateway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "webhook-gateway", targets: ["WebhookGateway"]),
        .library(name: "Verification", targets: ["Verification"]),
        .library(name: "Delivery", targets: ["Delivery"]),
        .executable(name: "example-consumer", targets: ["ExampleConsumer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .target(
            name: "Verification",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto")
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Delivery",
            dependencies: [
                "Verification",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The configuration file: reading and checking it, resolving its secrets. A library so that
        // its fuzz target can link it without the executable's `main`.
        .target(
            name: "GatewayConfiguration",
            dependencies: ["Verification", "Delivery"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "WebhookGateway",
            dependencies: [
                "Verification",
                "Delivery",
                "GatewayConfiguration",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The operator console's page, script and style sheet, compiled into the binary
            // (PackageResources.index_html, …): nothing to install beside it, nothing fetched.
            resources: [
                .embedInCode("Console/index.html"),
                .embedInCode("Console/console.js"),
                .embedInCode("Console/console.css"),
            ],
            swiftSettings: swiftSettings
        ),
        // Examples/Consumer: how a consumer verifies deliveries and unlocks idempotently. Built
        // with the package (and run by the tests) so that it keeps working.
        .executableTarget(
            name: "ExampleConsumer",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/Consumer",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "GatewayTestSupport",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/Support",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SeededRandom",
            path: "Tests/SeededRandom",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VerificationTests",
            dependencies: ["Verification", "SeededRandom"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebhookGatewayTests",
            dependencies: [
                "WebhookGateway",
                "GatewayConfiguration",
                "ExampleConsumer",
                "Delivery",
                "Verification",
                "GatewayTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            exclude: ["Scripts", "Golden"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DeliveryTests",
            dependencies: [
                "Delivery", "Verification", "GatewayTestSupport", "SeededRandom",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

// The fuzz targets (Fuzz/, run by scripts/fuzz.sh): declared only when WEBHOOK_GATEWAY_FUZZ is
// set, so that a plain `swift build` or `swift test` never sees them. Each is built with
// `-sanitize=fuzzer,address` and calls libFuzzer's driver from its own `main`.
if Context.environment["WEBHOOK_GATEWAY_FUZZ"] != nil {
    package.targets.append(.target(name: "FuzzDriver", path: "Fuzz/Sources/FuzzDriver"))
    let fuzzTargets: [(product: String, target: String, dependencies: [Target.Dependency])] = [
        ("fuzz-signature-headers", "FuzzSignatureHeaders", ["Verification"]),
        ("fuzz-envelope", "FuzzEnvelope", ["Verification"]),
        ("fuzz-dead-letter-line", "FuzzDeadLetterLine", ["Delivery", "Verification"]),
        ("fuzz-configuration", "FuzzConfiguration", ["GatewayConfiguration", "Verification"]),
    ]
    for fuzz in fuzzTargets {
        package.targets.append(
            .executableTarget(
                name: fuzz.target,
                dependencies: ["FuzzDriver"] + fuzz.dependencies,
                path: "Fuzz/Sources/\(fuzz.target)",
                swiftSettings: swiftSettings
            )
        )
        package.products.append(.executable(name: fuzz.product, targets: [fuzz.target]))
    }
}
