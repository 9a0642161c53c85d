import Foundation
import HaatCore
import Testing

@testable import HaatStore

/// The store conformance suite: the queue's semantics as every backend must keep them, run
/// against a real SQLite file and a real PostgreSQL server (StoreHarness).
@Suite struct JobStoreConformanceTests {
  @Test(arguments: StoreBackend.all) func claimsHighestPriorityFirstAndOnlyDueTasks(backend: StoreBackend) async throws
  {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let low = try await tests.submit(store, tests.job(tasks: 2, priority: -5))
    let high = try await tests.submit(store, tests.job(tasks: 2, priority: 10))
    _ = try await tests.submit(store, tests.job(tasks: 2, priority: 50, notBeforeMs: 60_000))
    let first = try await tests.claim(store, 3)
    _ = low
    #expect(first.filter { $0.job == high }.count == 2)
    #expect(first.allSatisfy { $0.attempt == 1 })
    #expect(first.contains { $0.startedJob })
    // The delayed job's tasks wait for their time.
    #expect(try await tests.claim(store, 10).count == 1)
    #expect(try await tests.claim(store, 10, now: 60_000).count == 2)
    // The other pool has nothing.
    #expect(try await tests.claim(store, 10, pool: .analyze).isEmpty)
  }

  @Test(arguments: StoreBackend.all) func exactlyOneResultPerTask(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let id = try await tests.submit(store, tests.job(tasks: 1))
    let task = try #require(try await tests.claim(store, 1).first)
    let results = try await store.apply(
      [
        .complete(
          task: task.task, attempt: 1, worker: "w1", partial: Data("{\"a\":1}".utf8), stats: Data(), bookmark: ""),
        .complete(
          task: task.task, attempt: 1, worker: "w1", partial: Data("{\"a\":2}".utf8), stats: Data(), bookmark: ""),
        .complete(
          task: task.task, attempt: 2, worker: "w1", partial: Data("{\"a\":3}".utf8), stats: Data(), bookmark: ""),
      ], nowMs: 2_000)
    #expect(tests.change(results[0])?.transition == .done)
    #expect(tests.change(results[1])?.transition == .refused(.alreadyDone))
    #expect(tests.change(results[2])?.transition == .refused(.alreadyDone))
    let outputs = try await store.outputs(of: id)
    #expect(outputs.count == 1)
    #expect(outputs[0].partial == Data("{\"a\":1}".utf8))
    // A job's end reads its record and its outputs together (SQLite: in one read), with
    // no count of its tasks by state; jobs the store does not hold are absent.
    let other = try await tests.submit(store, tests.job(tasks: 3))
    let read = try await store.finishing([JobID(id.rawValue + 1_000), id, other])
    #expect(read.count == 2 && read[other]?.outputs.count == 3 && read[other]?.job.id == other)
    let finishing = try #require(read[id])
    let record = try #require(try await store.job(id, tasks: false, nowMs: 2_000))
    #expect(finishing.job.id == id && finishing.job.state == record.state && finishing.job.spec == record.spec)
    #expect(finishing.job.reports == record.reports && record.counts.done == 1)
    #expect(finishing.job.counts == TaskCounts() && finishing.job.tasks.isEmpty)
    #expect(finishing.outputs.map(\.task) == [task.task] && finishing.outputs.map(\.partial) == outputs.map(\.partial))
    #expect(try await store.finishing([JobID(id.rawValue + 1_000)]).isEmpty)
  }

  /// The coordinator commits through `apply(_:nowMs:done:)`: its ops in one transaction,
  /// in order (a claim sees the tasks submitted before it), their results in order.
  @Test(arguments: StoreBackend.all) func applyWithACallbackCommitsInOrder(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let results = try await withCheckedThrowingContinuation { continuation in
      store.apply([.submit(tests.job(tasks: 2)), .claim(owner: "w1", pool: .collect, limit: 5)], nowMs: 1_000) {
        continuation.resume(with: $0)
      }
    }
    guard results.count == 2, case .submitted(let id, 2, _) = results[0], case .claimed(let claimed) = results[1]
    else {
      Issue.record("unexpected results \(results)")
      return
    }
    #expect(claimed.map(\.job) == [id, id])
    #expect(try await store.job(id, tasks: false, nowMs: 1_000)?.counts.leased == 2)
  }

  /// A lease is (task, attempt, worker): another worker that knows the task and attempt
  /// can neither complete nor fail it, and the holder's own result still counts.
  @Test(arguments: StoreBackend.all) func onlyTheLeaseHolderMayAnswer(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let id = try await tests.submit(store, tests.job(tasks: 1))
    let task = try #require(try await tests.claim(store, 1, owner: "worker-a").first)
    let forged = try await store.apply(
      [
        .complete(
          task: task.task, attempt: 1, worker: "worker-b", partial: Data("{\"forged\":1}".utf8), stats: Data(),
          bookmark: ""),
        .fail(
          task: task.task, attempt: 1, worker: "worker-b", error: TaskError(code: "x", message: "y"),
          retryable: false, retryAfterMs: 0, stats: Data()),
      ], nowMs: 2_000)
    #expect(tests.change(forged[0])?.transition == .refused(.notLeaseHolder))
    #expect(tests.change(forged[1])?.transition == .refused(.notLeaseHolder))
    let real = try await store.apply(
      [
        .complete(
          task: task.task, attempt: 1, worker: "worker-a", partial: Data("{\"real\":1}".utf8), stats: Data(),
          bookmark: "")
      ], nowMs: 2_001)
    #expect(tests.change(real[0])?.transition == .done)
    #expect(try await store.outputs(of: id).map(\.partial) == [Data("{\"real\":1}".utf8)])
  }

  @Test(arguments: StoreBackend.all) func staleAttemptsAreRefused(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    _ = try await tests.submit(store, tests.job(tasks: 1))
    let task = try #require(try await tests.claim(store, 1).first)
    // The lease expires; attempt 2 takes over; attempt 1's result is stale.
    _ = try await store.apply([.expire(task: task.task, attempt: 1)], nowMs: 2_000)
    let second = try #require(try await tests.claim(store, 1, now: 10_000).first)
    #expect(second.attempt == 2)
    let stale = try await store.apply(
      [.complete(task: task.task, attempt: 1, worker: "w1", partial: Data(), stats: Data(), bookmark: "")],
      nowMs: 10_001)
    #expect(tests.change(stale[0])?.transition == .refused(.staleAttempt))
    let fresh = try await store.apply(
      [.complete(task: task.task, attempt: 2, worker: "w1", partial: Data(), stats: Data(), bookmark: "")],
      nowMs: 10_002)
    #expect(tests.change(fresh[0])?.transition == .done)
  }

  /// The whole change an accepted result reports, on a retried attempt in the analyze pool:
  /// SQLite takes a holder's result in one statement, and must report what reading the row
  /// first reports.
  @Test(arguments: StoreBackend.all) func anAcceptedResultReportsTheWholeChange(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let id = try await tests.submit(store, tests.job(tasks: 1, pool: .analyze))
    let first = try #require(try await tests.claim(store, 1, owner: "w1", pool: .analyze).first)
    _ = try await store.apply([.expire(task: first.task, attempt: 1)], nowMs: 2_000)
    let second = try #require(try await tests.claim(store, 1, owner: "w2", pool: .analyze, now: 10_000).first)
    let results = try await store.apply(
      [.complete(task: second.task, attempt: 2, worker: "w2", partial: Data([7]), stats: Data([8]), bookmark: "")],
      nowMs: 10_001)
    #expect(
      tests.change(results[0])
        == TaskChange(
          task: second.task, job: id, pool: .analyze, attempt: 2, from: .leased, transition: .done, notBeforeMs: 0))
    #expect(try await store.outputs(of: id).map(\.partial) == [Data([7])])
  }

  @Test(arguments: StoreBackend.all) func retriesBackOffHonourRetryAfterAndEndInDead(backend: StoreBackend) async throws
  {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let id = try await tests.submit(store, tests.job(tasks: 1, maxAttempts: 2))
    let task = try #require(try await tests.claim(store, 1).first)
    let error = TaskError(code: "http_429", message: "HTTP 429")
    let first = try await store.apply(
      [
        .fail(
          task: task.task, attempt: 1, worker: "w1", error: error, retryable: true, retryAfterMs: 7_000, stats: Data())
      ],
      nowMs: 5_000)
    let retry = try #require(tests.change(first[0]))
    #expect(retry.notBeforeMs >= 12_000)
    #expect(try await tests.claim(store, 1, now: 11_999).isEmpty)
    let again = try #require(try await tests.claim(store, 1, now: retry.notBeforeMs).first)
    let last = try await store.apply(
      [
        .fail(
          task: task.task, attempt: again.attempt, worker: "w1", error: error, retryable: true, retryAfterMs: 0,
          stats: Data())
      ],
      nowMs: 20_000)
    guard case .dead(let cause)? = tests.change(last[0])?.transition else {
      Issue.record("not dead after max attempts")
      return
    }
    #expect(cause.code == "http_429")
    let dead = try await store.deadTasks(job: id, after: nil, limit: 10)
    #expect(dead.count == 1)
    #expect(dead.first?.attempts == 2)
    #expect(dead.first?.error.message.contains("gave up after 2 attempts") == true)
  }

  @Test(arguments: StoreBackend.all) func nonRetryableFailureIsDeadAtOnce(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    _ = try await tests.submit(store, tests.job(tasks: 1, maxAttempts: 5))
    let task = try #require(try await tests.claim(store, 1).first)
    let result = try await store.apply(
      [
        .fail(
          task: task.task, attempt: 1, worker: "w1", error: TaskError(code: "http_404", message: "HTTP 404"),
          retryable: false,
          retryAfterMs: 0, stats: Data())
      ],
      nowMs: 2_000)
    #expect(tests.change(result[0])?.transition == .dead(TaskError(code: "http_404", message: "HTTP 404")))
  }

  @Test(arguments: StoreBackend.all) func releaseUndoesAClaimWithoutSpendingAnAttempt(backend: StoreBackend)
    async throws
  {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    _ = try await tests.submit(store, tests.job(tasks: 1))
    let task = try #require(try await tests.claim(store, 1).first)
    _ = try await store.apply([.release(task: task.task, attempt: 1)], nowMs: 2_000)
    #expect(try await tests.claim(store, 1).first?.attempt == 1)
  }

  @Test(arguments: StoreBackend.all) func cancelRetryAndDiscard(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let id = try await tests.submit(store, tests.job(tasks: 3))
    _ = try await tests.claim(store, 1)
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

    let other = try await tests.submit(store, tests.job(tasks: 2, maxAttempts: 1))
    for task in try await tests.claim(store, 2) {
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
    // Attempts go on counting: the revived task's lease is never one an earlier lease of it
    // had, so a result w1 still holds for attempt 1 cannot land on w1's new lease.
    let again = try #require(try await tests.claim(store, 5).first)
    #expect(again.task == dead[0].task && again.attempt == 2)
    let stale = try await store.apply(
      [.complete(task: again.task, attempt: 1, worker: "w1", partial: Data(), stats: Data(), bookmark: "")],
      nowMs: 4_100)
    #expect(tests.change(stale[0])?.transition == .refused(.staleAttempt))
    // A fresh set is the job's max_attempts (1 here): one retryable failure and it is dead again.
    let failed = try await store.apply(
      [
        .fail(
          task: again.task, attempt: 2, worker: "w1", error: TaskError(code: "x", message: "y"), retryable: true,
          retryAfterMs: 0, stats: Data())
      ], nowMs: 4_200)
    #expect(tests.change(failed[0])?.transition == .dead(TaskError(code: "x", message: "y (gave up after 2 attempts)")))
    _ = try await store.apply([.retryDead(.tasks([dead[0].task]))], nowMs: 4_300)
    guard case .deadUpdated(let discarded, _) = try await store.apply([.discardDead(.job(other))], nowMs: 5_000)[0]
    else {
      Issue.record("not the result this test expects")
      return
    }
    #expect(discarded.count == 1)
    #expect(try await store.deadTasks(job: nil, after: nil, limit: 10).isEmpty)
  }

  /// A cancelled job's dead tasks are not revived (they would run in a job that stays
  /// cancelled); they may still be discarded.
  @Test(arguments: StoreBackend.all) func aCancelledJobsDeadTasksAreNotRevived(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let id = try await tests.submit(store, tests.job(tasks: 2, maxAttempts: 1))
    let claimed = try await tests.claim(store, 2)
    let first = try #require(claimed.first)
    _ = try await store.apply(
      [
        .fail(
          task: first.task, attempt: 1, worker: "w1", error: TaskError(code: "x", message: "y"), retryable: false,
          retryAfterMs: 0, stats: Data())
      ], nowMs: 2_000)
    _ = try await store.apply([.cancelJob(id)], nowMs: 3_000)
    for selector in [DeadSelector.all, .job(id), .tasks([first.task])] {
      guard case .deadUpdated(let revived, _) = try await store.apply([.retryDead(selector)], nowMs: 4_000)[0] else {
        Issue.record("not the result this test expects")
        return
      }
      #expect(revived.isEmpty)
    }
    #expect(try await store.job(id, tasks: false, nowMs: 4_000)?.state == .cancelled)
    #expect(try await tests.claim(store, 5).isEmpty)
    guard case .deadUpdated(let discarded, _) = try await store.apply([.discardDead(.job(id))], nowMs: 5_000)[0] else {
      Issue.record("not the result this test expects")
      return
    }
    #expect(discarded.count == 1)
  }

  @Test(arguments: StoreBackend.all) func finishIsRefusedWhileTasksAreOpen(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let id = try await tests.submit(store, tests.job(tasks: 1))
    guard
      case .finished(_, let early) = try await store.apply(
        [.finishJob(id, state: .succeeded, report: Data("{}".utf8), error: "")], nowMs: 2_000)[0]
    else {
      Issue.record("not the result this test expects")
      return
    }
    #expect(!early)
    let task = try #require(try await tests.claim(store, 1).first)
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
  @Test(arguments: StoreBackend.all, Durability.allCases)
  func recoveryAfterReopen(backend: StoreBackend, durability: Durability) async throws {
    let tests = try StoreHarness(backend)
    do {
      let store = try await tests.open(durability)
      let id = try await tests.submit(store, tests.job(tasks: 4))
      let claimed = try await tests.claim(store, 2, owner: "w7")
      _ = try await store.apply(
        [
          .fail(
            task: claimed[1].task, attempt: 1, worker: "w7", error: TaskError(code: "t", message: "m"), retryable: true,
            retryAfterMs: 50_000, stats: Data())
        ],
        nowMs: 2_000)
      _ = id
    }
    let reopened = try await tests.open(durability)
    let recovery = try await reopened.recover(nowMs: 3_000)
    #expect(recovery.jobs.count == 1)
    #expect(recovery.jobs.first?.counts == TaskCounts(scheduled: 1, ready: 2, leased: 1))
    #expect(recovery.leases.map(\.owner) == ["w7"])
    #expect(recovery.waiting.count == 1)
    #expect(recovery.jobs.first?.started == true)
  }

  @Test(arguments: StoreBackend.all) func groupCommitAppliesABatchInOneTransaction(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let ops: [StoreOp] =
      (0..<50).map { _ in .submit(tests.job(tasks: 20)) } + [.claim(owner: "w", pool: .collect, limit: 500)]
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
  @Test(arguments: StoreBackend.all) func listsPageByCursor(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let results = try await store.apply((0..<25).map { _ in .submit(tests.job(tasks: 7)) }, nowMs: 1_000)
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

  /// Two writers on one store (two coordinators on one database): claiming at once, they
  /// never lease one task twice, and between them they lease every task.
  @Test(arguments: StoreBackend.all) func concurrentClaimsNeverLeaseATaskTwice(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let first = try await tests.open()
    let second = try await tests.open()
    let job = try await tests.submit(first, tests.job(tasks: 400))
    let claimed = try await withThrowingTaskGroup(of: [ClaimedTask].self) { group in
      for (index, store) in [first, second].enumerated() {
        group.addTask {
          var mine: [ClaimedTask] = []
          while true {
            let batch = try await tests.claim(store, 7, owner: "coordinator-\(index)")
            if batch.isEmpty { return mine }
            mine += batch
          }
        }
      }
      return try await group.reduce(into: []) { $0 += $1 }
    }
    #expect(claimed.count == 400)
    #expect(Set(claimed.map(\.task)).count == 400)
    #expect(claimed.filter(\.startedJob).count == 1, "the job starts once")
    #expect(try await first.job(job, tasks: false, nowMs: 2_000)?.counts.leased == 400)
    await first.close()
    await second.close()
  }

  /// The same lease answered through two writers at once (a worker resending to another
  /// coordinator): one result is taken, the other refused; a due run fired by both fires once.
  @Test(arguments: StoreBackend.all) func aLeaseIsAnsweredAndARunFiredOnceAcrossWriters(backend: StoreBackend)
    async throws
  {
    let tests = try StoreHarness(backend)
    let first = try await tests.open()
    let second = try await tests.open()
    let job = try await tests.submit(first, tests.job(tasks: 50))
    let leased = try await tests.claim(first, 50)
    let outcomes = try await withThrowingTaskGroup(of: [StoreOpResult].self) { group in
      for store in [first, second] {
        group.addTask {
          var results: [StoreOpResult] = []
          for task in leased {
            results += try await store.apply(
              [
                .complete(
                  task: task.task, attempt: task.attempt, worker: "w1", partial: Data("{}".utf8), stats: Data(),
                  bookmark: "")
              ], nowMs: 2_000)
          }
          return results
        }
      }
      return try await group.reduce(into: []) { $0 += $1 }
    }
    let done = outcomes.compactMap { tests.change($0) }.filter { $0.transition == .done }
    #expect(done.count == 50)
    #expect(Set(done.map(\.task)).count == 50)
    #expect(try await first.job(job, tasks: false, nowMs: 3_000)?.counts.done == 50)

    let schedule = NewSchedule(
      name: "hourly", spec: Data("{}".utf8), every: "1h", everyMs: 3_600_000, nextMs: 3_601_000, createdBy: "admin:t")
    let created = try await first.apply([.schedule(schedule, firstRun: tests.job(tasks: 0))], nowMs: 1_000)
    guard case .submitted(let run, _, _) = created[0] else { throw HaatError(.internal, "\(created)") }
    _ = try await first.apply([.finishJob(run, state: .succeeded, report: nil, error: "")], nowMs: 2_000)
    let fired = try await withThrowingTaskGroup(of: [StoreOpResult].self) { group in
      for store in [first, second] {
        group.addTask {
          try await store.apply(
            [.fire(schedule: "hourly", dueMs: 3_601_000, nextMs: 7_201_000, run: tests.job(tasks: 1))],
            nowMs: 3_602_000)
        }
      }
      return try await group.reduce(into: []) { $0 += $1 }
    }
    #expect(fired.filter { if case .submitted = $0 { true } else { false } }.count == 1)
    #expect(try await second.schedules().first?.runs == 2)
    await first.close()
    await second.close()
  }

  /// The queue depth `/metrics` reports: ready tasks whose time has come, by pool, and
  /// since when the oldest is ready.
  @Test(arguments: StoreBackend.all) func theReadyQueueCountsWhatIsDue(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    _ = try await tests.submit(store, tests.job(tasks: 3), now: 1_000)
    _ = try await tests.submit(store, tests.job(tasks: 2, notBeforeMs: 50_000), now: 2_000)
    _ = try await tests.submit(store, tests.job(tasks: 4, pool: .analyze), now: 3_000)
    _ = try await tests.claim(store, 1, now: 4_000)
    let queue = try await store.readyQueue(nowMs: 10_000)
    #expect(queue[.collect] == ReadyQueue(ready: 2, oldestReadyMs: 1_000))
    #expect(queue[.analyze] == ReadyQueue(ready: 4, oldestReadyMs: 3_000))
    let later = try await store.readyQueue(nowMs: 60_000)
    #expect(later[.collect] == ReadyQueue(ready: 4, oldestReadyMs: 1_000))
    await store.close()
  }
}
