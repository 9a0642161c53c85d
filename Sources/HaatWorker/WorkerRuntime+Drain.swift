import Foundation
import HaatCore
import HaatFetch
import HaatProtocol
import Logging
import NIOCore
import NIOPosix

/// Health reports, log shipping and draining: the worker runtime's edges.
extension WorkerRuntime {
  func health() -> WorkerHealth {
    var health = WorkerHealth()
    health.pools = config.slots.sorted { $0.key.rawValue < $1.key.rawValue }.map { pool, slots in
      var state = Haat_V1_PoolState()
      state.pool = pool.rawValue
      state.slots = UInt32(slots)
      state.busy = UInt32(clamping: max(0, slots - (free[pool] ?? 0)))
      return state
    }
    health.rssBytes = ProcessStats.residentBytes()
    health.cpuSeconds = ProcessStats.cpuSeconds()
    health.openConnections = UInt32(clamping: running.count)
    health.lastProgressMs = lastProgressMs
    health.tasksDone = tasksDone
    health.tasksFailed = tasksFailed
    health.fetchErrors = fetchErrors
    health.draining = draining
    health.logsDropped = logsDropped
    return health
  }

  // MARK: Logs

  /// Ships a log line now, or keeps it (bounded) until the coordinator is reachable.
  func ship(_ line: Haat_V1_Log) {
    if channel != nil {
      send(Envelope(.log(line)))
      flush()
      return
    }
    if logBuffer.count >= config.logBuffer {
      logBuffer.removeFirst()
      logsDropped += 1
    }
    logBuffer.append(line)
  }

  // MARK: Drain

  /// Takes nothing new, finishes (or, after the drain timeout, fails back) what it holds,
  /// waits for the acknowledgements, then completes `done`.
  func startDrain(exit: Bool) {
    exitAfterDrain = exit || exitAfterDrain
    guard !draining else {
      checkDrained()
      return
    }
    draining = true
    logger.notice("draining", metadata: ["running": "\(running.count)", "unacknowledged": "\(unacked.count)"])
    send(Envelope(.drain(.with { $0.reason = "worker \(config.name) is shutting down" })))
    flush()
    drainTimer = loop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(config.drainTimeoutMs))) {
      // Out of time: stop the transfers; each fails back as retryable.
      self.drainTimedOut = true
      for task in self.running.values { task.progress.cancel.cancel() }
      self.loop.assumeIsolated().scheduleTask(in: .seconds(5)) { self.finishDrain() }
    }
    checkDrained()
  }

  func checkDrained() {
    guard draining, exitAfterDrain, running.isEmpty else { return }
    if unacked.isEmpty || channel == nil { finishDrain() }
  }

  func finishDrain() {
    guard !stopping else { return }
    stopping = true
    drainTimer?.cancel()
    heartbeat?.cancel()
    if !unacked.isEmpty {
      logger.warning(
        "results not acknowledged before exit; their leases will expire and be retried",
        metadata: ["count": "\(unacked.count)"])
    }
    logger.notice("drained", metadata: ["done": "\(tasksDone)", "failed": "\(tasksFailed)"])
    // Closed on the loop's next turn: the lines just logged are shipped from tasks already
    // queued on it, and found no connection when it was closed in this turn (`draining` and
    // `drained` never reached `haat logs`).
    loop.assumeIsolated().execute {
      let channel = self.channel
      self.channel = nil
      if let channel {
        channel.close().assumeIsolated().whenComplete { _ in self.done.succeed() }
      } else {
        self.done.succeed()
      }
    }
  }
}
