import Foundation
import HaatCore
import Testing

@testable import HaatStore

/// The durable queue on a real SQLite file in a temporary directory.
@Suite struct SQLiteJobStoreTests {
  let directory: String
  let path: String

  init() throws {
    directory = NSTemporaryDirectory() + "haat-store-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    path = directory + "/haat.db"
  }

  func open(_ durability: Durability = .full) throws -> SQLiteJobStore {
    try SQLiteJobStore(path: path, durability: durability)
  }

  func job(tasks: Int, priority: Int32 = 0, notBeforeMs: Int64 = 0, maxAttempts: UInt32 = 3, pool: Pool = .collect)
    -> NewJob
  {
    NewJob(
      name: "test", priority: priority, notBeforeMs: notBeforeMs, maxAttempts: maxAttempts,
      retry: RetryPolicy(baseMs: 1000, capMs: 4000), reports: ["engagement"], spec: Data("{}".utf8),
      submittedBy: "admin:test",
      tasks: (0..<tasks).map { NewTask(pool: pool, source: "s\($0)", spec: Data("{\"index\":\($0)}".utf8)) })
  }

  func submit(_ store: SQLiteJobStore, _ job: NewJob, now: Int64 = 1_000) async throws -> JobID {
    guard case .submitted(let id, _, _) = try await store.apply([.submit(job)], nowMs: now)[0] else {
      throw HaatError(.internal, "not submitted")
    }
    return id
  }

  func claim(_ store: SQLiteJobStore, _ limit: Int, owner: String = "w1", pool: Pool = .collect, now: Int64 = 1_000)
    async throws -> [ClaimedTask]
  {
    guard
      case .claimed(let tasks) = try await store.apply([.claim(owner: owner, pool: pool, limit: limit)], nowMs: now)[0]
    else {
      return []
    }
    return tasks
  }

  func change(_ result: StoreOpResult) -> TaskChange? {
    if case .changed(let change) = result { return change }
    return nil
  }

  @Test func claimsHighestPriorityFirstAndOnlyDueTasks() async throws {
    let store = try open()
    let low = try await submit(store, job(tasks: 2, priority: -5))
    let high = try await submit(store, job(tasks: 2, priority: 10))
    _ = try await submit(store, job(tasks: 2, priority: 50, notBeforeMs: 60_000))
    let first = try await claim(store, 3)
    _ = low
    #expect(first.filter { $0.job == high }.count == 2)
    #expect(first.allSatisfy { $0.attempt == 1 })
    #expect(first.contains { $0.startedJob })
    // The delayed job's tasks wait for their time.
    #expect(try await claim(store, 10).count == 1)
    #expect(try await claim(store, 10, now: 60_000).count == 2)
    // The other pool has nothing.
    #expect(try await claim(store, 10, pool: .analyze).isEmpty)
  }

  @Test func exactlyOneResultPerTask() async throws {
    let store = try open()
    let id = try await submit(store, job(tasks: 1))
    let task = try #require(try await claim(store, 1).first)
    let results = try await store.apply(
      [
        .complete(
          task: task.task, attempt: 1, worker: "w1", partial: Data("{\"a\":1}".utf8), stats: Data(), bookmark: ""),
        .complete(
          task: task.task, attempt: 1, worker: "w1", partial: Data("{\"a\":2}".utf8), stats: Data(), bookmark: ""),
        .complete(
          task: task.task, attempt: 2, worker: "w1", partial: Data("{\"a\":3}".utf8), stats: Data(), bookmark: ""),
      ], nowMs: 2_000)
    #expect(change(results[0])?.transition == .done)
    #expect(change(results[1])?.transition == .refused(.alreadyDone))
    #expect(change(results[2])?.transition == .refused(.alreadyDone))
    let outputs = try await store.outputs(of: id)
    #expect(outputs.count == 1)
    #expect(outputs[0].partial == Data("{\"a\":1}".utf8))
  }

  /// A lease is (task, attempt, worker): another worker that knows the task and attempt
  /// can neither complete nor fail it, and the holder's own result still counts.
  @Test func onlyTheLeaseHolderMayAnswer() async throws {
    let store = try open()
    let id = try await submit(store, job(tasks: 1))
    let task = try #require(try await claim(store, 1, owner: "worker-a").first)
    let forged = try await store.apply(
      [
        .complete(
          task: task.task, attempt: 1, worker: "worker-b", partial: Data("{\"forged\":1}".utf8), stats: Data(),
          bookmark: ""),
        .fail(
          task: task.task, attempt: 1, worker: "worker-b", error: TaskError(code: "x", message: "y"),
          retryable: false, retryAfterMs: 0, stats: Data()),
      ], nowMs: 2_000)
    #expect(change(forged[0])?.transition == .refused(.notLeaseHolder))
    #expect(change(forged[1])?.transition == .refused(.notLeaseHolder))
    let real = try await store.apply(
      [
        .complete(
          task: task.task, attempt: 1, worker: "worker-a", partial: Data("{\"real\":1}".utf8), stats: Data(),
          bookmark: "")
      ], nowMs: 2_001)
    #expect(change(real[0])?.transition == .done)
    #expect(try await store.outputs(of: id).map(\.partial) == [Data("{\"real\":1}".utf8)])
  }

  @Test func staleAttemptsAreRefused() async throws {
    let store = try open()
    _ = try await submit(store, job(tasks: 1))
    let task = try #require(try await claim(store, 1).first)
    // The lease expires; attempt 2 takes over; attempt 1's result is stale.
    _ = try await store.apply([.expire(task: task.task, attempt: 1)], nowMs: 2_000)
    let second = try #require(try await claim(store, 1, now: 10_000).first)
    #expect(second.attempt == 2)
    let stale = try await store.apply(
      [.complete(task: task.task, attempt: 1, worker: "w1", partial: Data(), stats: Data(), bookmark: "")],
      nowMs: 10_001)
    #expect(change(stale[0])?.transition == .refused(.staleAttempt))
    let fresh = try await store.apply(
      [.complete(task: task.task, attempt: 2, worker: "w1", partial: Data(), stats: Data(), bookmark: "")],
      nowMs: 10_002)
    #expect(change(fresh[0])?.transition == .done)
  }

  @Test func retriesBackOffHonourRetryAfterAndEndInDead() async throws {
    let store = try open()
    let id = try await submit(store, job(tasks: 1, maxAttempts: 2))
    let task = try #require(try await claim(store, 1).first)
    let error = TaskError(code: "http_429", message: "HTTP 429")
    let first = try await store.apply(
      [
        .fail(
          task: task.task, attempt: 1, worker: "w1", error: error, retryable: true, retryAfterMs: 7_000, stats: Data())
      ],
      nowMs: 5_000)
    let retry = try #require(change(first[0]))
    #expect(retry.notBeforeMs >= 12_000)
    #expect(try await claim(store, 1, now: 11_999).isEmpty)
    let again = try #require(try await claim(store, 1, now: retry.notBeforeMs).first)
    let last = try await store.apply(
      [
        .fail(
          task: task.task, attempt: again.attempt, worker: "w1", error: error, retryable: true, retryAfterMs: 0,
          stats: Data())
      ],
      nowMs: 20_000)
    guard case .dead(let cause)? = change(last[0])?.transition else {
      Issue.record("not dead after max attempts")
      return
    }
    #expect(cause.code == "http_429")
    let dead = try await store.deadTasks(job: id, after: nil, limit: 10)
    #expect(dead.count == 1)
    #expect(dead.first?.attempts == 2)
    #expect(dead.first?.error.message.contains("gave up after 2 attempts") == true)
  }

  @Test func nonRetryableFailureIsDeadAtOnce() async throws {
    let store = try open()
    _ = try await submit(store, job(tasks: 1, maxAttempts: 5))
    let task = try #require(try await claim(store, 1).first)
    let result = try await store.apply(
      [
        .fail(
          task: task.task, attempt: 1, worker: "w1", error: TaskError(code: "http_404", message: "HTTP 404"),
          retryable: false,
          retryAfterMs: 0, stats: Data())
      ],
      nowMs: 2_000)
    #expect(change(result[0])?.transition == .dead(TaskError(code: "http_404", message: "HTTP 404")))
  }

  @Test func releaseUndoesAClaimWithoutSpendingAnAttempt() async throws {
    let store = try open()
    _ = try await submit(store, job(tasks: 1))
    let task = try #require(try await claim(store, 1).first)
    _ = try await store.apply([.release(task: task.task, attempt: 1)], nowMs: 2_000)
    #expect(try await claim(store, 1).first?.attempt == 1)
  }

  @Test func cancelRetryAndDiscard() async throws {
    let store = try open()
    let id = try await submit(store, job(tasks: 3))
    _ = try await claim(store, 1)
    guard case .cancelled(_, let changes) = try await store.apply([.cancelJob(id)], nowMs: 2_000)[0] else {
      Issue.record("not cancelled")
      return
    }
    #expect(changes.count == 3)
    #expect(try await store.job(id, tasks: false, nowMs: 2_000)?.state == .cancelled)
    guard case .failed(let error) = try await store.apply([.cancelJob(id)], nowMs: 2_001)[0] else {
      Issue.record("cancelled twice")
      return
    }
    #expect(error.code == .badRequest)

    let other = try await submit(store, job(tasks: 2, maxAttempts: 1))
    for task in try await claim(store, 2) {
      _ = try await store.apply(
        [
          .fail(
            task: task.task, attempt: 1, worker: "w1", error: TaskError(code: "x", message: "y"), retryable: false,
            retryAfterMs: 0,
            stats: Data())
        ], nowMs: 3_000)
    }
    #expect(try await store.deadTasks(job: other, after: nil, limit: 10).count == 2)
    let dead = try await store.deadTasks(job: other, after: nil, limit: 10)
    guard
      case .deadUpdated(let revived, let counts) = try await store.apply(
        [.retryDead(.tasks([dead[0].task]))], nowMs: 4_000)[
          0]
    else {
      Issue.record("not the result this test expects")
      return
    }
    #expect(revived.count == 1)
    #expect(counts[other] == TaskCounts(ready: 1, dead: 1))
    #expect(try await claim(store, 5).first?.attempt == 1)
    guard case .deadUpdated(let discarded, _) = try await store.apply([.discardDead(.job(other))], nowMs: 5_000)[0]
    else {
      Issue.record("not the result this test expects")
      return
    }
    #expect(discarded.count == 1)
    #expect(try await store.deadTasks(job: nil, after: nil, limit: 10).isEmpty)
  }

  @Test func finishIsRefusedWhileTasksAreOpen() async throws {
    let store = try open()
    let id = try await submit(store, job(tasks: 1))
    guard
      case .finished(_, let early) = try await store.apply(
        [.finishJob(id, state: .succeeded, report: Data("{}".utf8), error: "")], nowMs: 2_000)[0]
    else {
      Issue.record("not the result this test expects")
      return
    }
    #expect(!early)
    let task = try #require(try await claim(store, 1).first)
    _ = try await store.apply(
      [.complete(task: task.task, attempt: 1, worker: "w1", partial: Data(), stats: Data(), bookmark: "")], nowMs: 3_000
    )
    guard
      case .finished(_, let applied) = try await store.apply(
        [.finishJob(id, state: .succeeded, report: Data("{\"r\":1}".utf8), error: "")], nowMs: 4_000)[0]
    else {
      Issue.record("not the result this test expects")
      return
    }
    #expect(applied)
    #expect(try await store.report(of: id) == Data("{\"r\":1}".utf8))
    #expect(try await store.job(id, tasks: false, nowMs: 5_000)?.state == .succeeded)
  }

  /// What a restarted coordinator gets back: open jobs with counts, leases, waiting tasks.
  @Test(arguments: Durability.allCases)
  func recoveryAfterReopen(durability: Durability) async throws {
    do {
      let store = try open(durability)
      let id = try await submit(store, job(tasks: 4))
      let claimed = try await claim(store, 2, owner: "w7")
      _ = try await store.apply(
        [
          .fail(
            task: claimed[1].task, attempt: 1, worker: "w7", error: TaskError(code: "t", message: "m"), retryable: true,
            retryAfterMs: 50_000, stats: Data())
        ],
        nowMs: 2_000)
      _ = id
    }
    let reopened = try open(durability)
    let recovery = try await reopened.recover(nowMs: 3_000)
    #expect(recovery.jobs.count == 1)
    #expect(recovery.jobs.first?.counts == TaskCounts(scheduled: 1, ready: 2, leased: 1))
    #expect(recovery.leases.map(\.owner) == ["w7"])
    #expect(recovery.waiting.count == 1)
    #expect(recovery.jobs.first?.started == true)
  }

  @Test func groupCommitAppliesABatchInOneTransaction() async throws {
    let store = try open()
    let ops: [StoreOp] =
      (0..<50).map { _ in .submit(job(tasks: 20)) } + [.claim(owner: "w", pool: .collect, limit: 500)]
    let results = try await store.apply(ops, nowMs: 1_000)
    guard case .claimed(let tasks) = results.last else {
      Issue.record("no claim")
      return
    }
    // The claim in the same batch sees the jobs submitted before it.
    #expect(tasks.count == 500)
    #expect(try await store.jobs(state: nil, before: nil, limit: 100, nowMs: 1_000).count == 50)
  }

  /// Every list pages by cursor: no job or task is skipped or repeated across pages.
  @Test func listsPageByCursor() async throws {
    let store = try open()
    let results = try await store.apply((0..<25).map { _ in .submit(job(tasks: 7)) }, nowMs: 1_000)
    var jobs: [JobID] = []
    var before: JobID?
    repeat {
      let page = try await store.jobs(state: nil, before: before, limit: 10, nowMs: 1_000)
      jobs += page.map(\.id)
      before = page.count == 10 ? page.last?.id : nil
    } while before != nil
    #expect(jobs.count == 25)
    #expect(jobs == jobs.sorted(by: >))
    guard case .submitted(let first, _, _)? = results.first else {
      Issue.record("no job")
      return
    }
    var indexes: [UInt32] = []
    var after: UInt32?
    repeat {
      let page = try await store.tasks(of: first, after: after, limit: 3, nowMs: 1_000)
      indexes += page.map { UInt32($0.index) }
      after = page.count == 3 ? page.last.map { UInt32($0.index) } : nil
    } while after != nil
    #expect(indexes == Array(0..<7))
  }

  /// Commits never checkpoint (that stalled one commit in a few hundred); the store's own
  /// checkpointer does, so the WAL is reused instead of growing with every write.
  @Test func theWALIsCheckpointedOffTheCommitPath() async throws {
    let store = try open()
    var big = job(tasks: 1)
    big.spec = Data(repeating: UInt8(ascii: "x"), count: 1 << 20)
    func bytes(_ file: String) -> UInt64 {
      (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? UInt64 ?? 0
    }
    for round in 1...4 {
      for _ in 0..<4 { _ = try await submit(store, big) }
      // The database file grows as a checkpoint copies this round's pages into it (the
      // WAL alone would hold them otherwise): wait for that, at most 10 s.
      let deadline = ContinuousClock.now + .seconds(10)
      while bytes(path) < UInt64(round) * (4 << 20), ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(20))
      }
      #expect(bytes(path) >= UInt64(round) * (4 << 20), "round \(round): nothing was checkpointed")
      // A PASSIVE checkpoint may still be copying the round's last frames when the file has
      // grown; the WAL is reused only once it has copied them all. Give it two more ticks
      // (on a loaded machine the first may be late).
      try await Task.sleep(for: .milliseconds(500))
    }
    let walBytes = bytes(path + "-wal")
    // Four rounds of ~4 MiB each: reused, not grown to 16 MiB.
    #expect(walBytes < 10 << 20)
  }

  /// `--durability full` syncs the WAL at every commit: the writer really is FULL (GRDB
  /// turns it to NORMAL when it sets up WAL; `full` silently meant `normal` until this).
  @Test(arguments: [(Durability.full, 2), (Durability.normal, 1)])
  func theWriterSyncsAsTheDurabilitySays(durability: Durability, level: Int) async throws {
    let store = try SQLiteJobStore(path: path + ".\(durability.rawValue)", durability: durability)
    let writer = try await store.pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
    #expect(writer == level)
  }
}
