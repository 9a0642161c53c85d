import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatStore
import Logging
import NIOCore
import NIOPosix

/// Group commit: every write of a burst in one transaction, with claims for waiting credit.
extension CoordinatorCore {
  func enqueue(_ op: StoreOp, _ done: @escaping (StoreOpResult) -> Void) {
    pending.append(PendingOp(op: op, done: done))
    queueCommit()
  }

  /// Runs a commit once the current burst of messages is handled, unless one is running
  /// (its completion starts the next).
  func queueCommit() {
    guard !committing, !commitQueued, commitRetry == nil else { return }
    commitQueued = true
    loop.assumeIsolated().execute { self.commit() }
  }

  struct Claim {
    var connection: Connection
    var pool: Pool
    var limit: Int
    var generation: UInt64
  }

  func commit() {
    commitQueued = false
    guard !committing else { return }
    var claims: [Claim] = []
    if accepting {
      // Spread scarce work: each worker with credit claims a fair share of it in this
      // commit (what is left goes in the next), and the first in line rotates.
      let eligible = workerConnections.values.filter { $0.open && !$0.draining }.sorted { $0.name < $1.name }
      claimRotation &+= 1
      let start = eligible.isEmpty ? 0 : claimRotation % eligible.count
      let ordered = Array(eligible[start...] + eligible[..<start])
      for pool in Pool.allCases where poolHasWork.contains(pool) {
        let wanting = ordered.filter { $0.credit[pool, default: 0] > $0.reserved[pool, default: 0] }
        for connection in wanting {
          let available = connection.credit[pool, default: 0] - connection.reserved[pool, default: 0]
          let share = (available + wanting.count - 1) / wanting.count
          connection.reserved[pool, default: 0] += share
          claims.append(
            Claim(connection: connection, pool: pool, limit: share, generation: workGeneration[pool, default: 0]))
        }
      }
    }
    let batch = pending
    pending.removeAll(keepingCapacity: true)
    guard !batch.isEmpty || !claims.isEmpty else {
      drainPromise?.succeed()
      drainPromise = nil
      return
    }
    committing = true
    let dueMs = claimCutoffMs
    let ops =
      batch.map(\.op) + claims.map { .claim(owner: $0.connection.name, pool: $0.pool, limit: $0.limit, dueMs: dueMs) }
    let store = self.store
    let nowMs = self.nowMs
    writer.runIfActive(eventLoop: loop) { try store.apply(ops, nowMs: nowMs) }
      .assumeIsolated().whenComplete { result in
        self.committing = false
        switch result {
        case .success(let results):
          for (index, item) in batch.enumerated() { item.done(results[index]) }
          for (index, claim) in claims.enumerated() {
            self.deliver(claim, results[batch.count + index])
          }
          self.commitBackoffMs = 0
        case .failure(let error):
          let failure = (error as? HaatError) ?? HaatError(.unavailable, "\(error)")
          for item in batch { item.done(.failed(failure)) }
          for claim in claims { claim.connection.reserved[claim.pool, default: 0] -= claim.limit }
          // A store that cannot commit (a full disk, say) is tried again after a pause that
          // doubles to 5 s, not in a loop: one log line per try.
          self.commitBackoffMs = min(max(self.commitBackoffMs * 2, 100), 5_000)
          self.logger.error(
            "store commit failed; retrying",
            metadata: [
              "error": "\(failure.message)", "ops": "\(ops.count)", "retry_in_ms": "\(self.commitBackoffMs)",
            ])
          self.commitRetry = self.loop.assumeIsolated().scheduleTask(in: .milliseconds(self.commitBackoffMs)) {
            self.commitRetry = nil
            self.queueCommit()
          }
        }
        self.flush()
        if !self.pending.isEmpty || self.hasClaimableCredit {
          self.queueCommit()
        } else if let promise = self.drainPromise {
          self.drainPromise = nil
          promise.succeed()
        }
      }
  }

  /// What a claim may take: tasks due by the wall clock, but none still waiting on the
  /// monotonic timer (a clock stepped forward must not hurry them), and every task the timer
  /// released (a clock stepped back must not delay them).
  var claimCutoffMs: Int64 {
    var cutoff = nowMs
    if let next = waitHeap.peek(), let entry = waiting[next.task], entry.due == next.at {
      cutoff = min(cutoff, entry.notBeforeMs - 1)
    }
    return max(cutoff, dueWatermarkMs)
  }

  var hasClaimableCredit: Bool {
    guard accepting else { return false }
    return workerConnections.values.contains { connection in
      connection.open && !connection.draining
        && connection.credit.contains { pool, credit in
          poolHasWork.contains(pool) && credit > connection.reserved[pool, default: 0]
        }
    }
  }

  func deliver(_ claim: Claim, _ result: StoreOpResult) {
    let connection = claim.connection
    connection.reserved[claim.pool, default: 0] -= claim.limit
    guard case .claimed(let tasks) = result else { return }
    if tasks.count < claim.limit, workGeneration[claim.pool, default: 0] == claim.generation {
      poolHasWork.remove(claim.pool)
    }
    let now = self.now
    let expires = nowMs + Int64(config.leaseMs)
    for task in tasks {
      let from: TaskState = waiting.removeValue(forKey: task.task) != nil ? .scheduled : .ready
      if let job = jobs[task.job] {
        job.counts.move(from: from, to: .leased)
        if task.startedJob { job.started = true }
      }
      guard connection.open, workerConnections[connection.name] === connection else {
        // The worker left during the commit: undo the claim; it never ran.
        enqueue(.release(task: task.task, attempt: task.attempt)) { result in
          if case .changed(let change) = result { self.apply(change) }
        }
        continue
      }
      leases.grant(task: task.task, attempt: task.attempt, owner: connection.name, now: now)
      connection.credit[claim.pool, default: 0] -= 1
      send(line: Self.assignLine(task, expires: expires, allocator: connection.channel.allocator), to: connection)
    }
    for job in Set(tasks.map(\.job)) { jobChanged(job) }
  }

  /// The `assign` line, with the task spec spliced in as the store holds it: the planner
  /// wrote it as the TaskSpec's wire JSON, so decoding and re-encoding it for every assign
  /// would only cost time. Every other field is a number or a known word.
  static func assignLine(_ task: ClaimedTask, expires: Int64, allocator: ByteBufferAllocator) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: 160 + task.spec.count)
    buffer.writeString(#"{"assign":{"task":""#)
    buffer.writeString(task.task.description)
    buffer.writeString(#"","attempt":"#)
    buffer.writeString(String(task.attempt))
    buffer.writeString(#","lease_expires_ms":""#)
    buffer.writeString(String(expires))
    buffer.writeString(#"","spec":"#)
    if task.spec.isEmpty { buffer.writeString("{}") } else { buffer.writeBytes(task.spec) }
    buffer.writeString(#","pool":""#)
    buffer.writeString(task.pool.rawValue)
    buffer.writeString(#"","job":""#)
    buffer.writeString(task.job.description)
    buffer.writeString("\"}}\n")
    return buffer
  }
}
