// swift-tools-version: 6.1
// The benchmark's ceiling (bench/run.sh, target `ceiling`): the same reads and writes as Basalt's
// workloads on the same SQLite (or PostgreSQL) data, with nothing else — no auth, no validation, no logging, no
// events. What Hummingbird 2 + GRDB cost on their own; Basalt's figures are reported against it.
// A package of its own: the test command and CI never build it.
import PackageDescription

let package = Package(
    name: "basalt-ceiling",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        .target(name: "CeilingSupport", dependencies: [.product(name: "Hummingbird", package: "hummingbird")], path: "Sources/CeilingSupport"),
        .executableTarget(
            name: "Ceiling",
            dependencies: [
                "CeilingSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Sources/Ceiling"
        ),
        // The same on PostgreSQL (target `ceiling-pg`), with PostgresNIO's pooled client.
        .executableTarget(
            name: "CeilingPostgres",
            dependencies: [
                "CeilingSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Sources/CeilingPostgres"
        ),
    ]
)
