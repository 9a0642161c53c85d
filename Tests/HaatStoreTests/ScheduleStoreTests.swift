import Foundation
import HaatCore
import Testing

@testable import HaatStore

/// Schedules and incremental bookmarks in the store: a run fires once, and a bookmark
/// travels from an accepted result to the next run's claim.
@Suite struct ScheduleStoreTests {
  func schedule(_ name: String = "hourly", everyMs: Int64 = 3_600_000) -> NewSchedule {
    NewSchedule(
      name: name, spec: Data("{}".utf8), every: "1h", everyMs: everyMs, nextMs: 1_000 + everyMs, createdBy: "admin:test"
    )
  }

  /// The fire of the run due at `dueMs`, seen at `nowMs`, with the next due time an
  /// hourly schedule's `Recurrence` gives (as the coordinator computes it).
  func fire(_ name: String = "hourly", dueMs: Int64, nowMs: Int64) -> StoreOp {
    let next = Recurrence.every(ms: 3_600_000).next(dueMs: dueMs, nowMs: nowMs) ?? 0
    return .fire(schedule: name, dueMs: dueMs, nextMs: next, run: StoreHarness.job(tasks: 1))
  }

  /// Runs the open run's one task and ends its job.
  func runToTheEnd(_ store: any JobStore, _ tests: StoreHarness, now: Int64) async throws {
    let task = try #require(try await tests.claim(store, 1, now: now).first)
    _ = try await store.apply(
      [.complete(task: task.task, attempt: task.attempt, worker: "w1", partial: Data(), stats: Data(), bookmark: "")],
      nowMs: now)
    _ = try await store.apply([.finishJob(task.job, state: .succeeded, report: nil, error: "")], nowMs: now)
  }

  @Test(arguments: StoreBackend.all) func aRunFiresOnceAndTheNextIsDueAnEveryLater(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let first = try await store.apply([.schedule(schedule(), firstRun: tests.job(tasks: 1))], nowMs: 1_000)
    guard case .submitted = first[0] else { throw HaatError(.internal, "no first run: \(first)") }
    var schedules = try await store.schedules()
    #expect(schedules.map(\.name) == ["hourly"] && schedules[0].nextMs == 3_601_000 && schedules[0].runs == 1)
    // While the first run is open, the next stays due.
    let early = try await store.apply(
      [fire(dueMs: 3_601_000, nowMs: 3_602_000)], nowMs: 3_602_000)
    guard case .notFired = early[0] else { throw HaatError(.internal, "runs overlapped: \(early)") }
    try await runToTheEnd(store, tests, now: 3_602_000)
    // Two coordinators (or two slow rounds) fire the same due run: one job.
    let results = try await store.apply(
      [
        fire(dueMs: 3_601_000, nowMs: 3_602_000),
        fire(dueMs: 3_601_000, nowMs: 3_602_000),
      ], nowMs: 3_602_000)
    guard case .submitted = results[0], case .notFired = results[1] else {
      throw HaatError(.internal, "fired \(results)")
    }
    schedules = try await store.schedules()
    #expect(schedules[0].runs == 2 && schedules[0].nextMs == 7_201_000)
    try await runToTheEnd(store, tests, now: 3_603_000)
    // Down for three hours: the missed runs are not made up; the next is after now.
    _ = try await store.apply(
      [fire(dueMs: 7_201_000, nowMs: 18_000_000)], nowMs: 18_000_000)
    #expect(try await store.schedules()[0].nextMs == 18_001_000)
  }

  /// Found by a tester: `haat dead retry` of a failed run's task while the next run was in
  /// flight gave both the same bookmark, and the cumulative report counted the new posts
  /// twice. A dead task of a run that a later run has followed is not revived; the latest
  /// run's is.
  @Test(arguments: StoreBackend.all) func aSupersededRunsDeadTaskIsNotRevived(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    _ = try await store.apply([.schedule(schedule(), firstRun: tests.job(tasks: 1))], nowMs: 1_000)
    func die(now: Int64) async throws -> (TaskID, JobID) {
      let task = try #require(try await tests.claim(store, 1, now: now).first)
      _ = try await store.apply(
        [
          .fail(
            task: task.task, attempt: task.attempt, worker: "w1", error: TaskError(code: "x", message: "y"),
            retryable: false, retryAfterMs: 0, stats: Data())
        ], nowMs: now)
      _ = try await store.apply([.finishJob(task.job, state: .failed, report: nil, error: "")], nowMs: now)
      return (task.task, task.job)
    }
    let (old, oldJob) = try await die(now: 2_000)
    let next = try await store.apply([fire(dueMs: 3_601_000, nowMs: 3_602_000)], nowMs: 3_602_000)
    guard case .submitted = next[0] else { throw HaatError(.internal, "no second run: \(next)") }
    for selector in [DeadSelector.tasks([old]), .job(oldJob), .all] {
      guard case .deadUpdated(let revived, _) = try await store.apply([.retryDead(selector)], nowMs: 3_603_000)[0]
      else { throw HaatError(.internal, "not a dead update") }
      #expect(revived.isEmpty, "\(selector)")
    }
    let (latest, _) = try await die(now: 3_604_000)
    guard case .deadUpdated(let revived, _) = try await store.apply([.retryDead(.all)], nowMs: 3_605_000)[0] else {
      throw HaatError(.internal, "not a dead update")
    }
    #expect(revived.map(\.task) == [latest])
  }

  /// Found by a tester: once a schedule was made again under its name, the old schedule's
  /// last run could not be retried (the new making's runs counted as later runs of it).
  @Test(arguments: StoreBackend.all) func theLastRunOfAScheduleMadeAgainCanBeRetried(backend: StoreBackend)
    async throws
  {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    _ = try await store.apply([.schedule(schedule(), firstRun: tests.job(tasks: 1))], nowMs: 1_000)
    let task = try #require(try await tests.claim(store, 1, now: 2_000).first)
    _ = try await store.apply(
      [
        .fail(
          task: task.task, attempt: task.attempt, worker: "w1", error: TaskError(code: "x", message: "y"),
          retryable: false, retryAfterMs: 0, stats: Data())
      ], nowMs: 2_000)
    _ = try await store.apply([.finishJob(task.job, state: .failed, report: nil, error: "")], nowMs: 2_000)
    // Made again: its first run is another schedule's.
    let remade = try await store.apply([.schedule(schedule(), firstRun: tests.job(tasks: 1))], nowMs: 3_000)
    guard case .submitted = remade[0] else { throw HaatError(.internal, "not made again: \(remade)") }
    guard case .deadUpdated(let revived, _) = try await store.apply([.retryDead(.job(task.job))], nowMs: 4_000)[0]
    else { throw HaatError(.internal, "not a dead update") }
    #expect(revived.map(\.task) == [task.task])
  }

  /// Retention keeps a schedule's newest finished run while the schedule exists, so its
  /// last job and its cumulative report stay readable; older runs go as any job does.
  @Test(arguments: StoreBackend.all) func pruningKeepsAScheduleNewestRun(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    _ = try await store.apply([.schedule(schedule(), firstRun: tests.job(tasks: 1))], nowMs: 1_000)
    try await runToTheEnd(store, tests, now: 2_000)
    _ = try await store.apply([fire(dueMs: 3_601_000, nowMs: 3_602_000)], nowMs: 3_602_000)
    try await runToTheEnd(store, tests, now: 3_603_000)
    // A third run, cancelled: the newest finished run, with no report of its own.
    let third = try await store.apply([fire(dueMs: 7_201_000, nowMs: 7_202_000)], nowMs: 7_202_000)
    guard case .submitted(let cancelled, _, _) = third[0] else { throw HaatError(.internal, "no third run") }
    _ = try await store.apply([.cancelJob(cancelled)], nowMs: 7_203_000)
    let runs = try await store.finishedRuns(ofSchedule: "hourly")
    #expect(runs.count == 3)
    // A newer job of no schedule, ended too, so that no run is kept as the newest job.
    _ = try await tests.submit(store, tests.job(tasks: 1))
    try await runToTheEnd(store, tests, now: 3_604_000)
    _ = try await tests.submit(store, tests.job(tasks: 1))
    guard
      case .pruned(let jobs, _) = try await store.apply(
        [.prune(endedBeforeMs: 9_000_000, limit: 100)], nowMs: 9_000_000)[0]
    else { throw HaatError(.internal, "not pruned") }
    #expect(jobs == 2, "the first run and the ended job of no schedule")
    // Kept: the newest run with a report, and the newest run (cancelled).
    #expect(try await store.finishedRuns(ofSchedule: "hourly") == [runs[1], runs[2]])
    #expect(try await store.job(runs[1], tasks: false, nowMs: 9_000_000) != nil)
    // Removed, the schedule keeps nothing.
    _ = try await store.apply([.updateSchedule("hourly", .remove)], nowMs: 9_000_001)
    _ = try await store.apply([.prune(endedBeforeMs: 9_000_000, limit: 100)], nowMs: 9_000_002)
    #expect(try await store.finishedRuns(ofSchedule: "hourly").isEmpty)
  }

  @Test(arguments: StoreBackend.all) func aPausedOrRemovedScheduleDoesNotFire(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    _ = try await store.apply([.schedule(schedule(), firstRun: tests.job(tasks: 1))], nowMs: 1_000)
    let paused = try await store.apply([.updateSchedule("hourly", .pause)], nowMs: 2_000)
    guard case .scheduleUpdated(true) = paused[0] else { throw HaatError(.internal, "\(paused)") }
    let fired = try await store.apply(
      [fire(dueMs: 3_601_000, nowMs: 4_000_000)], nowMs: 4_000_000)
    guard case .notFired = fired[0] else { throw HaatError(.internal, "a paused schedule fired") }
    _ = try await store.apply([.updateSchedule("hourly", .remove)], nowMs: 5_000)
    #expect(try await store.schedules().isEmpty)
    let missing = try await store.apply([.updateSchedule("hourly", .resume)], nowMs: 6_000)
    guard case .scheduleUpdated(false) = missing[0] else { throw HaatError(.internal, "\(missing)") }
  }

  @Test(arguments: StoreBackend.all) func anIncrementalSourcesBookmarkReachesItsNextRun(backend: StoreBackend)
    async throws
  {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    func run() -> NewJob {
      var job = tests.job(tasks: 1)
      job.tasks[0].resumeKey = "posts|111"
      return job
    }
    _ = try await tests.submit(store, run())
    let first = try await tests.claim(store, 1)
    #expect(first.first?.bookmark == nil, "no run yet: no bookmark")
    let task = try #require(first.first)
    _ = try await store.apply(
      [
        .complete(
          task: task.task, attempt: task.attempt, worker: "w1", partial: Data(), stats: Data(), bookmark: "42:a")
      ],
      nowMs: 2_000)
    _ = try await tests.submit(store, run())
    #expect(try await tests.claim(store, 1).first?.bookmark == "42:a")
    // A task of another source, or one not incremental, gets none.
    _ = try await tests.submit(store, tests.job(tasks: 1))
    #expect(try await tests.claim(store, 1).first?.bookmark == nil)
  }
  /// Found by a tester: a run of a replaced schedule, retried after the replacement's first
  /// run kept its bookmark, read that bookmark (the same name, so the same key) and skipped
  /// what lay between. Its own schedule's bookmarks are gone: it reads from the beginning.
  @Test(arguments: StoreBackend.all) func aReplacedSchedulesRetriedRunReadsNoBookmarkOfTheReplacement(
    backend: StoreBackend
  ) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    func run() -> NewJob {
      var job = tests.job(tasks: 1)
      job.tasks[0].resumeKey = BookmarkKeys.schedulePrefix("hourly") + "posts|1"
      return job
    }
    func complete(_ task: ClaimedTask, _ bookmark: String, now: Int64) async throws {
      _ = try await store.apply(
        [
          .complete(
            task: task.task, attempt: task.attempt, worker: "w1", partial: Data(), stats: Data(), bookmark: bookmark)
        ], nowMs: now)
      _ = try await store.apply([.finishJob(task.job, state: .succeeded, report: nil, error: "")], nowMs: now)
    }
    _ = try await store.apply([.schedule(schedule(), firstRun: run())], nowMs: 1_000)
    try await complete(try #require(try await tests.claim(store, 1).first), "B1", now: 2_000)
    let next = Recurrence.every(ms: 3_600_000).next(dueMs: 3_601_000, nowMs: 3_602_000) ?? 0
    _ = try await store.apply(
      [.fire(schedule: "hourly", dueMs: 3_601_000, nextMs: next, run: run())], nowMs: 3_602_000)
    let second = try #require(try await tests.claim(store, 1, now: 3_602_000).first)
    #expect(second.bookmark == "B1")
    // Replaced while its second run reads; that run fails, to be retried a minute later.
    _ = try await store.apply([.schedule(schedule(), firstRun: run())], nowMs: 3_603_000)
    _ = try await store.apply(
      [
        .fail(
          task: second.task, attempt: second.attempt, worker: "w1", error: TaskError(code: "http_503", message: "busy"),
          retryable: true, retryAfterMs: 60_000, stats: Data())
      ], nowMs: 3_604_000)
    let replacement = try #require(try await tests.claim(store, 1, now: 3_605_000).first)
    #expect(replacement.job != second.job && replacement.bookmark == nil, "the replacement reads from the beginning")
    try await complete(replacement, "R1", now: 3_606_000)
    let retry = try #require(try await tests.claim(store, 1, now: 9_000_000).first)
    #expect(retry.task == second.task)
    #expect(retry.bookmark == nil, "the replaced schedule's run read the replacement's bookmark")
    // The replacement's own next run reads its bookmark.
    let later = Recurrence.every(ms: 3_600_000).next(dueMs: 3_601_000, nowMs: 9_000_000) ?? 0
    try await complete(retry, "late", now: 9_000_000)
    let fired = try await store.apply(
      [.fire(schedule: "hourly", dueMs: 3_601_000, nextMs: later, run: run())], nowMs: 9_000_000)
    guard case .submitted = fired[0] else { throw HaatError(.internal, "the replacement's run did not fire: \(fired)") }
    #expect(try await tests.claim(store, 1, now: 9_000_000).first?.bookmark == "R1")
  }
}
