import Foundation
import HaatCore
import HaatProtocol
import HaatStore
import NIOCore

/// Claims: every commit takes ready tasks for the workers with free credit, and the
/// committed claims go out as `assign` lines.
extension CoordinatorCore {
  func enqueue(_ op: StoreOp, _ done: @escaping (StoreOpResult) -> Void) {
    commits.enqueue(op, done)
  }

  /// The claims to add to the next commit (the scheduler's plan, credit reserved until it
  /// commits), or nil when nothing may be claimed.
  func claims() -> CommitPipeline.Extra? {
    guard accepting else { return nil }
    let now = self.now
    let candidates = workerConnections.values.filter { takesWork($0, now: now) }.map { connection in
      ClaimScheduler.Candidate(name: connection.name, free: free(connection))
    }
    let planned = scheduler.plan(candidates, maxTasks: config.claimsPerCommit)
    guard !planned.isEmpty else { return nil }
    let claims = planned.compactMap { claim in workerConnections[claim.worker].map { (claim, $0) } }
    for (claim, connection) in claims { connection.reserved[claim.pool, default: 0] += claim.limit }
    let dueMs = delayed.claimCutoff(wallMs: nowMs)
    return CommitPipeline.Extra(
      ops: claims.map { claim, _ in .claim(owner: claim.worker, pool: claim.pool, limit: claim.limit, dueMs: dueMs) },
      committed: { results in
        for (index, (claim, connection)) in claims.enumerated() { self.deliver(claim, to: connection, results[index]) }
      },
      failed: {
        for (claim, connection) in claims { connection.reserved[claim.pool, default: 0] -= claim.limit }
      })
  }

  /// Free credit of a worker: credit less what claims in flight reserved.
  func free(_ connection: Connection) -> [Pool: Int] {
    var free = connection.credit
    for (pool, reserved) in connection.reserved { free[pool, default: 0] -= reserved }
    return free
  }

  var hasClaimableCredit: Bool {
    guard accepting else { return false }
    let now = self.now
    return workerConnections.values.contains { connection in
      takesWork(connection, now: now) && scheduler.wants(free(connection))
    }
  }

  /// Whether a worker may be given tasks: connected, not draining, and heard from (a
  /// heartbeat or any other line) within the bound that makes it `lost`. A stopped process
  /// keeps its socket open and its credit; a task sent to it would wait out a whole lease
  /// and spend an attempt. Its next heartbeat or line makes it eligible again.
  func takesWork(_ connection: Connection, now: UInt64) -> Bool {
    guard connection.open, !connection.draining else { return false }
    guard let record = workers[connection.name], record.silent(now: now, heartbeatMs: config.heartbeatMs) else {
      return true
    }
    return now &- connection.lastHeard <= UInt64(config.heartbeatMs) * UInt64(Defaults.missedBeatsForLost) * 1_000_000
  }

  func deliver(_ claim: ClaimScheduler.Claim, to connection: Connection, _ result: StoreOpResult) {
    connection.reserved[claim.pool, default: 0] -= claim.limit
    guard case .claimed(let tasks) = result else { return }
    scheduler.claimed(claim, taken: tasks.count)
    metrics.dispatched(tasks.count, pool: claim.pool)
    let now = self.now
    let expires = nowMs + Int64(config.leaseMs)
    // A worker idle for a while that takes work has made no progress on it yet, not for
    // the whole idle time: `stalled` counts from here.
    if !tasks.isEmpty, connection.open, leases.count(of: connection.name) == 0 {
      workers[connection.name]?.lastProgress = now
    }
    for task in tasks {
      let from: TaskState = delayed.remove(task.task) ? .scheduled : .ready
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
      let line = WireMessages.assignLine(task, expires: expires, allocator: connection.channel.allocator)
      // The limit counts a line without its line break, in both directions.
      guard line.readableBytes - 1 <= connection.maxLineBytes else {
        refuseOversizedAssign(task, bytes: line.readableBytes - 1, to: connection)
        continue
      }
      leases.grant(
        task: task.task, attempt: task.attempt, owner: connection.name, now: now,
        rate: Self.rateLimit(ofSpec: task.spec))
      if let job = jobs[task.job], job.counts.total <= Self.inlineReduce.tasks { smallJobs[task.task] = task.job }
      connection.credit[claim.pool, default: 0] -= 1
      outbox.send(line: line, to: connection)
    }
    for job in Set(tasks.map(\.job)) { jobChanged(job) }
  }

  /// An `assign` longer than the worker's line limit would make it close the session (and
  /// take the task again on reconnect, forever): the task dies instead, saying why. Its
  /// spec (a source URL of tens of kilobytes, say) is what is too large, on any worker.
  func refuseOversizedAssign(_ task: ClaimedTask, bytes: Int, to connection: Connection) {
    let error = TaskError(
      code: "too_large",
      message:
        "its assign would be \(bytes) bytes, over worker \(connection.name)'s line limit of \(connection.maxLineBytes): the task's spec is too large to send"
    )
    logger.warning(
      "a task's assign is over its worker's line limit; the task is dead",
      metadata: ["task": "\(task.task)", "worker": "\(connection.name)", "bytes": "\(bytes)"])
    enqueue(
      .fail(
        task: task.task, attempt: task.attempt, worker: connection.name, error: error, retryable: false,
        retryAfterMs: 0, stats: Data())
    ) { result in
      if case .changed(let change) = result { self.apply(change) }
    }
  }

  /// The `rate_key` and `requests_per_second` of a stored task spec (its JSON), or "" and 0
  /// when it has none. Decoded only when the spec names the field: most tasks make no
  /// rate-governed request, and a scan of a few hundred bytes is all an assign of theirs pays.
  static func rateLimit(ofSpec spec: Data) -> (key: String, perSecond: Double) {
    let field = rateKeyField
    let found = spec.withUnsafeBytes { bytes -> Bool in
      guard bytes.count >= field.count else { return false }
      // `"r` is rare in a spec's JSON: the whole name is compared only there.
      for start in 0...(bytes.count - field.count) where bytes[start] == field[0] && bytes[start + 1] == field[1] {
        if bytes[start..<(start + field.count)].elementsEqual(field) { return true }
      }
      return false
    }
    guard found, let decoded = try? TaskSpec(jsonUTF8Data: spec, options: WireCodec.decodingOptions) else {
      return ("", 0)
    }
    return (decoded.rateKey, decoded.requestsPerSecond)
  }

  private static let rateKeyField = Array(#""rate_key""#.utf8)
}
