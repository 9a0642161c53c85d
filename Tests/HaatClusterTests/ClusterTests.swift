import Foundation
import HaatAnalytics
import HaatClient
import HaatCore
import HaatFixtures
import HaatProtocol
import HaatTesting
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Real coordinator and worker processes on loopback, fetching from a real HTTP server.
@Suite("Cluster", .serialized)
struct ClusterTests {
  /// The reference report written by scripts/reference-engagement.py (an independent
  /// Python implementation of docs/formats.md).
  struct Reference: Decodable {
    struct Row: Decodable {
      var platform: String
      var account: String
      var media_type: String
      var posts: UInt64
      var likes: UInt64
      var comments: UInt64
      var shares: UInt64
      var saves: UInt64
      var reach: UInt64
      var impressions: UInt64
      var clicks: UInt64
      var video_views: UInt64
      var engagements: UInt64
      var engagement_rate_reach: Double?
      var engagement_rate_impressions: Double?
      var ctr: Double?
    }
    var rows: [Row]
    var total: Row
    var good_rows: UInt64
    var bad_rows: UInt64
  }

  static func close(_ a: Double?, _ b: Double?) -> Bool {
    guard let a, let b else { return a == nil && b == nil }
    return abs(a - b) <= 1e-9 * max(1, abs(b))
  }

  static func matches(_ row: Haat_V1_EngagementRow, _ reference: Reference.Row) -> Bool {
    row.platform == reference.platform && row.account == reference.account && row.mediaType == reference.media_type
      && row.posts == reference.posts && row.likes == reference.likes && row.comments == reference.comments
      && row.shares == reference.shares && row.saves == reference.saves && row.reach == reference.reach
      && row.impressions == reference.impressions && row.clicks == reference.clicks
      && row.videoViews == reference.video_views && row.engagements == reference.engagements
      && close(row.hasEngagementRateReach ? row.engagementRateReach : nil, reference.engagement_rate_reach)
      && close(
        row.hasEngagementRateImpressions ? row.engagementRateImpressions : nil, reference.engagement_rate_impressions)
      && close(row.hasCtr ? row.ctr : nil, reference.ctr)
  }

  /// A job of many tasks on two workers gives the report of one pass over all the data,
  /// as an independent implementation computes it.
  @Test(arguments: ClusterStore.all) func multiTaskReportEqualsSinglePass(store: ClusterStore) async throws {
    try await withCluster(store.options()) { cluster, server in
      let samples = try Samples.manifest()
      let client = try await cluster.client()
      let accepted = try await client.submit(spec("all samples", samples.map { Samples.source($0, server: server) }))
      #expect(accepted.tasks == UInt32(samples.count))
      let result = try await finish(client, accepted.job)
      #expect(result.job.state == "succeeded")

      let url = try #require(Bundle.module.url(forResource: "Fixtures/samples-engagement", withExtension: "json"))
      let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
      let report = result.report
      #expect(report.engagement.rows.count == reference.rows.count)
      for (row, expected) in zip(report.engagement.rows, reference.rows) {
        #expect(Self.matches(row, expected), "\(row) vs \(expected)")
      }
      #expect(Self.matches(report.engagement.total, reference.total))
      #expect(report.summary.rows == reference.good_rows)
      #expect(report.summary.badRows == reference.bad_rows)
      #expect(report.summary.sourcesOk == UInt32(samples.count))
      // And the Swift single pass agrees too.
      #expect(report.engagement == (try Samples.singlePass(samples)))
      // Both workers did some of the work.
      let done = try await client.workers().map(\.tasksDone)
      #expect(done.reduce(0, +) == UInt64(samples.count))
      await client.close()
    }
  }

  /// kill -9 of a worker holding a lease: the lease expires, another worker runs the task,
  /// the job succeeds and every task counts exactly once.
  @Test func killedWorkerLeaseIsRetriedElsewhere() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, server in
      let samples = try Samples.manifest()
      let slow = try #require(samples.first { $0.file.hasSuffix(".ndjson") })
      let client = try await cluster.client()
      // The slow export trickles for about 8 s, so the worker is surely holding its lease
      // when it is killed (4 s was once too short under the whole suite's load).
      let sources = samples.map { sample in
        Samples.source(sample, server: server, query: sample.file == slow.file ? "trickle_ms=300&chunk=8192" : "")
      }
      let job = try await client.submit(spec("kill a worker", sources)).job
      var slowTask = ""
      try await eventually("the slow task leased by worker-1") {
        let tasks = try await client.job(job, tasks: true).tasks
        guard let task = tasks.first(where: { $0.source == slow.file }), task.state == "leased" else { return false }
        slowTask = task.id
        return task.worker == "worker-1"
      }
      cluster.worker("worker-1")?.signal(SIGKILL)
      try cluster.startWorker(name: "worker-2")
      let result = try await finish(client, job)
      #expect(result.job.state == "succeeded")
      let task = try #require(try await client.job(job, tasks: true).tasks.first { $0.id == slowTask })
      #expect(task.attempt == 2)
      #expect(task.worker == "worker-2")
      #expect(result.report.engagement == (try Samples.singlePass(samples)))
      #expect(result.report.summary.tasks == UInt32(samples.count))
      await client.close()
    }
  }

  /// kill -9 of the coordinator: after a restart every accepted job is still there and
  /// completes, with each task's result counted once.
  @Test(arguments: ClusterStore.all) func killedCoordinatorLosesNoAcceptedJob(store: ClusterStore) async throws {
    try await withCluster(store.options()) { cluster, server in
      let samples = try Samples.manifest()
      var client = try await cluster.client()
      var jobs: [String] = []
      for round in 0..<3 {
        let sources = samples.map { Samples.source($0, server: server, query: "trickle_ms=40&chunk=32768&r=\(round)") }
        jobs.append(try await client.submit(spec("before the crash \(round)", sources)).job)
      }
      // Work has started (on a loaded machine the first job may run through between polls).
      try await eventually("work in flight") {
        let counts = try await client.job(jobs[0]).counts
        return counts.leased > 0 || counts.done > 0
      }
      let unfinished = try await client.job(jobs[2])
      cluster.coordinator?.signal(SIGKILL)
      #expect(unfinished.counts.done < unfinished.counts.total, "the crash must hit a job mid-way")
      await client.close()
      try await cluster.startCoordinator()
      client = try await cluster.client()
      let expected = try Samples.singlePass(samples)
      for job in jobs {
        let result = try await finish(client, job)
        #expect(result.job.state == "succeeded", "job \(job): \(result.job.error)")
        #expect(result.report.engagement == expected)
        #expect(result.job.counts.done == UInt32(samples.count))
      }
      try await cluster.waitForWorkers(2)
      await client.close()
    }
  }

  /// A non-retryable failure (HTTP 404) makes the task dead at once, with its error; the
  /// job is partial and its report says which source is missing.
  @Test func nonRetryableFailureGoesToDead() async throws {
    try await withCluster { cluster, server in
      let samples = try Samples.manifest()
      let client = try await cluster.client()
      var missing = Samples.source(samples[0], server: server)
      missing.name = "gone.csv"
      missing.url = "\(server.baseURL)/samples/gone.csv"
      let job = try await client.submit(spec("one missing", [Samples.source(samples[0], server: server), missing])).job
      let result = try await finish(client, job)
      #expect(result.job.state == "partial")
      #expect(result.report.summary.missing.map(\.source) == ["gone.csv"])
      #expect(result.report.summary.missing.first?.error.code == "http_404")
      let dead = try await client.dead(job: job)
      #expect(dead.count == 1)
      #expect(dead.first?.attempts == 1)
      #expect(dead.first?.error.code == "http_404")
      #expect(dead.first?.error.message.contains("404") == true)
      // `haat result` says why the job did not succeed: exit 0 without --wait, 3 with it.
      let common = ["--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory]
      for (arguments, status) in [(["result", job], Int32(0)), (["result", job, "--wait"], 3)] {
        let printed = try await run(cluster.binary, arguments + common)
        #expect(printed.status == status, "\(arguments): \(printed.output)")
        #expect(printed.output.contains("job \(job) ended partial: 1 of 2 tasks"), "\(arguments): \(printed.output)")
      }
      // An operator can give it another go; it fails the same way and stays dead.
      #expect(try await client.retryDead(job: job) == 1)
      let again = try await finish(client, job)
      #expect(again.job.state == "partial")
      // Its attempts went on counting: the second run was attempt 2.
      #expect(try await client.dead(job: job).first?.attempts == 2)
      await client.close()
    }
  }

  /// Found by a tester: dead tasks discarded while their job still ran left it `partial`
  /// with no error at all. The error says they were discarded, and why they died.
  @Test func deadTasksDiscardedWhileTheJobRunsAreNamedInItsError() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, server in
      let samples = try Samples.manifest()
      let client = try await cluster.client()
      var missing = Samples.source(samples[0], server: server)
      missing.name = "gone.csv"
      missing.url = "\(server.baseURL)/samples/gone.csv"
      let slow = Samples.source(samples[0], server: server, query: "delay_ms=3000&series=discard-while-running")
      let job = try await client.submit(spec("discard while running", [slow, missing])).job
      try await eventually("the missing source dead") { try await client.job(job).counts.dead == 1 }
      #expect(try await client.discardDead(job: job) == 1)
      let result = try await finish(client, job)
      #expect(result.job.state == "partial")
      #expect(result.job.error.contains("1 of 2 tasks were dead and discarded"), "\(result.job.error)")
      #expect(result.job.error.contains("gone.csv: http_404"), "\(result.job.error)")
      await client.close()
    }
  }

  /// HTTP 429 with Retry-After: 2 delays the next attempt at least two seconds.
  @Test func retryAfterDelaysTheRetry() async throws {
    try await withCluster { cluster, server in
      let samples = try Samples.manifest()
      let client = try await cluster.client()
      let key = "retry-after-\(UUID().uuidString)"
      let source = Samples.source(
        samples[0], server: server, query: "fail_first=1&fail_status=429&retry_after=2&series=\(key)")
      let job = try await client.submit(spec("throttled", [source])).job
      let result = try await finish(client, job)
      #expect(result.job.state == "succeeded")
      let times = server.requestTimes(series: key)
      #expect(times.count == 2)
      if times.count == 2 { #expect(times[1] - times[0] >= 2_000, "retried after \(times[1] - times[0]) ms") }
      let task = try #require(try await client.job(job, tasks: true).tasks.first)
      #expect(task.attempt == 2)
      await client.close()
    }
  }

  /// Jobs whose last tasks end together each keep their own report, all due at the same
  /// instant: 1-task jobs of different samples (each ended in the commit of its result),
  /// and jobs of 17 to 24 no-op tasks (past the bound for that: read together after it;
  /// one worker with room for all of them, so their results commit together).
  @Test func jobsEndingTogetherKeepTheirOwnReports() async throws {
    var options = LocalCluster.Options.fast(workers: 1)
    options.collectSlots = 256
    try await withCluster(options) { cluster, server in
      let samples = try Samples.manifest()
      let client = try await cluster.client()
      let due = ISO8601DateFormatter().string(from: Date().addingTimeInterval(2))
      var jobs: [(String, Sample)] = []
      var noops: [(String, UInt32)] = []
      for round in 0..<3 {
        for sample in samples {
          var one = spec("\(sample.file) \(round)", [Samples.source(sample, server: server)])
          one.notBefore = due
          jobs.append((try await client.submit(one).job, sample))
        }
      }
      for tasks in UInt32(17)...24 {
        var source = Source()
        source.kind = "noop"
        source.tasks = tasks
        var many = spec("\(tasks) no-ops", [source])
        many.notBefore = due
        noops.append((try await client.submit(many).job, tasks))
      }
      for (job, sample) in jobs {
        let result = try await finish(client, job)
        #expect(result.job.state == "succeeded")
        #expect(result.report.engagement == (try Samples.singlePass([sample])), "\(sample.file)")
      }
      for (job, tasks) in noops {
        let result = try await finish(client, job)
        #expect(result.job.state == "succeeded" && result.report.summary.tasks == tasks, "\(tasks) tasks")
      }
      await client.close()
    }
  }

  /// Cancel stops a job: its waiting tasks are cancelled and the running one revoked.
  @Test func cancelStopsAJob() async throws {
    try await withCluster { cluster, server in
      let samples = try Samples.manifest()
      let client = try await cluster.client()
      let sources = samples.map { Samples.source($0, server: server, query: "trickle_ms=200&chunk=4096") }
      let job = try await client.submit(spec("to cancel", sources)).job
      try await eventually("a task running") { try await client.job(job).counts.leased > 0 }
      let cancelled = try await client.cancel(job)
      #expect(cancelled.state == "cancelled")
      // Its result is stored by the time the cancel is answered: asked for at once, not
      // waited for, it is there (it used to be `not_finished` for a moment).
      let result = try await client.result(job)
      #expect(result.job.state == "cancelled")
      #expect(result.job.counts.cancelled > 0)
      // Cancelling again is refused with a reason.
      await #expect(throws: HaatError.self) { _ = try await client.cancel(job) }
      // Jobs of many no-op tasks, cancelled while they run: each result is there at once.
      for round in 0..<5 {
        var source = Source()
        source.kind = "noop"
        source.tasks = 2_000
        let many = try await client.submit(spec("to cancel \(round)", [source])).job
        try await eventually("tasks running") { try await client.job(many).counts.done > 0 }
        _ = try await client.cancel(many)
        #expect(try await client.result(many).job.state == "cancelled")
      }
      await client.close()
    }
  }

  /// SIGTERM drains a worker: it finishes the task it holds, then exits 0.
  @Test func sigtermDrainsAWorker() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, server in
      let samples = try Samples.manifest()
      let client = try await cluster.client()
      let source = Samples.source(samples[0], server: server, query: "trickle_ms=100&chunk=65536")
      let job = try await client.submit(spec("drain", [source])).job
      try await eventually("the task running") { try await client.job(job).counts.leased == 1 }
      let worker = try #require(cluster.worker("worker-1"))
      worker.signal(SIGTERM)
      #expect(await worker.wait(timeout: .seconds(30)) == 0)
      let state = try await client.job(job, tasks: true)
      #expect(state.counts.done == 1)
      #expect(state.tasks.first?.attempt == 1)
      let workers = try await client.workers()
      #expect(workers.first?.state == "gone")
      await client.close()
    }
  }

  /// A client written in Python from docs/protocol.md alone authenticates, submits,
  /// watches and reads the result; wrong HMAC, an over-long line and a non-JSON line get
  /// the documented replies.
  @Test func rawJSONClientFromTheDocs() async throws {
    try await withCluster { cluster, _ in
      let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("raw_client.py")
        .path
      let token = cluster.dataDirectory + "/admin.token"
      let specPath = cluster.directory + "/raw-spec.json"
      try #"{"name":"raw","sources":[{"kind":"noop","tasks":25}]}"#.write(
        toFile: specPath, atomically: true, encoding: .utf8)
      let job = try await run(
        "/usr/bin/env",
        [
          "python3", script, "job", "--coordinator", cluster.endpoint.description, "--token-file", token, "--spec",
          specPath,
        ])
      #expect(job.status == 0, "\(job.output)")
      #expect(job.output.contains("\"succeeded\""))
      let faults = try await run(
        "/usr/bin/env",
        ["python3", script, "faults", "--coordinator", cluster.endpoint.description, "--token-file", token])
      #expect(faults.status == 0, "\(faults.output)")
      #expect(faults.output.contains(" 0 failed"))
    }
  }

  /// Found by a tester: a backlog of 1,000 long log lines (8 KiB messages, 32 fields) was
  /// queued at once, past what a session may leave unsent, and `haat logs --limit 1000`
  /// lost its session. The backlog now sends the newest lines that fit in half of that.
  @Test func aBacklogOfLongLogLinesComesWithoutClosingTheSession() async throws {
    try await withCluster(.fast(workers: 0)) { cluster, _ in
      let logger = try await rawWorker("logger", cluster)
      #expect(logger.status == 0, "\(logger.output)")
      let line = try #require(logger.output.split(separator: "\n").last { $0.hasPrefix("{") })
      let read = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
      // About 4 MiB of lines of about 12 KiB: hundreds, not none.
      #expect((read["lines"] as? Int ?? 0) > 100, "\(logger.output)")
      // The last line's 1,100-byte field, cut to 512 bytes and marked.
      #expect(read["cut"] as? String == String(repeating: "w", count: 512) + "…", "\(logger.output)")
    }
  }

  /// A worker written in Python from docs/protocol.md sends partials as JSON and as
  /// `partial_binary` (one line, and in parts); both kinds merge into one report, and a
  /// line with both, or with bytes that are not a Partial, is refused with the field.
  @Test func rawWorkerSendsPartialsAsJSONAndBinary() async throws {
    var options = LocalCluster.Options.fast(workers: 0)
    try await withCluster(options) { cluster, _ in
      let worker = try await rawWorker("worker", cluster)
      #expect(worker.status == 0, "\(worker.output)")
      let line = try #require(worker.output.split(separator: "\n").last { $0.hasPrefix("{") })
      let result = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
      #expect(result["state"] as? String == "succeeded")
      let rows = (result["rows"] as? [[String: Any]] ?? []).map {
        "\($0["account"] ?? "")=\($0["posts"] ?? 0)/\($0["likes"] ?? 0)"
      }
      #expect(rows.sorted() == ["bin=2/7", "json=1/5", "parts=4/30"])
      #expect(result["pauses"] as? [String] == [], "forged pauses are dropped: \(result)")
      // Another worker's parts for the held lease were refused, and warned of as a whole
      // result is (found by a tester: parts went without a word).
      let warned = cluster.logs().split(separator: "\n").filter {
        $0.contains("refused an answer for another worker's lease") && $0.contains("part")
      }
      #expect(!warned.isEmpty)
      // Its log line is one line, its line breaks shown, not a forged line of another worker.
      let logs = try await run(
        cluster.binary,
        ["logs", "--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory])
      let lines = logs.output.split(separator: "\n")
      #expect(lines.contains { $0.contains(#"forged\n2026-01-01 00:00:00 w9 INFO fake"#) }, "\(logs.output)")
      #expect(lines.contains { $0.contains(#"k=v\r\nw9 ERROR"#) }, "\(logs.output)")
      #expect(!lines.contains { $0.hasPrefix("2026-01-01 00:00:00 w9") || $0.hasPrefix("w9 ERROR") }, "\(logs.output)")
      // Nor does its `worker` field name w9 (found by a tester: `--json` showed it as sent).
      let json = try await run(
        cluster.binary,
        ["logs", "--json", "--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory])
      let forged = try #require(json.output.split(separator: "\n").first { $0.contains("forged") })
      let object = try #require(try JSONSerialization.jsonObject(with: Data(forged.utf8)) as? [String: Any])
      let fields = object["fields"] as? [String: Any]
      #expect(
        fields?["worker"] as? String == object["worker"] as? String && object["worker"] as? String != "w9", "\(forged)")
    }
  }

  /// Found by a tester: one worker shipping 115,000 log lines a second held other clients'
  /// handshakes 5 s and grew the coordinator to 640 MB. Its session is paced: the flood's
  /// lines past a burst are read at 2,000 a second, and a client is answered meanwhile.
  @Test func aWorkerFloodingLogLinesIsPaced() async throws {
    let shown = try await Self.rawWorkerRun("flooder") { cluster in
      let log = try String(contentsOfFile: try #require(cluster.coordinator).logPath, encoding: .utf8)
      #expect(log.contains("pacing a worker's log lines"), "\(log.suffix(1_500))")
    }
    // 6,000 lines past the burst at 2,000 a second: measured 2.0–2.1 s here (a read batch
    // is taken whole before its pause); a loaded machine can only make it longer. Counting
    // only a batch's first line let the whole flood through in 1.1 s.
    #expect((shown["seconds"] as? Double ?? 0) >= 1.5, "\(shown)")
  }

  /// Runs raw_client.py's `mode` as a worker (`worker-MODE`) with an admin client on a
  /// cluster of no workers; its last line, a JSON object. `then` looks at the cluster after.
  static func rawWorkerRun(_ mode: String, then: (LocalCluster) async throws -> Void = { _ in }) async throws
    -> [String: Any]
  {
    var options = LocalCluster.Options.fast(workers: 0)
    var shown: [String: Any] = [:]
    try await withCluster(options) { cluster, _ in
      let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("raw_client.py")
        .path
      let worker = try await run(
        "/usr/bin/env",
        [
          "python3", script, mode, "--coordinator", cluster.endpoint.description, "--token-file",
          cluster.workerTokenPath, "--client-token-file", cluster.dataDirectory + "/admin.token", "--name",
          "worker-\(mode)",
        ])
      #expect(worker.status == 0, "\(worker.output)")
      let line = try #require(worker.output.split(separator: "\n").last { $0.hasPrefix("{") })
      shown = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
      try await then(cluster)
    }
    return shown
  }

  /// A worker paused past its lease (a stopped process, a frozen VM) that answers once the
  /// task moved on to another worker is stale, not an answer for another worker's lease:
  /// that warning, meant for a bug or a stolen token, fired on every such resume.
  @Test func aWorkerPausedPastItsLeaseIsStaleNotAnAlarm() async throws {
    let shown = try await Self.rawWorkerRun("paused") { cluster in
      let log = try String(contentsOfFile: try #require(cluster.coordinator).logPath, encoding: .utf8)
      #expect(!log.contains("refused an answer for another worker's lease"), "\(log)")
    }
    #expect(shown["first_attempt"] as? Int == 1 && shown["second_attempt"] as? Int == 2, "\(shown)")
    #expect(shown["late"] as? String == "stale_attempt", "\(shown)")
    #expect(shown["held_accepted"] as? Bool == true, "\(shown)")
  }

  /// A worker silent for three heartbeats gets no task; any line it sends makes it eligible
  /// again and brings the task waiting (a `log` or a `ping` left it idle until something
  /// else asked for claims, a heartbeat or a credit).
  @Test func aSilentWorkersLineBringsTheWaitingTask() async throws {
    let shown = try await Self.rawWorkerRun("silent")
    for line in ["log", "ping"] {
      let woken = shown[line] as? [String: Any] ?? [:]
      #expect(woken["assigned_while_silent"] as? Bool == false, "\(line): \(shown)")
      // The next claim after the line, not the next heartbeat (400 ms in these clusters).
      #expect((0..<1_000).contains(woken["assign_ms"] as? Int ?? -1), "\(line): \(shown)")
    }
  }

  /// A worker's session replaced by its next one (a reconnect under its name) takes its
  /// staged parts with it, as a session that closes does: the new session's last part
  /// alone was accepted, joined to the old session's earlier ones.
  @Test func aReplacedSessionsPartsAreDropped() async throws {
    let shown = try await Self.rawWorkerRun("reconnect")
    #expect(shown["last_alone"] as? String == "missing_parts", "\(shown)")
    #expect(shown["again_accepted"] as? Bool == true, "\(shown)")
  }

  /// A failure message with a line break (a hostile platform's error page, or a worker's)
  /// is one line in `haat job`: it printed the rest as a line of its own, which could pass
  /// for one of the command's.
  @Test func aJobsErrorCannotForgeLinesInTheCLI() async throws {
    var printed = ""
    let shown = try await Self.rawWorkerRun("forged") { cluster in
      let job = try await HaatClusterTests.run(
        cluster.binary,
        ["job", "1", "--tasks", "--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory])
      printed = job.output
    }
    #expect(shown["job"] as? String == "1", "\(shown)")
    #expect(printed.contains("line1"), "\(printed)")
    #expect(!printed.split(separator: "\n").contains { $0.hasPrefix("FAKE-LINE") }, "\(printed)")
  }

  /// A task holds one rate slot at a time: slots booked ahead for one task without end
  /// pushed every other worker's slots under the key minutes out.
  @Test func aTaskHoldsOneRateSlotAtATime() async throws {
    let shown = try await Self.rawWorkerRun("booker")
    #expect(shown["key"] as? String == "credential:meta", "\(shown)")
    #expect(shown["first"] as? Bool == true, "\(shown)")
    // 1 request/s: the second slot is a second out; the third request, before it is due,
    // gets it again; the fourth, after it, is a second after the second (not two).
    let second = shown["second_wait_ms"] as? Int ?? 0
    let third = shown["third_wait_ms"] as? Int ?? -1
    let fourth = shown["fourth_wait_ms"] as? Int ?? -1
    #expect(second > 900 && (second - 100...second).contains(third), "\(shown)")
    #expect((0..<1_500).contains(fourth), "\(shown)")
  }

  /// A task whose assign would be longer than its worker's line limit (the worker closed its
  /// session on it and took it again on reconnect) cannot be made: a source's texts are
  /// bounded at submit, so the widest task a spec can make is far under the least limit a
  /// worker may ask for (64 KiB). The coordinator still checks each assign (+Claims).
  @Test func noTaskCanBeLongerThanAWorkersLimit() async throws {
    let shown = try await Self.rawWorkerRun("narrow")
    #expect(shown["refused_field"] as? String == "sources[0].url", "\(shown)")
    #expect((shown["refused"] as? String ?? "").contains("the most is 8192"), "\(shown)")
    let length = shown["assign_bytes"] as? Int ?? 0
    #expect(length > 11_000 && length < 32_768, "\(shown)")
  }

  /// A worker's hello may claim 2^32 − 1 slots in each pool: `haat top` summed them in 32
  /// bits and trapped (signal 4) for every operator while the worker was listed. Its host,
  /// version and pools are kept within bounds (unbounded, they made the worker list too
  /// large to send); the script checks its heartbeat and bad line are answered in bounds.
  @Test func topShowsAWorkerClaimingTheMostSlots() async throws {
    try await withCluster(.fast(workers: 0)) { cluster, _ in
      let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("raw_client.py")
        .path
      let greedy = try ChildProcess(
        name: "greedy", executable: "/usr/bin/env",
        arguments: [
          "python3", script, "greedy", "--coordinator", cluster.endpoint.description, "--token-file",
          cluster.workerTokenPath, "--name", "worker-greedy", "--hold", "60",
        ], logPath: cluster.directory + "/greedy.log")
      defer { greedy.signal(SIGKILL) }
      let client = try await cluster.client()
      let log = { (try? String(contentsOfFile: cluster.directory + "/greedy.log", encoding: .utf8)) ?? "" }
      try await eventually("the greedy worker's checks end") {
        log().contains("greedy worker connected") || log().contains("raw_client: error")
      }
      #expect(log().contains("greedy worker connected"), "\(log())")
      let listed = try #require(try await client.workers().first { $0.id == "worker-greedy" })
      #expect(listed.host.utf8.count == 255 + "…".utf8.count && listed.version.utf8.count == 64 + "…".utf8.count)
      #expect(listed.pools.map(\.pool) == ["collect", "analyze"], "\(listed.pools)")
      let top = try await run(
        cluster.binary,
        [
          "top", "--once", "--interval", "0.5", "--coordinator", cluster.endpoint.description, "--data-dir",
          cluster.dataDirectory,
        ])
      #expect(top.status == 0, "\(top.output)")
      #expect(top.output.contains("0/8589934590"), "\(top.output)")
    }
  }

  /// The CLI rejects a bad spec at submit with the field and the reason, and exit code 2.
  @Test func cliRejectsABadSpec() async throws {
    try await withCluster { cluster, _ in
      let path = cluster.directory + "/bad.yaml"
      try "name: typo\nsources:\n  - url: http://127.0.0.1/x.csv\n    platfrom: facebook\n".write(
        toFile: path, atomically: true, encoding: .utf8)
      let arguments = [
        "submit", path, "--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory,
      ]
      let typo = try await run(cluster.binary, arguments)
      #expect(typo.status == 2)
      #expect(typo.output.contains("sources[0].platfrom"))
      try "sources:\n  - url: gopher://x\n".write(toFile: path, atomically: true, encoding: .utf8)
      let scheme = try await run(cluster.binary, arguments)
      #expect(scheme.status == 2)
      #expect(scheme.output.contains("bad_spec: sources[0].url"))
      // A token in the URL is refused, and not echoed.
      try "sources:\n  - url: https://graph.example.com/me/posts?access_token=EAAsecret123\n".write(
        toFile: path, atomically: true, encoding: .utf8)
      let secret = try await run(cluster.binary, arguments)
      #expect(secret.status == 2)
      #expect(secret.output.contains("credential (access_token)"))
      #expect(!secret.output.contains("EAAsecret123"))
      // Whatever the kind: a noop source reads no URL, but a URL it carries is stored.
      try "sources:\n  - kind: noop\n    url: https://u:hunter2@example.com/\n".write(
        toFile: path, atomically: true, encoding: .utf8)
      let noop = try await run(cluster.binary, arguments)
      #expect(noop.status == 2, "\(noop.output)")
      #expect(noop.output.contains("sources[0].url: carries a credential"), "\(noop.output)")
      #expect(!noop.output.contains("hunter2"))
      // An empty selector (an unset shell variable) would be "all" on the wire: a discard of
      // every job's dead tasks. Refused before connecting.
      let client = ["--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory]
      for command in [
        ["dead", "discard", "--job", ""], ["dead", "retry", "--job", " "], ["dead", "--job", ""],
        ["jobs", "--state", ""], ["logs", "--level", ""], ["dead", "discard", ""],
      ] {
        let refused = try await run(cluster.binary, command + client)
        #expect(refused.status == 64, "\(command): \(refused.output)")
        #expect(refused.output.contains("must"), "\(command): \(refused.output)")
      }
      // A negative limit is the value refused, not "Missing value for '--limit'".
      for command in [["jobs", "--limit", "-1"], ["logs", "--limit", "-5"], ["dead", "--limit", "-1"]] {
        let refused = try await run(cluster.binary, command + client)
        #expect(refused.status == 64, "\(command): \(refused.output)")
        #expect(
          refused.output.contains("The value '\(command[2])' is invalid for '--limit"), "\(command): \(refused.output)")
      }
    }
  }

  /// `haat submit --wait` into a pipe: plain progress lines on stderr, the end once.
  @Test func submitWaitEndsWithOneLine() async throws {
    try await withCluster { cluster, _ in
      let path = cluster.directory + "/tiny.yaml"
      try "name: tiny\nsources:\n  - kind: noop\n    tasks: 2\n".write(toFile: path, atomically: true, encoding: .utf8)
      for round in 0..<4 {
        let wait = try await run(
          cluster.binary,
          [
            "submit", path, "--wait", "--coordinator", cluster.endpoint.description, "--data-dir",
            cluster.dataDirectory,
          ]
        )
        #expect(wait.status == 0, "\(wait.output)")
        let ends = wait.output.split(separator: "\n").filter { $0.hasPrefix("job ") && $0.contains("succeeded") }
        #expect(ends.count == 1, "round \(round): \(wait.output)")
      }
      // A spec with `every` says the schedule it made with --wait too (it said it only without).
      try "name: hourly\nevery: 1h\nsources:\n  - kind: noop\n".write(toFile: path, atomically: true, encoding: .utf8)
      let scheduled = try await run(
        cluster.binary,
        ["submit", path, "--wait", "--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory])
      #expect(scheduled.status == 0, "\(scheduled.output)")
      #expect(scheduled.output.contains("schedule hourly: runs every 1h"), "\(scheduled.output)")
    }
  }

  /// Workers ship their logs; `haat logs` and `haat workers` show them. `haat result
  /// --report` of a report the job did not compute says so (it printed nothing, exit 0).
  /// Found by a tester: a worker's last lines (`draining`, `drained`) were logged after its
  /// connection was dropped in the same turn, and never reached `haat logs`.
  @Test func aStoppingWorkersLastLinesAreShipped() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, _ in
      try await cluster.waitForWorkers(1)
      let worker = try #require(cluster.worker("worker-1"))
      worker.signal(SIGTERM)
      #expect(await worker.wait(timeout: .seconds(30)) == 0, "\(worker.tail())")
      let client = try await cluster.client()
      var messages: [String] = []
      for try await line in client.logs(worker: "worker-1", limit: 100) { messages.append(line.message) }
      #expect(messages.contains("draining") && messages.contains("drained"), "\(messages)")
      await client.close()
    }
  }

  @Test func logsAndWorkersFromTheCLI() async throws {
    try await withCluster { cluster, server in
      let samples = try Samples.manifest()
      let client = try await cluster.client()
      let job = try await client.submit(spec("logs", [Samples.source(samples[0], server: server)])).job
      _ = try await finish(client, job)
      await client.close()
      let common = ["--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory]
      let computed = try await run(
        cluster.binary, ["result", job, "--report", "engagement", "--format", "csv"] + common)
      #expect(computed.status == 0 && computed.output.hasPrefix("platform,account,media"), "\(computed.output)")
      for format in ["table", "csv", "json"] {
        let absent = try await run(
          cluster.binary, ["result", job, "--report", "best_time", "--format", format] + common)
        #expect(absent.status == 2, "\(format): \(absent.output)")
        #expect(
          absent.output.contains("has no best_time report: the job did not compute it (it computed engagement"),
          "\(absent.output)")
      }
      // Found by a tester: on a partial job the same mistake exited 3 with why the job was
      // partial, and nothing on stdout; it is the same bad_request in every state.
      var missing = Source()
      missing.name = "missing"
      missing.url = server.baseURL + "/samples/none.csv?status=404"
      let again = try await cluster.client()
      let partial = try await again.submit(spec("partial", [Samples.source(samples[0], server: server), missing])).job
      #expect(try await finish(again, partial).job.state == "partial")
      // And (a second tester) a failed job's section, though an empty one was kept, is why
      // it failed, exit 3, with or without --wait.
      let failed = try await again.submit(spec("failed", [missing])).job
      #expect(try await finish(again, failed).job.state == "failed")
      await again.close()
      let absent = try await run(cluster.binary, ["result", partial, "--report", "best_time", "--json"] + common)
      #expect(absent.status == 2 && absent.output.contains("bad_request"), "\(absent.output)")
      let why = try await run(cluster.binary, ["result", failed, "--report", "engagement"] + common)
      #expect(why.status == 3 && why.output.contains("ended failed"), "\(why.output)")
      try await eventually("the task's log line") {
        try await run(cluster.binary, ["logs", "--level", "info"] + common).output.contains("task done")
      }
      let workers = try await run(cluster.binary, ["workers", "--json"] + common)
      #expect(workers.status == 0)
      let list = try JSONSerialization.jsonObject(with: Data(workers.output.utf8)) as? [[String: Any]]
      #expect(list?.count == 2)
      #expect(list?.allSatisfy { $0["state"] as? String == "healthy" } == true)
      let table = try await run(cluster.binary, ["workers"] + common)
      #expect(table.output.contains("worker-1"))
      #expect(table.output.contains("last heartbeat"))
    }
  }

  /// A second coordinator on a store another one runs on is refused at start (exit 6), and
  /// leaves the first's admin credential as it was: two would serve one queue twice.
  @Test func aSecondCoordinatorOnTheSameStoreIsRefused() async throws {
    try await withCluster(.fast) { cluster, _ in
      // Bounded: a coordinator that starts anyway is stopped by `timeout` (exit 124).
      let second = try await run(
        "/usr/bin/timeout",
        ["20", cluster.binary, "coordinator", "--data-dir", cluster.dataDirectory, "--listen", "127.0.0.1:0"])
      #expect(second.status == 6, "\(second.output)")
      #expect(second.output.contains("another coordinator is running on the store"), "\(second.output)")
      // The same file under another name (a hard link, a symlink) is the same lock.
      let hard = cluster.directory + "/hard.db"
      let soft = cluster.directory + "/soft.db"
      try FileManager.default.linkItem(atPath: cluster.dataDirectory + "/haat.db", toPath: hard)
      try FileManager.default.createSymbolicLink(atPath: soft, withDestinationPath: cluster.dataDirectory + "/haat.db")
      for path in [hard, soft] {
        let other = try await run(
          "/usr/bin/timeout",
          [
            "20", cluster.binary, "coordinator", "--data-dir", cluster.directory + "/other", "--store",
            "sqlite:" + path,
            "--listen", "127.0.0.1:0",
          ])
        #expect(other.status == 6, "\(path): \(other.output)")
      }
      // A store with a hard link is refused even with no coordinator on it: its WAL is
      // found by name, so a coordinator under the other name (after a kill -9) read it
      // without its last commits (found by a tester).
      let alone = cluster.directory + "/alone"
      try FileManager.default.createDirectory(atPath: alone, withIntermediateDirectories: true)
      FileManager.default.createFile(atPath: alone + "/haat.db", contents: nil)
      try FileManager.default.linkItem(atPath: alone + "/haat.db", toPath: alone + "/linked.db")
      let linked = try await run(
        "/usr/bin/timeout",
        ["20", cluster.binary, "coordinator", "--data-dir", alone, "--listen", "127.0.0.1:0"])
      #expect(linked.status == 6, "\(linked.output)")
      #expect(linked.output.contains("has 2 hard links"), "\(linked.output)")
      let client = try await cluster.client()
      #expect(try await client.workers().count == 2)
      await client.close()
    }
  }

  /// `haat top --once`: one frame of the live view, with a running job's progress and the
  /// rate tasks finish at.
  @Test func topShowsWorkersQueueAndJobProgress() async throws {
    try await withCluster { cluster, server in
      let samples = try Samples.manifest()
      let client = try await cluster.client()
      let slow = samples.map { Samples.source($0, server: server, query: "trickle_ms=100&chunk=16384") }
      let job = try await client.submit(spec("watched by top", slow)).job
      try await eventually("work in flight") { try await client.job(job).counts.leased > 0 }
      let common = ["--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory]
      let frame = try await run(cluster.binary, ["top", "--once", "--interval", "0.5"] + common)
      #expect(frame.status == 0, "\(frame.output)")
      #expect(frame.output.contains("workers: 2 (2 healthy)"), "\(frame.output)")
      #expect(frame.output.contains("watched by top"))
      #expect(frame.output.contains("/\(samples.count)"), "progress as done/total")
      #expect(frame.output.contains("/s done"))
      #expect(!frame.output.contains("\u{1B}["), "no screen control with --once")
      // --json: the same frame as one JSON document.
      let json = try await run(cluster.binary, ["top", "--once", "--json", "--interval", "0.5"] + common)
      #expect(json.status == 0, "\(json.output)")
      let document = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
      #expect((document?["workers"] as? [[String: Any]])?.count == 2, "\(json.output)")
      let jobs = document?["jobs"] as? [[String: Any]]
      #expect(jobs?.contains { $0["name"] as? String == "watched by top" } == true, "\(json.output)")
      #expect((document?["rates"] as? [String: Any])?["done_per_s"] is Double, "\(json.output)")
      #expect((document?["queue"] as? [String: Any])?["running"] != nil, "\(json.output)")
      _ = try await finish(client, job)
      await client.close()
    }
  }
}

/// Runs raw_client.py (a protocol client written from docs/protocol.md alone) in `mode`
/// against the cluster: as the worker `worker-raw`, with the admin credential for its
/// client side.
func rawWorker(_ mode: String, _ cluster: LocalCluster) async throws -> (status: Int32, output: String) {
  let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("raw_client.py").path
  return try await run(
    "/usr/bin/env",
    [
      "python3", script, mode, "--coordinator", cluster.endpoint.description, "--token-file", cluster.workerTokenPath,
      "--client-token-file", cluster.dataDirectory + "/admin.token", "--name", "worker-raw",
    ])
}

/// Found by a tester: `haat result --format csv > out.csv` wrote an account's direction
/// mark as the text `\u{200F}`: report data was rewritten for a terminal it never reached.
@Suite struct CSVOutputTests {
  @Test func aReportsCSVIntoAPipeKeepsNamesExactly() async throws {
    let directory = NSTemporaryDirectory() + "haat-csv-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let account = "karachi\u{200F}_کچن"
    let path = directory + "/export.csv"
    try Data(
      ("platform,account,id,created_at,media_type,likes\n"
        + "instagram,\(account),1,2026-01-01T10:00:00Z,image,5\n").utf8
    ).write(to: URL(fileURLWithPath: path))
    var options = LocalCluster.Options.fast
    options.workerArguments = ["--file-root", directory]
    let cluster = try await LocalCluster.start(options)
    do {
      let client = try await cluster.client()
      var source = Source()
      source.url = "file://\(path)"
      let job = try await client.submit(spec("names", [source])).job
      _ = try await finish(client, job)
      await client.close()
      let common = ["--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory]
      // `run` reads the output through a pipe, as `> out.csv` or `| tool` would.
      let csv = try await run(cluster.binary, ["result", job, "--format", "csv"] + common)
      #expect(csv.status == 0, "\(csv.output)")
      #expect(csv.output.contains("instagram,\(account),image,1,5"), "\(csv.output)")
      #expect(!csv.output.contains("\\u{200F}"), "\(csv.output)")
    } catch {
      await cluster.stop()
      throw error
    }
    await cluster.stop()
  }
}

/// Found by a tester: `haat top | head -3` and `haat logs -f | head -1` ran for ever once
/// `head` had gone (the process ignores SIGPIPE, and the EPIPE went unread).
@Suite struct FollowOutputTests {
  /// Found by a tester: output over a stdio buffer (4 KiB) to a full disk exited 0: the
  /// failed write of the full buffer dropped it, and the flush at the end had nothing left
  /// to fail on. Every command's output, and help, exits 74 saying so.
  @Test func outputToAFullDiskExits74() async throws {
    try await withCluster(.fast(workers: 0)) { cluster, _ in
      let client = try await cluster.client()
      let noop = noopSource(tasks: 2_000)
      let job = try await client.submit(spec("many tasks", [noop])).job
      await client.close()
      let common = "--coordinator \(cluster.endpoint) --data-dir \(cluster.dataDirectory)"
      for command in ["job \(job) --tasks \(common)", "jobs \(common)", "jobs --help", "--version"] {
        let output = try await run("/bin/sh", ["-c", "\(cluster.binary) \(command) > /dev/full; echo \"exit $?\""])
          .output
        #expect(output == "haat: cannot write the output: No space left on device\nexit 74\n", "\(command): \(output)")
      }
    }
  }

  @Test func topAndLogsFollowEndWhenTheirReaderGoes() async throws {
    try await withCluster { cluster, _ in
      let common = ["--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory]
      for arguments in [["top", "--interval", "0.2"], ["top", "--json", "--interval", "0.2"]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: cluster.binary)
        process.arguments = arguments + common
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        // A frame read, then the reader goes, as `head` does. The first line is the frame's
        // (a tester's `haat top | head -1` read a blank line).
        let first = pipe.fileHandleForReading.availableData
        #expect(!first.isEmpty && first.first != UInt8(ascii: "\n"), "\(arguments): \(first.prefix(40))")
        try pipe.fileHandleForReading.close()
        try await eventually("haat \(arguments.joined(separator: " ")) ends", timeout: .seconds(20)) {
          !process.isRunning
        }
        if process.isRunning { process.terminate() }
        #expect(process.terminationStatus == 141, "\(arguments): \(process.terminationStatus)")
      }
    }
  }
}

/// Runs a program to its end; its exit status and combined output. The wait is on a thread
/// of its own: blocking one of the concurrency pool's few threads for a CLI run starves
/// every other test's tasks (their timeouts then fire on replies read seconds late).
func run(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
  try await withCheckedThrowingContinuation { continuation in
    Thread.detachNewThread {
      continuation.resume(with: Result { try runBlocking(executable, arguments) })
    }
  }
}

/// `run` on the calling thread, for a `defer` (which cannot wait for an async call).
func runBlocking(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  let pipe = Pipe()
  process.standardOutput = pipe
  process.standardError = pipe
  try process.run()
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// `haat token revoke` reaches open sessions: a connected worker and client are closed
/// within a second or two and cannot come back; other tokens' sessions stay.
@Suite struct RevokeTests {
  /// Found by a tester: a worker whose token was revoked was refused at once, but fetched on
  /// with its platform credentials until its transfers ended (up to --timeout-ms). Its
  /// tasks stop with it now.
  @Test func aRevokedWorkerStopsItsTransfers() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, server in
      let client = try await cluster.client()
      let sample = try #require(try Samples.manifest().first)
      // A transfer of a minute or more: a KiB every half second.
      let slow = Samples.source(sample, server: server, query: "trickle_ms=500&chunk=1024")
      let job = try await client.submit(spec("slow", [slow])).job
      try await eventually("the task runs") { try await client.job(job, tasks: true).tasks.first?.state == "leased" }
      let token = try Credential.load(path: cluster.workerTokenPath)
      let revoked = try await run(
        cluster.binary, ["token", "revoke", token.tokenID, "--data-dir", cluster.dataDirectory])
      #expect(revoked.status == 0, "\(revoked.output)")
      let worker = try #require(cluster.worker("worker-1"))
      #expect(await worker.wait(timeout: .seconds(20)) == 5, "\(worker.tail())")
      await client.close()
    }
  }

  /// Found by a tester: narrowing a worker token's names in the token file (after a theft)
  /// left the open sessions that used it working; only new ones were refused. An edit
  /// that changes a token closes its sessions as a revocation does.
  @Test func aTokenChangedInTheFileClosesItsOpenSessions() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, _ in
      try await cluster.waitForWorkers(1)
      let path = cluster.dataDirectory + "/tokens"
      let text = try String(contentsOfFile: path, encoding: .utf8)
      #expect(text.contains(#""name_prefix":"worker-""#), "\(text)")
      // Written to a new file and renamed over the old, as the docs advise.
      let edited = text.replacingOccurrences(of: #""name_prefix":"worker-""#, with: #""name_prefix":"other-""#)
      try SecretFile.write(Data(edited.utf8), to: path + ".new")
      #expect(rename(path + ".new", path) == 0)
      let worker = try #require(cluster.worker("worker-1"))
      #expect(await worker.wait(timeout: .seconds(20)) == 5, "\(worker.tail())")
      let log = try String(contentsOfFile: try #require(cluster.coordinator).logPath, encoding: .utf8)
      #expect(log.contains("token changed; closing its session"), "\(log.suffix(1_500))")
    }
  }

  @Test func revokingATokenClosesItsOpenSessions() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, _ in
      // A read token's client, connected before the revocation.
      let readFile = cluster.directory + "/read.token"
      let created = try await run(
        cluster.binary, ["token", "create", "--role", "read", "--data-dir", cluster.dataDirectory, "--out", readFile])
      #expect(created.status == 0)
      let credential = try Credential.load(path: readFile)
      try await eventually("the new token is known") {
        guard let probe = try? await HaatClient.connect(to: cluster.endpoint, credential: credential) else {
          return false
        }
        await probe.close()
        return true
      }
      let reader = try await HaatClient.connect(to: cluster.endpoint, credential: credential)
      _ = try await reader.jobs()
      // A stream open when the token is revoked ends with the coordinator's reason
      // (auth_failed, exit 5 from the CLI), not as if the coordinator had gone away.
      let follow = reader.logs(follow: true, limit: 1)
      let ended = Task { () -> String in
        do {
          for try await _ in follow {}
          return "ended without an error"
        } catch let error as HaatError {
          return error.code.rawValue
        } catch {
          return "\(error)"
        }
      }
      let admin = try await cluster.client()
      // The worker's token too.
      let workerToken = try Credential.load(path: cluster.workerTokenPath)
      for id in [credential.tokenID, workerToken.tokenID] {
        let revoked = try await run(cluster.binary, ["token", "revoke", id, "--data-dir", cluster.dataDirectory])
        #expect(revoked.status == 0, "\(revoked.output)")
      }
      try await eventually("the reader's session is closed", timeout: .seconds(10)) {
        do {
          _ = try await reader.jobs()
          return false
        } catch { return true }
      }
      #expect(await ended.value == "auth_failed")
      try await eventually("the worker is gone", timeout: .seconds(10)) {
        let workers = try await admin.workers()
        return !workers.isEmpty && workers.allSatisfy { $0.state == "lost" || $0.state == "gone" }
      }
      // It cannot come back, and the admin's session is untouched.
      do {
        _ = try await HaatClient.connect(to: cluster.endpoint, credential: credential)
        Issue.record("a revoked token opened a session")
      } catch let error as HaatError {
        #expect(error.code == .authFailed)
      }
      #expect(try await admin.jobs().isEmpty)
      let missing = try await run(cluster.binary, ["token", "revoke", "t_0000", "--data-dir", cluster.dataDirectory])
      #expect(missing.status == 4)
      await admin.close()
      await reader.close()
    }
  }
}
