import Foundation
import HaatAnalytics
import HaatClient
import HaatCore
import HaatFixtures
import HaatProtocol
import HaatRecords
import HaatTesting
import Testing

/// One bundled sample export, as `manifest.json` lists it.
struct Sample: Decodable, Sendable {
  var file: String
  var platform: String
  var account: String
  var format: String
}

enum Samples {
  static func manifest() throws -> [Sample] {
    let directory = try #require(FixtureServer.samplesDirectory)
    let data = try Data(contentsOf: directory.appendingPathComponent("manifest.json"))
    return try JSONDecoder().decode([Sample].self, from: data)
  }

  /// A source fetching `sample` from the fixture server, with extra query options.
  static func source(_ sample: Sample, server: FixtureServer, query: String = "") -> Source {
    var source = Source()
    source.name = sample.file
    source.platform = sample.platform
    source.account = sample.account
    source.format = sample.format
    source.url = "\(server.baseURL)/samples/\(sample.file)\(query.isEmpty ? "" : "?" + query)"
    return source
  }

  /// The engagement report computed in one pass in this process, for comparison.
  static func singlePass(_ samples: [Sample]) throws -> Haat_V1_EngagementReport {
    let directory = try #require(FixtureServer.samplesDirectory)
    var kernel = EngagementKernel()
    for sample in samples {
      let data = try Data(contentsOf: directory.appendingPathComponent(sample.file))
      var reader = PostsReader(
        format: ExportFormat(rawValue: sample.format) ?? .csv, defaultPlatform: sample.platform,
        defaultAccount: sample.account)
      try [UInt8](data).withUnsafeBytes { raw in try reader.feed(raw) { kernel.add($0) } }
      try reader.finish { kernel.add($0) }
    }
    return kernel.finish()
  }
}

/// Runs `body` with a cluster and a fixture server, and always stops both; on failure the
/// processes' logs are attached to the issue.
func withCluster(
  _ options: LocalCluster.Options = .fast, _ body: (LocalCluster, FixtureServer) async throws -> Void
) async throws {
  try await withCluster({ _ in options }, body)
}

/// The same, with options that depend on the fixture server (its port in a worker flag).
func withCluster(
  _ options: (FixtureServer) throws -> LocalCluster.Options,
  _ body: (LocalCluster, FixtureServer) async throws -> Void
) async throws {
  let server = try await FixtureServer.start()
  let cluster: LocalCluster
  do {
    cluster = try await LocalCluster.start(options(server))
  } catch {
    try? await server.stop()
    throw error
  }
  do {
    try await body(cluster, server)
  } catch {
    Issue.record("cluster logs:\n\(cluster.logs())")
    await cluster.stop()
    try? await server.stop()
    throw error
  }
  await cluster.stop()
  try? await server.stop()
}

extension LocalCluster.Options {
  /// Short leases and backoffs so fault tests take seconds.
  static var fast: LocalCluster.Options {
    var options = LocalCluster.Options()
    options.leaseMs = 2_000
    options.heartbeatMs = 400
    options.retryBaseMs = 100
    options.retryCapMs = 1_000
    options.logLevel = "debug"
    return options
  }

  /// `fast` with `workers` workers (0: the test brings its own).
  static func fast(workers: Int) -> LocalCluster.Options {
    var options = fast
    options.workers = workers
    return options
  }
}

/// How much longer waits may be: a sanitizer build runs several times slower
/// (`make tsan`/`make asan` set HAAT_TEST_TIME_SCALE=4). Every wait stays bounded.
let timeScale = max(1, min(10, Int(ProcessInfo.processInfo.environment["HAAT_TEST_TIME_SCALE"] ?? "") ?? 1))

/// Polls `condition` until it holds or `timeout` passes.
func eventually(
  _ what: String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool
) async throws {
  let timeout = timeout * timeScale
  let deadline = ContinuousClock.now + timeout
  while true {
    let started = ContinuousClock.now
    if try await condition() { return }
    // Only a look that started past the deadline is the last: a busy test runner may leave
    // this task unscheduled for seconds, so a look begun in time can answer with a state
    // long gone (a reply read before a session closed).
    guard started < deadline else { break }
    try await Task.sleep(for: .milliseconds(50))
  }
  throw HaatError(.unavailable, "timed out waiting for: \(what)")
}

/// Waits for a job to end (through `watch`) and returns its result.
func finish(_ client: HaatClient, _ job: String, timeout: Duration = .seconds(60)) async throws -> Haat_V1_Result {
  let timeout = timeout * timeScale
  return try await withThrowingTaskGroup(of: Haat_V1_Result.self) { group in
    group.addTask {
      for try await event in client.watch(job) where event.final { break }
      return try await client.result(job)
    }
    group.addTask {
      try await Task.sleep(for: timeout)
      throw HaatError(.unavailable, "job \(job) did not end within \(timeout)")
    }
    defer { group.cancelAll() }
    return try await group.next() ?? Haat_V1_Result()
  }
}

/// A source of `tasks` no-op tasks (0: the kind's default, one).
func noopSource(tasks: UInt32 = 0) -> Source {
  var source = Source()
  source.kind = "noop"
  source.tasks = tasks
  return source
}

func spec(_ name: String, _ sources: [Source], maxAttempts: UInt32 = 0) -> JobSpec {
  var spec = JobSpec()
  spec.name = name
  spec.sources = sources
  spec.maxAttempts = maxAttempts
  return spec
}

/// The store a cluster test's coordinator uses: the embedded SQLite, and PostgreSQL when
/// `HAAT_POSTGRES_URL` names a server (`scripts/run-tests` starts one), each cluster in a
/// schema of its own.
enum ClusterStore: String, Sendable, CustomTestStringConvertible {
  case sqlite, postgres

  static let postgresURL = ProcessInfo.processInfo.environment["HAAT_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
  static let all: [ClusterStore] = postgresURL == nil ? [.sqlite] : [.sqlite, .postgres]

  var testDescription: String { rawValue }

  func options(_ base: LocalCluster.Options = .fast) -> LocalCluster.Options {
    guard self == .postgres, let url = Self.postgresURL else { return base }
    var options = base
    let schema = "c_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
    options.coordinatorArguments += ["--store", url + (url.contains("?") ? "&" : "?") + "schema=\(schema)"]
    return options
  }
}
