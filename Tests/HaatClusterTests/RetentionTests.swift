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
  @Test func pruneDeletesEndedJobsOnly() async throws {
    try await withCluster { cluster, _ in
      let client = try await cluster.client()
      var noop = Source()
      noop.kind = "noop"
      noop.tasks = 3
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
}
