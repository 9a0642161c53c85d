import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatCoordinator
@testable import HaatStore

/// A 1-task job's end made from its result before the commit (`CoordinatorCore.reducedEnd`)
/// is the end the store's own read would give.
@Suite struct ReducedEndTests {
  /// A store in a directory of its own, removed when `body` returns.
  static func withStore(_ body: (SQLiteJobStore) async throws -> Void) async throws {
    let directory = NSTemporaryDirectory() + "haat-reduced-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try await body(try SQLiteJobStore(path: directory + "/haat.db", durability: .full))
  }

  static func newJob(reports: [String]) -> NewJob {
    NewJob(
      name: "one", priority: 0, notBeforeMs: 0, maxAttempts: 3, retry: RetryPolicy(baseMs: 1000, capMs: 4000),
      reports: reports, spec: Data("{}".utf8), submittedBy: "admin:test",
      tasks: [NewTask(pool: .collect, source: "shop.csv", spec: Data("{}".utf8))])
  }

  /// The result's partial and stats as the coordinator stores them.
  static func result() throws -> (partial: Data, stats: Data) {
    var stats = TaskStats()
    stats.rows = 2
    stats.badRows = 1
    stats.bytes = 300
    return (try JobReducerTests.partial(likes: 7), try CoordinatorCore.encodeStats(stats))
  }

  @Test(arguments: [["engagement"], ["engagement", "best_time", "media_lift"], []])
  func theEndMadeFromTheResultIsTheStoresRead(reports: [String]) async throws {
    try await Self.withStore { store in
      let job = Self.newJob(reports: reports)
      guard case .submitted(let id, 1, _) = try await store.apply([.submit(job)], nowMs: 1_000)[0],
        case .claimed(let claimed) = try await store.apply(
          [.claim(owner: "w1", pool: .collect, limit: 1)], nowMs: 1_000)[
            0],
        let task = claimed.first
      else {
        Issue.record("not submitted and claimed")
        return
      }
      var counts = TaskCounts()
      counts.leased = 1
      let active = ActiveJob(id: id, counts: counts, started: true, cancelled: false)
      active.onlyTask = (job.reports, job.tasks[0].source)
      let (partial, stats) = try Self.result()
      let ending = try #require(CoordinatorCore.reducedEnd(of: active, task: task.task, (task.attempt, partial, stats)))
      guard case .reduced(let made) = ending else {
        Issue.record("not reduced: \(ending)")
        return
      }
      // The store's way: the result committed, then the job and its outputs read and reduced.
      _ = try await store.apply(
        [.complete(task: task.task, attempt: task.attempt, worker: "w1", partial: partial, stats: stats, bookmark: "")],
        nowMs: 2_000)
      let read = try #require(try await store.finishing([id])[id])
      let stored = try JobReducer.reduce(read.job, outputs: read.outputs, cancelled: false)
      #expect(made.state == stored.state && made.error == stored.error)
      #expect(try JobReducer.storedReport(made.report) == (try JobReducer.storedReport(stored.report)))
      #expect(try JobReducer.storedReport(made.report).summary.rows == 2)
    }
  }

  /// A later attempt's task may carry an earlier attempt's error, which only the store has:
  /// its end is left to the store's read. So are a large partial's, a job of more tasks and
  /// one recovered from the store (whose reports this coordinator did not see).
  @Test func onlyAFirstAttemptOfAJobOfOneTaskIsReducedBeforeItsCommit() throws {
    var counts = TaskCounts()
    counts.leased = 1
    let active = ActiveJob(id: JobID(1), counts: counts, started: true, cancelled: false)
    let (partial, stats) = try Self.result()
    func reduced(attempt: UInt32) -> Bool {
      if case .reduced? = CoordinatorCore.reducedEnd(of: active, task: TaskID(5), (attempt, partial, stats)) {
        return true
      }
      return false
    }
    #expect(!reduced(attempt: 1))
    active.onlyTask = (["engagement"], "shop.csv")
    #expect(reduced(attempt: 1))
    #expect(!reduced(attempt: 2))
    let large = Data(count: CoordinatorCore.reducedEndBytes + 1)
    if case .reduced? = CoordinatorCore.reducedEnd(of: active, task: TaskID(5), (1, large, stats)) {
      Issue.record("a partial over reducedEndBytes was reduced on the loop")
    }
    active.counts.done = 1
    #expect(!reduced(attempt: 1))
  }
}
