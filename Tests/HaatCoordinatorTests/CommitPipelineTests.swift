import Foundation
import HaatCore
import HaatStore
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import HaatCoordinator

/// Group commit without a store or sockets: the test plays the store, completing each
/// transaction by hand on an embedded loop.
@Suite struct CommitPipelineTests {
  final class FakeStore {
    var batches: [[StoreOp]] = []
    var promises: [EventLoopPromise<[StoreOpResult]>] = []
  }

  func make() -> (EmbeddedEventLoop, CommitPipeline, FakeStore) {
    let loop = EmbeddedEventLoop()
    let store = FakeStore()
    var logger = Logger(label: "test")
    logger.logLevel = .critical  // the failures below are on purpose
    let pipeline = CommitPipeline(loop: loop, logger: logger) { ops in
      store.batches.append(ops)
      let promise = loop.makePromise(of: [StoreOpResult].self)
      store.promises.append(promise)
      return promise.futureResult
    }
    return (loop, pipeline, store)
  }

  static let op = StoreOp.release(task: TaskID(1), attempt: 1)
  static func ok(_ count: Int) -> [StoreOpResult] { Array(repeating: .claimed([]), count: count) }

  @Test func opsArrivingDuringACommitGoInTheNextOneTogether() throws {
    let (loop, pipeline, store) = make()
    var done: [String] = []
    pipeline.enqueue(Self.op) { _ in done.append("a") }
    loop.run()
    #expect(store.batches.map(\.count) == [1])
    pipeline.enqueue(Self.op) { _ in done.append("b") }
    pipeline.enqueue(Self.op) { _ in done.append("c") }
    loop.run()
    #expect(store.batches.count == 1, "nothing starts while a commit is in flight")
    #expect(done.isEmpty, "no op is done before its transaction commits")
    store.promises[0].succeed(Self.ok(1))
    loop.run()
    #expect(done == ["a"])
    #expect(store.batches.map(\.count) == [1, 2])
    store.promises[1].succeed(Self.ok(2))
    loop.run()
    #expect(done == ["a", "b", "c"])
    try loop.syncShutdownGracefully()
  }

  /// The store writes the next transaction while the loop hands out the last one's results
  /// (they took turns); after a failure the next one still waits out the pause.
  @Test func theNextCommitStartsBeforeTheLastOnesResultsAreHandedOut() throws {
    let (loop, pipeline, store) = make()
    var seenByA = -1
    pipeline.enqueue(Self.op) { _ in seenByA = store.batches.count }
    loop.run()
    pipeline.enqueue(Self.op) { _ in }
    store.promises[0].succeed(Self.ok(1))
    loop.run()
    #expect(seenByA == 2, "the second transaction was handed to the store before the first's op was done")
    // A failure: the op that arrived meanwhile waits for the backoff, not a moment.
    pipeline.enqueue(Self.op) { _ in }
    store.promises[1].fail(HaatError(.unavailable, "disk full"))
    loop.run()
    #expect(store.batches.count == 2)
    loop.advanceTime(by: .milliseconds(100))
    #expect(store.batches.count == 3)
    try loop.syncShutdownGracefully()
  }

  /// Found by a tester: a store that stopped answering for 30 s showed nothing in the
  /// coordinator's log. A commit that takes over the limit is said once.
  @Test func aSlowCommitIsSaidOnce() throws {
    let (loop, pipeline, store) = make()
    pipeline.enqueue(Self.op) { _ in }
    loop.run()
    #expect(!pipeline.warnIfSlow(after: .seconds(10)))
    loop.advanceTime(by: .seconds(11))
    #expect(pipeline.warnIfSlow(after: .seconds(10)))
    #expect(!pipeline.warnIfSlow(after: .seconds(10)), "once per commit")
    store.promises[0].succeed(Self.ok(1))
    loop.run()
    #expect(!pipeline.warnIfSlow(after: .seconds(10)), "none in flight")
    pipeline.enqueue(Self.op) { _ in }
    loop.run()
    loop.advanceTime(by: .seconds(11))
    #expect(pipeline.warnIfSlow(after: .seconds(10)), "the next slow commit is said again")
    store.promises[1].succeed(Self.ok(1))
    loop.run()
    try loop.syncShutdownGracefully()
  }

  @Test func aFailedCommitFailsItsOpsAndBacksOff() throws {
    let (loop, pipeline, store) = make()
    var results: [StoreOpResult] = []
    pipeline.enqueue(Self.op) { results.append($0) }
    loop.run()
    store.promises[0].fail(HaatError(.unavailable, "disk full"))
    loop.run()
    guard case .failed(let error)? = results.first else {
      Issue.record("the op was not failed: \(results)")
      return
    }
    #expect(error.code == .unavailable)
    #expect(pipeline.backoffMs == 100)
    #expect(pipeline.recentFailure(within: .seconds(10)) == "disk full", "what /readyz says while commits fail")
    // The next op waits out the pause, then a second failure doubles it.
    pipeline.enqueue(Self.op) { results.append($0) }
    loop.run()
    #expect(store.batches.count == 1)
    loop.advanceTime(by: .milliseconds(100))
    #expect(store.batches.count == 2)
    store.promises[1].fail(HaatError(.unavailable, "disk full"))
    loop.run()
    #expect(pipeline.backoffMs == 200)
    for _ in 0..<10 {
      pipeline.enqueue(Self.op) { _ in }
      loop.advanceTime(by: .seconds(5))
      store.promises.last?.fail(HaatError(.unavailable, "disk full"))
      loop.run()
    }
    #expect(pipeline.backoffMs == 5_000, "the pause stops doubling at 5 s")
    pipeline.enqueue(Self.op) { results.append($0) }
    loop.advanceTime(by: .seconds(5))
    store.promises.last?.succeed(Self.ok(1))
    loop.run()
    #expect(pipeline.backoffMs == 0, "a success ends the backoff")
    // A store that failed a moment ago is not ready for the window after it, whatever
    // succeeded since; then it is.
    #expect(pipeline.recentFailure(within: .seconds(10)) == "disk full")
    loop.advanceTime(by: .seconds(10))
    #expect(pipeline.recentFailure(within: .seconds(10)) == nil)
    try loop.syncShutdownGracefully()
  }

  @Test func claimsRideEveryCommitAndAreUndoneWhenItFails() throws {
    let (loop, pipeline, store) = make()
    var delivered: [[StoreOpResult]] = []
    var undone = 0
    var offer = true
    pipeline.extra = {
      guard offer else { return nil }
      offer = false
      return CommitPipeline.Extra(
        ops: [.claim(owner: "w", pool: .collect, limit: 2, dueMs: 0)], committed: { delivered.append($0) },
        failed: { undone += 1 })
    }
    pipeline.enqueue(Self.op) { _ in }
    loop.run()
    #expect(store.batches.first?.count == 2, "the op and the claim, in one transaction")
    store.promises[0].fail(HaatError(.unavailable, "disk full"))
    loop.run()
    #expect(undone == 1)
    #expect(delivered.isEmpty)
    offer = true
    loop.advanceTime(by: .milliseconds(100))
    pipeline.queueCommit()
    loop.run()
    store.promises.last?.succeed(Self.ok(1))
    loop.run()
    #expect(delivered.map(\.count) == [1], "the claim's own result, without the ops before it")
    try loop.syncShutdownGracefully()
  }

  static let submit = StoreOp.submit(
    NewJob(
      name: "j", priority: 0, notBeforeMs: 0, maxAttempts: 3, retry: RetryPolicy(baseMs: 1_000, capMs: 60_000),
      reports: [], spec: Data(), submittedBy: "admin:test",
      tasks: [NewTask(pool: .collect, source: "s", spec: Data())]))
  static let result = StoreOp.complete(
    task: TaskID(7), attempt: 1, worker: "w", partial: Data(), stats: Data(), bookmark: "")
  static let end = StoreOp.finishJob(JobID(3), state: .succeeded, report: nil, error: "")

  static func kinds(_ ops: [StoreOp]) -> [String] {
    ops.map {
      switch $0 {
      case .submit: "submit"
      case .complete: "complete"
      case .finishJob: "end"
      case .release: "release"
      case .cancelJob: "cancel"
      default: "other"
      }
    }
  }

  /// Submits that wait beside results and job ends go first, alone; those follow in the
  /// next transaction, in their order, with whatever arrived meanwhile (they never wait
  /// for more than one).
  @Test func submitsWaitingBesideResultsGoFirst() throws {
    let (loop, pipeline, store) = make()
    var done: [String] = []
    pipeline.enqueue(Self.op) { _ in done.append("first") }
    loop.run()
    pipeline.enqueue(Self.result) { _ in done.append("r1") }
    pipeline.enqueue(Self.submit) { _ in done.append("s1") }
    pipeline.enqueue(Self.end) { _ in done.append("e1") }
    pipeline.enqueue(Self.submit) { _ in done.append("s2") }
    store.promises[0].succeed(Self.ok(1))
    loop.run()
    #expect(Self.kinds(store.batches[1]) == ["submit", "submit"])
    // More of both arrive while the submits commit: the results that waited go next, with
    // all of them, in order.
    pipeline.enqueue(Self.submit) { _ in done.append("s3") }
    pipeline.enqueue(Self.result) { _ in done.append("r2") }
    store.promises[1].succeed(Self.ok(2))
    loop.run()
    #expect(Self.kinds(store.batches[2]) == ["complete", "end", "submit", "complete"])
    store.promises[2].succeed(Self.ok(4))
    loop.run()
    #expect(done == ["first", "s1", "s2", "r1", "e1", "s3", "r2"])
    #expect(store.batches.count == 3)
    try loop.syncShutdownGracefully()
  }

  /// Any other op (a cancel, which a claim beside the submits must see) keeps every op in
  /// its place; so does a transaction that failed and is tried again.
  @Test func otherOpsKeepEveryOpInItsPlace() throws {
    let (loop, pipeline, store) = make()
    pipeline.enqueue(Self.op) { _ in }
    loop.run()
    pipeline.enqueue(Self.result) { _ in }
    pipeline.enqueue(.cancelJob(JobID(2))) { _ in }
    pipeline.enqueue(Self.submit) { _ in }
    store.promises[0].succeed(Self.ok(1))
    loop.run()
    #expect(Self.kinds(store.batches[1]) == ["complete", "cancel", "submit"])
    // Submits went ahead, and their transaction failed: the retry takes everything.
    pipeline.enqueue(Self.result) { _ in }
    pipeline.enqueue(Self.submit) { _ in }
    store.promises[1].succeed(Self.ok(3))
    loop.run()
    #expect(Self.kinds(store.batches[2]) == ["submit"])
    store.promises[2].fail(HaatError(.unavailable, "disk full"))
    loop.run()
    loop.advanceTime(by: .milliseconds(100))
    #expect(Self.kinds(store.batches[3]) == ["complete"], "the result that waited, after the pause")
    try loop.syncShutdownGracefully()
  }

  @Test func drainWaitsForTheCommitInFlight() throws {
    let (loop, pipeline, store) = make()
    pipeline.enqueue(Self.op) { _ in }
    loop.run()
    var drained = false
    pipeline.drain().assumeIsolated().whenSuccess { drained = true }
    loop.run()
    #expect(!drained)
    store.promises[0].succeed(Self.ok(1))
    loop.run()
    #expect(drained)
    try loop.syncShutdownGracefully()
  }
}
