import Foundation
import Testing

@testable import HaatFuzzing

/// Replays the committed fuzz corpus (Fuzz/Corpus/<target>/: the seeds, and every input that
/// ever broke a target) through the fuzz targets in the ordinary test build, so a fixed bug
/// stays fixed without the sanitizer build of `make fuzz`.
@Suite("Fuzz corpus")
struct CorpusReplayTests {
  /// Fuzz/Corpus/, found from this file's place in the repository.
  static let corpus = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // HaatFuzzingTests
    .deletingLastPathComponent()  // Tests
    .deletingLastPathComponent()
    .appendingPathComponent("Fuzz/Corpus", isDirectory: true)

  /// The corpus files of `target`, by name.
  static func files(_ target: FuzzTarget) throws -> [URL] {
    let directory = corpus.appendingPathComponent(target.rawValue, isDirectory: true)
    return try FileManager.default.contentsOfDirectory(
      at: directory, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles]
    ).sorted { $0.lastPathComponent < $1.lastPathComponent }
  }

  @Test("every corpus input keeps the target's invariants", arguments: FuzzTarget.allCases)
  func replay(_ target: FuzzTarget) async throws {
    let files = try Self.files(target)
    #expect(!files.isEmpty, "no corpus in Fuzz/Corpus/\(target.rawValue)")
    let paths = files.map(\.path)

    // First in a child process, so that an input that traps (a crash rather than a broken
    // invariant) fails this test, named, instead of ending the whole test run. The child
    // names each input in `progress` before it runs it.
    let progress = FileManager.default.temporaryDirectory
      .appendingPathComponent("haat-fuzz-replay-\(target.rawValue)-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: progress) }
    let survived = await #expect(processExitsWith: .success) {
      [target, paths = paths as [String], progress = progress as String] in
      _ = FileManager.default.createFile(atPath: progress, contents: nil)
      let log = FileHandle(forWritingAtPath: progress)
      for path in paths {
        try? log?.write(contentsOf: Data((path + "\n").utf8))
        let bytes = FileManager.default.contents(atPath: path) ?? Data()
        _ = bytes.withUnsafeBytes { target.run($0) }
      }
    }
    guard survived != nil else {
      let started = (try? String(contentsOfFile: progress, encoding: .utf8)) ?? ""
      let last = started.split(separator: "\n").last.map { URL(fileURLWithPath: String($0)).lastPathComponent }
      Issue.record(
        "Fuzz/Corpus/\(target.rawValue)/\(last ?? "?") crashes the replay (see the message with Fuzz/.build-fuzz/release/Fuzz… <file>, or under a debugger)"
      )
      return
    }

    // Then here, for a message per input that breaks an invariant.
    for file in files {
      let bytes = try Data(contentsOf: file)
      let broken = bytes.withUnsafeBytes { target.run($0) }
      #expect(broken.isEmpty, "Fuzz/Corpus/\(target.rawValue)/\(file.lastPathComponent): \(broken)")
    }
  }

  /// The partials corpus is every report's partial of what each connectors input reads:
  /// `HAAT_FUZZ_WRITE_SEEDS=1 swift test --filter partialSeeds` writes it again after a
  /// connector or a report changes.
  @Test("every report's partial of each connectors input keeps the partials target's invariants")
  func partialSeeds() throws {
    let write = ProcessInfo.processInfo.environment["HAAT_FUZZ_WRITE_SEEDS"] == "1"
    var seeds = 0
    for file in try Self.files(.connectors) {
      let input = try Data(contentsOf: file)
      guard let seed = input.withUnsafeBytes({ PartialFuzzing.seed(fromConnectorsInput: $0) }) else { continue }
      seeds += 1
      let broken = seed.withUnsafeBytes { FuzzTarget.partials.run($0) }
      #expect(broken.isEmpty, "the partial of Fuzz/Corpus/connectors/\(file.lastPathComponent): \(broken)")
      if write {
        let path = Self.corpus.appendingPathComponent("partials/\(file.lastPathComponent)")
        try Data(seed).write(to: path)
      }
    }
    #expect(seeds >= 10, "only \(seeds) connectors inputs read records")
  }
}
