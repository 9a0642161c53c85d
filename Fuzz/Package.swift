// swift-tools-version: 6.1
// libFuzzer executables for Haat's fuzz targets, one per target. A package of its own
// because the sanitizer build is a second cold build, kept out of `make test`; `make fuzz`
// (scripts/fuzz) builds and runs it. The targets and their invariants are the main
// package's HaatFuzzing, whose corpus replay runs in `make test`.
import PackageDescription

let targets = ["Frames", "CSV", "NDJSON", "Spec", "URLs", "Connectors", "Ranges", "Partials"]

let package = Package(
  name: "HaatFuzz",
  platforms: [.macOS(.v15)],
  dependencies: [.package(name: "haat", path: "..")],
  targets: [
    // The declaration of libFuzzer's driver entry point (the library comes with
    // -sanitize=fuzzer).
    .systemLibrary(name: "CLibFuzzer"),
    .target(name: "LibFuzzerDriver", dependencies: ["CLibFuzzer"]),
  ]
    + targets.map { name in
      .executableTarget(
        name: "Fuzz\(name)",
        dependencies: ["LibFuzzerDriver", .product(name: "HaatFuzzing", package: "haat")],
        // gold stops with an internal error (dwarf_reader.cc) on these sanitized links.
        linkerSettings: [.unsafeFlags(["-use-ld=lld"], .when(platforms: [.linux]))]
      )
    }
)
