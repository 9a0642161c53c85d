import Foundation
import HaatProtocol
import HaatTesting
import Testing

/// `stalled` means a worker holds work and has made no progress on it for longer than the
/// lease or three heartbeats (docs/cli.md): a worker that sat idle longer than that and
/// has just taken a task is healthy, not stalled.
@Suite struct WorkerHealthClusterTests {
  @Test func aWorkerThatJustTookWorkAfterIdlingIsHealthy() async throws {
    var options = LocalCluster.Options.fast
    options.workers = 1
    try await withCluster(options) { cluster, server in
      let client = try await cluster.client()
      // Idle past the stall bound (2 s lease, 400 ms heartbeats).
      try await Task.sleep(for: .milliseconds(3_000))
      let sample = try #require(try Samples.manifest().first)
      var source = Samples.source(sample, server: server, query: "delay_ms=4000&series=idle-then-busy")
      source.name = "slow"
      let submitted = ContinuousClock.now
      let job = try await client.submit(spec("idle then busy", [source])).job
      // A runner so loaded that its looks come late may miss the 4 s the worker holds the
      // task: the job's end stops the wait too, and then nothing is judged.
      var holding: Haat_V1_WorkerStatus?
      var seenAt = submitted
      try await eventually("the worker holds the task, or the job ended") {
        if let worker = try await client.workers().first, worker.leases > 0 {
          (holding, seenAt) = (worker, ContinuousClock.now)
          return true
        }
        return try await client.job(job).finishedMs > 0
      }
      // Judged only when seen well within the 2 s bound of its taking the task: a look that
      // comes later sees a worker that has truly made no progress for that long (its fetch
      // waits 4 s), and `stalled` is then right.
      if let worker = holding, seenAt - submitted < .milliseconds(1_500) {
        #expect(worker.state == "healthy", "just took its task after idling: \(worker.state)")
      }
      #expect(try await finish(client, job).job.state == "succeeded")
    }
  }
}
