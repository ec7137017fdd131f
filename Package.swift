// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    // Our own code builds without warnings; SwiftPM drops this setting when Basalt is a dependency.
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "basalt",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "basalt", targets: ["BasaltCLI"]),
        .library(name: "Basalt", targets: ["Basalt"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: ["JSON", "YAML"]),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/mattpolzin/OpenAPIKit", from: "6.4.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // OTLP over HTTP/protobuf only: the gRPC exporter would add grpc-swift to every build.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        .target(
            name: "BasaltCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Metrics in Prometheus form (`GET /metrics`): one registry per runtime.
        .target(
            name: "BasaltTelemetry",
            dependencies: [
                .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BasaltStorage",
            dependencies: ["BasaltCore"],
            swiftSettings: swiftSettings
        ),
        // zlib (gzip files) from the system: backups are gzip-compressed JSON lines.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // Backups: a consistent snapshot of every table into one portable, checksummed file, and back.
        .target(
            name: "BasaltBackup",
            dependencies: ["BasaltCore", "BasaltStorage", "CZlib", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BasaltSQLite",
            dependencies: [
                "BasaltCore", "BasaltStorage", "BasaltTelemetry", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BasaltPostgres",
            dependencies: [
                "BasaltCore", "BasaltStorage", "BasaltTelemetry", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BasaltAuth",
            dependencies: [
                "BasaltCore", "BasaltTelemetry",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "HummingbirdOTP", package: "hummingbird-auth"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // A small SMTP client (RFC 5321, STARTTLS per RFC 3207, AUTH PLAIN/LOGIN): there is no package.
        .target(
            name: "BasaltSMTP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BasaltServices",
            dependencies: [
                "BasaltCore", "BasaltStorage", "BasaltAuth", "BasaltTelemetry", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BasaltHTTP",
            dependencies: [
                "BasaltCore", "BasaltServices", "BasaltStorage", "BasaltAuth", "BasaltTelemetry",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "OpenAPIKit", package: "OpenAPIKit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Basalt",
            dependencies: [
                "BasaltCore", "BasaltStorage", "BasaltSQLite", "BasaltPostgres", "BasaltServices", "BasaltHTTP",
                "BasaltAuth", "BasaltSMTP", "BasaltTelemetry", "BasaltBackup",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "BasaltCLI",
            dependencies: [
                "Basalt", "BasaltBackup", "BasaltCore", "BasaltServices", "BasaltStorage", "BasaltHTTP", "BasaltSQLite",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // examples/shop: business logic in Swift hooks (a library, so tests drive it) and its server.
        .target(
            name: "ShopExample",
            dependencies: ["BasaltCore", "BasaltServices"],
            path: "examples/shop/ShopExample",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "shop-example",
            dependencies: ["ShopExample", "Basalt", "BasaltCore", "BasaltServices", .product(name: "Logging", package: "swift-log")],
            path: "examples/shop/Server",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BasaltTesting",
            dependencies: [
                "Basalt", "BasaltCore", "BasaltServices", "BasaltPostgres", "BasaltHTTP", "BasaltAuth",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BasaltCoreTests",
            dependencies: ["BasaltCore", .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BasaltHTTPTests",
            dependencies: [
                "Basalt", "BasaltHTTP", "BasaltServices", "BasaltCore", "BasaltTesting", .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BasaltPostgresTests",
            dependencies: [
                "BasaltPostgres", "BasaltStorage", "BasaltCore", .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BasaltStorageTests",
            dependencies: ["BasaltStorage", "BasaltCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BasaltAPITests",
            dependencies: [
                "Basalt", "BasaltTesting", "BasaltCore", "BasaltServices", "BasaltHTTP", "BasaltAuth", "BasaltPostgres",
                "BasaltStorage", "BasaltBackup", "ShopExample", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BasaltSMTPTests",
            dependencies: [
                "BasaltSMTP", .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BasaltAuthTests",
            dependencies: ["BasaltAuth", "BasaltCore"],
            swiftSettings: swiftSettings
        ),
        // Runs the built `basalt` executable as a child process (crash, shutdown, CLI tests).
        .testTarget(
            name: "BasaltProcessTests",
            dependencies: [],
            swiftSettings: swiftSettings
        ),
    ]
)
