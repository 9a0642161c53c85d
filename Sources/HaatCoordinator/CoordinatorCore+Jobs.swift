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
    var from = change.from
    if from == .ready, waiting.removeValue(forKey: change.task) != nil { from = .scheduled }
    var target = to
    if from == .leased, to != .leased {
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
    jobChanged(change.job)
  }

  func markWork(_ pool: Pool) {
    poolHasWork.insert(pool)
    workGeneration[pool, default: 0] &+= 1
    queueCommit()
  }

  /// Milliseconds on the monotonic clock.
  var monotonicMs: Int64 { Int64(now / 1_000_000) }

  func addWaiting(_ task: TaskID, job: JobID, pool: Pool, notBeforeMs: Int64) {
    let due = monotonicMs + max(0, notBeforeMs - nowMs)
    waiting[task] = (due, notBeforeMs, job, pool)
    let earliest = waitHeap.peek()?.at
    waitHeap.push(at: due, task: task)
    if earliest == nil || due < earliest ?? .max { armWaitTimer() }
  }

  func armWaitTimer() {
    waitTimer?.cancel()
    guard let next = waitHeap.peek() else { return }
    let delay = max(0, next.at - monotonicMs)
    waitTimer = loop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) { self.wakeWaiting() }
  }

  func wakeWaiting() {
    let nowMs = monotonicMs
    while let next = waitHeap.peek(), next.at <= nowMs {
      waitHeap.pop()
      // A stale heap entry (the task moved on) is skipped.
      guard let entry = waiting[next.task], entry.due == next.at else { continue }
      waiting[next.task] = nil
      dueWatermarkMs = max(dueWatermarkMs, entry.notBeforeMs)
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
      for (connection, id) in job.watchers { self.reply(connection, to: id, .jobEvent(event)) }
      self.flush()
    }
  }

  func event(_ job: ActiveJob) -> Haat_V1_JobEvent {
    var event = Haat_V1_JobEvent()
    event.job = job.id.description
    event.state = JobRules.state(counts: job.counts, cancelled: job.cancelled, started: job.started).rawValue
    event.counts = Self.message(job.counts)
    event.atMs = nowMs
    return event
  }

  /// Once every task of a job has ended, reduces its partials into the report (off the
  /// loop) and records the job's end.
  func finishIfEnded(_ id: JobID) {
    guard let job = jobs[id], job.counts.open == 0, !job.reducing else { return }
    job.reducing = true
    let store = self.store
    let cancelled = job.cancelled
    readers.runIfActive(eventLoop: loop) { try Self.reduce(id, store: store, cancelled: cancelled) }
      .assumeIsolated().whenComplete { result in
        switch result {
        case .success(let (state, report, error)):
          self.enqueue(.finishJob(id, state: state, report: report, error: error)) { result in
            guard case .finished(_, let applied) = result, applied else {
              job.reducing = false
              if case .failed = result { self.retryFinish(id) }
              return
            }
            self.jobs[id] = nil
            self.logger.info("job ended", metadata: ["job": "\(id)", "state": "\(state.rawValue)"])
            var event = self.event(job)
            event.state = state.rawValue
            event.final = true
            event.message = error
            for (connection, requestID) in job.watchers {
              self.reply(connection, to: requestID, .jobEvent(event))
              connection.watches -= 1
            }
            job.watchers.removeAll()
          }
        case .failure(let error):
          job.reducing = false
          self.logger.error("cannot reduce job; retrying", metadata: ["job": "\(id)", "error": "\(error)"])
          self.retryFinish(id)
        }
      }
  }

  /// Reduces and records a job's end again later: its read or write failed (a full disk).
  func retryFinish(_ id: JobID) {
    loop.assumeIsolated().scheduleTask(in: .seconds(1)) { self.finishIfEnded(id) }
  }

  /// Merges exactly one partial per done task; says which sources are missing.
  static func reduce(_ job: JobID, store: any JobStore, cancelled: Bool) throws -> (JobState, Data, String) {
    guard let record = try store.job(job, tasks: false, nowMs: 0) else {
      throw HaatError(.notFound, "job \(job) vanished")
    }
    let outputs = try store.outputs(of: job)
    var counts = TaskCounts()
    var unreadable: [String] = []
    let results = outputs.map { output -> ReportReducer.TaskResult in
      counts[output.state] += 1
      var partial: Partial?
      // Empty means no partial (no-op tasks store none).
      if let data = output.partial, !data.isEmpty {
        // A stored partial that no longer decodes must not vanish from the report unseen.
        do {
          partial = try Partial(jsonUTF8Data: data, options: WireCodec.decodingOptions)
        } catch {
          unreadable.append(output.task.description)
        }
      }
      return ReportReducer.TaskResult(
        task: output.task.description, source: output.source, done: output.state == .done,
        partial: partial,
        stats: output.stats.flatMap { try? TaskStats(jsonUTF8Data: $0, options: WireCodec.decodingOptions) },
        error: output.lastError.map(ErrorInfo.init)
          ?? (output.state == .cancelled ? ErrorInfo(code: "cancelled", message: "the job was cancelled") : nil))
    }
    let reports = record.reports.compactMap(ReportName.init(rawValue:))
    var state = JobRules.state(counts: counts, cancelled: cancelled, started: true)
    var error = ""
    if counts.dead > 0, let first = outputs.first(where: { $0.state == .dead }), let cause = first.lastError {
      error =
        "\(counts.dead) of \(counts.total) tasks are dead; first: \(first.source): \(cause.code): \(cause.message)"
    }
    let report: Report
    do {
      report = try ReportReducer.reduce(job: job.description, reports: reports, tasks: results)
      if !unreadable.isEmpty {
        state = .failed
        error = "internal: the stored results of tasks \(unreadable.prefix(5).joined(separator: ", ")) are unreadable"
      }
    } catch let overflow {
      // Sums that pass 2^64 − 1 make no report: the job fails and says why.
      state = .failed
      report =
        (try? ReportReducer.reduce(job: job.description, reports: [], tasks: results))
        ?? Report.with { $0.job = job.description }
      error = "\(overflow.code.rawValue): \(overflow.message)"
    }
    return (state, try report.jsonUTF8Data(options: WireCodec.encodingOptions), error)
  }
}
