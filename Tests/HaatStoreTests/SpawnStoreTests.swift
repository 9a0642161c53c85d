import Foundation
import HaatCore
import Testing

@testable import HaatStore

/// A result that adds tasks to its job (a plan task's byte ranges): added in the commit that
/// accepts the result, once, after the job's last task.
@Suite struct SpawnStoreTests {
  /// Three specs, each the plan's spec with its index.
  let spawner: TaskSpawner = { spec, first in
    (0..<3).map { Data("\(String(decoding: spec, as: UTF8.self))#\(first + $0)".utf8) }
  }

  @Test(arguments: StoreBackend.all) func aResultAddsItsTasksOnceInTheSameCommit(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    _ = try await store.apply([.submit(tests.job(tasks: 2))], nowMs: 1_000)
    let plan = try #require(try await tests.claim(store, 1).first)
    let results = try await store.apply(
      [
        .complete(
          task: plan.task, attempt: plan.attempt, worker: "w1", partial: Data(), stats: Data(), bookmark: "",
          spawn: spawner),
        // The same result again (a resend after a lost ack): refused, nothing added twice.
        .complete(
          task: plan.task, attempt: plan.attempt, worker: "w1", partial: Data(), stats: Data(), bookmark: "",
          spawn: spawner),
      ], nowMs: 2_000)
    guard case .changed(let change) = results[0], case .changed(let again) = results[1] else {
      throw HaatError(.internal, "\(results)")
    }
    #expect(change.transition == .done && change.spawned == 3)
    #expect(again.spawned == 0)
    if case .refused = again.transition {} else { Issue.record("a second result was taken: \(again.transition)") }
    let job = try #require(try await store.job(plan.job, tasks: true, nowMs: 2_000))
    #expect(job.counts.total == 5 && job.counts.done == 1 && job.counts.ready == 4)
    #expect(job.tasks.map(\.index) == [0, 1, 2, 3, 4])
    // The new tasks are claimable, with the specs the spawner made from the stored spec.
    let claimed = try await tests.claim(store, 10, now: 3_000)
    let specs = Set(claimed.map { String(decoding: $0.spec, as: UTF8.self) })
    #expect(specs.isSuperset(of: [#"{"index":0}#2"#, #"{"index":0}#3"#, #"{"index":0}#4"#]))
    // Recovery (a restart) counts them too.
    let reopened = try await tests.open()
    #expect(try await reopened.job(plan.job, tasks: false, nowMs: 3_000)?.counts.total == 5)
  }

  /// A plan task's ranges are its work, split: they take its place in the queue, ahead of
  /// the tasks submitted after it (its own job's other sources, a later job), in order, and
  /// behind a higher priority.
  @Test(arguments: StoreBackend.all) func spawnedTasksTakeThePlanTasksPlace(backend: StoreBackend) async throws {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let first = try await tests.submit(store, tests.job(tasks: 3))
    let later = try await tests.submit(store, tests.job(tasks: 1))
    let plan = try #require(try await tests.claim(store, 1).first)
    #expect(plan.job == first && plan.index == 0)
    let urgent = try await tests.submit(store, tests.job(tasks: 1, priority: 5), now: 1_500)
    _ = try await store.apply(
      [
        .complete(
          task: plan.task, attempt: plan.attempt, worker: "w1", partial: Data(), stats: Data(), bookmark: "",
          spawn: spawner)
      ], nowMs: 2_000)
    var order: [String] = []
    while let next = try await tests.claim(store, 1, now: 3_000).first {
      order.append(
        "\(next.job == first ? "first" : next.job == later ? "later" : next.job == urgent ? "urgent" : "?")/\(next.index)"
      )
    }
    #expect(order == ["urgent/0", "first/3", "first/4", "first/5", "first/1", "first/2", "later/0"])
  }

  /// A split the store cannot turn into ranges (the task is no plan task, or its spec does
  /// not read back) is refused and records nothing: it used to be acked as accepted while
  /// the task died, its result lost. The lease stands, so the same attempt's plain result
  /// (or its `fail`) still lands.
  @Test(arguments: StoreBackend.all) func aSplitThatCannotAddRangesIsRefusedAndRecordsNothing(backend: StoreBackend)
    async throws
  {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    _ = try await store.apply([.submit(tests.job(tasks: 1))], nowMs: 1_000)
    let plan = try #require(try await tests.claim(store, 1).first)
    let results = try await store.apply(
      [
        .complete(
          task: plan.task, attempt: plan.attempt, worker: "w1", partial: Data(), stats: Data(), bookmark: "",
          spawn: { _, _ in nil })
      ], nowMs: 2_000)
    guard case .changed(let change) = results[0], change.transition == .refused(.badSplit) else {
      throw HaatError(.internal, "\(results)")
    }
    let job = try #require(try await store.job(plan.job, tasks: false, nowMs: 2_000))
    #expect(job.counts.total == 1 && job.counts.leased == 1 && job.counts.dead == 0)
    let plain = try await store.apply(
      [
        .complete(
          task: plan.task, attempt: plan.attempt, worker: "w1", partial: Data(), stats: Data(), bookmark: "",
          spawn: nil)
      ], nowMs: 3_000)
    guard case .changed(let done) = plain[0], done.transition == .done else { throw HaatError(.internal, "\(plain)") }
  }
}

/// Rate pauses outlive the coordinator: the longest holds, expired ones are not recovered.
@Suite struct RatePauseStoreTests {
  @Test(arguments: StoreBackend.all) func theLongestPauseIsKeptAndAnExpiredOneIsNotRecovered(backend: StoreBackend)
    async throws
  {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    _ = try await store.apply(
      [
        .ratePause(RatePause(key: "credential:meta", untilMs: 60_000, worker: "w1", reason: "(#80001) too many")),
        .ratePause(RatePause(key: "credential:meta", untilMs: 30_000, worker: "w2", reason: "shorter")),
        .ratePause(RatePause(key: "credential:tiktok", untilMs: 5_000, worker: "w1", reason: "40100")),
      ], nowMs: 1_000)
    let recovered = try await tests.open().recover(nowMs: 10_000).ratePauses
    #expect(
      recovered == [RatePause(key: "credential:meta", untilMs: 60_000, worker: "w1", reason: "(#80001) too many")])
  }

  @Test(arguments: StoreBackend.all) func anUnpausedKeyIsForgottenAndMayBePausedAgain(backend: StoreBackend)
    async throws
  {
    let tests = try StoreHarness(backend)
    let store = try await tests.open()
    let meta = RatePause(key: "credential:meta", untilMs: 60_000, worker: "w1", reason: "(#80001) too many")
    let tiktok = RatePause(key: "credential:tiktok", untilMs: 50_000, worker: "w1", reason: "40100")
    _ = try await store.apply([.ratePause(meta), .ratePause(tiktok), .unpause("credential:meta")], nowMs: 1_000)
    #expect(try await tests.open().recover(nowMs: 2_000).ratePauses == [tiktok])
    // A shorter pause after the unpause holds: nothing of the lifted one is left to outlast it.
    let again = RatePause(key: "credential:meta", untilMs: 20_000, worker: "w2", reason: "again")
    _ = try await store.apply([.ratePause(again)], nowMs: 3_000)
    #expect(try await tests.open().recover(nowMs: 4_000).ratePauses == [again, tiktok])
  }
}
