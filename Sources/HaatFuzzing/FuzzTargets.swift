/// The fuzz targets: the code that reads bytes from outside (frames and envelopes, CSV and
/// NDJSON exports, job specs, URLs, platform pages, byte ranges, workers' partials), each run
/// with invariant checks.
///
/// `make fuzz` drives them under libFuzzer (the `Fuzz/` package); `make test` replays the
/// committed corpus in `Fuzz/Corpus/<target>/` through them.
public enum FuzzTarget: String, CaseIterable, Codable, Sendable {
  /// `LineFrameDecoder`, then `WireCodec` on every line.
  case frames
  /// `CSVParser`, then `PostsReader` on CSV.
  case csv
  /// `LineSplitter` and `JSONScanner`, then `PostsReader` on NDJSON.
  case ndjson
  /// `SpecLoader` on YAML and on JSON.
  case spec
  /// `URLSecrets`, `URLRedaction`, `AddressGuard` and the file root.
  case urls
  /// Every connector of `Connectors.all` on a page body, and on an error's body.
  case connectors
  /// A posts export read whole and in byte ranges (`CanonicalExportConnector`).
  case ranges
  /// Workers' partials read, merged and finished into reports (`PartialMerger`).
  case partials

  /// Runs one input; returns the invariants it broke, empty when all held.
  public func run(_ data: UnsafeRawBufferPointer) -> [String] {
    var invariants = Invariants()
    switch self {
    case .frames: FrameFuzzing.run(data, &invariants)
    case .csv: RecordFuzzing.csv(data, &invariants)
    case .ndjson: RecordFuzzing.ndjson(data, &invariants)
    case .spec: SpecFuzzing.run(data, &invariants)
    case .urls: URLFuzzing.run(data, &invariants)
    case .connectors: ConnectorFuzzing.run(data, &invariants)
    case .ranges: RangeFuzzing.run(data, &invariants)
    case .partials: PartialFuzzing.run(data, &invariants)
    }
    return invariants.broken
  }

  /// Runs one input and traps if an invariant broke: how libFuzzer learns of it.
  public func trap(_ data: UnsafeRawBufferPointer) {
    let broken = run(data)
    if !broken.isEmpty {
      // fatalError, not precondition: its message survives -O, and the fuzzer prints it.
      fatalError("fuzz \(rawValue): " + broken.joined(separator: "; "))
    }
  }
}

/// The entry points of the libFuzzer executables: one per target, trapping on a broken
/// invariant.
public enum FuzzTargets {
  /// Frame decoder and envelope codec.
  public static func frames(_ data: UnsafeRawBufferPointer) { FuzzTarget.frames.trap(data) }
  /// CSV parser and posts reader.
  public static func csv(_ data: UnsafeRawBufferPointer) { FuzzTarget.csv.trap(data) }
  /// NDJSON line splitter, JSON scanner and posts reader.
  public static func ndjson(_ data: UnsafeRawBufferPointer) { FuzzTarget.ndjson.trap(data) }
  /// Job spec loader, YAML and JSON.
  public static func spec(_ data: UnsafeRawBufferPointer) { FuzzTarget.spec.trap(data) }
  /// URL secret filter and redaction.
  public static func urls(_ data: UnsafeRawBufferPointer) { FuzzTarget.urls.trap(data) }
  /// Platform connectors.
  public static func connectors(_ data: UnsafeRawBufferPointer) { FuzzTarget.connectors.trap(data) }
  /// Byte ranges of a posts export.
  public static func ranges(_ data: UnsafeRawBufferPointer) { FuzzTarget.ranges.trap(data) }
  /// Partials, merged into reports.
  public static func partials(_ data: UnsafeRawBufferPointer) { FuzzTarget.partials.trap(data) }
}

/// The invariants one input broke, in the order found (the first few only).
struct Invariants {
  private(set) var broken: [String] = []

  mutating func check(_ holds: Bool, _ what: @autoclosure () -> String) {
    if !holds && broken.count < 8 { broken.append(what()) }
  }
}

/// The bounds the targets hold the code to.
enum FuzzLimits {
  /// The frames target's larger line limit (the smaller is 64).
  static let frameBytes = 4096
  /// The record limit of the CSV and NDJSON targets: small, so the fuzzer reaches it.
  static let recordBytes = 256
  /// The longest error message (and field path) accepted.
  static let errorMessageBytes = 4096
  /// The largest spec the spec target reads.
  static let specBytes = 64 << 10
}

/// Helpers shared by the targets.
enum Input {
  /// Where to cut `data` in two: chosen by its first byte, so the fuzzer steers it while
  /// hand-written corpus files stay plain text.
  static func cut(_ data: UnsafeRawBufferPointer) -> Int {
    guard let first = data.first else { return 0 }
    return Int(first) * data.count / 255
  }

  /// `data` whole, and cut in two at `cut(data)`.
  static func chunkings(_ data: UnsafeRawBufferPointer) -> (
    whole: [UnsafeRawBufferPointer], split: [UnsafeRawBufferPointer]
  ) {
    let at = cut(data)
    return (
      [data],
      [UnsafeRawBufferPointer(rebasing: data[..<at]), UnsafeRawBufferPointer(rebasing: data[at...])]
    )
  }

  /// A short printable excerpt of `bytes`, for messages.
  static func excerpt<Bytes: Collection<UInt8>>(_ bytes: Bytes, limit: Int = 48) -> String {
    let head = String(decoding: bytes.prefix(limit), as: UTF8.self).debugDescription
    return bytes.count > limit ? "\(head)… (\(bytes.count) bytes)" : head
  }
}
