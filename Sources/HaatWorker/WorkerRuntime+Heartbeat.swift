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

  func beat() {
    guard channel != nil else { return }
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
    send(Envelope(id: nextID(), .heartbeat(heartbeat)))
    flush()
  }
}
