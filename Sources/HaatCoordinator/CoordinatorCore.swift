import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatStore
import Logging
import NIOCore
import NIOPosix

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
  let writer: NIOThreadPool
  let readers: NIOThreadPool

  var connections: [ObjectIdentifier: Connection] = [:]
  /// The current connection of each worker name.
  var workerConnections: [String: Connection] = [:]
  var workers: [String: WorkerRecord] = [:]
  var leases: LeaseTable<String>
  var jobs: [JobID: ActiveJob] = [:]
  /// Ready tasks waiting for their `not_before`, by task: (when, job, pool).
  /// Tasks waiting for their time: `due` is on the monotonic clock (milliseconds), taken
  /// from the stored wall-clock `not_before` when the wait begins, so a wall-clock step
  /// neither delays nor hurries them.
  var waiting: [TaskID: (due: Int64, notBeforeMs: Int64, job: JobID, pool: Pool)] = [:]
  /// The latest stored `not_before` of a task the monotonic timer found due: claims take
  /// tasks up to it even when the wall clock has stepped back since.
  var dueWatermarkMs: Int64 = 0
  var waitHeap = MinHeap()
  var waitTimer: Scheduled<Void>?
  /// Pools that may have claimable tasks, and a counter bumped whenever that may change.
  var poolHasWork: Set<Pool> = Set(Pool.allCases)
  var workGeneration: [Pool: UInt64] = [:]

  struct PendingOp {
    var op: StoreOp
    var done: (StoreOpResult) -> Void
  }
  var pending: [PendingOp] = []
  var committing = false
  var claimRotation = 0
  var commitQueued = false
  /// The pause before the next commit after a failed one (0 after a success), and its timer.
  var commitBackoffMs: Int64 = 0
  var commitRetry: Scheduled<Void>?
  var dirty: [Connection] = []
  var logs: LogStore
  var tailers: [(Connection, String, worker: String, level: LogLevel)] = []
  var accepting = true
  var reaper: RepeatedTask?
  var drainPromise: EventLoopPromise<Void>?
  var staged: StagedParts
  var housekeeping: RepeatedTask?

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

  var now: UInt64 { NIODeadline.now().uptimeNanoseconds }
  var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

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

  func send(_ envelope: Envelope, to connection: Connection) {
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
  func send(line: ByteBuffer, to connection: Connection) {
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

  func reply(_ connection: Connection, to id: String, _ body: Envelope.OneOf_Body) {
    send(Envelope(replyTo: id, body), to: connection)
  }

  /// Sends replies one after another, each once the one before has been written to the
  /// socket: a result in parts never piles up past the session's outbound bound (which
  /// closes peers that do not read).
  func replyInTurn(_ connection: Connection, to id: String, _ bodies: ArraySlice<Envelope.OneOf_Body>) {
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

  func replyError(_ connection: Connection, to id: String, _ error: HaatError) {
    send(.error(error, replyTo: id), to: connection)
  }

  func outboundBytes(of connection: Connection) -> Int {
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
}
