import Foundation
import HaatProtocol
import HaatTesting
import Testing

/// `stalled` means a worker holds work and has made no progress on it for longer than the
/// lease or three heartbeats (docs/cli.md): a worker that sat idle longer than that and
/// has just taken a task is healthy, not stalled.
@Suite struct WorkerHealthClusterTests {
  @Test func aWorkerThatJustTookWorkAfterIdlingIsHealthy() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, server in
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

/// A stopped worker keeps its socket open and its credit: once it is `lost` (three missed
/// heartbeats) it gets no new task, so a job runs on the others at attempt 1 instead of
/// waiting out a lease on it; heard from again, it takes tasks again. The coordinator logs
/// both once (nothing was logged until its leases expired).
@Suite struct SilentWorkerClusterTests {
  /// The coordinator's log lines about worker-1 that hold `text`.
  static func logLines(_ cluster: LocalCluster, _ text: String) throws -> Int {
    let log = try String(contentsOfFile: try #require(cluster.coordinator).logPath, encoding: .utf8)
    return log.split(separator: "\n").filter { $0.contains(#""worker":"worker-1""#) && $0.contains(text) }.count
  }

  @Test func aLostWorkerGetsNoNewTaskUntilItBeatsAgain() async throws {
    try await withCluster(.fast) { cluster, _ in
      try await cluster.waitForWorkers(2)
      let client = try await cluster.client()
      let stopped = try #require(cluster.worker("worker-1"))
      stopped.signal(SIGSTOP)
      do {
        try await eventually("worker-1 is lost") {
          try await client.workers().first { $0.id == "worker-1" }?.state == "lost"
        }
        let source = noopSource(tasks: 12)
        let job = try await client.submit(spec("while worker-1 is stopped", [source])).job
        #expect(try await finish(client, job).job.state == "succeeded")
        let tasks = try await client.job(job, tasks: true).tasks
        #expect(tasks.count == 12)
        for task in tasks {
          #expect(task.worker == "worker-2" && task.attempt == 1, "task \(task.index): \(task.worker) #\(task.attempt)")
        }
        // Said in the coordinator's log too (by its lease reaper, within a period), for an
        // alert that reads logs.
        try await eventually("the coordinator logs worker-1 lost") { try Self.logLines(cluster, "worker lost") == 1 }
      } catch {
        stopped.signal(SIGCONT)
        throw error
      }
      stopped.signal(SIGCONT)
      try await eventually("worker-1 is healthy again") {
        try await client.workers().first { $0.id == "worker-1" }?.state == "healthy"
      }
      await client.close()
      try await eventually("the coordinator logs worker-1 heard from") {
        try Self.logLines(cluster, "worker heard from again") == 1
      }
      #expect(try Self.logLines(cluster, "worker lost") == 1)
    }
  }
}

/// Two processes started under one worker name keep closing each other's session: the one
/// closed is told why, and logs it, rather than only "the connection closed".
@Suite struct SharedNameClusterTests {
  @Test func aWorkerClosedForAnotherOfItsNameLogsWhy() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, _ in
      try await cluster.waitForWorkers(1)
      let first = try #require(cluster.worker("worker-1"))
      let twin = try ChildProcess(
        name: "twin", executable: cluster.binary,
        arguments: [
          "worker", "--coordinator", cluster.endpoint.description, "--token-file", cluster.workerTokenPath, "--name",
          "worker-1", "--exit-with-parent",
        ], logPath: cluster.directory + "/twin.log")
      defer { twin.signal(SIGKILL) }
      try await eventually("the first worker logs why its session closed") {
        (try? String(contentsOfFile: first.logPath, encoding: .utf8))?.contains(
          "another session connected as worker worker-1") == true
      }
    }
  }
}

/// A worker runs a thread per slot: slot counts past the bound (or below zero) are refused
/// before it starts, instead of a crash when the system runs out of threads (40,000 slots
/// ended the process with signal 4) or a negative count taken silently as none. So are
/// the other flags whose bad values it used to take.
@Suite struct WorkerFlagsClusterTests {
  @Test func outOfRangeFlagsAreRefused() async throws {
    try await withCluster { cluster, _ in
      for (flag, value, says) in [
        ("--collect-slots", "40000", "--collect-slots must be 0 to 4096, not 40000"),
        ("--analyze-slots", "4097", "--analyze-slots must be 0 to 4096, not 4097"),
        ("--collect-slots", "-1", "--collect-slots must be 0 to 4096, not -1"),
        // An unset variable in `--file-root "$DIR"`: every path was inside an empty root.
        ("--file-root", "", "--file-root must name a directory"),
        // A typo'd root made every file task "outside the allowed file roots" (a tester).
        ("--file-root", "/nonexistent-root", "--file-root /nonexistent-root is not a directory"),
        ("--file-root", "/etc/hostname", "--file-root /etc/hostname is not a directory"),
        // libcurl refused the option at every fetch; a drain of -5 s cancelled at once.
        ("--stall-seconds", "-1", "--stall-seconds must not be negative"),
        ("--drain-timeout-ms", "-5000", "--drain-timeout-ms must not be negative"),
        // Found by a tester: libcurl read 0 as its own 300 s.
        ("--connect-timeout-ms", "0", "--connect-timeout-ms must be at least 1, not 0"),
        ("--max-body-bytes", "0", "--max-body-bytes must be at least 1, not 0"),
        ("--tls-ca", "/nonexistent-ca.pem", "--tls-ca /nonexistent-ca.pem: No such file or directory"),
        // Read only at the first fetch, failing every task there.
        ("--ca-file", "/nonexistent-ca.pem", "--ca-file /nonexistent-ca.pem: No such file or directory"),
        ("--ca-file", "/tmp", "--ca-file /tmp is a directory"),
        ("--ca-file", "/etc/hostname", "--ca-file /etc/hostname holds no PEM certificate"),
        ("--proxy", "http://", "--proxy \"http://\" is not a proxy"),
        ("--proxy", "ftp://proxy.example:21", "is not a proxy"),
        ("--proxy", "proxy.example:99999", "is not a proxy"),
      ] {
        let worker = try ChildProcess(
          name: "slots", executable: cluster.binary,
          arguments: [
            "worker", "--coordinator", cluster.endpoint.description, "--token-file", cluster.workerTokenPath,
            "--name", "worker-slots", "--exit-with-parent",
          ]  // A negative value only reads as one joined by `=`; an empty one only apart.
            + (value.hasPrefix("-") ? ["\(flag)=\(value)"] : [flag, value]), logPath: cluster.directory + "/slots.log")
        let status = await worker.wait(timeout: .seconds(30))
        let log = worker.tail(20)
        #expect(status == 64, "\(flag) \(value): exit \(String(describing: status)): \(log)")
        #expect(log.contains(says), "\(log)")
        await worker.stop()
      }
    }
  }
}

/// Found by a tester: a coordinator stopped for 70 s, once resumed, said every worker
/// `lost` and expired every lease before it read the heartbeats waiting in its sockets,
/// so healthy workers' tasks burned attempts (and died, at `max_attempts: 1`). The time it
/// did not run is added to leases and heartbeats now. And workers stayed on a silent
/// coordinator for good (a standby that took over had none): they leave it after 5 s.
@Suite struct FrozenCoordinatorClusterTests {
  @Test func aCoordinatorResumedAfterAPauseExpiresNoLeaseOfAHealthyWorker() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, server in
      let samples = try Samples.manifest()
      let slow = try #require(samples.first { $0.file.hasSuffix(".ndjson") })
      let client = try await cluster.client()
      // About 8 s of trickle: the task is surely leased across the pause.
      let source = Samples.source(slow, server: server, query: "trickle_ms=300&chunk=8192")
      let job = try await client.submit(spec("across a pause", [source], maxAttempts: 1)).job
      try await eventually("the task leased") { try await client.job(job).counts.leased == 1 }
      let coordinator = try #require(cluster.coordinator)
      coordinator.signal(SIGSTOP)
      // Past the 2 s lease, the three 400 ms heartbeats that make a worker lost, and the
      // 5 s a worker waits for an answer before it leaves the session.
      try await Task.sleep(for: .seconds(7))
      coordinator.signal(SIGCONT)
      let result = try await finish(client, job)
      #expect(result.job.state == "succeeded", "\(result.job)")
      let task = try #require(try await client.job(job, tasks: true).tasks.first)
      #expect(task.attempt == 1 && task.worker == "worker-1")
      let log = try String(contentsOfFile: coordinator.logPath, encoding: .utf8)
      #expect(log.contains("the coordinator did not run for a while"))
      #expect(!log.contains("lease expired") && !log.contains("worker lost"), "\(log)")
      // The worker left the silent session (as it would for a standby that took over),
      // came back, and its task went on under the same lease.
      let workerLog = try String(contentsOfFile: try #require(cluster.worker("worker-1")).logPath, encoding: .utf8)
      #expect(workerLog.contains("the coordinator has not answered for"), "\(workerLog)")
      #expect(workerLog.components(separatedBy: "connected to the coordinator").count == 3, "\(workerLog)")
      await client.close()
    }
  }
}

/// `gone` is "left after draining: nothing to do". A worker killed in the middle of its drain
/// left holding a lease that now has to expire: it is `lost`, and the coordinator warns
/// (it was `gone`, logged at info: a tester).
@Suite struct DrainLeftUnfinishedClusterTests {
  @Test func aWorkerKilledDuringItsDrainIsLostNotGone() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, server in
      let client = try await cluster.client()
      let sample = try #require(try Samples.manifest().first)
      // A minute's wait: the kill must land while the task runs, however loaded the runner
      // (with 8 s, a fresh clone's loaded run saw the task end first, and `gone` was right).
      let source = Samples.source(sample, server: server, query: "delay_ms=60000&series=killed-draining")
      let job = try await client.submit(spec("killed while draining", [source])).job
      try await eventually("the task running") { try await client.job(job).counts.leased == 1 }
      let worker = try #require(cluster.worker("worker-1"))
      worker.signal(SIGTERM)
      try await eventually("the worker draining") { try await client.workers().first?.state == "draining" }
      worker.signal(SIGKILL)
      try await eventually("the worker disconnected") {
        try await client.workers().first.map { $0.state == "lost" || $0.state == "gone" } ?? false
      }
      #expect(try await client.workers().first?.state == "lost")
      let log = try String(contentsOfFile: try #require(cluster.coordinator).logPath, encoding: .utf8)
      #expect(log.contains("worker left holding leases"), "\(log.suffix(2_000))")
      await client.close()
    }
  }
}
