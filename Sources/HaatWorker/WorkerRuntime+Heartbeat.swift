import HaatCore
import HaatProtocol
import NIOCore

/// Heartbeats: the leases held and their progress, and the coordinator's revocations.
extension WorkerRuntime {
  func receiveHeartbeatAck(_ ack: Haat_V1_HeartbeatAck) {
    for ref in ack.revoked {
      guard var task = running[ref.task], task.attempt == ref.attempt, !task.revoked else { continue }
      task.revoked = true
      task.progress.cancel.cancel()
      running[ref.task] = task
      logger.notice("lease revoked; stopping the task", metadata: ["task": "\(ref.task)", "attempt": "\(ref.attempt)"])
    }
  }

  /// How long a heartbeat on the wire may go with no line from the coordinator before the
  /// worker gives up on the session: as many heartbeats as make a worker `lost` to the
  /// coordinator, 5 s at least.
  var silenceLimit: TimeAmount {
    .milliseconds(max(5_000, Int64(welcome?.heartbeatMs ?? 0) * Int64(Defaults.missedBeatsForLost)))
  }

  func beat() {
    guard let channel else { return }
    // The coordinator answers every heartbeat. One that stopped (a dead host, a partition,
    // a frozen process whose standby took over) keeps the socket open until the kernel
    // gives up, many minutes on: the worker leaves it for the next coordinator instead
    // (found by a tester: the new active had no workers while the old one's sessions lived).
    if let since = unansweredSince, NIODeadline.now() - since > silenceLimit + partsAllowance {
      logger.warning(
        "the coordinator has not answered for \((NIODeadline.now() - since).nanoseconds / 1_000_000) ms; leaving the session",
        metadata: ["coordinator": "\(coordinator)"])
      unansweredSince = nil
      channel.close(promise: nil)
      return
    }
    var heartbeat = Haat_V1_Heartbeat()
    heartbeat.health = health()
    heartbeat.leases = running.compactMap { task, state in
      guard !state.revoked else { return nil }
      var lease = Haat_V1_LeaseProgress()
      lease.task = task
      lease.attempt = state.attempt
      lease.rows = state.progress.rows.load(ordering: .relaxed)
      lease.bytes = state.progress.bytes.load(ordering: .relaxed)
      return lease
    }
    // A finished result the coordinator has not stored yet (a full disk, say) keeps its
    // lease alive, so it is not run again while it waits to be resent.
    for (task, result) in unacked where running[task] == nil {
      guard case .complete(let complete) = result else { continue }
      var lease = Haat_V1_LeaseProgress()
      lease.task = task
      lease.attempt = complete.attempt
      heartbeat.leases.append(lease)
    }
    for (task, var state) in running {
      let bytes = state.progress.bytes.load(ordering: .relaxed)
      if bytes > state.lastBytes {
        lastProgressMs = nowMs
        state.lastBytes = bytes
        running[task] = state
      }
    }
    // Timed from when it is written out, not queued: behind a large result in parts it
    // may wait on this side for as long as the coordinator takes to read them.
    let written = loop.makePromise(of: Void.self)
    channel.write(Envelope(id: nextID(), .heartbeat(heartbeat)), promise: written)
    written.futureResult.assumeIsolated().whenSuccess {
      if self.channel === channel, self.unansweredSince == nil { self.unansweredSince = .now() }
    }
    flush()
  }
}
