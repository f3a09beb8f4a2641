// swift-tools-version: 6.2
import PackageDescription

// Benchmarks live in their own package so that the gateway's build and tests do not pull in the
// benchmark harness. Run from the repository root:
//   swift package --package-path Benchmarks benchmark
// A path dependency's identity is its folder's name, which depends on where the repository was
// cloned; read it from the context instead of assuming it.
let gateway = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "webhook-gateway")

let package = Package(
    name: "webhook-gateway-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        .executableTarget(
            name: "VerificationBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Verification", package: gateway),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Verification",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "HelloHummingbird",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "HelloHummingbird"
        ),
    ]
)
