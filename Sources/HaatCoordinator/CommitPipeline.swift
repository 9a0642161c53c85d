import HaatCore
import HaatStore
import Logging
import NIOCore

/// Group commit: every store write that arrives while a commit is in flight waits and goes
/// into the next transaction together, with the claims its owner adds to every commit; that
/// transaction starts as soon as the one in flight commits, before its results are handed
/// out.
/// Each op's `done` runs on the loop after the transaction that holds it committed (or
/// failed), so replies that depend on a write are never sent before it is durable.
///
/// A commit that fails (a full disk) fails its ops, and the next one waits a pause that
/// doubles from 100 ms to 5 s: one log line per try, never a loop.
final class CommitPipeline {
  /// Ops the owner adds to a commit (claims), with what to do with their results.
  struct Extra {
    var ops: [StoreOp]
    /// Their results, in order, once committed.
    var committed: ([StoreOpResult]) -> Void
    /// The commit failed: none of them took effect.
    var failed: () -> Void
  }

  private struct Pending {
    var op: StoreOp
    var done: (StoreOpResult) -> Void

    var isSubmit: Bool {
      if case .submit = op { return true }
      return false
    }
  }

  let loop: any EventLoop
  private let logger: Logger
  /// Writes a batch in one transaction; its future completes on `loop`.
  private let write: ([StoreOp]) -> EventLoopFuture<[StoreOpResult]>
  /// Asked at the start of each commit for the ops to add to it.
  var extra: () -> Extra? = { nil }
  /// Whether the owner has ops to add (more claims): a commit follows this one if so.
  var wantsCommit: () -> Bool = { false }
  /// Runs after every commit's results are handed out (the owner flushes its replies).
  var afterCommit: () -> Void = {}
  /// Told how long each commit took, and whether it failed (the store's latency metric).
  var committed: (Duration, Bool) -> Void = { _, _ in }

  private var pending: [Pending] = []
  private(set) var committing = false
  private var queued = false
  /// Whether the last transaction took only the submits of what waited (`nextBatch`).
  private var submitsWentAhead = false
  /// The pause before the next commit after a failed one (0 after a success), and its timer.
  private(set) var backoffMs: Int64 = 0
  /// Why the last failed commit failed, and when (for `/readyz`, `recentFailure`).
  private var lastFailure: (message: String, at: NIODeadline)?
  private var retry: Scheduled<Void>?
  private var drained: EventLoopPromise<Void>?
  /// When the commit in flight started, and whether its slowness was said (`warnIfSlow`).
  private var commitStartedAt = NIODeadline.uptimeNanoseconds(0)
  private var saidSlow = false

  /// Says once (warning) that the commit in flight has taken longer than `limit`: a store
  /// that stops answering (its server frozen, a lock held elsewhere) showed nothing but a
  /// cluster standing still (found by a tester). True when it said so now.
  @discardableResult
  func warnIfSlow(after limit: TimeAmount) -> Bool {
    guard committing, !saidSlow, loop.now - commitStartedAt > limit else { return false }
    saidSlow = true
    logger.warning(
      "a store commit has not finished; the store may be stuck",
      metadata: ["waited_ms": "\((loop.now - commitStartedAt).nanoseconds / 1_000_000)"])
    return true
  }

  /// Why a commit failed within `window`, or nil. A store whose large commits fail while
  /// its small ones pass (a full disk, the WAL's own pages reused) flips back and forth; a
  /// probe sees it as not ready for the whole window, not for the moments between.
  func recentFailure(within window: TimeAmount) -> String? {
    guard let lastFailure, loop.now - lastFailure.at < window else { return nil }
    return lastFailure.message
  }

  init(loop: any EventLoop, logger: Logger, write: @escaping ([StoreOp]) -> EventLoopFuture<[StoreOpResult]>) {
    self.loop = loop
    self.logger = logger
    self.write = write
  }

  /// Adds an op to the next commit; `done` gets its result on the loop.
  func enqueue(_ op: StoreOp, _ done: @escaping (StoreOpResult) -> Void) {
    loop.preconditionInEventLoop()
    pending.append(Pending(op: op, done: done))
    queueCommit()
  }

  /// Runs a commit once the current burst of messages is handled, unless one is running
  /// (its completion starts the next) or a failed one's pause is not over.
  func queueCommit() {
    guard !committing, !queued, retry == nil else { return }
    queued = true
    loop.assumeIsolated().execute { self.commit() }
  }

  /// Succeeds once no commit is in flight and nothing waits (after a shutdown began, so
  /// the owner adds no more).
  func drain() -> EventLoopFuture<Void> {
    loop.preconditionInEventLoop()
    retry?.cancel()
    retry = nil
    if !committing && pending.isEmpty { return loop.makeSucceededVoidFuture() }
    let promise = drained ?? loop.makePromise(of: Void.self)
    drained = promise
    if !committing { queueCommit() }
    return promise.futureResult
  }

  private func commit() {
    queued = false
    guard !committing else { return }
    let extra = self.extra()
    let batch = nextBatch()
    let extraOps = extra?.ops ?? []
    guard !batch.isEmpty || !extraOps.isEmpty else {
      extra?.committed([])
      return finishDrain()
    }
    committing = true
    (commitStartedAt, saidSlow) = (loop.now, false)
    let ops = batch.map(\.op) + extraOps
    let started = ContinuousClock.now
    write(ops).assumeIsolated().whenComplete { result in
      if self.saidSlow {
        self.logger.notice(
          "the slow store commit ended",
          metadata: ["ms": "\((self.loop.now - self.commitStartedAt).nanoseconds / 1_000_000)"])
      }
      if case .failure = result {
        self.committed(ContinuousClock.now - started, true)
      } else {
        self.committed(ContinuousClock.now - started, false)
      }
      self.committing = false
      // The next commit starts before this one's results are handed out, with the ops that
      // arrived while it ran: the store writes it while this loop makes the replies (the
      // two took turns, each idle while the other worked). Those ops were built before this
      // commit ended either way; its claims see the credit this one's claims still reserve,
      // so they may be fewer (the store picks the tasks, so none is claimed twice).
      if case .success = result, !self.pending.isEmpty || (self.drained == nil && self.wantsCommit()) {
        self.commit()
      }
      switch result {
      case .success(let results):
        for (index, item) in batch.enumerated() { item.done(results[index]) }
        extra?.committed(Array(results[batch.count...]))
        self.backoffMs = 0
      case .failure(let error):
        let failure = (error as? HaatError) ?? HaatError(.unavailable, "\(error)")
        self.lastFailure = (failure.message, self.loop.now)
        for item in batch { item.done(.failed(failure)) }
        extra?.failed()
        self.backoffMs = min(max(self.backoffMs * 2, 100), 5_000)
        self.logger.error(
          "store commit failed; retrying",
          metadata: ["error": "\(failure.message)", "ops": "\(ops.count)", "retry_in_ms": "\(self.backoffMs)"])
        if self.drained == nil {
          self.retry = self.loop.assumeIsolated().scheduleTask(in: .milliseconds(self.backoffMs)) {
            self.retry = nil
            self.queueCommit()
          }
        }
      }
      self.afterCommit()
      if !self.pending.isEmpty || (self.drained == nil && self.wantsCommit()) {
        if self.retry == nil { self.queueCommit() }
      } else {
        self.finishDrain()
      }
    }
  }

  /// The ops of the next transaction: all that wait, except that submits waiting beside
  /// results and job ends go first, alone, and those follow in the next transaction, in
  /// their order. A submitter waits for its `accepted` (and a client with a window of them
  /// for the whole window); a transaction of 256 results with their job ends took twice as
  /// long as one of 256 submits, and submits that came in with them waited for both (1-task
  /// jobs: +11 % in six paired runs, 2026-12-04). The two kinds touch different rows (a
  /// result's task was leased in an earlier commit). At most every other transaction goes
  /// ahead, so results wait for one transaction at most; any other op pending keeps every op
  /// in its place.
  private func nextBatch() -> [Pending] {
    let batch = pending
    pending.removeAll(keepingCapacity: true)
    guard !submitsWentAhead, Self.submitsGoAhead(in: batch) else {
      submitsWentAhead = false
      return batch
    }
    submitsWentAhead = true
    pending = batch.filter { !$0.isSubmit }
    return batch.filter(\.isSubmit)
  }

  /// Whether `batch` holds submits beside results or job ends, and nothing else.
  private static func submitsGoAhead(in batch: [Pending]) -> Bool {
    var submits = 0
    for item in batch {
      switch item.op {
      case .submit: submits += 1
      case .complete, .fail, .expire, .release, .finishIfEnded, .finishJob: continue
      default: return false
      }
    }
    return submits > 0 && submits < batch.count
  }

  private func finishDrain() {
    guard let promise = drained, !committing, pending.isEmpty else { return }
    drained = nil
    promise.succeed()
  }
}
