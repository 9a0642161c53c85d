import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatRecords
import HaatStore
import Logging
import NIOCore
import NIOPosix

/// Worker sessions: credit, heartbeats, results in one line or in parts, failures, logs.
extension CoordinatorCore {
  func receiveCredit(_ credit: Haat_V1_Credit, from connection: Connection) {
    guard let pool = Pool(rawValue: credit.pool) else {
      return outbox.replyError(
        connection, to: "", HaatError(.badRequest, "unknown pool \"\(credit.pool)\"", field: "pool"))
    }
    connection.credit[pool, default: 0] += Int(credit.free)
    commits.queueCommit()
  }

  /// A heartbeat's answer, made on the session's own loop (it touches only the shared
  /// lease table and the configuration): heartbeats never wait behind the core's work.
  func answerHeartbeat(_ heartbeat: Haat_V1_Heartbeat, worker: String) -> Result<
    Haat_V1_HeartbeatAck, HaatError
  > {
    guard heartbeat.leases.count <= Defaults.maxListItems else {
      return .failure(
        HaatError(
          .badRequest, "a heartbeat lists \(heartbeat.leases.count) leases; at most \(Defaults.maxListItems)",
          field: "leases"))
    }
    // A task id as assign wrote it: any other text would only be echoed back, revoked.
    if let index = heartbeat.leases.firstIndex(where: { TaskID($0.task) == nil }) {
      return .failure(
        HaatError(
          .badRequest, "leases[\(index)].task is not a task id (a decimal number, as assign sent it)",
          field: "leases[\(index)].task"))
    }
    var ack = leases.heartbeat(heartbeat.leases, owner: worker, now: now)
    ack.leaseExpiresMs = nowMs + Int64(config.leaseMs)
    return .success(ack)
  }

  /// The health heartbeats reported (they were answered on their sessions' loops), for
  /// the workers whose session they came on is still the current one.
  func recordHeartbeats(_ beats: [HealthBoard.Beat]) {
    loop.preconditionInEventLoop()
    for beat in beats where workerConnections[beat.connection.name] === beat.connection {
      guard var record = workers[beat.connection.name] else { continue }
      // A worker heard from again after it fell silent may take tasks again.
      let wasSilent = record.silent(now: beat.now, heartbeatMs: config.heartbeatMs)
      record.beat(beat.health, now: beat.now)
      record.lastHeartbeatMs = beat.nowMs
      record.pools = Self.knownPools(beat.health.pools)
      if beat.health.draining { record.draining = true }
      if record.saidLost {
        record.saidLost = false
        logger.notice("worker heard from again", metadata: ["worker": "\(beat.connection.name)"])
      }
      workers[beat.connection.name] = record
      if wasSilent { for pool in Pool.allCases { markWork(pool) } }
    }
  }

  /// A result's part shows its worker alive as a heartbeat does: on a slow link the
  /// heartbeats wait behind the parts, and the worker was said `lost` while its parts
  /// arrived (found by a tester).
  private func heard(from connection: Connection) {
    guard workerConnections[connection.name] === connection, var record = workers[connection.name] else { return }
    record.lastHeartbeat = now
    if record.saidLost {
      record.saidLost = false
      logger.notice("worker heard from again", metadata: ["worker": "\(connection.name)"])
    }
    workers[connection.name] = record
  }

  func receiveComplete(_ complete: Haat_V1_Complete, id: String, from connection: Connection) {
    guard let task = TaskID(complete.task) else {
      return ackRefused(connection, id: id, task: complete.task, attempt: complete.attempt, reason: "unknown_task")
    }
    let worker = connection.name
    if complete.part > 0 {
      // A worker delivering its result holds its lease meanwhile: a big result's parts
      // (and this coordinator's own backlog of them) must not let the lease run out.
      // Only the holder's parts are kept: another worker's were staged (memory spent on a
      // lease it does not hold) and its last part told `missing_parts`, not why.
      guard leases.extend(task: task, attempt: complete.attempt, owner: worker, now: now) else {
        let holder = leases[task]
        // As the store answers a whole result (TaskRules.refusal): an earlier attempt is stale.
        let reason =
          holder.map {
            TaskRules.neverGiven(complete.attempt, $0.attempt) || (complete.attempt == $0.attempt && $0.owner != worker)
          }
            == true ? Refusal.notLeaseHolder : .staleAttempt
        if reason == .notLeaseHolder {
          // As for a whole result (found by a tester: parts were refused without a word).
          logger.warning(
            "refused an answer for another worker's lease",
            metadata: [
              "worker": "\(worker)", "task": "\(task)", "attempt": "\(complete.attempt)", "part": "\(complete.part)",
            ])
        }
        return ackRefused(connection, id: id, task: complete.task, attempt: complete.attempt, reason: reason.rawValue)
      }
      heard(from: connection)
      switch staged.receive(complete, worker: worker) {
      case .staged:
        return
      case .complete(let joined):
        // The parts' encodings, joined, are the partial as the store keeps it: only the
        // stats (on the last part) are encoded here. Its lease holds until the result is
        // stored (the reaper skips it): a big write can take a while.
        resultsInFlight.insert(task)
        do {
          return storeResult(
            complete, task: task, partial: joined, stats: try Self.encodeStats(complete.stats), id: id,
            from: connection)
        } catch {
          resultsInFlight.remove(task)
          return outbox.replyError(
            connection, to: id, HaatError(.badRequest, "the partial cannot be stored: \(error)"))
        }
      case .refused(let reason, let message):
        logger.warning(
          "refused a result sent in parts",
          metadata: ["task": "\(complete.task)", "worker": "\(worker)", "reason": "\(reason)", "error": "\(message)"])
        return ackRefused(connection, id: id, task: complete.task, attempt: complete.attempt, reason: reason)
      }
    }
    // One line: its partial as sent in binary (checked on the session's loop), or small
    // enough to encode here.
    do {
      let (partial, stats) =
        complete.partialBinary.isEmpty
        ? try Self.encodeResult(complete.partial, complete.stats)
        : (complete.partialBinary, try Self.encodeStats(complete.stats))
      storeResult(complete, task: task, partial: partial, stats: stats, id: id, from: connection)
    } catch {
      outbox.replyError(connection, to: id, HaatError(.badRequest, "the partial cannot be stored: \(error)"))
    }
  }

  /// A result's partial and stats as the store keeps them: the partial in protobuf's binary
  /// encoding (a job's reduce decodes it again, and JSON would cost several times as much
  /// both ways), the stats as JSON. Empty ones (no-op tasks) stay empty.
  static func encodeResult(_ partial: Partial, _ stats: TaskStats) throws -> (Data, Data) {
    (try partial.serializedData(), try encodeStats(stats))
  }

  static func encodeStats(_ stats: TaskStats) throws -> Data {
    stats == TaskStats() ? Data() : try stats.jsonUTF8Data(options: WireCodec.encodingOptions)
  }

  func storeResult(
    _ complete: Haat_V1_Complete, task: TaskID, partial: Data, stats: Data, id: String, from connection: Connection
  ) {
    let worker = connection.name
    var spawn: TaskSpawner?
    if complete.hasSplit {
      if let problem = RangeSplitting.problem(with: complete.split) {
        resultsInFlight.remove(task)
        logger.warning(
          "refused a plan task's split", metadata: ["task": "\(task)", "worker": "\(worker)", "error": "\(problem)"])
        return ackRefused(connection, id: id, task: complete.task, attempt: complete.attempt, reason: "bad_split")
      }
      let split = complete.split
      spawn = { spec, first in Self.rangeTasks(of: spec, split, firstIndex: first) }
    }
    enqueue(
      .complete(
        task: task, attempt: complete.attempt, worker: worker, partial: partial, stats: stats,
        bookmark: complete.bookmark, spawn: spawn)
    ) { result in
      self.resultsInFlight.remove(task)
      // Before the ack: the change may end the job, whose end waits for this merge.
      if case .changed(let change) = result, change.transition == .done, !partial.isEmpty {
        self.reduceEarly(change.job, task: task, partial: partial)
      }
      self.ackTransition(result, connection: connection, id: id, task: complete.task, attempt: complete.attempt)
      if case .changed(let change) = result, change.transition == .done {
        self.metrics.fetched(complete.stats)
        self.workers[worker]?.tasksDone += 1
        self.logger.debug(
          "task done", metadata: ["task": "\(task)", "worker": "\(worker)", "attempt": "\(complete.attempt)"])
      }
    }
    finishInCommit(of: task, result: spawn == nil ? (complete.attempt, partial, stats) : nil)
  }

  /// The specs of a split source's range tasks: the plan task's stored spec (never the
  /// worker's word for it), each with one range; nil when that spec is not a plan task's.
  static func rangeTasks(of planSpec: Data, _ split: Split, firstIndex: Int) -> [Data]? {
    guard let plan = try? TaskSpec(jsonUTF8Data: planSpec, options: WireCodec.decodingOptions), plan.splitPlan
    else { return nil }
    var specs: [Data] = []
    specs.reserveCapacity(split.bounds.count - 1)
    for spec in split.rangeTasks(of: plan, firstIndex: firstIndex) {
      guard let data = try? SpecJSON.data(spec) else { return nil }
      specs.append(data)
    }
    return specs
  }

  func receiveFail(_ fail: Haat_V1_Fail, id: String, from connection: Connection) {
    guard let task = TaskID(fail.task) else {
      return ackRefused(connection, id: id, task: fail.task, attempt: fail.attempt, reason: "unknown_task")
    }
    let stats = (try? fail.stats.jsonUTF8Data(options: WireCodec.encodingOptions)) ?? Data()
    // Kept with the task and shown in every job and list reply: a megabyte's message made
    // the job, its report and any page of jobs holding it too large to send.
    let error = TaskError(
      code: fail.error.code.isEmpty ? "failed" : Self.storedText(fail.error.code, bytes: 64),
      message: fail.error.message.isEmpty
        ? "the worker gave no reason" : Self.storedText(fail.error.message, bytes: config.session.logMessageBytes))
    let worker = connection.name
    enqueue(
      .fail(
        task: task, attempt: fail.attempt, worker: worker, error: error, retryable: fail.retryable,
        retryAfterMs: UInt64(fail.retryAfterMs), stats: stats)
    ) { result in
      self.ackTransition(result, connection: connection, id: id, task: fail.task, attempt: fail.attempt)
      guard case .changed(let change) = result else { return }
      if change.transition.newState != nil {
        self.workers[worker]?.tasksFailed += 1
        self.metrics.fetched(fail.stats)
      }
      switch change.transition {
      case .retry(let delay):
        self.logger.notice(
          "task failed; will retry",
          metadata: [
            "task": "\(task)", "worker": "\(worker)", "attempt": "\(fail.attempt)", "code": "\(error.code)",
            "delay_ms": "\(delay)",
          ])
      case .dead(let cause):
        self.logger.warning(
          "task is dead",
          metadata: ["task": "\(task)", "worker": "\(worker)", "code": "\(cause.code)", "error": "\(cause.message)"])
      default: break
      }
    }
  }

  func ackTransition(_ result: StoreOpResult, connection: Connection, id: String, task: String, attempt: UInt32) {
    var ack = Haat_V1_Ack()
    ack.task = task
    ack.attempt = attempt
    switch result {
    case .changed(let change):
      apply(change)
      if case .refused(let refusal) = change.transition {
        ack.reason = refusal.rawValue
        if refusal == .notLeaseHolder {
          // A worker answering for a lease it does not hold is a bug or a stolen token.
          logger.warning(
            "refused an answer for another worker's lease",
            metadata: ["worker": "\(connection.name)", "task": "\(task)", "attempt": "\(attempt)"])
        }
      } else {
        ack.accepted = true
      }
    case .failed(let error):
      ack.reason = error.code == .notFound ? "unknown_task" : error.code.rawValue
    default:
      ack.reason = "internal"
    }
    sendAck(ack, to: connection, replyTo: id)
  }

  func ackRefused(_ connection: Connection, id: String, task: String, attempt: UInt32, reason: String) {
    var ack = Haat_V1_Ack()
    ack.task = task
    ack.attempt = attempt
    ack.reason = reason
    sendAck(ack, to: connection, replyTo: id)
  }

  /// An `ack` as a line written directly (WireMessages.ackLine), or, in the rare case it
  /// would pass the session's line limit, through the outbox's check, which refuses it.
  func sendAck(_ ack: Haat_V1_Ack, to connection: Connection, replyTo id: String) {
    guard connection.open else { return }
    let line = WireMessages.ackLine(replyTo: id, ack, allocator: connection.channel.allocator)
    guard line.readableBytes - 1 <= connection.maxLineBytes else { return outbox.reply(connection, to: id, .ack(ack)) }
    outbox.send(line: line, to: connection)
  }

  /// A slot for one request under a rate key, for a task the worker holds.
  func receiveRateRequest(_ request: Haat_V1_RateRequest, id: String, from connection: Connection) {
    guard Self.isRateKey(request.key) else {
      return outbox.replyError(
        connection, to: id, HaatError(.badRequest, "a rate key is 1 to 256 bytes of printable text", field: "key"))
    }
    guard request.requestsPerSecond.isFinite, RateGovernor.rateRange.contains(request.requestsPerSecond) else {
      return outbox.replyError(
        connection, to: id,
        HaatError(
          .badRequest, "requests_per_second must be between 0.01 and 10000, not \(request.requestsPerSecond)",
          field: "requests_per_second"))
    }
    guard let task = TaskID(request.task) else {
      // As a heartbeat's or retry_dead's: no task id is a bad request, not a stale lease.
      return outbox.replyError(
        connection, to: id, HaatError(.badRequest, "\"\(request.task)\" is not a task id", field: "task"))
    }
    guard let lease = leases[task], lease.owner == connection.name, lease.attempt == request.attempt else {
      // Only a lease holder spends a budget: a stale attempt must not take slots.
      return outbox.replyError(
        connection, to: id,
        HaatError(
          .staleAttempt, "task \(request.task) attempt \(request.attempt) is not leased to \(connection.name)",
          field: "task"))
    }
    // Only the key the task's spec names: a lease of one task must not spend, or open a
    // pause of, another credential's budget.
    guard lease.rateKey == request.key else {
      let named = DisplayText.escape(String(request.key.prefix(256)))
      let reason =
        lease.rateKey.isEmpty
        ? "task \(request.task) makes no rate-governed request; it may not ask for a slot under \"\(named)\""
        : "task \(request.task)'s requests count against \"\(lease.rateKey)\", not \"\(named)\""
      return outbox.replyError(connection, to: id, HaatError(.badRequest, reason, field: "key"))
    }
    // Spaced by the task's own budget: a worker stating a lower rate must not slow the
    // credential for every other task (the lowest rate stated lately holds).
    let perSecond = lease.requestsPerSecond > 0 ? lease.requestsPerSecond : request.requestsPerSecond
    // One slot at a time per task: slots booked ahead without end pushed every other
    // worker's slots under the key minutes out, a pause no `unpause` could lift. A request
    // while the task's slot is not yet due gets that slot again (a worker resends what it
    // was waiting for after a reconnect) and books nothing.
    let nowMono = monotonicMs
    if let due = rateSlotsDue[task], due > nowMono + Self.rateSlotSlackMs {
      noteRateWait(connection.name, untilMs: due)
      var grant = Haat_V1_RateGrant()
      grant.key = request.key
      grant.waitMs = UInt32(clamping: due - nowMono)
      return outbox.reply(connection, to: id, .rateGrant(grant))
    }
    let wait = rates.grant(key: request.key, requestsPerSecond: perSecond, nowMs: nowMono)
    rateSlotsDue[task] = nowMono + wait
    noteRateWait(connection.name, untilMs: nowMono + wait)
    if rateSlotsDue.count > 2 * leases.count + 1_024 { rateSlotsDue = rateSlotsDue.filter { $0.value > nowMono } }
    // Bounded: a worker's credentials are few; past the bound, the oldest are not kept.
    if connection.grantedRateKeys.count >= Self.maxGrantedRateKeys { connection.grantedRateKeys.removeAll() }
    connection.grantedRateKeys.insert(request.key)
    var grant = Haat_V1_RateGrant()
    grant.key = request.key
    grant.waitMs = UInt32(clamping: wait)
    outbox.reply(connection, to: id, .rateGrant(grant))
  }

  /// A worker waits for a rate slot until `untilMs` (monotonic): it is not `stalled` before
  /// then (every worker showed stalled through a platform's pause, with advice to move its
  /// tasks away).
  func noteRateWait(_ worker: String, untilMs: Int64) {
    guard let record = workers[worker] else { return }
    workers[worker]?.rateWaitEnds = max(record.rateWaitEnds, UInt64(max(0, untilMs)) * 1_000_000)
  }

  /// How early a task's next `rate_request` may come before its last slot is due (clock
  /// granularity: a worker waits the whole `wait_ms` after the grant reaches it).
  static let rateSlotSlackMs: Int64 = 50

  /// Rate keys a session's pauses are checked against (`Connection.grantedRateKeys`).
  static let maxGrantedRateKeys = 1_024

  /// A platform throttled a worker under a rate key: pause the key for everyone. Only a key
  /// the worker was granted a slot under this session: a worker token cannot freeze a
  /// credential it never used.
  func receiveRatePause(_ pause: Haat_V1_RatePause, from connection: Connection) {
    guard Self.isRateKey(pause.key) else { return }
    guard connection.grantedRateKeys.contains(pause.key) else {
      logger.warning(
        "rate pause refused: the worker made no request under the key",
        metadata: ["key": "\(DisplayText.escape(String(pause.key.prefix(256))))", "worker": "\(connection.name)"])
      return
    }
    metrics.ratePauses.increment()
    rates.pause(
      key: pause.key, pauseMs: Int64(pause.pauseMs), worker: connection.name, reason: pause.reason,
      nowMs: monotonicMs)
    // Kept in the store too, on the wall clock: a restart (or another coordinator) honours it.
    let until = nowMs + min(Int64(pause.pauseMs), RateGovernor.maxPauseMs)
    let record = RatePause(
      key: pause.key, untilMs: until, worker: connection.name, reason: String(pause.reason.prefix(200)))
    enqueue(.ratePause(record)) { result in
      if case .failed(let error) = result {
        self.logger.warning("cannot keep a rate pause", metadata: ["key": "\(pause.key)", "error": "\(error)"])
      }
    }
    logger.notice(
      "rate key paused",
      metadata: [
        "key": "\(pause.key)", "ms": "\(pause.pauseMs)", "worker": "\(connection.name)",
        "reason": "\(DisplayText.escape(String(pause.reason.prefix(200))))",
      ])
  }

  /// An operator lifts a pause (`haat workers unpause KEY`): in memory at once, then in the
  /// store, answered when the store has forgotten it too (so a restart cannot bring it back).
  func unpause(_ key: String, id: String, from connection: Connection) {
    guard Self.isRateKey(key) else {
      return outbox.replyError(
        connection, to: id, HaatError(.badRequest, "a rate key is 1 to 256 bytes of printable text", field: "key"))
    }
    let monotonic = monotonicMs
    guard let until = rates.clearPause(key: key, nowMs: monotonic) else {
      return outbox.replyError(
        connection, to: id,
        HaatError(.notFound, "no pause on \"\(DisplayText.escape(String(key.prefix(256))))\"", field: "key"))
    }
    let wallUntil = nowMs + (until - monotonic)
    enqueue(.unpause(key)) { result in
      if case .failed(let error) = result { return self.outbox.replyError(connection, to: id, error) }
      self.logger.notice("rate key unpaused", metadata: ["key": "\(key)", "by": "\(connection.name)"])
      self.outbox.reply(
        connection, to: id,
        .unpaused(
          .with {
            $0.key = key
            $0.untilMs = wallUntil
          }))
    }
  }

  /// `text` cut to its first `bytes` bytes (a character cut in two shows as U+FFFD), with
  /// "…" after the cut.
  static func clipped(_ text: String, to bytes: Int) -> String {
    text.utf8.count <= bytes ? text : String(decoding: text.utf8.prefix(bytes), as: UTF8.self) + "…"
  }

  /// `clipped`, with each NUL shown as U+FFFD: the store's text reads end at a NUL, so a
  /// failure's message was cut there without a mark. Replaced before the cut, so the bound
  /// holds (each U+FFFD is three bytes where the NUL was one).
  static func storedText(_ text: String, bytes: Int) -> String {
    clipped(text.utf8.contains(0) ? text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : text, to: bytes)
  }

  static func isRateKey(_ key: String) -> Bool {
    !key.isEmpty && key.utf8.count <= 256 && DisplayText.firstUnsafe(key) == nil
  }

  func receiveLog(_ line: Haat_V1_Log, from connection: Connection) {
    var line = line
    line.worker = connection.name
    let limits = config.session
    // A worker's log line is kept in the ring and fanned out to followers: cap its size.
    line.message = Self.clipped(line.message, to: limits.logMessageBytes)
    if line.fields.count > limits.logFields
      || line.fields.contains(where: { $0.key.utf8.count + $0.value.utf8.count > limits.logFieldBytes })
    {
      var fields: [String: String] = [:]
      let half = limits.logFieldBytes / 2
      for (key, value) in line.fields.sorted(by: { $0.key < $1.key }).prefix(limits.logFields) {
        // Marked where cut, as the message is (found by a tester: a cut value read as whole).
        fields[Self.clipped(key, to: half)] = Self.clipped(value, to: half)
      }
      line.fields = fields
    }
    // The session names the worker: a line's own `worker` field cannot speak for another.
    if line.fields["worker"] != nil { line.fields["worker"] = connection.name }
    if line.task.utf8.count > 64 { line.task = "" }
    if line.level.utf8.count > 16 { line.level = "info" }
    if line.atMs == 0 { line.atMs = nowMs }
    logs.append(line)
    for (tailer, id, worker, level) in tailers
    where (worker.isEmpty || worker == line.worker) && (LogLevel(name: line.level) ?? .info) >= level {
      outbox.reply(tailer, to: id, .log(line))
    }
  }
}
