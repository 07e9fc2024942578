// swift-tools-version:6.0
// libFuzzer targets for ChargeGateCore: a separate package so the main build never needs the
// fuzzer runtime. Build and run them with scripts/fuzz (see fuzz/README.md).
import PackageDescription

let fuzzers = ["fuzz-uri", "fuzz-query", "fuzz-config", "fuzz-tokens", "fuzz-params", "fuzz-nginx", "fuzz-settle"]

let package = Package(
    name: "charge-gate-fuzz",
    platforms: [.macOS(.v15)],
    products: fuzzers.map { .executable(name: $0, targets: [$0]) },
    dependencies: [
        .package(name: "charge-gate", path: "..")
    ],
    targets: [
        // Invariant checks, hex dumps and reference implementations shared by the fuzzers.
        .target(
            name: "FuzzSupport",
            dependencies: [.product(name: "ChargeGateCore", package: "charge-gate")]
        )
    ]
        + fuzzers.map { name in
            .executableTarget(
                name: name,
                dependencies: ["FuzzSupport", .product(name: "ChargeGateCore", package: "charge-gate")]
                    + (name == "fuzz-nginx" ? [.product(name: "ChargeGateNginx", package: "charge-gate")] : []),
                swiftSettings: [.unsafeFlags(["-parse-as-library"])],
                linkerSettings: [.unsafeFlags(["-use-ld=lld"])]
            )
        }
)
