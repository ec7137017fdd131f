// swift-tools-version: 6.1
// Micro-benchmarks (ordo-one/benchmark): `cd bench/micro && swift package benchmark`.
// A package of its own, so that the test command and CI never build the benchmark harness.
import Foundation
import PackageDescription

// A path dependency's package identity is its folder's name (lowercased): whatever the checkout
// is called, not "basalt".
let basalt = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

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
                .product(name: "Basalt", package: basalt),
            ],
            path: "Benchmarks/JSONParsing",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "HotPath",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Basalt", package: basalt),
            ],
            path: "Benchmarks/HotPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
