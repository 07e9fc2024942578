// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "charge-gate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "charge-gate", targets: ["charge-gate"]),
        .library(name: "ChargeGateCore", targets: ["ChargeGateCore"]),
        // For the fuzz package (fuzz-nginx): the nginx -T parser and the gate analyser.
        .library(name: "ChargeGateNginx", targets: ["ChargeGateNginx"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // C libraries from Debian's packages. hiredis.pc carries -D_FILE_OFFSET_BITS=64, which
        // SwiftPM refuses, so neither module map goes through pkg-config.
        .systemLibrary(
            name: "CFastCGI",
            providers: [.apt(["libfcgi-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),

        // Pure Swift: config, routing, URI handling, bucket math, JSON, the responder's decisions.
        // Imports no C and never reads the clock itself.
        .target(
            name: "ChargeGateCore",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        // The production store: hiredis behind one Swift owner per connection. Its Lua script
        // (charge.lua) is compiled in by the EmbedText plugin.
        .target(
            name: "ChargeGateRedis",
            dependencies: ["ChargeGateCore", "CHiredis"],
            plugins: ["EmbedText"]
        ),
        // Pure Swift: `nginx -T` parsed (tokens, blocks, includes, file:line), nginx's location
        // matching and rewrite phase mirrored, and the analyser behind `charge-gate
        // check-nginx`. Imports no C and no Foundation; ChargeGateCore only for the routes.
        .target(
            name: "ChargeGateNginx",
            dependencies: ["ChargeGateCore"]
        ),
        // Build tool: a text file as a Swift string constant, for EmbedText.
        .executableTarget(name: "embed-text"),
        .plugin(name: "EmbedText", capability: .buildTool(), dependencies: ["embed-text"]),
        // libfcgi behind one Swift owner per request.
        .target(
            name: "ChargeGateFastCGI",
            dependencies: ["CFastCGI"]
        ),
        // Worker threads, signals, reload: ties the core to the two wrappers.
        .target(
            name: "ChargeGateServer",
            dependencies: [
                "ChargeGateCore", "ChargeGateFastCGI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "charge-gate",
            dependencies: [
                "ChargeGateCore", "ChargeGateRedis", "ChargeGateServer", "ChargeGateNginx",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // What the test targets share: the manual clock, the repository's root.
        .target(
            name: "ChargeGateTestSupport",
            dependencies: ["ChargeGateCore"],
            path: "Tests/Support"
        ),
        .testTarget(
            name: "ChargeGateCoreTests",
            dependencies: ["ChargeGateCore", "ChargeGateTestSupport"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "ChargeGateRedisTests",
            dependencies: ["ChargeGateCore", "ChargeGateRedis", "ChargeGateTestSupport"]
        ),
        // Reload rules (checked against docs/config.md), log metadata, background loops: no
        // socket, no Redis.
        .testTarget(
            name: "ChargeGateServerTests",
            dependencies: [
                "ChargeGateServer", "ChargeGateCore", "ChargeGateTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The FastCGI event loop at the socket level: a unix socket in a temporary directory,
        // loops on their own threads (NativeThread, from ChargeGateServer), the FastCGI client of
        // the test support target as nginx; no nginx.
        .testTarget(
            name: "ChargeGateFastCGITests",
            dependencies: ["ChargeGateFastCGI", "ChargeGateServer", "ChargeGateTestSupport"]
        ),
        // One saved `nginx -T` output per trap (Fixtures/), the shipped snippets appended.
        .testTarget(
            name: "ChargeGateNginxTests",
            dependencies: ["ChargeGateCore", "ChargeGateNginx", "ChargeGateTestSupport"],
            resources: [.copy("Fixtures")]
        ),
    ]
)
