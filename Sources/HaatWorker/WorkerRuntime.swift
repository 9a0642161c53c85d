import Foundation
import HaatCore
import HaatFetch
import HaatProtocol
import HaatRecords
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// The worker's moving parts, confined to one event loop; tasks run on a thread pool.
///
/// Results are kept until the coordinator acknowledges them and are sent again after a
/// reconnect, so a coordinator restart loses nothing a worker finished.
final class WorkerRuntime: @unchecked Sendable {
  // @unchecked: all mutable state is touched only on `loop`.

  let loop: any EventLoop
  let config: WorkerConfig
  let logger: Logger
  let threads: NIOThreadPool
  let runner: TaskRunner
  private let started = Date()

  struct Running {
    var attempt: UInt32
    var pool: Pool
    var progress: TaskProgress
    var revoked = false
    /// Bytes at the last heartbeat, to tell progress from a stalled transfer.
    var lastBytes: UInt64 = 0
  }

  var channel: (any Channel)?
  var welcome: Haat_V1_Welcome?
  var running: [String: Running] = [:]
  /// Results (`complete` or `fail`) sent, or to send, and not yet acknowledged, by task;
  /// cut into lines for each session as its line limit allows.
  var unacked: [String: Envelope.OneOf_Body] = [:]
  /// Large results already cut into lines (off the loop) for a session limit, by task.
  private var prepared: [String: (limit: Int, binary: Bool, lines: [Envelope])] = [:]
  /// The next pause before resending a result the coordinator could not store, by task.
  private var resendDelayMs: [String: Int64] = [:]
  var free: [Pool: Int]
  var pendingCredit: [Pool: Int] = [:]
  private var creditQueued = false
  var draining = false
  var stopping = false
  var heartbeat: RepeatedTask?
  /// When the first heartbeat since the coordinator's last line went out (`beat`).
  var unansweredSince: NIODeadline?
  /// While a result in parts waits for its `ack`: when its first part was written out,
  /// and the time added to the silence limit for what the socket still holds (`sendResult`).
  var partsWrittenSince: NIODeadline?
  var partsAllowance = TimeAmount.zero
  var reconnectDelayMs: Int64 = 100
  /// Which of `config.coordinators` the worker connects to next.
  var coordinatorIndex = 0
  var coordinator: Endpoint { config.coordinators[coordinatorIndex % config.coordinators.count] }
  /// When the current session opened (monotonic): a session that dies soon after it opened
  /// does not reset the reconnect backoff.
  var openedAt = NIODeadline.now()
  var tasksDone: UInt64 = 0
  var tasksFailed: UInt64 = 0
  var lastProgressMs: Int64 = 0
  var fetchErrors: [String: UInt64] = [:]
  var logBuffer: [Haat_V1_Log] = []
  var logsDropped: UInt64 = 0
  var exitAfterDrain = false
  var drainTimer: Scheduled<Void>?
  /// The drain ran out of time and stopped the running transfers: their failures say so
  /// (they read "the transfer was cancelled", like a job's cancel: a tester).
  var drainTimedOut = false
  private var counter: UInt64 = 0
  /// Completes when the worker has drained (or fails on an unrecoverable error).
  let done: EventLoopPromise<Void>

  /// Made once from `config.tls` (its files are read at start).
  let tlsContext: NIOSSLContext?

  init(
    loop: any EventLoop, config: WorkerConfig, fetcher: Fetcher, threads: NIOThreadPool, logger: Logger,
    tlsContext: NIOSSLContext? = nil
  ) {
    self.tlsContext = tlsContext
    self.loop = loop
    self.config = config
    self.logger = logger
    self.threads = threads
    runner = TaskRunner(
      fetcher: fetcher, credentials: config.credentials, allowedHosts: config.allowedHosts,
      limits: ReadLimits(maxRecordBytes: config.maxRecordBytes), gate: RateGate())
    free = config.slots
    done = loop.makePromise()
  }

  var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

  func nextID() -> String {
    counter &+= 1
    return "w\(counter)"
  }

  // MARK: Messages

  func receive(_ envelope: Envelope) {
    unansweredSince = nil
    switch envelope.body {
    case .assign(let assign): receiveAssign(assign)
    case .heartbeatAck(let ack): receiveHeartbeatAck(ack)
    case .ack(let ack): receiveAck(ack)
    case .drain(let drain):
      logger.notice("the coordinator asked this worker to drain", metadata: ["reason": "\(drain.reason)"])
      startDrain(exit: false)
    case .shutdown(let shutdown):
      logger.notice("the coordinator asked this worker to shut down", metadata: ["reason": "\(shutdown.reason)"])
      startDrain(exit: true)
    case .rateGrant(let grant):
      runner.gate.resolve(replyTo: envelope.replyTo, .success(Int64(grant.waitMs)))
    case .error(let error):
      // An error answering a rate request goes to the task waiting for it.
      let refused = ExportError("no rate slot: \(error.code): \(error.message)", code: error.code, retryable: true)
      if runner.gate.resolve(replyTo: envelope.replyTo, .failure(refused)) { return }
      logger.warning(
        "the coordinator reported an error", metadata: ["code": "\(error.code)", "error": "\(error.message)"])
    default:
      break
    }
  }

  func readComplete() {
    flush()
  }

  private func receiveAssign(_ assign: Haat_V1_Assign) {
    guard let pool = Pool(rawValue: assign.pool) else {
      // A pool this worker does not know is the coordinator's mistake: said, not guessed.
      logger.error("an assign for an unknown pool", metadata: ["task": "\(assign.task)", "pool": "\(assign.pool)"])
      var fail = Haat_V1_Fail()
      fail.task = assign.task
      fail.attempt = assign.attempt
      fail.error = ErrorInfo(code: "bad_request", message: "worker \(config.name) has no pool \"\(assign.pool)\"")
      fail.retryable = true
      send(Envelope(id: nextID(), .fail(fail)))
      return
    }
    guard !draining else {
      // Hand it straight back; another worker will take it.
      var fail = Haat_V1_Fail()
      fail.task = assign.task
      fail.attempt = assign.attempt
      fail.error = ErrorInfo(code: "worker_draining", message: "worker \(config.name) is draining")
      fail.retryable = true
      finishTask(assign.task, pool: pool, result: .fail(fail), counted: false)
      return
    }
    free[pool, default: 0] -= 1
    let progress = TaskProgress()
    running[assign.task] = Running(attempt: assign.attempt, pool: pool, progress: progress)
    let spec = assign.spec
    if spec.source.kind == SourceKind.noop.name {
      // Nothing to fetch: no thread hop.
      complete(assign, pool: pool, outcome: .complete(Partial(), TaskStats(), bookmark: ""))
      return
    }
    logger.debug(
      "task started", metadata: ["task": "\(assign.task)", "attempt": "\(assign.attempt)", "job": "\(assign.job)"])
    let runner = self.runner
    let onFetchError: @Sendable (FetchError) -> Void = { error in
      self.loop.execute { self.fetchErrors[error.kind.rawValue, default: 0] += 1 }
    }
    let limit = lineLimit
    let binary = binaryPartials
    threads.runIfActive(eventLoop: loop) { () -> (TaskOutcome, [Envelope]?) in
      let outcome = runner.run(
        spec, task: assign.task, attempt: assign.attempt, progress: progress, onFetchError: onFetchError)
      // Cutting a large result into lines is work for this thread, not for the loop: on the
      // loop, a keyed map of 300,000 customers would hold up the heartbeats for as long as
      // it takes, and the lease would expire. Any report's partial counts, by its size.
      guard case .complete(let partial, let stats, let bookmark, let split) = outcome else { return (outcome, nil) }
      let encoded: [UInt8]? = try? partial.serializedBytes()
      guard split != nil || (encoded?.count ?? .max) > 64 << 10 else { return (outcome, nil) }
      var count = 0
      let lines = ResultLines.envelopes(
        for: .complete(Haat_V1_Complete(assign, partial, stats, bookmark: bookmark, split: split)),
        encodedPartial: encoded, binary: binary, maxLineBytes: limit
      ) {
        count += 1
        return "r\(assign.task).\(assign.attempt).\(count)"
      }
      return (outcome, lines)
    }
    .assumeIsolated().whenComplete { result in
      switch result {
      case .success((let outcome, let lines)):
        self.complete(assign, pool: pool, outcome: outcome, lines: lines.map { (limit, binary, $0) })
      case .failure(let error):
        self.complete(
          assign, pool: pool,
          outcome: .fail(
            ErrorInfo(code: "internal", message: "\(error)"), retryable: true, retryAfterMs: 0, TaskStats()))
      }
      self.flush()
    }
  }

  private func complete(
    _ assign: Haat_V1_Assign, pool: Pool, outcome: TaskOutcome,
    lines: (limit: Int, binary: Bool, lines: [Envelope])? = nil
  ) {
    guard let task = running[assign.task], task.attempt == assign.attempt else { return }
    lastProgressMs = nowMs
    if task.revoked {
      // The coordinator took the lease back (cancelled or expired): the result is moot.
      running[assign.task] = nil
      release(pool)
      return
    }
    let result: Envelope.OneOf_Body
    switch outcome {
    case .complete(let partial, let stats, let bookmark, let split):
      result = .complete(Haat_V1_Complete(assign, partial, stats, bookmark: bookmark, split: split))
      tasksDone += 1
      if assign.spec.source.kind != SourceKind.noop.name {
        logger.info(
          "task done",
          metadata: [
            "task": "\(assign.task)", "attempt": "\(assign.attempt)", "rows": "\(stats.rows)",
            "bad_rows": "\(stats.badRows)", "bytes": "\(stats.bytes)", "ms": "\(stats.durationMs)",
          ])
      }
    case .fail(let error, let retryable, let retryAfterMs, let stats):
      var fail = Haat_V1_Fail()
      fail.task = assign.task
      fail.attempt = assign.attempt
      fail.error = error
      if drainTimedOut, error.code == "cancelled" {
        fail.error.message = "the worker's drain timeout (\(config.drainTimeoutMs) ms) ended it: \(error.message)"
      }
      fail.retryable = retryable
      fail.retryAfterMs = retryAfterMs
      fail.stats = stats
      result = .fail(fail)
      tasksFailed += 1
      logger.warning(
        "task failed",
        metadata: [
          "task": "\(assign.task)", "attempt": "\(assign.attempt)", "code": "\(error.code)",
          "error": "\(fail.error.message)", "retryable": "\(retryable)",
        ])
    }
    running[assign.task] = nil
    prepared[assign.task] = lines
    finishTask(assign.task, pool: pool, result: result, counted: true)
  }

  /// The current session's line limit (the default before the first session).
  private var lineLimit: Int {
    let limit = Int(welcome?.maxLineBytes ?? 0)
    return limit > 0 ? limit : Int(Defaults.maxLineBytes)
  }

  /// Whether the current session takes partials in protobuf's binary encoding.
  private var binaryPartials: Bool { welcome?.partialBinary ?? false }

  /// Sends a result (keeping it until acknowledged) and frees the slot. The credit of a
  /// result in parts goes first: the coordinator reads a connection's lines in order, and
  /// the next task can be assigned and run while it reads megabytes of parts.
  private func finishTask(_ task: String, pool: Pool, result: Envelope.OneOf_Body, counted: Bool) {
    unacked[task] = result
    if counted {
      release(pool)
      if (prepared[task]?.lines.count ?? 0) > 1 { sendCredit() }
    }
    sendResult(task)
    // A wave of tasks finishing in one tick (no-op tasks from one read of assigns) gives its
    // slots back, after their results, every `creditChunk`: the coordinator commits and
    // claims for those while this loop works on the rest (one burst per wave made the two
    // wait for each other).
    if pendingCredit[pool, default: 0] >= Self.creditChunk {
      sendCredit()
      flush()
    }
  }

  /// Sends a kept result in as many lines as this session's limit needs. A result that
  /// cannot be cut to fit becomes the task's `too_large` failure, kept in its place.
  func sendResult(_ task: String) {
    guard let result = unacked[task], channel != nil else { return }
    let envelopes: [Envelope]
    if let ready = prepared[task], ready.limit == lineLimit, ready.binary == binaryPartials {
      envelopes = ready.lines
    } else {
      envelopes = ResultLines.envelopes(for: result, binary: binaryPartials, maxLineBytes: lineLimit, id: nextID)
    }
    if case .complete(let complete) = result, envelopes.count == 1, case .fail(let fail)? = envelopes[0].body {
      logger.warning(
        "the result cannot be sent; failing the task",
        metadata: ["task": "\(task)", "attempt": "\(complete.attempt)", "error": "\(fail.error.message)"])
      unacked[task] = .fail(fail)
      prepared[task] = nil
    } else if envelopes.count > 1 {
      logger.info("sending the result in parts", metadata: ["task": "\(task)", "parts": "\(envelopes.count)"])
      // On a slow link the heartbeats wait behind the parts for longer than the silence
      // limit (`beat`); each part the socket takes, once its buffers are full, means the
      // coordinator read what came before, which is as good as an answer (found by a
      // tester: the worker left a busy coordinator and sent 8 MB again from part 1, for
      // ever).
      guard let channel else { return }
      for envelope in envelopes {
        let written = loop.makePromise(of: Void.self)
        channel.write(envelope, promise: written)
        written.futureResult.assumeIsolated().whenSuccess {
          guard self.channel === channel else { return }
          self.unansweredSince = nil
          // What the socket still holds after the last part drains about as slowly as
          // the parts went in: twice that time is allowed until the result's `ack`.
          let now = NIODeadline.now()
          let first = self.partsWrittenSince ?? now
          self.partsWrittenSince = first
          self.partsAllowance = max(self.partsAllowance, (now - first) * 2)
        }
      }
      return
    }
    for envelope in envelopes { send(envelope) }
  }

  /// After this many results of a wave of tasks finishing in one tick, their credit goes.
  static let creditChunk = 32

  private func release(_ pool: Pool) {
    free[pool, default: 0] += 1
    guard !draining else {
      checkDrained()
      return
    }
    pendingCredit[pool, default: 0] += 1
    // Coalesce the credit of everything finished in this loop tick into one message.
    if !creditQueued {
      creditQueued = true
      loop.assumeIsolated().execute {
        self.creditQueued = false
        guard !self.draining else { return }
        self.sendCredit()
        self.flush()
      }
    }
  }

  /// Sends the credit freed since the last.
  private func sendCredit() {
    send(credit: pendingCredit)
    pendingCredit = [:]
  }

  /// Sends a `credit` for each pool with slots to offer.
  func send(credit slots: [Pool: Int]) {
    for (pool, count) in slots where count > 0 {
      send(
        Envelope(
          .credit(
            .with {
              $0.pool = pool.rawValue; $0.free = UInt32(count)
            })))
    }
  }

  private func receiveAck(_ ack: Haat_V1_Ack) {
    (partsWrittenSince, partsAllowance) = (nil, .zero)
    if let sent = unacked[ack.task], Self.attempt(of: sent) == ack.attempt {
      switch (ack.accepted, ack.reason, sent) {
      case (false, ErrorCode.unavailable.rawValue, _), (false, "missing_parts", .complete):
        // Not stored just now (a full disk, say), or parts lost on the way: kept, and sent
        // again (every part, from 1) after a pause.
        let delay = resendDelayMs[ack.task] ?? 500
        resendDelayMs[ack.task] = min(delay * 2, 30_000)
        logger.notice(
          "the coordinator could not store a result; sending it again",
          metadata: ["task": "\(ack.task)", "attempt": "\(ack.attempt)", "delay_ms": "\(delay)"])
        loop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) {
          self.sendResult(ack.task)
          self.flush()
        }
        return
      case (false, ErrorCode.tooLarge.rawValue, .complete(let complete)):
        // Too large for the coordinator to take: the task fails, saying so, instead of
        // its lease expiring in silence.
        prepared[ack.task] = nil
        unacked[ack.task] = .fail(
          ResultLines.tooLarge(
            ack.task, ack.attempt, stats: complete.stats,
            HaatError(
              .tooLarge,
              "the coordinator refused the result as too large: a result in parts may hold 128 MiB per worker (512 MiB across workers); split the source into several"
            )))
        sendResult(ack.task)
        return
      case (false, "bad_split", .complete(let complete)):
        // The plan the connector made is not one the coordinator takes: a bug, said as such.
        prepared[ack.task] = nil
        var fail = Haat_V1_Fail()
        fail.task = ack.task
        fail.attempt = ack.attempt
        fail.error = ErrorInfo(code: "bad_split", message: "the coordinator refused the task's split of the export")
        fail.stats = complete.stats
        unacked[ack.task] = .fail(fail)
        sendResult(ack.task)
        return
      default:
        unacked[ack.task] = nil
        prepared[ack.task] = nil
        resendDelayMs[ack.task] = nil
        giveBackMemory(after: sent)
      }
    }
    if !ack.accepted {
      logger.notice(
        "the coordinator did not take a result",
        metadata: ["task": "\(ack.task)", "attempt": "\(ack.attempt)", "reason": "\(ack.reason)"])
    }
    if draining { checkDrained() }
  }

  private static func attempt(of result: Envelope.OneOf_Body) -> UInt32? {
    switch result {
    case .complete(let complete): return complete.attempt
    case .fail(let fail): return fail.attempt
    default: return nil
    }
  }
}
