import CStdio
import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatStore
import Logging
import NIOCore
import NIOPosix

/// Job counters, tasks waiting for their time, progress events and the end of a job.
extension CoordinatorCore {
  /// Updates memory after a committed task change.
  func apply(_ change: TaskChange) {
    guard let to = change.transition.newState else { return }
    metrics.transition(change.transition)
    var from = change.from
    if from == .ready, delayed.remove(change.task) { from = .scheduled }
    var target = to
    if from == .leased, to != .leased {
      smallJobs[change.task] = nil
      if let lease = leases[change.task], lease.attempt == change.attempt || change.transition == .cancelled {
        leases.remove(task: change.task)
      }
    }
    if case .retry = change.transition, change.notBeforeMs > nowMs {
      target = .scheduled
      addWaiting(change.task, job: change.job, pool: change.pool, notBeforeMs: change.notBeforeMs)
    } else if target == .ready {
      markWork(change.pool)
    }
    jobs[change.job]?.counts.move(from: from, to: target)
    if change.spawned > 0 {
      // A plan task's ranges, added in the commit that took its result.
      jobs[change.job]?.counts.ready += change.spawned
      markWork(change.pool)
    }
    jobChanged(change.job)
  }

  func markWork(_ pool: Pool) {
    scheduler.markWork(pool)
    commits.queueCommit()
  }

  func addWaiting(_ task: TaskID, job: JobID, pool: Pool, notBeforeMs: Int64) {
    if delayed.add(task, job: job, pool: pool, notBeforeMs: notBeforeMs, monotonicMs: monotonicMs, wallMs: nowMs) {
      armWaitTimer()
    }
  }

  func armWaitTimer() {
    waitTimer?.cancel()
    guard let next = delayed.nextDue else { return }
    let delay = max(0, next - monotonicMs)
    waitTimer = loop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) { self.wakeWaiting() }
  }

  func wakeWaiting() {
    for (_, entry) in delayed.release(upTo: monotonicMs) {
      jobs[entry.job]?.counts.move(from: .scheduled, to: .ready)
      markWork(entry.pool)
      jobChanged(entry.job)
    }
    armWaitTimer()
  }

  func jobChanged(_ id: JobID) {
    guard let job = jobs[id] else { return }
    if job.counts.open == 0 {
      finishIfEnded(id)
    } else if !job.watchers.isEmpty {
      scheduleEvent(job)
    }
  }

  /// Progress events go out at most every 100 ms per job.
  func scheduleEvent(_ job: ActiveJob) {
    guard !job.eventScheduled else { return }
    let since = now &- job.lastEvent
    let wait = since >= 100_000_000 ? 0 : Int64(100_000_000 - since)
    job.eventScheduled = true
    loop.assumeIsolated().scheduleTask(in: .nanoseconds(wait)) {
      job.eventScheduled = false
      guard self.jobs[job.id] === job else { return }
      job.lastEvent = self.now
      let event = self.event(job)
      for (connection, id) in job.watchers { self.outbox.reply(connection, to: id, .jobEvent(event)) }
      self.outbox.flush()
    }
  }

  func event(_ job: ActiveJob) -> Haat_V1_JobEvent {
    var event = Haat_V1_JobEvent()
    event.job = job.id.description
    event.state = JobRules.state(counts: job.counts, cancelled: job.cancelled, started: job.started).rawValue
    event.counts = WireMessages.message(job.counts)
    event.atMs = nowMs
    return event
  }

  /// A job's end as its read leaves it: reduced already (a small job), or read, to be
  /// reduced on the work pool.
  enum JobRead: Sendable {
    case reduced(Result<Reduced, any Error>)
    case read(Finishing, started: ContinuousClock.Instant)
  }
  /// A reduce's outcome with how long the early merges, the read and the reduce took.
  typealias Reduced = (JobReducer.Outcome, Duration, Duration, Duration)

  /// The most tasks, and bytes of partials, a job may have to be reduced right after it is
  /// read, on the store's side of the read rather than on the work pool.
  static let inlineReduce = (tasks: 16, bytes: 64 << 10)

  /// Whether a job of these outputs is within `inlineReduce`.
  static func reducesInline(_ outputs: [TaskOutput]) -> Bool {
    outputs.count <= inlineReduce.tasks
      && outputs.reduce(0, { $0 + ($1.partial?.count ?? 0) }) <= inlineReduce.bytes
  }

  /// Once every task of a job has ended, reduces its partials into the report (off the
  /// loop) and records the job's end. The jobs that end in one turn of the loop are read
  /// together: with 1-task jobs, one read per job cost more in thread hops than the reads.
  func finishIfEnded(_ id: JobID) {
    guard let job = jobs[id], job.counts.open == 0, !job.reducing else { return }
    job.reducing = true
    ending.append(job)
    guard ending.count == 1 else { return }
    loop.assumeIsolated().execute { self.finishEnded() }
  }

  /// What a job's end needs off the loop.
  private struct Ending: Sendable {
    var id: JobID
    var cancelled: Bool
    var early: EarlyReduce
  }

  /// Reads the jobs that ended, after their early merges, and reduces each.
  private func finishEnded() {
    let batch = ending
    ending.removeAll()
    let endings = batch.map { Ending(id: $0.id, cancelled: $0.cancelled, early: $0.early) }
    let store = self.store
    let waited = ContinuousClock.now
    @Sendable func reduce(_ ending: Ending, _ read: Finishing, _ started: ContinuousClock.Instant) -> Result<
      Reduced, any Error
    > {
      Result {
        let reduced = ContinuousClock.now
        let outcome = try JobReducer.reduce(
          read.job, outputs: read.outputs, cancelled: ending.cancelled, merged: ending.early.merged)
        return (outcome, started - waited, reduced - started, ContinuousClock.now - reduced)
      }
    }
    // The early merges first (a failed one leaves its task to the full read below).
    let merges = batch.compactMap { $0.merging?.recover { _ in } }
    EventLoopFuture.andAllComplete(merges, on: loop).flatMap {
      self.onStore { () -> [JobRead] in
        let started = ContinuousClock.now
        let read = try await store.finishing(endings.map(\.id))
        return endings.map { ending in
          guard let finishing = read[ending.id] else {
            return .reduced(.failure(HaatError(.notFound, "job \(ending.id) vanished")))
          }
          // A small job is reduced where its read landed: a hop to the work pool and back
          // would cost more than its reduce (a 1-task job's partial is a few hundred bytes).
          guard Self.reducesInline(finishing.outputs) else { return .read(finishing, started: started) }
          return .reduced(reduce(ending, finishing, started))
        }
      }
    }
    .assumeIsolated().whenComplete { result in
      switch result {
      case .success(let reads):
        for (job, (ending, read)) in zip(batch, zip(endings, reads)) {
          switch read {
          case .reduced(let reduced): self.recordEnd(job, reduced)
          case .read(let finishing, let started):
            job.reducedOffLoop = true
            self.offLoop { reduce(ending, finishing, started) }.assumeIsolated().whenComplete { result in
              self.recordEnd(job, result.flatMap { $0 })
            }
          }
        }
      case .failure(let error):
        for job in batch { self.recordEnd(job, .failure(error)) }
      }
    }
  }

  /// Records a job's end once reduced, and tells its watchers; retries a failed reduce or
  /// write a second later.
  private func recordEnd(_ job: ActiveJob, _ reduced: Result<Reduced, any Error>) {
    let id = job.id
    switch reduced {
    case .success(let (outcome, wait, read, reduce)):
      logger.debug(
        "job reduced",
        metadata: [
          "job": "\(id)", "early_wait_ms": "\(Self.milliseconds(wait))", "read_ms": "\(Self.milliseconds(read))",
          "reduce_ms": "\(Self.milliseconds(reduce))", "merged_early": "\(outcome.mergedEarly)",
          "decode_ms": "\(Self.milliseconds(outcome.timings.decode))",
          "merge_ms": "\(Self.milliseconds(outcome.timings.merge))",
          "encode_ms": "\(Self.milliseconds(outcome.timings.encode))",
        ])
      // A cancel that came while the report was being made (a clv fit can take minutes) is
      // the job's end, as it is for any job cancelled (JobRules): it said "cancelled", and
      // the job then ended succeeded.
      let state = job.cancelled ? JobState.cancelled : outcome.state
      let (report, error) = (outcome.report, outcome.error)
      enqueue(.finishJob(id, state: state, report: report, error: error)) { result in
        guard case .finished(_, let applied) = result, applied else {
          job.reducing = false
          if case .failed = result { self.retryFinish(id) }
          return
        }
        self.ended(job, state: state, error: error)
      }
    case .failure(let error):
      job.reducing = false
      logger.error("cannot reduce job; retrying", metadata: ["job": "\(id)", "error": "\(error)"])
      retryFinish(id)
    }
  }

  /// A job's end is recorded: it leaves memory and its watchers get the final event.
  func ended(_ job: ActiveJob, state: JobState, error: String) {
    jobs[job.id] = nil
    if job.reducedOffLoop {
      // glibc keeps what the reduce freed in its threads' arenas: the coordinator stayed at
      // 1.5 GiB idle after a 100,000-account job, 230 MiB once given back (found by a tester).
      _ = offLoop { cstdio_give_back_memory() }
    }
    logger.info("job ended", metadata: ["job": "\(job.id)", "state": "\(state.rawValue)"])
    var event = self.event(job)
    event.state = state.rawValue
    event.final = true
    event.message = error
    for (connection, requestID) in job.watchers {
      outbox.reply(connection, to: requestID, .jobEvent(event))
      connection.watches -= 1
    }
    job.watchers.removeAll()
    let after = job.afterEnd
    job.afterEnd.removeAll()
    for body in after { body() }
  }

  /// After a result that may end its small job: the job's end in the same commit
  /// (`StoreOp.finishIfEnded`), or, when the store did not record it, the usual read. A
  /// 1-task job's end is reduced here, from the result, when that is all its reduce would
  /// read (`reducedEnd`); the store then reads neither the job nor its outputs.
  func finishInCommit(of task: TaskID, result: (attempt: UInt32, partial: Data, stats: Data)? = nil) {
    guard let id = smallJobs[task], let job = jobs[id], job.counts.open == 1, !job.cancelled, !job.reducing
    else { return }
    job.reducing = true
    let ending = result.flatMap { Self.reducedEnd(of: job, task: task, $0) } ?? .read(Self.reduceInCommit)
    enqueue(.finishIfEnded(id, ending: ending)) { result in
      guard case .ended(_, let end) = result else {
        job.reducing = false
        return self.finishIfEnded(id)
      }
      self.logger.debug("job reduced in its last result's commit", metadata: ["job": "\(id)"])
      self.ended(job, state: end.state, error: end.error)
    }
  }

  /// The largest partial a 1-task job's end is reduced from on the loop, which every
  /// session's messages wait for; a larger one is reduced in the store's transaction.
  static let reducedEndBytes = 16 << 10

  /// A 1-task job's end made from the result that ends it, when the result answers the
  /// task's first lease: a later attempt's task may carry an earlier attempt's error, which
  /// only the store has (and which the report shows). Nil leaves the reduce to the store.
  static func reducedEnd(
    of job: ActiveJob, task: TaskID, _ result: (attempt: UInt32, partial: Data, stats: Data)
  ) -> JobEnding? {
    guard result.attempt == 1, job.counts.total == 1, let only = job.onlyTask,
      result.partial.count <= reducedEndBytes
    else { return nil }
    let output = TaskOutput(
      task: task, index: 0, source: only.source, state: .done, partial: result.partial, stats: result.stats,
      lastError: nil)
    guard let outcome = try? JobReducer.reduce(job.id, reports: only.reports, runs: [[output]], cancelled: false)
    else { return nil }
    return .reduced(JobEnd(state: outcome.state, report: outcome.report, error: outcome.error))
  }

  /// A small job's reduce, run in the store's transaction; nil for a job past the bound of
  /// `inlineReduce` (the store declines, and the usual read follows).
  @Sendable static func reduceInCommit(_ read: Finishing) -> JobEnd? {
    guard reducesInline(read.outputs),
      let outcome = try? JobReducer.reduce(read.job, outputs: read.outputs, cancelled: false)
    else { return nil }
    return JobEnd(state: outcome.state, report: outcome.report, error: outcome.error)
  }

  /// Merges a done task's stored partial into its job's early reduce, after the merges
  /// before it, on `work`.
  func reduceEarly(_ id: JobID, task: TaskID, partial: Data) {
    guard let job = jobs[id], !job.reducing else { return }
    let early = job.early
    job.merging = (job.merging ?? loop.makeSucceededVoidFuture()).recover { _ in }.flatMap {
      self.offLoop { early.merge(task, stored: partial) }
    }
  }

  static func milliseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
  }

  /// Reduces and records a job's end again later: its read or write failed (a full disk).
  func retryFinish(_ id: JobID) {
    loop.assumeIsolated().scheduleTask(in: .seconds(1)) { self.finishIfEnded(id) }
  }
}
