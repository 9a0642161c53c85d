import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatStore
import Logging
import NIOCore
import NIOPosix

/// Retention, forgotten workers and the lease reaper.
extension CoordinatorCore {
  /// Hourly: deletes jobs past retention, and forgets workers long gone.
  func keepHouse() {
    if config.retainMs > 0 {
      prune(endedBeforeMs: nowMs - config.retainMs) { result in
        if case .success(let (jobs, tasks)) = result, jobs > 0 {
          self.logger.notice("jobs past retention deleted", metadata: ["jobs": "\(jobs)", "tasks": "\(tasks)"])
        }
      }
    }
    let cutoff = nowMs - config.forgetWorkersAfterMs
    for (name, record) in workers
    where !record.connected && record.lastHeartbeatMs < cutoff && leases.count(of: name) == 0 {
      workers[name] = nil
    }
  }

  /// Deletes ended jobs in batches of 1,000 until none is left, then gives the space back.
  func prune(
    endedBeforeMs: Int64, total: (jobs: Int, tasks: Int) = (0, 0),
    _ done: @escaping (Result<(jobs: Int, tasks: Int), HaatError>) -> Void
  ) {
    enqueue(.prune(endedBeforeMs: endedBeforeMs, limit: 1_000)) { result in
      switch result {
      case .pruned(let jobs, let tasks):
        let sum = (total.jobs + jobs, total.tasks + tasks)
        if jobs == 1_000 { return self.prune(endedBeforeMs: endedBeforeMs, total: sum, done) }
        let store = self.store
        // Space back to the file system, off the loop; a failure here loses nothing.
        self.onStore { try await store.reclaim() }
          .assumeIsolated().whenComplete { _ in done(.success(sum)) }
      case .failed(let error):
        done(.failure(error))
      default:
        done(.failure(HaatError(.internal, "unexpected store result for prune")))
      }
    }
  }

  /// Leases past their deadline count as a failed, retryable attempt. A connected worker
  /// that falls silent is said once (warning): a stopped process or a frozen host keeps its
  /// socket open, so nothing else is logged until its leases expire.
  func reap() {
    // A sweep more than a second late means this process did not run (SIGSTOP, a frozen
    // VM, a swap storm, a loop held by long work): the workers' heartbeats wait unread in
    // its sockets, so that time is not theirs. It is added to every lease and heartbeat,
    // and nothing is judged until the next sweep, after the waiting lines are read (a
    // tester's coordinator, resumed after 70 s, expired every lease of healthy workers).
    let late = now &- lastReap
    lastReap = now
    if late > reapPeriodNs &+ 1_000_000_000 {
      leases.postpone(by: late, now: now)
      for name in workers.keys {
        workers[name]?.postpone(by: late, now: now)
      }
      logger.warning(
        "the coordinator did not run for a while; leases and heartbeats are extended by as much",
        metadata: ["paused_ms": "\(late / 1_000_000)"])
      return
    }
    commits.warnIfSlow(after: .seconds(10))
    for (name, record) in workers
    where record.connected && !record.draining && !record.saidLost
      && record.silent(now: now, heartbeatMs: config.heartbeatMs)
    {
      workers[name]?.saidLost = true
      logger.warning(
        "worker lost: no heartbeat",
        metadata: [
          "worker": "\(name)", "silent_ms": "\((now &- record.lastHeartbeat) / 1_000_000)",
          "leases": "\(leases.count(of: name))",
        ])
    }
    // A lease whose result has arrived and is being stored holds until then. The others
    // are out of the table while their expiry is written (so the next sweep does not send
    // them twice), and back in when the write fails, so none is stranded as leased.
    let resultsInFlight = self.resultsInFlight
    for lease in leases.reap(now: now, held: { resultsInFlight.contains($0) }) {
      logger.notice(
        "lease expired", metadata: ["task": "\(lease.task)", "attempt": "\(lease.attempt)", "worker": "\(lease.owner)"])
      enqueue(.expire(task: lease.task, attempt: lease.attempt)) { result in
        switch result {
        case .changed(let change):
          if change.transition.newState != nil { self.metrics.leaseExpiries.increment() }
          self.apply(change)
        case .failed(let error) where error.code == .unavailable: self.leases.restore(lease)
        default: break
        }
      }
    }
  }
}
