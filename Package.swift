// swift-tools-version: 6.1
import PackageDescription

let nio: [Target.Dependency] = [
  .product(name: "NIOCore", package: "swift-nio"),
  .product(name: "NIOPosix", package: "swift-nio"),
  .product(name: "NIOSSL", package: "swift-nio-ssl"),
]

let package = Package(
  name: "haat",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "haat", targets: ["haat"]),
    .library(name: "HaatClient", targets: ["HaatClient"]),
    .library(name: "HaatProtocol", targets: ["HaatProtocol"]),
    // For the libFuzzer executables of the Fuzz/ package.
    .library(name: "HaatFuzzing", targets: ["HaatFuzzing"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
  ],
  targets: [
    // libcurl, wrapped by non-variadic shims; the C never leaks past HaatFetch.
    .systemLibrary(
      name: "CCurl",
      pkgConfig: "libcurl",
      providers: [.apt(["libcurl4-openssl-dev"])]
    ),
    // zlib: Haat decodes gzip bodies itself, so a stream cut short is an error.
    .systemLibrary(
      name: "CZlib",
      pkgConfig: "zlib",
      providers: [.apt(["zlib1g-dev"])]
    ),
    // SQLite's process-wide settings (sqlite3_config is variadic): the same libsqlite3
    // GRDBSQLite links.
    .systemLibrary(
      name: "CSQLiteConfig",
      providers: [.apt(["libsqlite3-dev"])]
    ),
    // Whether a write to stdout failed (the CLI's exit 74): Swift 6 cannot read `stdout`.
    .systemLibrary(name: "CStdio"),
    // Domain types and pure state machines: no I/O, no dependencies.
    .target(name: "HaatCore"),
    .target(
      name: "HaatProtocol",
      dependencies: [
        "HaatCore",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Crypto", package: "swift-crypto"),
      ],
      exclude: ["Generated/README.md"]
    ),
    .target(
      name: "HaatFetch",
      dependencies: ["CCurl", "CZlib", "HaatCore", .product(name: "Logging", package: "swift-log")]
    ),
    .target(name: "HaatRecords", dependencies: ["HaatCore", "HaatProtocol"]),
    .target(name: "HaatAnalytics", dependencies: ["HaatRecords"]),
    .target(
      name: "HaatStore",
      dependencies: [
        "HaatCore",
        "CSQLiteConfig",
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "GRDBSQLite", package: "GRDB.swift"),
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .target(
      name: "HaatCoordinator",
      dependencies: [
        "HaatStore", "HaatAnalytics", "HaatProtocol", "CStdio",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "HummingbirdCore", package: "hummingbird"),
        .product(name: "HummingbirdTLS", package: "hummingbird"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ] + nio
    ),
    .target(
      name: "HaatWorker",
      dependencies: [
        "HaatFetch", "HaatRecords", "HaatAnalytics", "HaatProtocol", "CStdio",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ] + nio
    ),
    .target(
      name: "HaatClient",
      dependencies: [
        "HaatProtocol", "HaatAnalytics",
        .product(name: "Yams", package: "Yams"),
      ] + nio
    ),
    // The fixture HTTP server (bundled sample exports, generated large exports, faults),
    // used by the demo, the tests and the benchmarks.
    .target(
      name: "HaatFixtures",
      dependencies: [.product(name: "NIOHTTP1", package: "swift-nio")] + nio,
      resources: [.copy("Samples")]
    ),
    .target(
      name: "HaatTesting",
      dependencies: ["HaatFixtures", "HaatClient", "HaatCore"]
    ),
    .executableTarget(
      name: "haat",
      dependencies: [
        "HaatCoordinator", "HaatWorker", "HaatClient", "HaatFixtures", "HaatStore", "HaatTesting", "CStdio",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ] + nio
    ),
    .executableTarget(
      name: "haat-bench",
      dependencies: [
        "HaatClient", "HaatTesting", "HaatFixtures", "HaatFetch", "HaatRecords", "HaatAnalytics", "HaatStore",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ] + nio,
      path: "Benchmarks/HaatBench"
    ),
    .testTarget(name: "HaatCoreTests", dependencies: ["HaatCore"]),
    .testTarget(
      name: "HaatProtocolTests",
      dependencies: ["HaatProtocol", "HaatCore", .product(name: "NIOEmbedded", package: "swift-nio")] + nio),
    .testTarget(name: "HaatFetchTests", dependencies: ["HaatFetch", "HaatFixtures"]),
    .testTarget(
      name: "HaatRecordsTests", dependencies: ["HaatRecords", "HaatAnalytics", "HaatProtocol"],
      resources: [.copy("Fixtures")]),
    .testTarget(
      name: "HaatStoreTests",
      dependencies: ["HaatStore", "HaatCore", .product(name: "Logging", package: "swift-log")]),
    // The coordinator's and the worker's parts, without sockets.
    .testTarget(
      name: "HaatCoordinatorTests",
      dependencies: ["HaatCoordinator", "HaatProtocol", "HaatCore", "HaatStore", "HaatAnalytics", "HaatClient"] + nio
        + [
          .product(name: "NIOEmbedded", package: "swift-nio")
        ]
    ),
    .testTarget(
      name: "HaatWorkerTests",
      dependencies: [
        "HaatWorker", "HaatProtocol", "HaatCore", "HaatFetch", "HaatRecords",
        .product(name: "NIOEmbedded", package: "swift-nio"),
      ] + nio),
    .testTarget(
      name: "HaatClusterTests",
      dependencies: ["HaatTesting", "HaatClient", "HaatAnalytics", "HaatRecords", "HaatFixtures"],
      exclude: ["raw_client.py", "tcp_proxy.py"],
      resources: [.copy("Fixtures")]),
    // The fuzz targets with their invariants; libFuzzer drives them from Fuzz/ (`make fuzz`),
    // the tests replay the committed corpus in Fuzz/Corpus/ through them (`make test`).
    .target(
      name: "HaatFuzzing",
      dependencies: [
        "HaatCore", "HaatProtocol", "HaatRecords", "HaatAnalytics", "HaatFetch", "HaatClient",
        .product(name: "NIOCore", package: "swift-nio"),
      ]
    ),
    .testTarget(name: "HaatFuzzingTests", dependencies: ["HaatFuzzing"]),
  ]
)
