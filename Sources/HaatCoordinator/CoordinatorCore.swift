import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatStore
import Logging
import NIOCore
import NIOPosix

/// One authenticated connection, as the core sees it.
final class Connection {
  let channel: any Channel
  let session: String
  let peer: Peer
  let address: String
  /// For workers: credit per pool, credit reserved by claims in flight, and whether the
  /// worker asked to drain.
  var credit: [Pool: Int] = [:]
  var reserved: [Pool: Int] = [:]
  var draining = false
  var open = true
  var needsFlush = false
  /// The session's line limit, both ways: a longer reply is refused as `too_large`.
  let maxLineBytes: Int
  /// Store reads in flight and streams open, bounded by `SessionLimits`.
  var readsInFlight = 0
  var watches = 0
  var follows = 0
  /// A spec arriving in parts.
  var specParts: SpecParts

  init(channel: any Channel, session: String, peer: Peer, address: String, maxLineBytes: Int, maxSpecBytes: Int) {
    self.channel = channel
    self.session = session
    self.peer = peer
    self.address = address
    self.maxLineBytes = maxLineBytes
    specParts = SpecParts(maxBytes: maxSpecBytes)
  }

  var name: String { peer.name }
}

/// A job that has not ended, with its task counts kept in memory.
final class ActiveJob {
  let id: JobID
  var counts: TaskCounts
  var started: Bool
  var cancelled: Bool
  var reducing = false
  var watchers: [(Connection, String)] = []
  var lastEvent: UInt64 = 0
  var eventScheduled = false

  init(id: JobID, counts: TaskCounts, started: Bool, cancelled: Bool) {
    self.id = id
    self.counts = counts
    self.started = started
    self.cancelled = cancelled
  }
}

/// The coordinator's state and rules in motion. Everything here runs on `loop`; the store
/// is written from one thread (`writer`) in batches and read from `readers`.
///
/// Group commit: ops that arrive while a commit is in flight wait in `pending` and go into
/// the next transaction together, with a claim for every worker that has credit. Replies
/// (`accepted`, `assign`, `ack`) are sent only after the transaction that justifies them
/// has committed.
final class CoordinatorCore: @unchecked Sendable {
  // @unchecked: every stored property is touched only on `loop` (checked by
  // `loop.preconditionInEventLoop()` in debug builds at each entry point).

  let loop: any EventLoop
  let store: any JobStore
  let config: CoordinatorConfig
  let logger: Logger
  private let writer: NIOThreadPool
  private let readers: NIOThreadPool

  private var connections: [ObjectIdentifier: Connection] = [:]
  /// The current connection of each worker name.
  private var workerConnections: [String: Connection] = [:]
  private var workers: [String: WorkerRecord] = [:]
  private var leases: LeaseTable<String>
  private var jobs: [JobID: ActiveJob] = [:]
  /// Ready tasks waiting for their `not_before`, by task: (when, job, pool).
  /// Tasks waiting for their time: `due` is on the monotonic clock (milliseconds), taken
  /// from the stored wall-clock `not_before` when the wait begins, so a wall-clock step
  /// neither delays nor hurries them.
  private var waiting: [TaskID: (due: Int64, notBeforeMs: Int64, job: JobID, pool: Pool)] = [:]
  /// The latest stored `not_before` of a task the monotonic timer found due: claims take
  /// tasks up to it even when the wall clock has stepped back since.
  private var dueWatermarkMs: Int64 = 0
  private var waitHeap = MinHeap()
  private var waitTimer: Scheduled<Void>?
  /// Pools that may have claimable tasks, and a counter bumped whenever that may change.
  private var poolHasWork: Set<Pool> = Set(Pool.allCases)
  private var workGeneration: [Pool: UInt64] = [:]

  private struct PendingOp {
    var op: StoreOp
    var done: (StoreOpResult) -> Void
  }
  private var pending: [PendingOp] = []
  private var committing = false
  private var claimRotation = 0
  private var commitQueued = false
  /// The pause before the next commit after a failed one (0 after a success), and its timer.
  private var commitBackoffMs: Int64 = 0
  private var commitRetry: Scheduled<Void>?
  private var dirty: [Connection] = []
  private var logs: LogStore
  private var tailers: [(Connection, String, worker: String, level: LogLevel)] = []
  private var accepting = true
  private var reaper: RepeatedTask?
  private var drainPromise: EventLoopPromise<Void>?
  private var staged: StagedParts
  private var housekeeping: RepeatedTask?

  init(loop: any EventLoop, store: any JobStore, config: CoordinatorConfig, logger: Logger) {
    self.loop = loop
    self.store = store
    self.config = config
    self.logger = logger
    leases = LeaseTable(durationNs: UInt64(config.leaseMs) * 1_000_000)
    logs = LogStore(capacity: config.logCapacity, capacityBytes: config.logCapacityBytes)
    staged = StagedParts(
      maxBytesPerWorker: config.session.stagedPartBytesPerWorker, maxBytes: config.session.stagedPartBytes)
    writer = NIOThreadPool(numberOfThreads: 1)
    readers = NIOThreadPool(numberOfThreads: 2)
    writer.start()
    readers.start()
  }

  // MARK: Clocks

  private var now: UInt64 { NIODeadline.now().uptimeNanoseconds }
  private var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

  // MARK: Lifecycle

  /// Loads what the store holds and starts the lease reaper. Call once, on the loop.
  func start() async throws {
    let nowMs = self.nowMs
    let store = self.store
    let recovery = try await readers.runIfActive { try store.recover(nowMs: nowMs) }
    try await loop.submit {
      let now = self.now
      for job in recovery.jobs {
        self.jobs[job.id] = ActiveJob(id: job.id, counts: job.counts, started: job.started, cancelled: job.cancelled)
      }
      // Every stored lease gets one full period from now for its worker to come back.
      for lease in recovery.leases {
        self.leases.grant(task: lease.task, attempt: lease.attempt, owner: lease.owner, now: now)
      }
      for task in recovery.waiting {
        self.addWaiting(task.task, job: task.job, pool: task.pool, notBeforeMs: task.notBeforeMs)
      }
      let period = TimeAmount.milliseconds(Int64(max(100, min(1000, self.config.leaseMs / 4))))
      self.reaper = self.loop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
        self.reap()
      }
      for job in self.jobs.keys { self.finishIfEnded(job) }
      let housekeeping = TimeAmount.milliseconds(max(1_000, self.config.housekeepingMs))
      self.housekeeping = self.loop.scheduleRepeatedTask(initialDelay: .seconds(60), delay: housekeeping) { _ in
        self.keepHouse()
      }
      self.logger.info(
        "store recovered",
        metadata: [
          "jobs": "\(recovery.jobs.count)", "leases": "\(recovery.leases.count)",
          "waiting": "\(recovery.waiting.count)",
        ])
    }.get()
  }

  /// Stops taking new work, lets the commit in flight finish and shuts the store threads.
  func shutdown() async {
    let drained: EventLoopFuture<Void> = loop.flatSubmit {
      self.accepting = false
      self.reaper?.cancel()
      self.waitTimer?.cancel()
      if !self.committing && self.pending.isEmpty { return self.loop.makeSucceededVoidFuture() }
      let promise = self.loop.makePromise(of: Void.self)
      self.drainPromise = promise
      return promise.futureResult
    }
    try? await drained.get()
    try? await writer.shutdownGracefully()
    try? await readers.shutdownGracefully()
  }

  // MARK: Connections

  func opened(_ connection: Connection, worker: Haat_V1_WorkerInfo?) {
    connections[ObjectIdentifier(connection)] = connection
    guard connection.peer.kind == .worker else { return }
    if let previous = workerConnections[connection.name], previous !== connection {
      logger.notice("worker reconnected; closing its previous session", metadata: ["worker": "\(connection.name)"])
      previous.open = false
      previous.channel.close(promise: nil)
    }
    workerConnections[connection.name] = connection
    let nowMs = self.nowMs
    var record = WorkerRecord(
      name: connection.name, host: worker?.host ?? "", pid: worker?.pid ?? 0, version: worker?.version ?? "",
      address: connection.address,
      pools: (worker?.pools ?? []).map { slots in
        var state = Haat_V1_PoolState()
        state.pool = slots.pool
        state.slots = slots.slots
        return state
      }, connectedMs: nowMs, lastHeartbeatMs: nowMs, lastHeartbeat: now, lastProgress: now)
    if let old = workers[connection.name] {
      record.health = old.health
      record.tasksDone = old.tasksDone
      record.tasksFailed = old.tasksFailed
    }
    workers[connection.name] = record
    logger.info("worker connected", metadata: ["worker": "\(connection.name)", "address": "\(connection.address)"])
  }

  func closed(_ connection: Connection) {
    connection.open = false
    connections[ObjectIdentifier(connection)] = nil
    tailers.removeAll { $0.0 === connection }
    for job in jobs.values { job.watchers.removeAll { $0.0 === connection } }
    guard connection.peer.kind == .worker, workerConnections[connection.name] === connection else { return }
    workerConnections[connection.name] = nil
    workers[connection.name]?.connected = false
    // Parts of results in flight go too: the worker sends all of them again.
    staged.drop(worker: connection.name)
    // Its slots are no longer busy with anything the coordinator can see.
    if let pools = workers[connection.name]?.pools {
      workers[connection.name]?.pools = pools.map {
        var pool = $0; pool.busy = 0; return pool
      }
    }
    // Its leases stay until they expire: the worker may come back and finish them.
    logger.info(
      "worker disconnected",
      metadata: ["worker": "\(connection.name)", "leases": "\(leases.count(of: connection.name))"])
  }

  private func send(_ envelope: Envelope, to connection: Connection) {
    guard connection.open else { return }
    var buffer = connection.channel.allocator.buffer(capacity: 256)
    do {
      try WireCodec.encode(envelope, into: &buffer)
    } catch {
      logger.error(
        "cannot encode a reply", metadata: ["type": "\(envelope.body?.wireName ?? "")", "error": "\(error)"])
      return
    }
    if buffer.readableBytes > connection.maxLineBytes {
      // The limit holds both ways: a reply that would not fit is refused, not sent.
      let error = HaatError(
        .tooLarge,
        "the \(envelope.body?.wireName ?? "reply") would be \(buffer.readableBytes) bytes, over this session's line limit of \(connection.maxLineBytes); ask for less (a smaller limit, or without tasks)"
      )
      buffer.clear()
      try? WireCodec.encode(.error(error, replyTo: envelope.replyTo), into: &buffer)
    }
    send(line: buffer, to: connection)
  }

  /// Writes an encoded line; flushed at the end of the current unit of work. A peer that
  /// lets more than `outboundBytes` pile up unsent is closed: it is not reading.
  private func send(line: ByteBuffer, to connection: Connection) {
    guard connection.open else { return }
    if !connection.channel.isWritable, outboundBytes(of: connection) > config.session.outboundBytes {
      logger.warning(
        "closing a peer that does not read its replies",
        metadata: [
          "peer": "\(connection.name)", "address": "\(connection.address)",
          "unsent_bytes": "\(outboundBytes(of: connection))",
        ])
      connection.open = false
      connection.channel.close(promise: nil)
      return
    }
    connection.channel.write(line, promise: nil)
    if !connection.needsFlush {
      connection.needsFlush = true
      dirty.append(connection)
    }
  }

  private func reply(_ connection: Connection, to id: String, _ body: Envelope.OneOf_Body) {
    send(Envelope(replyTo: id, body), to: connection)
  }

  /// Sends replies one after another, each once the one before has been written to the
  /// socket: a result in parts never piles up past the session's outbound bound (which
  /// closes peers that do not read).
  private func replyInTurn(_ connection: Connection, to id: String, _ bodies: ArraySlice<Envelope.OneOf_Body>) {
    guard connection.open, let body = bodies.first else { return }
    var buffer = connection.channel.allocator.buffer(capacity: 1 << 16)
    do {
      try WireCodec.encode(Envelope(replyTo: id, body), into: &buffer)
    } catch {
      return replyError(connection, to: id, HaatError(.internal, "cannot encode a reply: \(error)"))
    }
    let written = loop.makePromise(of: Void.self)
    connection.channel.writeAndFlush(buffer, promise: written)
    written.futureResult.assumeIsolated().whenSuccess {
      self.replyInTurn(connection, to: id, bodies.dropFirst())
    }
  }

  private func replyError(_ connection: Connection, to id: String, _ error: HaatError) {
    send(.error(error, replyTo: id), to: connection)
  }

  private func outboundBytes(of connection: Connection) -> Int {
    (try? connection.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
  }

  /// Flushes every connection written to since the last flush.
  func flush() {
    for connection in dirty where connection.open {
      connection.needsFlush = false
      connection.channel.flush()
    }
    for connection in dirty { connection.needsFlush = false }
    dirty.removeAll(keepingCapacity: true)
  }

  // MARK: Requests

  /// Handles one message from an authenticated connection (its role is already checked).
  func receive(_ envelope: Envelope, from connection: Connection) {
    guard let body = envelope.body else { return }
    let id = envelope.id
    switch body {
    case .credit(let credit): receiveCredit(credit, from: connection)
    case .heartbeat(let heartbeat): receiveHeartbeat(heartbeat, id: id, from: connection)
    case .complete(let complete): receiveComplete(complete, id: id, from: connection)
    case .fail(let fail): receiveFail(fail, id: id, from: connection)
    case .log(let line): receiveLog(line, from: connection)
    case .drain:
      connection.draining = true
      workers[connection.name]?.draining = true
      logger.info("worker is draining", metadata: ["worker": "\(connection.name)"])
    case .submit(let submit):
      guard submit.part > 0 else { return receiveSubmit(submit.spec, id: id, from: connection) }
      switch connection.specParts.receive(submit) {
      case .kept:
        var accepted = Haat_V1_Accepted()
        accepted.part = submit.part
        reply(connection, to: id, .accepted(accepted))
      case .whole(let spec):
        receiveSubmit(spec, id: id, from: connection)
      case .refused(let error):
        replyError(connection, to: id, error)
      }
    case .getJob(let request): getJob(request, id: id, from: connection)
    case .listJobs(let request): listJobs(request, id: id, from: connection)
    case .watch(let request): watch(request.job, id: id, from: connection)
    case .getResult(let request): getResult(request.job, id: id, from: connection)
    case .cancel(let request): cancel(request.job, id: id, from: connection)
    case .listWorkers: reply(connection, to: id, .workerList(workerList()))
    case .tailLogs(let request): tailLogs(request, id: id, from: connection)
    case .listDead(let request): listDead(request, id: id, from: connection)
    case .retryDead(let request): updateDead(request.tasks, job: request.job, retry: true, id: id, from: connection)
    case .discardDead(let request): updateDead(request.tasks, job: request.job, retry: false, id: id, from: connection)
    case .ping: reply(connection, to: id, .pong(.with { $0.atMs = nowMs }))
    case .pruneJobs(let request):
      prune(endedBeforeMs: request.endedBeforeMs) { result in
        switch result {
        case .success(let (jobs, tasks)):
          self.logger.notice(
            "jobs pruned", metadata: ["jobs": "\(jobs)", "tasks": "\(tasks)", "by": "\(connection.name)"])
          self.reply(
            connection, to: id,
            .pruned(
              .with {
                $0.jobs = UInt32(clamping: jobs); $0.tasks = UInt64(tasks)
              }))
        case .failure(let error):
          self.replyError(connection, to: id, error)
        }
      }
    default:
      replyError(connection, to: id, HaatError(.unsupported, "\(body.wireName) is not a request the coordinator takes"))
    }
  }

  // MARK: Worker flow

  private func receiveCredit(_ credit: Haat_V1_Credit, from connection: Connection) {
    guard let pool = Pool(rawValue: credit.pool) else {
      return replyError(connection, to: "", HaatError(.badRequest, "unknown pool \"\(credit.pool)\"", field: "pool"))
    }
    connection.credit[pool, default: 0] += Int(credit.free)
    queueCommit()
  }

  private func receiveHeartbeat(_ heartbeat: Haat_V1_Heartbeat, id: String, from connection: Connection) {
    let now = self.now
    let nowMs = self.nowMs
    if var record = workers[connection.name] {
      record.beat(heartbeat.health, now: now)
      record.lastHeartbeatMs = nowMs
      record.pools = heartbeat.health.pools
      if heartbeat.health.draining { record.draining = true }
      workers[connection.name] = record
    }
    var ack = Haat_V1_HeartbeatAck()
    for lease in heartbeat.leases {
      var ref = Haat_V1_TaskRef()
      ref.task = lease.task
      ref.attempt = lease.attempt
      if let task = TaskID(lease.task),
        leases.extend(task: task, attempt: lease.attempt, owner: connection.name, now: now)
      {
        ack.extended.append(ref)
      } else {
        ack.revoked.append(ref)
      }
    }
    ack.leaseExpiresMs = nowMs + Int64(config.leaseMs)
    reply(connection, to: id, .heartbeatAck(ack))
  }

  private func receiveComplete(_ complete: Haat_V1_Complete, id: String, from connection: Connection) {
    guard let task = TaskID(complete.task) else {
      return ackRefused(connection, id: id, task: complete.task, attempt: complete.attempt, reason: "unknown_task")
    }
    let worker = connection.name
    var whole = complete.partial
    if complete.part > 0 {
      switch staged.receive(complete, worker: worker) {
      case .staged:
        return
      case .complete(let joined):
        whole = joined
      case .refused(let reason, let message):
        logger.warning(
          "refused a result sent in parts",
          metadata: ["task": "\(complete.task)", "worker": "\(worker)", "reason": "\(reason)", "error": "\(message)"])
        return ackRefused(connection, id: id, task: complete.task, attempt: complete.attempt, reason: reason)
      }
    }
    let partial: Data
    let stats: Data
    do {
      // Empty partials and stats (no-op tasks) are stored empty, without an encoder pass.
      partial = whole == Partial() ? Data() : try whole.jsonUTF8Data(options: WireCodec.encodingOptions)
      stats =
        complete.stats == TaskStats() ? Data() : try complete.stats.jsonUTF8Data(options: WireCodec.encodingOptions)
    } catch {
      return replyError(connection, to: id, HaatError(.badRequest, "the partial cannot be stored: \(error)"))
    }
    enqueue(
      .complete(
        task: task, attempt: complete.attempt, worker: worker, partial: partial, stats: stats,
        bookmark: complete.bookmark)
    ) { result in
      self.ackTransition(result, connection: connection, id: id, task: complete.task, attempt: complete.attempt)
      if case .changed(let change) = result, change.transition == .done {
        self.workers[worker]?.tasksDone += 1
        self.logger.debug(
          "task done", metadata: ["task": "\(task)", "worker": "\(worker)", "attempt": "\(complete.attempt)"])
      }
    }
  }

  private func receiveFail(_ fail: Haat_V1_Fail, id: String, from connection: Connection) {
    guard let task = TaskID(fail.task) else {
      return ackRefused(connection, id: id, task: fail.task, attempt: fail.attempt, reason: "unknown_task")
    }
    let stats = (try? fail.stats.jsonUTF8Data(options: WireCodec.encodingOptions)) ?? Data()
    let error = TaskError(
      code: fail.error.code.isEmpty ? "failed" : fail.error.code,
      message: fail.error.message.isEmpty ? "the worker gave no reason" : fail.error.message)
    let worker = connection.name
    enqueue(
      .fail(
        task: task, attempt: fail.attempt, worker: worker, error: error, retryable: fail.retryable,
        retryAfterMs: UInt64(fail.retryAfterMs), stats: stats)
    ) { result in
      self.ackTransition(result, connection: connection, id: id, task: fail.task, attempt: fail.attempt)
      guard case .changed(let change) = result else { return }
      if change.transition.newState != nil { self.workers[worker]?.tasksFailed += 1 }
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

  private func ackTransition(_ result: StoreOpResult, connection: Connection, id: String, task: String, attempt: UInt32)
  {
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
    reply(connection, to: id, .ack(ack))
  }

  private func ackRefused(_ connection: Connection, id: String, task: String, attempt: UInt32, reason: String) {
    var ack = Haat_V1_Ack()
    ack.task = task
    ack.attempt = attempt
    ack.reason = reason
    reply(connection, to: id, .ack(ack))
  }

  private func receiveLog(_ line: Haat_V1_Log, from connection: Connection) {
    var line = line
    line.worker = connection.name
    let limits = config.session
    // A worker's log line is kept in the ring and fanned out to followers: cap its size.
    if line.message.utf8.count > limits.logMessageBytes {
      line.message = String(decoding: line.message.utf8.prefix(limits.logMessageBytes), as: UTF8.self) + "…"
    }
    if line.fields.count > limits.logFields
      || line.fields.contains(where: { $0.key.utf8.count + $0.value.utf8.count > limits.logFieldBytes })
    {
      var fields: [String: String] = [:]
      let half = limits.logFieldBytes / 2
      for (key, value) in line.fields.sorted(by: { $0.key < $1.key }).prefix(limits.logFields) {
        fields[String(decoding: key.utf8.prefix(half), as: UTF8.self)] = String(
          decoding: value.utf8.prefix(half), as: UTF8.self)
      }
      line.fields = fields
    }
    if line.task.utf8.count > 64 { line.task = "" }
    if line.level.utf8.count > 16 { line.level = "info" }
    if line.atMs == 0 { line.atMs = nowMs }
    logs.append(line)
    for (tailer, id, worker, level) in tailers
    where (worker.isEmpty || worker == line.worker) && (LogLevel(name: line.level) ?? .info) >= level {
      reply(tailer, to: id, .log(line))
    }
  }

  // MARK: Housekeeping

  /// Hourly: deletes jobs past retention, and forgets workers long gone.
  private func keepHouse() {
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
  private func prune(
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
        self.writer.runIfActive(eventLoop: self.loop) { try store.reclaim() }
          .assumeIsolated().whenComplete { _ in done(.success(sum)) }
      case .failed(let error):
        done(.failure(error))
      default:
        done(.failure(HaatError(.internal, "unexpected store result for prune")))
      }
    }
  }

  /// Leases past their deadline count as a failed, retryable attempt.
  private func reap() {
    for lease in leases.expired(now: now) {
      // Out of the table while its expiry is written (so the next sweep does not send it
      // twice); back in when the write fails, so it is not stranded as leased.
      leases.remove(task: lease.task)
      logger.notice(
        "lease expired", metadata: ["task": "\(lease.task)", "attempt": "\(lease.attempt)", "worker": "\(lease.owner)"])
      enqueue(.expire(task: lease.task, attempt: lease.attempt)) { result in
        switch result {
        case .changed(let change): self.apply(change)
        case .failed(let error) where error.code == .unavailable: self.leases.restore(lease)
        default: break
        }
      }
    }
  }

  // MARK: Client flow

  private func receiveSubmit(_ spec: JobSpec, id: String, from connection: Connection) {
    guard accepting else {
      return replyError(connection, to: id, HaatError(.unavailable, "the coordinator is shutting down"))
    }
    if let pressure = diskPressure() { return replyError(connection, to: id, pressure) }
    let job: NewJob
    do {
      job = try Planner.plan(
        spec, submittedBy: "\(connection.peer.role.rawValue):\(connection.name)", defaults: config.planner)
    } catch {
      return replyError(connection, to: id, error)
    }
    let pools = Set(job.tasks.map(\.pool))
    enqueue(.submit(job)) { result in
      switch result {
      case .submitted(let jobID, let count, let notBeforeMs):
        var counts = TaskCounts()
        let waits = notBeforeMs > self.nowMs
        if waits { counts.scheduled = count } else { counts.ready = count }
        self.jobs[jobID] = ActiveJob(id: jobID, counts: counts, started: false, cancelled: false)
        if waits {
          // Task ids of a job are consecutive; the store assigned them in order.
          self.readTasks(of: jobID) { tasks in
            for task in tasks { self.addWaiting(task.id, job: jobID, pool: task.pool, notBeforeMs: notBeforeMs) }
          }
        } else {
          for pool in pools { self.markWork(pool) }
        }
        self.logger.info(
          "job accepted", metadata: ["job": "\(jobID)", "tasks": "\(count)", "by": "\(connection.name)"])
        var accepted = Haat_V1_Accepted()
        accepted.job = jobID.description
        accepted.tasks = UInt32(clamping: count)
        self.reply(connection, to: id, .accepted(accepted))
        self.finishIfEnded(jobID)
      case .failed(let error):
        self.replyError(connection, to: id, error)
      default:
        self.replyError(connection, to: id, HaatError(.internal, "unexpected store result for submit"))
      }
    }
  }

  private func readTasks(of job: JobID, _ body: @escaping ([TaskRecord]) -> Void) {
    let store = self.store
    let nowMs = self.nowMs
    readers.runIfActive(eventLoop: loop) { try store.job(job, tasks: true, nowMs: nowMs)?.tasks ?? [] }
      .assumeIsolated().whenComplete { result in
        switch result {
        case .success(let tasks): body(tasks)
        case .failure(let error):
          // A failed read must not strand the job's waiting tasks: try again shortly.
          self.logger.warning(
            "cannot read a job's tasks; retrying", metadata: ["job": "\(job)", "error": "\(error)"])
          self.loop.assumeIsolated().scheduleTask(in: .seconds(1)) { self.readTasks(of: job, body) }
        }
      }
  }

  private func diskPressure() -> HaatError? {
    var stats = statvfs()
    guard statvfs(config.dataDirectory, &stats) == 0 else { return nil }
    let free = UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    guard free < config.minFreeDiskBytes else { return nil }
    return HaatError(
      .unavailable,
      "the store's disk has \(ReportRendering.bytes(free)) free, less than the \(ReportRendering.bytes(config.minFreeDiskBytes)) the coordinator keeps; refusing new jobs (nothing is evicted)"
    )
  }

  private func getJob(_ request: Haat_V1_GetJob, id: String, from connection: Connection) {
    guard let job = JobID(request.job) else {
      return replyError(connection, to: id, HaatError(.badRequest, "\"\(request.job)\" is not a job id", field: "job"))
    }
    let after: UInt32?
    do {
      after = try Paging.cursor(request.after, UInt32.init)
    } catch {
      return replyError(connection, to: id, error)
    }
    let store = self.store
    let nowMs = self.nowMs
    let withTasks = request.tasks
    // One more than asked for tells whether another page follows.
    let limit = request.limit == 0 ? 1_000 : Int(min(request.limit, 10_000))
    let maxLineBytes = connection.maxLineBytes
    read(
      connection, id: id,
      { [after] () throws -> Haat_V1_Job? in
        guard let record = try store.job(job, tasks: false, nowMs: nowMs) else { return nil }
        var message = Self.message(record)
        if Paging.jsonSize(message) ?? 0 > maxLineBytes - Paging.envelopeSlack {
          // A spec too large to travel with its job (thousands of sources) is left out.
          message.clearSpec()
        }
        guard withTasks else { return message }
        let page = try store.tasks(of: job, after: after, limit: limit + 1, nowMs: nowMs)
        let tasks = page.prefix(limit).map(Self.message)
        let fits = Paging.fitting(Array(tasks), beside: message, maxLineBytes: maxLineBytes)
        guard fits > 0 || tasks.isEmpty else {
          throw HaatError(.tooLarge, "one task of job \(job) is over this session's line limit")
        }
        message.tasks = Array(tasks.prefix(fits))
        if fits < page.count, let last = message.tasks.last { message.next = String(last.index) }
        return message
      }
    ) { message in
      guard let message else { return self.replyError(connection, to: id, HaatError(.notFound, "no job \(job)")) }
      self.reply(connection, to: id, .job(message))
    }
  }

  private func listJobs(_ request: Haat_V1_ListJobs, id: String, from connection: Connection) {
    var state: JobState?
    if !request.state.isEmpty {
      guard let parsed = JobState(rawValue: request.state) else {
        return replyError(
          connection, to: id, HaatError(.badRequest, "unknown state \"\(request.state)\"", field: "state"))
      }
      state = parsed
    }
    let before: JobID?
    do {
      before = try Paging.cursor(request.after, JobID.init)
    } catch {
      return replyError(connection, to: id, error)
    }
    let limit = request.limit == 0 ? 50 : Int(min(request.limit, 10_000))
    let store = self.store
    let nowMs = self.nowMs
    let wanted = state
    let maxLineBytes = connection.maxLineBytes
    read(
      connection, id: id, { [before] in try store.jobs(state: wanted, before: before, limit: limit + 1, nowMs: nowMs) }
    ) {
      records in
      // Jobs in a list carry no spec: get_job has it.
      let jobs = records.prefix(limit).map { record in
        var job = Self.message(record)
        job.clearSpec()
        return job
      }
      var list = Haat_V1_JobList()
      let fits = Paging.fitting(Array(jobs), beside: list, maxLineBytes: maxLineBytes)
      list.jobs = Array(jobs.prefix(max(fits, 1)))
      if list.jobs.count < records.count, let last = list.jobs.last { list.next = last.id }
      self.reply(connection, to: id, .jobList(list))
    }
  }

  private func watch(_ text: String, id: String, from connection: Connection) {
    guard let job = JobID(text) else {
      return replyError(connection, to: id, HaatError(.badRequest, "\"\(text)\" is not a job id", field: "job"))
    }
    guard connection.watches < config.session.watches else {
      return replyError(
        connection, to: id,
        HaatError(.busy, "this session watches \(connection.watches) jobs, the most it may; close one first"))
    }
    if let active = jobs[job] {
      if !active.watchers.contains(where: { $0.0 === connection && $0.1 == id }) {
        active.watchers.append((connection, id))
        connection.watches += 1
      }
      reply(connection, to: id, .jobEvent(event(active)))
      return
    }
    let store = self.store
    let nowMs = self.nowMs
    read(connection, id: id, { try store.job(job, tasks: false, nowMs: nowMs) }) { record in
      guard let record else { return self.replyError(connection, to: id, HaatError(.notFound, "no job \(job)")) }
      if let active = self.jobs[job] {
        // It became active while we read (a retried dead task).
        active.watchers.append((connection, id))
        connection.watches += 1
        return self.reply(connection, to: id, .jobEvent(self.event(active)))
      }
      var event = Haat_V1_JobEvent()
      event.job = job.description
      event.state = record.state.rawValue
      event.counts = Self.message(record.counts)
      event.atMs = nowMs
      event.final = record.state.isFinal
      event.message = record.error
      self.reply(connection, to: id, .jobEvent(event))
    }
  }

  private func getResult(_ text: String, id: String, from connection: Connection) {
    guard let job = JobID(text) else {
      return replyError(connection, to: id, HaatError(.badRequest, "\"\(text)\" is not a job id", field: "job"))
    }
    let store = self.store
    let nowMs = self.nowMs
    read(
      connection, id: id,
      { () throws -> (JobRecord, Data?)? in
        guard let record = try store.job(job, tasks: false, nowMs: nowMs) else { return nil }
        return (record, record.state.isFinal ? try store.report(of: job) : nil)
      }
    ) { found in
      guard let (record, report) = found else {
        return self.replyError(connection, to: id, HaatError(.notFound, "no job \(job)"))
      }
      // The store's state is the truth: once it says the job ended, its report is there.
      guard record.state.isFinal, let report else {
        let counts = record.counts
        return self.replyError(
          connection, to: id,
          HaatError(
            .notFinished,
            "job \(job) is \(record.state.rawValue) (\(counts.ended) of \(counts.total) tasks ended); it has no result yet"
          ))
      }
      var result = Haat_V1_Result()
      result.job = Self.message(record)
      // The spec is get_job's to show; a result is about the report.
      result.job.clearSpec()
      do {
        result.report = try Report(jsonUTF8Data: report, options: WireCodec.decodingOptions)
      } catch {
        return self.replyError(
          connection, to: id, HaatError(.internal, "job \(job)'s stored report is unreadable: \(error)"))
      }
      // A report over the session's line limit goes as parts (docs/protocol.md, `result`).
      guard let parts = ResultParts.split(result, maxLineBytes: connection.maxLineBytes) else {
        return self.replyError(
          connection, to: id,
          HaatError(
            .tooLarge,
            "one row of job \(job)'s report is over this session's line limit of \(connection.maxLineBytes) bytes"))
      }
      self.replyInTurn(connection, to: id, parts.map { .result($0) }[...])
    }
  }

  private func cancel(_ text: String, id: String, from connection: Connection) {
    guard let job = JobID(text) else {
      return replyError(connection, to: id, HaatError(.badRequest, "\"\(text)\" is not a job id", field: "job"))
    }
    enqueue(.cancelJob(job)) { result in
      switch result {
      case .cancelled(let job, let changes):
        self.jobs[job]?.cancelled = true
        for change in changes { self.apply(change) }
        self.logger.info(
          "job cancelled", metadata: ["job": "\(job)", "tasks": "\(changes.count)", "by": "\(connection.name)"])
        self.finishIfEnded(job)
        self.getJob(.with { $0.job = job.description }, id: id, from: connection)
      case .failed(let error):
        self.replyError(connection, to: id, error)
      default:
        self.replyError(connection, to: id, HaatError(.internal, "unexpected store result for cancel"))
      }
    }
  }

  private func workerList() -> Haat_V1_WorkerList {
    var list = Haat_V1_WorkerList()
    let now = self.now
    let nowMs = self.nowMs
    list.workers = workers.values.sorted { $0.name < $1.name }.map { record in
      var status = Haat_V1_WorkerStatus()
      status.id = record.name
      status.host = record.host
      status.pid = record.pid
      let held = leases.count(of: record.name)
      status.state = record.state(
        now: now, heartbeatMs: config.heartbeatMs, leaseMs: config.leaseMs, leases: held)
      status.pools = record.pools
      status.tasksDone = record.tasksDone
      status.tasksFailed = record.tasksFailed
      status.rssBytes = record.health.rssBytes
      status.cpuSeconds = record.health.cpuSeconds
      status.lastHeartbeatMs = record.lastHeartbeatMs
      status.connectedMs = record.connectedMs
      status.leases = UInt32(clamping: held)
      status.version = record.version
      status.address = record.address
      status.lastProgressMs = record.health.lastProgressMs
      return status
    }
    return list
  }

  private func tailLogs(_ request: Haat_V1_TailLogs, id: String, from connection: Connection) {
    var level = LogLevel.trace
    if !request.level.isEmpty {
      guard let parsed = LogLevel(name: request.level) else {
        return replyError(
          connection, to: id, HaatError(.badRequest, "unknown level \"\(request.level)\"", field: "level"))
      }
      level = parsed
    }
    let worker = request.worker
    let limit = request.limit == 0 ? 100 : Int(request.limit)
    for line in logs.tail(
      limit: limit,
      where: { line in
        (worker.isEmpty || line.worker == worker) && (LogLevel(name: line.level) ?? .info) >= level
      })
    {
      reply(connection, to: id, .log(line))
    }
    if request.follow {
      guard connection.follows < config.session.follows else {
        return replyError(
          connection, to: id,
          HaatError(.busy, "this session follows \(connection.follows) log streams, the most it may"))
      }
      connection.follows += 1
      tailers.append((connection, id, worker, level))
    } else {
      reply(connection, to: id, .streamEnd(Haat_V1_StreamEnd()))
    }
  }

  private func listDead(_ request: Haat_V1_ListDead, id: String, from connection: Connection) {
    var job: JobID?
    if !request.job.isEmpty {
      guard let parsed = JobID(request.job) else {
        return replyError(
          connection, to: id, HaatError(.badRequest, "\"\(request.job)\" is not a job id", field: "job"))
      }
      job = parsed
    }
    let after: TaskID?
    do {
      after = try Paging.cursor(request.after, TaskID.init)
    } catch {
      return replyError(connection, to: id, error)
    }
    let limit = request.limit == 0 ? 100 : Int(min(request.limit, 10_000))
    let store = self.store
    let wanted = job
    let maxLineBytes = connection.maxLineBytes
    read(connection, id: id, { [after] in try store.deadTasks(job: wanted, after: after, limit: limit + 1) }) {
      records in
      var list = Haat_V1_DeadList()
      let tasks = records.prefix(limit).map { record in
        var dead = Haat_V1_DeadTask()
        dead.task = record.task.description
        dead.job = record.job.description
        dead.source = record.source
        dead.attempts = record.attempts
        dead.error = ErrorInfo(record.error)
        dead.diedMs = record.diedMs
        return dead
      }
      let fits = Paging.fitting(Array(tasks), beside: list, maxLineBytes: maxLineBytes)
      list.tasks = Array(tasks.prefix(max(fits, 1)))
      if list.tasks.count < records.count, let last = list.tasks.last { list.next = last.task }
      self.reply(connection, to: id, .deadList(list))
    }
  }

  private func updateDead(_ tasks: [String], job: String, retry: Bool, id: String, from connection: Connection) {
    let selector: DeadSelector
    if !tasks.isEmpty {
      var ids: [TaskID] = []
      for (index, text) in tasks.enumerated() {
        guard let task = TaskID(text) else {
          return replyError(
            connection, to: id, HaatError(.badRequest, "\"\(text)\" is not a task id", field: "tasks[\(index)]"))
        }
        ids.append(task)
      }
      selector = .tasks(ids)
    } else if !job.isEmpty {
      guard let parsed = JobID(job) else {
        return replyError(connection, to: id, HaatError(.badRequest, "\"\(job)\" is not a job id", field: "job"))
      }
      selector = .job(parsed)
    } else {
      selector = .all
    }
    enqueue(retry ? .retryDead(selector) : .discardDead(selector)) { result in
      guard case .deadUpdated(let changes, let counts) = result else {
        if case .failed(let error) = result { return self.replyError(connection, to: id, error) }
        return self.replyError(connection, to: id, HaatError(.internal, "unexpected store result"))
      }
      if retry {
        // A revived task reopens its job, with the counts the same transaction saw.
        for (job, jobCounts) in counts {
          if let active = self.jobs[job] {
            active.counts = jobCounts
          } else {
            self.jobs[job] = ActiveJob(id: job, counts: jobCounts, started: true, cancelled: false)
          }
        }
        for pool in Set(changes.map(\.pool)) { self.markWork(pool) }
      }
      self.logger.info(
        retry ? "dead tasks retried" : "dead tasks discarded",
        metadata: ["count": "\(changes.count)", "by": "\(connection.name)"])
      var updated = Haat_V1_DeadUpdated()
      updated.count = UInt32(clamping: changes.count)
      self.reply(connection, to: id, .deadUpdated(updated))
    }
  }

  /// Runs a store read off the loop and hands the value back on it; a failed read is
  /// answered with the error.
  private func read<T: Sendable>(
    _ connection: Connection, id: String, _ work: @escaping @Sendable () throws -> T,
    then body: @escaping (T) -> Void
  ) {
    guard connection.readsInFlight < config.session.readsInFlight else {
      return replyError(
        connection, to: id,
        HaatError(
          .busy,
          "this session has \(connection.readsInFlight) requests in flight, the most it may have; wait for their replies"
        ))
    }
    connection.readsInFlight += 1
    readers.runIfActive(eventLoop: loop, work).assumeIsolated().whenComplete { result in
      connection.readsInFlight -= 1
      switch result {
      case .success(let value): body(value)
      case .failure(let error as HaatError): self.replyError(connection, to: id, error)
      case .failure(let error): self.replyError(connection, to: id, HaatError(.unavailable, "\(error)"))
      }
      self.flush()
    }
  }

  // MARK: Group commit

  private func enqueue(_ op: StoreOp, _ done: @escaping (StoreOpResult) -> Void) {
    pending.append(PendingOp(op: op, done: done))
    queueCommit()
  }

  /// Runs a commit once the current burst of messages is handled, unless one is running
  /// (its completion starts the next).
  private func queueCommit() {
    guard !committing, !commitQueued, commitRetry == nil else { return }
    commitQueued = true
    loop.assumeIsolated().execute { self.commit() }
  }

  private struct Claim {
    var connection: Connection
    var pool: Pool
    var limit: Int
    var generation: UInt64
  }

  private func commit() {
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
  private var claimCutoffMs: Int64 {
    var cutoff = nowMs
    if let next = waitHeap.peek(), let entry = waiting[next.task], entry.due == next.at {
      cutoff = min(cutoff, entry.notBeforeMs - 1)
    }
    return max(cutoff, dueWatermarkMs)
  }

  private var hasClaimableCredit: Bool {
    guard accepting else { return false }
    return workerConnections.values.contains { connection in
      connection.open && !connection.draining
        && connection.credit.contains { pool, credit in
          poolHasWork.contains(pool) && credit > connection.reserved[pool, default: 0]
        }
    }
  }

  private func deliver(_ claim: Claim, _ result: StoreOpResult) {
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

  // MARK: Counts, waiting tasks, job ends

  /// Updates memory after a committed task change.
  private func apply(_ change: TaskChange) {
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

  private func markWork(_ pool: Pool) {
    poolHasWork.insert(pool)
    workGeneration[pool, default: 0] &+= 1
    queueCommit()
  }

  /// Milliseconds on the monotonic clock.
  private var monotonicMs: Int64 { Int64(now / 1_000_000) }

  private func addWaiting(_ task: TaskID, job: JobID, pool: Pool, notBeforeMs: Int64) {
    let due = monotonicMs + max(0, notBeforeMs - nowMs)
    waiting[task] = (due, notBeforeMs, job, pool)
    let earliest = waitHeap.peek()?.at
    waitHeap.push(at: due, task: task)
    if earliest == nil || due < earliest ?? .max { armWaitTimer() }
  }

  private func armWaitTimer() {
    waitTimer?.cancel()
    guard let next = waitHeap.peek() else { return }
    let delay = max(0, next.at - monotonicMs)
    waitTimer = loop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) { self.wakeWaiting() }
  }

  private func wakeWaiting() {
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

  private func jobChanged(_ id: JobID) {
    guard let job = jobs[id] else { return }
    if job.counts.open == 0 {
      finishIfEnded(id)
    } else if !job.watchers.isEmpty {
      scheduleEvent(job)
    }
  }

  /// Progress events go out at most every 100 ms per job.
  private func scheduleEvent(_ job: ActiveJob) {
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

  private func event(_ job: ActiveJob) -> Haat_V1_JobEvent {
    var event = Haat_V1_JobEvent()
    event.job = job.id.description
    event.state = JobRules.state(counts: job.counts, cancelled: job.cancelled, started: job.started).rawValue
    event.counts = Self.message(job.counts)
    event.atMs = nowMs
    return event
  }

  /// Once every task of a job has ended, reduces its partials into the report (off the
  /// loop) and records the job's end.
  private func finishIfEnded(_ id: JobID) {
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
  private func retryFinish(_ id: JobID) {
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

  // MARK: Messages

  static func message(_ counts: TaskCounts) -> Haat_V1_TaskCounts {
    var message = Haat_V1_TaskCounts()
    message.total = UInt32(clamping: counts.total)
    message.scheduled = UInt32(clamping: counts.scheduled)
    message.ready = UInt32(clamping: counts.ready)
    message.leased = UInt32(clamping: counts.leased)
    message.done = UInt32(clamping: counts.done)
    message.dead = UInt32(clamping: counts.dead)
    message.cancelled = UInt32(clamping: counts.cancelled)
    return message
  }

  static func message(_ record: JobRecord) -> Haat_V1_Job {
    var job = Haat_V1_Job()
    job.id = record.id.description
    job.name = record.name
    job.state = record.state.rawValue
    job.priority = record.priority
    job.createdMs = record.createdMs
    job.startedMs = record.startedMs
    job.finishedMs = record.finishedMs
    job.notBeforeMs = record.notBeforeMs
    job.counts = message(record.counts)
    job.reports = record.reports
    job.error = record.error
    job.submittedBy = record.submittedBy
    if let spec = try? JobSpec(jsonUTF8Data: record.spec, options: WireCodec.decodingOptions) { job.spec = spec }
    job.tasks = record.tasks.map(message)
    return job
  }

  static func message(_ task: TaskRecord) -> Haat_V1_TaskInfo {
    var info = Haat_V1_TaskInfo()
    info.id = task.id.description
    info.index = UInt32(clamping: task.index)
    info.source = task.source
    info.state = task.state.rawValue
    info.attempt = task.attempt
    info.maxAttempts = task.maxAttempts
    info.worker = task.worker
    if let error = task.lastError { info.lastError = ErrorInfo(error) }
    info.notBeforeMs = task.notBeforeMs
    info.updatedMs = task.updatedMs
    info.pool = task.pool.rawValue
    if let stats = task.stats, let decoded = try? TaskStats(jsonUTF8Data: stats, options: WireCodec.decodingOptions) {
      info.stats = decoded
    }
    return info
  }
}

/// A min-heap of (time, task) for tasks waiting out a backoff or a delayed start.
struct MinHeap {
  private var items: [(at: Int64, task: TaskID)] = []

  func peek() -> (at: Int64, task: TaskID)? { items.first }

  mutating func push(at: Int64, task: TaskID) {
    items.append((at, task))
    var child = items.count - 1
    while child > 0 {
      let parent = (child - 1) / 2
      guard items[child].at < items[parent].at else { break }
      items.swapAt(child, parent)
      child = parent
    }
  }

  @discardableResult
  mutating func pop() -> (at: Int64, task: TaskID)? {
    guard !items.isEmpty else { return nil }
    items.swapAt(0, items.count - 1)
    let top = items.removeLast()
    var parent = 0
    while true {
      let left = parent * 2 + 1
      let right = left + 1
      var smallest = parent
      if left < items.count, items[left].at < items[smallest].at { smallest = left }
      if right < items.count, items[right].at < items[smallest].at { smallest = right }
      guard smallest != parent else { break }
      items.swapAt(parent, smallest)
      parent = smallest
    }
    return top
  }
}
