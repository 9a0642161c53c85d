import Foundation
import HaatTesting
import Testing

/// `haat demo` as a tester found it: its cluster took the caller's `HAAT_*` settings (with
/// `HAAT_STORE`, the "temporary" coordinator wrote into the caller's store), an early
/// signal left its directory (a credential and tokens) behind, and a full disk exited 0.
@Suite(.serialized) struct DemoTests {
  static func shell(_ script: String) async throws -> String {
    try await run("/bin/sh", ["-c", script]).output
  }

  @Test func theDemoIsItsOwnClusterAndSaysWhenItsOutputIsLost() async throws {
    let directory = NSTemporaryDirectory() + "haat-demo-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let haat = try HaatBinary.path()
    let output = try await Self.shell(
      """
      HAAT_STORE=sqlite:\(directory)/caller.db HAAT_ADMIN_LISTEN=127.0.0.1:1 TMPDIR=\(directory)/tmp/ \
      \(haat) demo > /dev/full; echo "exit $?"
      """)
    #expect(output.hasSuffix("haat: cannot write the output: No space left on device\nexit 74\n"), "\(output)")
    #expect(!FileManager.default.fileExists(atPath: directory + "/caller.db"), "the demo used the caller's store")
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/tmp").isEmpty)
  }

  @Test(arguments: [0.3, 1.5]) func aSignalAtAnyMomentRemovesTheDirectory(after seconds: Double) async throws {
    let directory = NSTemporaryDirectory() + "haat-demo-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let haat = try HaatBinary.path()
    let output = try await Self.shell(
      """
      TMPDIR=\(directory)/ \(haat) demo > /dev/null 2>&1 & pid=$!
      sleep \(seconds); kill -TERM $pid; wait $pid; echo "exit $?"
      """)
    // (Before its handlers are set, the signal's default action ends it: the shell may say
    // "Terminated", and there is nothing to remove yet.)
    #expect(output.hasSuffix("exit 143\n"), "\(output)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
  }

  @Test func aTMPDIRThatIsNotThereIsSaid() async throws {
    let missing = NSTemporaryDirectory() + "haat-demo-missing-\(UUID().uuidString)"
    let output = try await Self.shell("TMPDIR=\(missing)/ \(try HaatBinary.path()) demo; echo \"exit $?\"")
    #expect(
      output.hasPrefix("haat: unavailable: cannot create the demo's directory \(missing)/haat-demo-"), "\(output)")
    #expect(output.contains(": No such file or directory (TMPDIR names where it goes)\nexit 6\n"), "\(output)")
    #expect(!FileManager.default.fileExists(atPath: missing))
  }

  /// Found by a tester (and in this suite's leftovers): a coordinator whose parent died
  /// while it started read its parent after opening its store, got init's pid, and ran on
  /// as an orphan in spite of --exit-with-parent. Its parent here is a subshell that ends
  /// at once.
  @Test func aProcessWhoseParentIsGoneAtItsStartExits() async throws {
    let directory = NSTemporaryDirectory() + "haat-orphan-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let haat = try HaatBinary.path()
    // No pipe to the test: an orphan that lived on would hold it open, and the test would
    // wait on it rather than fail.
    let shell = Process()
    shell.executableURL = URL(fileURLWithPath: "/bin/sh")
    shell.arguments = [
      "-c",
      "(\(haat) coordinator --listen 127.0.0.1:0 --data-dir \(directory)/data --exit-with-parent"
        + " > \(directory)/log 2>&1 < /dev/null & echo $! > \(directory)/pid)",
    ]
    shell.standardOutput = FileHandle.nullDevice
    shell.standardError = FileHandle.nullDevice
    try shell.run()
    try await eventually("the shell ends") { !shell.isRunning }
    let pid = try #require(
      Int32(
        try String(contentsOfFile: directory + "/pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
    )
    try await eventually("the orphaned coordinator exits", timeout: .seconds(30)) { kill(pid, 0) != 0 }
  }
}
