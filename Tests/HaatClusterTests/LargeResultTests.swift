import Foundation
import HaatAnalytics
import HaatClient
import HaatCore
import HaatFixtures
import HaatProtocol
import HaatRecords
import HaatTesting
import Testing

/// Issue 10, defect 1 and 2: results larger than the line limit. With a 64 KiB limit, a
/// task's partial (thousands of platform × account × media cells) goes to the coordinator
/// in parts and the report comes back in parts; the report equals one pass over the data.
@Suite("Large results", .serialized)
struct LargeResultTests {
  static let limit = 64 * 1024
  static let rows: UInt64 = 20_000
  static let accounts: UInt64 = 300

  static func expected(seeds: [UInt64]) throws -> Haat_V1_EngagementReport {
    var kernel = EngagementKernel()
    for seed in seeds {
      let generator = PostsGenerator(seed: seed, accounts: accounts)
      var reader = PostsReader(format: .csv, defaultPlatform: "", defaultAccount: "")
      try Array(PostsGenerator.header.utf8).withUnsafeBytes { try reader.feed($0) { kernel.add($0) } }
      for index in 0..<rows {
        try Array(generator.row(index).utf8).withUnsafeBytes { try reader.feed($0) { kernel.add($0) } }
      }
      try reader.finish { kernel.add($0) }
    }
    return kernel.finish()
  }

  @Test func resultsOverTheLineLimitTravelInParts() async throws {
    var options = LocalCluster.Options.fast
    options.coordinatorArguments = ["--max-line-bytes", String(Self.limit)]
    // A debug build encodes thousands of cells slowly: leases long enough not to expire.
    options.leaseMs = 15_000
    options.heartbeatMs = 1_000
    try await withCluster(options) { cluster, server in
      let client = try await cluster.client()
      let seeds: [UInt64] = [1, 2]
      let sources = seeds.map { seed in
        var source = Source()
        source.name = "generated-\(seed)"
        source.format = "csv"
        source.url = "\(server.baseURL)/generate/posts.csv?rows=\(Self.rows)&seed=\(seed)&accounts=\(Self.accounts)"
        return source
      }
      let job = try await client.submit(spec("large results", sources)).job
      // Two 20,000-row tasks of 64 parts each: under the whole suite's load a debug build
      // needs more than the default minute.
      let result = try await finish(client, job, timeout: .seconds(120))
      #expect(result.job.state == "succeeded", "\(result.report.summary.missing)")
      let expected = try Self.expected(seeds: seeds)
      // Thousands of rows: far more than one 64 KiB line holds.
      #expect(expected.rows.count > 5_000)
      #expect(result.report.engagement.rows.count == expected.rows.count)
      #expect(result.report.engagement == expected)
      #expect(result.report.summary.rows == 2 * Self.rows)
      let workerLogs = ["worker-1", "worker-2"].compactMap {
        try? String(contentsOfFile: "\(cluster.directory)/\($0).log", encoding: .utf8)
      }.joined()
      #expect(workerLogs.contains("sending the result in parts"))
      await client.close()
    }
  }

  /// Found by a tester: a result of several MB in parts over a thin uplink held back the
  /// worker's heartbeats behind its parts, so the coordinator called the worker lost and the
  /// worker left a silent session, and the task started over for ever. Every part the
  /// socket takes now counts as an answer, and the coordinator hears a holder in its parts:
  /// over a 150 KB/s link, with 1 s heartbeats and a 6 s lease, the result arrives once on
  /// the first session and the first attempt.
  @Test func aResultOverASlowLinkKeepsItsSessionAndLease() async throws {
    var options = LocalCluster.Options.fast(workers: 0)
    options.coordinatorArguments = ["--max-line-bytes", String(Self.limit)]
    options.leaseMs = 6_000
    options.heartbeatMs = 1_000
    try await withCluster(options) { cluster, server in
      let port = try FreePorts.pick(1)[0]
      let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("tcp_proxy.py")
      let link = try ChildProcess(
        name: "slow-link", executable: "/usr/bin/env",
        arguments: ["python3", script.path, String(port), "127.0.0.1", String(cluster.endpoint.port), "150000", "180"],
        logPath: cluster.directory + "/slow-link.log")
      defer { link.signal(SIGKILL) }
      let linkLog = { (try? String(contentsOfFile: link.logPath, encoding: .utf8)) ?? "" }
      try await eventually("the slow link listening") { linkLog().contains("listening") }
      let worker = try cluster.startWorker(name: "worker-1", through: [Endpoint(host: "127.0.0.1", port: port)])
      try await cluster.waitForWorkers(1)
      let client = try await cluster.client()
      var source = Source()
      source.name = "generated"
      source.format = "csv"
      source.url = "\(server.baseURL)/generate/posts.csv?rows=8000&seed=3&accounts=\(Self.accounts)"
      let job = try await client.submit(spec("slow link", [source])).job
      let result = try await finish(client, job, timeout: .seconds(150))
      #expect(result.job.state == "succeeded", "\(result.report.summary.missing)")
      #expect(result.report.summary.rows == 8_000)
      let task = try #require(try await client.job(job, tasks: true).tasks.first)
      #expect(task.attempt == 1)
      let workerLog = (try? String(contentsOfFile: worker.logPath, encoding: .utf8)) ?? ""
      #expect(workerLog.contains("sending the result in parts"))
      #expect(!workerLog.contains("leaving the session"))
      // One connection through the link: the worker never left its session.
      #expect(linkLog().components(separatedBy: "open ").count == 2, "\(linkLog())")
      #expect(!cluster.logs().contains("worker lost: no heartbeat"))
      await client.close()
    }
  }

  /// A coordinator without workers, on a line limit of `limit`.
  static var lineLimited: LocalCluster.Options {
    var options = LocalCluster.Options.fast(workers: 0)
    options.coordinatorArguments = ["--max-line-bytes", String(Self.limit)]
    return options
  }

  /// Makes a schedule named `name`: one noop source, once a year.
  static func schedule(_ name: String, on client: HaatClient) async throws {
    let noop = noopSource()
    var one = spec(name, [noop])
    one.every = "365d"
    _ = try await client.submit(one)
  }

  /// Found by a tester: `schedule_list` carried every schedule in one line, and past the
  /// line limit `haat schedules` could only fail. It pages now, as every list does.
  @Test func schedulesOverTheLineLimitArePaged() async throws {
    try await withCluster(Self.lineLimited) { cluster, _ in
      let client = try await cluster.client()
      // 400 schedules of 200-byte names: about 150 KB of list, over twice the limit.
      var names: [String] = []
      for index in 0..<400 {
        names.append(String(format: "%03d-", (index * 7) % 400) + String(repeating: "s", count: 196))
        try await Self.schedule(names[index], on: client)
      }
      let schedules = try await client.schedules()
      #expect(schedules.map(\.name) == names.sorted())
      let first = try await client.call(.listSchedules(Haat_V1_ListSchedules()))
      guard case .scheduleList(let page) = first else {
        Issue.record("not a schedule_list: \(first)")
        return
      }
      #expect(!page.next.isEmpty && page.schedules.count < 400 && page.schedules.last?.name == page.next)
      await client.close()
    }
  }

  /// Found by a tester: a page cut by bytes was measured before its cursor, the page's last
  /// name (up to 800 bytes of UTF-8), so a page ending on a long name was over the line and
  /// `haat schedules` failed outright. Short names added one by one move the cut across a
  /// whole long name: every listing must succeed.
  @Test func aPageEndingOnALongNameStillFitsItsLine() async throws {
    try await withCluster(Self.lineLimited) { cluster, _ in
      let client = try await cluster.client()
      var names: [String] = []
      for index in 0..<70 {
        names.append(String(format: "%02d", index) + String(repeating: "😀", count: 196))
        try await Self.schedule(names[index], on: client)
      }
      for filler in 0..<10 {
        names.append("0-f\(filler)")
        try await Self.schedule("0-f\(filler)", on: client)
        let listed = try await client.schedules()
        #expect(listed.map(\.name) == names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
      }
      await client.close()
    }
  }

  /// Issue 10, defect 6: a spec over the line limit goes in parts and is one job; one past
  /// the documented maximum of sources is refused before anything is sent.
  @Test func specsOverTheLineLimitTravelInParts() async throws {
    var options = LocalCluster.Options.fast
    options.coordinatorArguments = ["--max-line-bytes", String(Self.limit)]
    try await withCluster(options) { cluster, _ in
      let client = try await cluster.client()
      let sources = (0..<2_000).map { index in
        var source = Source()
        source.kind = "noop"
        source.name = "agency-client-\(index)-" + String(repeating: "n", count: 40)
        return source
      }
      let accepted = try await client.submit(spec("many sources", sources))
      #expect(accepted.tasks == 2_000)
      let result = try await finish(client, accepted.job)
      #expect(result.job.state == "succeeded")
      #expect(result.report.summary.sources == 2_000)
      let job = try await client.job(accepted.job, tasks: true)
      #expect(job.tasks.count == 2_000)
      do {
        _ = try await client.submit(spec("too many", Array(repeating: sources[0], count: 10_001)))
        Issue.record("a spec of 10,001 sources was sent")
      } catch let error as HaatError {
        #expect(error.code == .badSpec)
        #expect(error.message.contains("10000"))
      }
      await client.close()
    }
  }

  /// Found by a tester: with no coordinator up, `haat submit` of 10,001 sources said the
  /// coordinator was unavailable (exit 6), not that the spec was too big: it connected first.
  @Test func theCLISaysASpecHasTooManySourcesBeforeConnecting() async throws {
    let directory = NSTemporaryDirectory() + "haat-many-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let sources = (0..<10_001).map { #"{"name":"s\#($0)","kind":"noop"}"# }.joined(separator: ",")
    let path = directory + "/spec.json"
    try Data(#"{"name":"too many","sources":[\#(sources)]}"#.utf8).write(to: URL(fileURLWithPath: path))
    let port = try FreePorts.pick(1)[0]
    let (status, output) = try await run(
      try HaatBinary.path(), ["submit", path, "--coordinator", "127.0.0.1:\(port)", "--data-dir", directory])
    #expect(status == 2 && output.contains("the most is 10000"), "\(status): \(output)")
  }

  /// Found by a tester: a URL with a password in it was refused by the coordinator, after
  /// the spec had crossed the wire; with none up, the CLI said it was unavailable. The CLI
  /// refuses it before connecting, without echoing it (exit 2, bad_spec).
  @Test func theCLIRefusesASecretInAURLBeforeConnecting() async throws {
    let directory = NSTemporaryDirectory() + "haat-secret-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let port = try FreePorts.pick(1)[0]
    for url in ["http://user:S3CRETPW@127.0.0.1/x.csv", "http:/user:S3CRETPW@127.0.0.1/x.csv"] {
      let path = directory + "/spec.json"
      try Data(#"{"name":"secret","sources":[{"kind":"posts","url":"\#(url)"}]}"#.utf8)
        .write(to: URL(fileURLWithPath: path))
      let (status, output) = try await run(
        try HaatBinary.path(), ["submit", path, "--coordinator", "127.0.0.1:\(port)", "--data-dir", directory])
      #expect(status == 2 && output.contains("carries a credential"), "\(status): \(output)")
      #expect(!output.contains("S3CRETPW"), "\(output)")
    }
  }
}
