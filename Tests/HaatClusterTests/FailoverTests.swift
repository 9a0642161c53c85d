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
  static func reference() throws -> Haat_V1_EngagementReport {
    var kernel = EngagementKernel()
    for seed in 0..<UInt64(tasks) {
      let generator = PostsGenerator(seed: seed)
      var text = PostsGenerator.header
      for row in 0..<rowsPerTask { text += generator.row(row) }
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
}
