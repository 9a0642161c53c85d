import Foundation
import HaatClient
import HaatCore
import HaatFixtures
import HaatProtocol
import HaatTesting
import Testing

/// Issue 10, defect 4: timers run on the monotonic clock. The coordinator's wall clock is
/// stepped back an hour (an LD_PRELOAD shim, scripts/faults/wallclock.c) while a task waits
/// out a 20 s Retry-After: it still runs about 20 s later, not an hour later. (20 s, not
/// less: the step must land while the retry waits, on a loaded machine too.)
@Suite("Clock steps", .serialized)
struct ClockTests {
  static let shimSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../scripts/faults/wallclock.c").standardized.path

  /// Builds the shim with the C compiler at hand; nil when there is none.
  static func buildShim(into directory: String) async throws -> String? {
    let output = directory + "/wallclock.so"
    for compiler in ["/usr/bin/cc", "/usr/bin/clang", "/opt/swift/usr/bin/clang"]
    where FileManager.default.isExecutableFile(atPath: compiler) {
      let result = try await run(compiler, ["-shared", "-fPIC", "-O2", "-o", output, shimSource, "-ldl"])
      if result.status == 0 { return output }
    }
    return nil
  }

  @Test func aRetryWaitsOnTheMonotonicClock() async throws {
    let directory = NSTemporaryDirectory() + "haat-clock-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let shim = try #require(try await Self.buildShim(into: directory), "no C compiler to build \(Self.shimSource)")
    let offsetFile = directory + "/offset-ms"
    try "0".write(toFile: offsetFile, atomically: true, encoding: .utf8)
    var options = LocalCluster.Options.fast(workers: 1)
    options.coordinatorEnvironment = ["LD_PRELOAD": shim, "HAAT_CLOCK_OFFSET_FILE": offsetFile]
    try await withCluster(options) { cluster, server in
      let client = try await cluster.client()
      let sample = try #require(try Samples.manifest().first)
      let series = "clock-\(UUID().uuidString)"
      let source = Samples.source(
        sample, server: server, query: "fail_first=1&fail_status=429&retry_after=20&series=\(series)")
      let job = try await client.submit(spec("clock step", [source], maxAttempts: 3)).job
      // Once the first attempt has failed and the retry waits, step the clock back an hour.
      // Seen in the coordinator's log (written once the retry is committed), not by asking
      // it: on a loaded machine no poll of the job saw the 20 s wait once (a fresh clone's
      // whole suite, 2026-12-02).
      try await eventually("the retry waits") {
        cluster.coordinator?.tail(200).contains("task failed; will retry") == true
      }
      try "-3600000".write(toFile: offsetFile, atomically: true, encoding: .utf8)
      let result = try await finish(client, job, timeout: .seconds(60))
      #expect(result.job.state == "succeeded")
      let times = server.requestTimes(series: series)
      #expect(times.count == 2)
      if times.count == 2 { #expect(times[1] - times[0] < 35_000, "retried after \(times[1] - times[0]) ms") }
      // The coordinator's clock did step: what it records is an hour behind. (Read from the
      // worker's last heartbeat, not the job's end: on a loaded machine the retry may have
      // run before the step was seen.)
      try await eventually("the coordinator's wall clock is an hour behind") {
        let beat = try await client.workers().first?.lastHeartbeatMs ?? .max
        return beat < Int64(Date().timeIntervalSince1970 * 1000) - 3_000_000
      }
      await client.close()
    }
  }
}
