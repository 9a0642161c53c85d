import Foundation
import HaatCore
import Testing

@testable import HaatStore

/// A small job's end recorded in the commit of its last result, on every backend.
@Suite struct JobEndStoreTests {
  /// `finishIfEnded` records a job's end in the transaction that ended its last task, with
  /// what `reduce` made of the job's record and outputs; it declines while a task is open,
  /// when `reduce` declines, and once the job has ended.
  @Test(arguments: StoreBackend.all) func aJobEndsInTheCommitOfItsLastResult(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let id = try await tests.submit(store, tests.job(tasks: 2))
    let claimed = try await tests.claim(store, 2)
    try #require(claimed.count == 2)
    let reduce: JobReduce = { read in
      JobEnd(state: .partial, report: Data("\(read.job.id): \(read.outputs.map(\.state.rawValue))".utf8), error: "e")
    }
    func complete(_ task: ClaimedTask) -> StoreOp {
      .complete(
        task: task.task, attempt: task.attempt, worker: "w1", partial: Data("p".utf8), stats: Data(), bookmark: "")
    }
    func declined(_ result: StoreOpResult) -> Bool {
      if case .finished(id, applied: false) = result { return true }
      return false
    }
    // One task still open.
    var results = try await store.apply(
      [complete(claimed[0]), .finishIfEnded(id, ending: .read(reduce))], nowMs: 2_000)
    #expect(declined(results[1]))
    // The last task ends, but `reduce` declines.
    results = try await store.apply(
      [complete(claimed[1]), .finishIfEnded(id, ending: .read({ _ in nil }))], nowMs: 2_000)
    #expect(tests.change(results[0])?.transition == .done && declined(results[1]))
    #expect(try await store.job(id, tasks: false, nowMs: 2_000)?.state == .running)
    // Now it ends, with both outputs read in the transaction.
    results = try await store.apply([.finishIfEnded(id, ending: .read(reduce))], nowMs: 3_000)
    guard case .ended(id, let end) = results[0] else {
      Issue.record("not ended: \(results[0])")
      return
    }
    #expect(end.report == Data("\(id): [\"done\", \"done\"]".utf8))
    let record = try #require(try await store.job(id, tasks: false, nowMs: 3_000))
    #expect(record.state == .partial && record.error == "e" && record.finishedMs == 3_000)
    #expect(try await store.report(of: id) == end.report)
    // Once ended, it stays as recorded.
    results = try await store.apply([.finishIfEnded(id, ending: .read(reduce))], nowMs: 4_000)
    #expect(declined(results[0]))
    results = try await store.apply([.finishIfEnded(JobID(id.rawValue + 999), ending: .read(reduce))], nowMs: 4_000)
    guard case .failed(let error) = results[0] else {
      Issue.record("an unknown job: \(results[0])")
      return
    }
    #expect(error.code == .notFound)
  }

  /// An end reduced before the commit (`JobEnding.reduced`) is recorded as it is, with
  /// nothing read, only once the ops before it ended the job's last task: not while the task
  /// is leased, not after a stale result, and never over a job that has ended already (a
  /// cancel that came first stays).
  @Test(arguments: StoreBackend.all) func aReducedEndIsRecordedOnlyOnceTheJobsTaskHasEnded(backend: StoreBackend)
    async throws
  {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let end = JobEnd(state: .succeeded, report: Data("made before the commit".utf8), error: "")
    func complete(_ task: ClaimedTask, attempt: UInt32? = nil) -> StoreOp {
      .complete(
        task: task.task, attempt: attempt ?? task.attempt, worker: "w1", partial: Data("p".utf8), stats: Data(),
        bookmark: "")
    }
    func declined(_ result: StoreOpResult, _ job: JobID) -> Bool {
      if case .finished(job, applied: false) = result { return true }
      return false
    }
    let ends = try await tests.submit(store, tests.job(tasks: 1))
    let cancelled = try await tests.submit(store, tests.job(tasks: 1))
    let claimed = try await tests.claim(store, 2)
    try #require(claimed.map(\.job) == [ends, cancelled])
    // Its task is leased: no end.
    var results = try await store.apply([.finishIfEnded(ends, ending: .reduced(end))], nowMs: 2_000)
    #expect(declined(results[0], ends))
    // A stale attempt's result is refused, so the task is still open: no end.
    results = try await store.apply(
      [complete(claimed[0], attempt: claimed[0].attempt + 1), .finishIfEnded(ends, ending: .reduced(end))],
      nowMs: 2_000)
    #expect(declined(results[1], ends))
    #expect(try await store.job(ends, tasks: false, nowMs: 2_000)?.state == .running)
    // The result ends the task: the end is recorded as made.
    results = try await store.apply([complete(claimed[0]), .finishIfEnded(ends, ending: .reduced(end))], nowMs: 3_000)
    guard case .ended(ends, let recorded) = results[1] else {
      Issue.record("not ended: \(results[1])")
      return
    }
    #expect(recorded.report == end.report)
    let record = try #require(try await store.job(ends, tasks: false, nowMs: 3_000))
    #expect(record.state == .succeeded && record.error.isEmpty && record.finishedMs == 3_000)
    #expect(try await store.report(of: ends) == end.report)
    // A job cancelled first has no open task, but it has ended: it stays cancelled.
    _ = try await store.apply([.cancelJob(cancelled)], nowMs: 4_000)
    results = try await store.apply(
      [complete(claimed[1]), .finishIfEnded(cancelled, ending: .reduced(end))], nowMs: 4_000)
    #expect(declined(results[1], cancelled))
    #expect(try await store.job(cancelled, tasks: false, nowMs: 4_000)?.state == .cancelled)
    #expect(try await store.report(of: cancelled) != end.report)
    results = try await store.apply(
      [.finishIfEnded(JobID(cancelled.rawValue + 999), ending: .reduced(end))], nowMs: 4_000)
    guard case .failed(let error) = results[0] else {
      Issue.record("an unknown job: \(results[0])")
      return
    }
    #expect(error.code == .notFound)
  }
}
