import Foundation
import HaatAnalytics
import HaatClient
import HaatCore
import HaatFixtures
import HaatProtocol
import HaatRecords
import HaatTesting
import Testing

/// Two coordinators on one PostgreSQL store: one active, one standby. kill -9 of the active
/// one mid-job hands the cluster to the standby; every job finishes with each task's result
/// counted once (its report equals the one pass over the same data). One round in
/// `make test`; `HAAT_FAILOVER_ROUNDS=10` (`make accept`) kills ten times in a row.
@Suite(.serialized, .enabled(if: ClusterStore.postgresURL != nil, "needs HAAT_POSTGRES_URL (scripts/run-tests)"))
struct FailoverTests {
  static let tasks = 2_000
  static let rowsPerTask: UInt64 = 30

  /// The engagement report of the whole job, computed in this process from the generator.
  static func reference(tasks: Int = tasks, rows: UInt64 = rowsPerTask) throws -> Haat_V1_EngagementReport {
    var kernel = EngagementKernel()
    for seed in 0..<UInt64(tasks) {
      let generator = PostsGenerator(seed: seed)
      var text = PostsGenerator.header
      for row in 0..<rows { text += generator.row(row) }
      var reader = PostsReader(format: .csv, defaultPlatform: "", defaultAccount: "")
      try Array(text.utf8).withUnsafeBytes { raw in try reader.feed(raw) { kernel.add($0) } }
      try reader.finish { kernel.add($0) }
    }
    return kernel.finish()
  }

  @Test func killingTheActiveCoordinatorMidJobHandsTheClusterToTheStandby() async throws {
    let rounds = Int(ProcessInfo.processInfo.environment["HAAT_FAILOVER_ROUNDS"] ?? "") ?? 1
    var options = ClusterStore.postgres.options()
    options.standbys = 1
    options.workers = 4
    let expected = try Self.reference()
    try await withCluster(options) { cluster, server in
      for round in 1...rounds {
        let sources = (0..<Self.tasks).map { seed in
          var source = Source()
          source.name = "generated-\(seed)"
          source.format = "csv"
          source.url = "\(server.baseURL)/generate/posts.csv?rows=\(Self.rowsPerTask)&seed=\(seed)&round=\(round)"
          return source
        }
        let active = try #require(cluster.activeCoordinator, "round \(round): no coordinator is active")
        var client = try await cluster.client()
        let job = try await client.submit(spec("failover \(round)", sources)).job
        try await eventually("round \(round): the job under way") {
          let counts = try await client.job(job).counts
          return counts.done >= 100
        }
        let before = try await client.job(job).counts
        #expect(before.done < before.total, "round \(round): the kill must come mid-job")
        await client.close()
        cluster.coordinator(active)?.signal(SIGKILL)
        _ = await cluster.coordinator(active)?.wait(timeout: .seconds(10))
        try await eventually("round \(round): the standby active", timeout: .seconds(30)) {
          guard let now = cluster.activeCoordinator else { return false }
          return now != active
        }
        // The killed one comes back as the standby.
        try await cluster.startCoordinator(active, wait: false)
        client = try await cluster.client()
        let result = try await finish(client, job, timeout: .seconds(240))
        #expect(result.job.state == "succeeded", "round \(round): \(result.job.error)")
        #expect(result.job.counts.done == UInt32(Self.tasks), "round \(round)")
        #expect(result.report.summary.tasks == UInt32(Self.tasks), "round \(round)")
        #expect(result.report.engagement == expected, "round \(round): a result was lost or counted twice")
        await client.close()
      }
    }
  }

  /// The cluster tests' TCP proxy (tcp_proxy.py): `port` on 127.0.0.1 to `host:target`.
  static let forwarder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("tcp_proxy.py").path

  /// A standby whose connection to the store dropped (the store restarted, the network
  /// between them failed) connects again, and takes over when the active one dies: its
  /// next query went to the closed connection, which postgres-nio drops without a word,
  /// and it waited for the answer for ever, deaf to SIGTERM.
  @Test func aStandbyWhoseStoreConnectionDroppedStillTakesOver() async throws {
    var options = ClusterStore.postgres.options()
    options.workers = 0
    let storeFlag = try #require(options.coordinatorArguments.firstIndex(of: "--store"))
    var store = try #require(URLComponents(string: options.coordinatorArguments[storeFlag + 1]))
    let (host, target) = (try #require(store.host), try #require(store.port))
    let port = try FreePorts.pick(1)[0]
    store.host = "127.0.0.1"
    store.port = port
    let standbyStore = try #require(store.string)
    try await withCluster(options) { cluster, _ in
      func forward() async throws -> ChildProcess {
        let process = try ChildProcess(
          name: "forwarder", executable: "/usr/bin/python3",
          arguments: [Self.forwarder, String(port), host, String(target)],
          logPath: cluster.directory + "/forwarder.log")
        try await eventually("the forwarder listening") { process.tail().contains("listening") }
        return process
      }
      var forwarder = try await forward()
      let ready = cluster.directory + "/standby.ready"
      let standby = try ChildProcess(
        name: "standby", executable: cluster.binary,
        arguments: [
          "coordinator", "--listen", "127.0.0.1:0", "--data-dir", cluster.directory + "/standby", "--store",
          standbyStore, "--ready-file", ready, "--exit-with-parent",
        ],
        logPath: cluster.directory + "/standby.log")
      defer { standby.signal(SIGKILL) }
      try await eventually("the standby waiting") { standby.tail(50).contains("standby: another coordinator") }
      // The blip: every connection through the forwarder drops, then the store is reachable again.
      forwarder.signal(SIGKILL)
      _ = await forwarder.wait(timeout: .seconds(10))
      try await Task.sleep(for: .seconds(1))
      forwarder = try await forward()
      defer { forwarder.signal(SIGKILL) }
      try await Task.sleep(for: .seconds(2))
      let active = try #require(cluster.activeCoordinator)
      cluster.coordinator(active)?.signal(SIGKILL)
      try await eventually("the standby active", timeout: .seconds(40)) {
        FileManager.default.fileExists(atPath: ready)
      }
      #expect(standby.tail(50).contains("active: this coordinator holds the store's lock"), "\(standby.tail(50))")
      #expect(await standby.stop(grace: .seconds(15)) == 0, "\(standby.tail(50))")
    }
  }

  /// Found by testers: an active coordinator frozen (a paused VM, SIGSTOP) kept the store's
  /// lock for as long as it was frozen (its kernel kept the connection open), so the
  /// standby never took over and the cluster stalled; and one whose lock's connection ended
  /// while frozen kept running when thawed, committed leases after the standby had taken
  /// over, and the job waited for them for ever. Now PostgreSQL ends the frozen one's idle
  /// lock session (`idle_session_timeout`), the standby takes over while it is still
  /// frozen, the thawed one's writes are fenced and it stops (exit 6), and the job
  /// finishes with every result counted once.
  @Test func aFrozenActiveCoordinatorLosesTheLockAndIsFencedOff() async throws {
    let tasks = 300
    let rows: UInt64 = 5
    // Leases and heartbeats as a deployment has them (a worker leaves a session that has
    // answered no heartbeat for 5 s).
    var base = LocalCluster.Options.fast
    (base.leaseMs, base.heartbeatMs) = (6_000, 1_000)
    var options = ClusterStore.postgres.options(base)
    options.standbys = 1
    options.workers = 2
    let expected = try Self.reference(tasks: tasks, rows: rows)
    try await withCluster(options) { cluster, server in
      let sources = (0..<tasks).map { seed in
        var source = Source()
        source.name = "generated-\(seed)"
        source.format = "csv"
        source.url = "\(server.baseURL)/generate/posts.csv?rows=\(rows)&seed=\(seed)&delay_ms=500"
        return source
      }
      let active = try #require(cluster.activeCoordinator)
      let frozen = try #require(cluster.coordinator(active))
      var client = try await cluster.client()
      let job = try await client.submit(spec("frozen", sources)).job
      try await eventually("the job under way") { try await client.job(job).counts.done >= 20 }
      await client.close()
      frozen.signal(SIGSTOP)
      let standbyReady = cluster.directory + "/standby-1.ready"
      try await eventually("the standby active", timeout: .seconds(40)) {
        FileManager.default.fileExists(atPath: standbyReady)
      }
      // The workers leave the frozen one's silent sessions for the new active, while it is
      // still frozen (they stayed until it thawed; found by a tester).
      let newActive = cluster.endpoints[1].description
      try await eventually("both workers on the new active", timeout: .seconds(40)) {
        try ["worker-1", "worker-2"].allSatisfy { name in
          let log = try String(contentsOfFile: try #require(cluster.worker(name)).logPath, encoding: .utf8)
          return log.split(separator: "\n").contains {
            $0.contains("connected to the coordinator") && $0.contains(#""coordinator":"\#(newActive)""#)
          }
        }
      }
      frozen.signal(SIGCONT)
      #expect(await frozen.wait(timeout: .seconds(30)) == 6, "the thawed coordinator stops: \(frozen.tail(20))")
      client = try await cluster.client()
      let result = try await finish(client, job, timeout: .seconds(180))
      #expect(result.job.state == "succeeded", "\(result.job.error)")
      #expect(result.job.counts.done == UInt32(tasks))
      #expect(result.report.engagement == expected, "a result was lost or counted twice")
      await client.close()
    }
  }
}
