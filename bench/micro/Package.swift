// swift-tools-version: 6.1
// Micro-benchmarks (ordo-one/benchmark): `cd bench/micro && swift package benchmark`.
// A package of its own, so that the test command and CI never build the benchmark harness.
import PackageDescription

let package = Package(
    name: "basalt-micro",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "JSONParsing",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Basalt", package: "basalt"),
            ],
            path: "Benchmarks/JSONParsing",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
