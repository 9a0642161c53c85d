import Foundation
import HaatClient
import HaatCore
import HaatProtocol
import HaatTesting
import Testing

/// Issue 10, defect 8: ended jobs can be deleted (`haat jobs prune`, and `--retain` hourly);
/// open jobs never are.
@Suite("Retention", .serialized)
struct RetentionTests {
  /// A source of three tasks that do nothing.
  static var noop: Source {
    var noop = Source()
    noop.kind = "noop"
    noop.tasks = 3
    return noop
  }

  @Test func pruneDeletesEndedJobsOnly() async throws {
    try await withCluster { cluster, _ in
      let client = try await cluster.client()
      let noop = Self.noop
      let ended = try await client.submit(spec("ended", [noop])).job
      _ = try await finish(client, ended)
      var waiting = spec("waiting", [noop])
      waiting.notBefore = "2099-01-01T00:00:00Z"
      let open = try await client.submit(waiting).job
      try await Task.sleep(for: .milliseconds(1_200))
      let arguments = [
        "jobs", "prune", "--older-than", "1s", "--coordinator", cluster.endpoint.description, "--data-dir",
        cluster.dataDirectory,
      ]
      let pruned = try await run(cluster.binary, arguments)
      #expect(pruned.status == 0, "\(pruned.output)")
      #expect(pruned.output.contains("pruned 1 job and 3 tasks"), "\(pruned.output)")
      await #expect(throws: HaatError.self) { try await client.job(ended) }
      #expect(try await client.job(open).state == "queued")
      let listed = try await run(
        cluster.binary, ["jobs", "--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory])
      #expect(listed.status == 0)
      #expect(listed.output.contains("waiting") && !listed.output.contains("ended"))
      // Nothing more to prune: a second run deletes nothing.
      #expect(try await client.prune(endedBeforeMs: Int64(Date().timeIntervalSince1970 * 1000)).jobs == 0)
      await client.close()
    }
  }

  /// Ids are never given out twice: pruning every ended job keeps the newest (SQLite would
  /// otherwise hand its id, and its tasks' ids, to the next job). PostgreSQL keeps it too,
  /// as the docs say of both (it pruned it).
  @Test(arguments: ClusterStore.all) func pruningNeverLetsAnIDComeBack(store: ClusterStore) async throws {
    try await withCluster(store.options()) { cluster, _ in
      let client = try await cluster.client()
      let noop = Self.noop
      let first = try await client.submit(spec("first", [noop])).job
      let second = try await client.submit(spec("second", [noop])).job
      _ = try await finish(client, first)
      _ = try await finish(client, second)
      let seen = Set(
        try await client.job(first, tasks: true).tasks.map(\.id) + client.job(second, tasks: true).tasks.map(\.id))
      try await Task.sleep(for: .milliseconds(1_200))
      let pruned = try await client.prune(endedBeforeMs: Int64(Date().timeIntervalSince1970 * 1000))
      #expect(pruned.jobs == 1, "the newest job stays")
      let third = try await client.submit(spec("third", [noop])).job
      _ = try await finish(client, third)
      #expect(third != first && third != second, "job \(third) was given out before")
      let tasks = try await client.job(third, tasks: true).tasks.map(\.id)
      #expect(seen.isDisjoint(with: tasks), "task ids \(tasks) were given out before: \(seen)")
      await client.close()
    }
  }
}
