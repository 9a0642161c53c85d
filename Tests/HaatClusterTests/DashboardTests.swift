import Foundation
import HaatClient
import HaatCore
import HaatFixtures
import HaatProtocol
import HaatTesting
import Testing

enum Browser {
  static let available = FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")
}

/// The dashboard in headless Chromium (`scripts/browser`): the pages load with nothing on
/// the console (script errors and policy violations would be there), a running job's
/// progress advances, a killed worker shows `lost`, and the finished job's page shows its
/// report. Screenshots are kept in `.build/test-artifacts/`.
@Suite(.enabled(if: Browser.available, "needs chromium (scripts/install-deps test)"))
struct DashboardTests {
  static let artifacts = TLSClusterTests.repository + "/.build/test-artifacts"

  /// The page's DOM after its first polls, through scripts/browser (which fails on any
  /// console message).
  static func dom(_ url: String) async throws -> String {
    let (status, output) = try await run(TLSClusterTests.repository + "/scripts/browser", ["dom", url])
    #expect(status == 0, "the page logged to its console or did not load: \(output.suffix(2_000))")
    return output
  }

  /// `done/total` of the job's progress on the cluster page.
  static func progress(_ dom: String, job: String) -> Int? {
    guard let row = dom.range(of: "href=\"/jobs/\(job)\"") else { return nil }
    let rest = dom[row.upperBound...]
    guard let value = rest.range(of: "value=\""), let end = rest[value.upperBound...].firstIndex(of: "\"") else {
      return nil
    }
    return Int(rest[value.upperBound..<end])
  }

  @Test func theDashboardShowsProgressALostWorkerAndTheReport() async throws {
    try FileManager.default.createDirectory(atPath: Self.artifacts, withIntermediateDirectories: true)
    let port = try FreePorts.pick(1)[0]
    var options = LocalCluster.Options.fast
    options.collectSlots = 1
    options.coordinatorArguments = ["--admin-listen", "127.0.0.1:\(port)"]
    try await withCluster(options) { cluster, server in
      let base = "http://127.0.0.1:\(port)"
      let samples = try Samples.manifest()
      let client = try await cluster.client()
      // Slow exports, one at a time per worker: the job runs for seconds.
      let sources = (0..<8).flatMap { round in
        samples.map { sample in
          var source = Samples.source(sample, server: server, query: "trickle_ms=25&chunk=32768&r=\(round)")
          source.name += "#\(round)"
          return source
        }
      }
      let job = try await client.submit(spec("watched in a browser", sources)).job
      // A bar seen part-way, then seen further on.
      var first: Int?
      // Every look's reading (nil: no bar found), with when it was taken: a failure says
      // whether the browser was slow or the bar stood still.
      var looks: [String] = []
      let submitted = ContinuousClock.now
      do {
        try await eventually("the progress bar advances", timeout: .seconds(120)) {
          let done = Self.progress(try await Self.dom(base + "/"), job: job)
          looks.append("\(done.map(String.init) ?? "none") at \(ContinuousClock.now - submitted)")
          guard let done else { return false }
          guard let before = first else {
            if done < sources.count { first = done }
            return false
          }
          return done > before
        }
      } catch {
        Issue.record("the bar's readings (of \(sources.count)): \(looks.joined(separator: ", "))")
        throw error
      }
      cluster.worker("worker-2")?.signal(SIGKILL)
      try await eventually("worker-2 shown lost", timeout: .seconds(30)) {
        let dom = try await Self.dom(base + "/")
        guard let row = dom.range(of: ">worker-2<") else { return false }
        return dom[row.upperBound...].prefix(400).contains("state-lost")
      }
      let (shot, output) = try await run(
        TLSClusterTests.repository + "/scripts/browser",
        ["screenshot", base + "/", Self.artifacts + "/dashboard-cluster.png"])
      #expect(shot == 0, "\(output)")
      let result = try await finish(client, job, timeout: .seconds(120))
      #expect(result.job.state == "succeeded")
      await client.close()
      let page = try await Self.dom(base + "/jobs/\(job)")
      #expect(page.contains("id=\"report-engagement\""), "the report's table")
      #expect(page.contains("watched in a browser"))
      #expect(page.contains("state-succeeded"))
      let (jobShot, jobOutput) = try await run(
        TLSClusterTests.repository + "/scripts/browser",
        ["screenshot", base + "/jobs/\(job)", Self.artifacts + "/dashboard-job.png", "1280x1400"])
      #expect(jobShot == 0, "\(jobOutput)")
      #expect(FileManager.default.fileExists(atPath: Self.artifacts + "/dashboard-job.png"))
    }
  }
}
