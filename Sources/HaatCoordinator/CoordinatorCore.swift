import Foundation
import HaatCore
import HaatProtocol
import HaatStore
import Logging
import NIOCore
import NIOPosix

/// The coordinator's state in motion, confined to one event loop (`loop`): the listener is
/// bound on that loop alone, every entry point checks it, and timers and store results
/// come back to it. Its parts each own one concern:
/// - `CommitPipeline`: group commit of every store write, with backoff when the store fails;
/// - `ClaimScheduler`: which worker claims how much of which pool in each commit;
/// - `DelayedTasks`: tasks waiting for their `not_before`, on the monotonic clock;
/// - `Outbox`: replies encoded under each session's line limit, flushed per unit of work;
/// - `JobReducer` and `WireMessages`: a job's report, and store records as wire messages;
/// - `SharedLeases`, `StagedParts`, `LogStore`: leases, results in parts, shipped logs.
/// The request handlers (CoordinatorCore+Clients, +Workers), sessions opening and closing
/// (+Connections) and job tracking (+Jobs) tie them together. Store I/O is async and CPU-heavy work (planning big jobs, reducing,
/// encoding big payloads) runs on `work`, never on the loop.
final class CoordinatorCore: @unchecked Sendable {
  // @unchecked: every stored property is touched only on `loop`; the entry points check
  // it with `loop.preconditionInEventLoop()`, and everything else runs from them or from
  // the loop's own timers and futures.

  let loop: any EventLoop
  /// The loops connections live on (SessionHandler); the core writes to them through the
  /// outbox.
  let sessionLoops: [any EventLoop]
  let store: any JobStore
  let config: CoordinatorConfig
  let logger: Logger
  /// Threads for CPU-heavy work off the loop.
  let work: NIOThreadPool

  let commits: CommitPipeline
  let metrics = CoordinatorMetrics()
  let outbox: Outbox
  var scheduler = ClaimScheduler()
  var delayed = DelayedTasks()
  /// Request budgets per rate key, and the pauses platforms asked for.
  var rates = RateGovernor()
  /// When each task's last granted rate slot comes due (monotonic ms): a task makes one
  /// request at a time, so it holds at most one slot not yet due.
  var rateSlotsDue: [TaskID: Int64] = [:]
  var waitTimer: Scheduled<Void>?
  var connections: [ObjectIdentifier: Connection] = [:]
  /// The current connection of each worker name.
  var workerConnections: [String: Connection] = [:]
  var workers: [String: WorkerRecord] = [:]
  /// Shared with the session loops, which answer heartbeats.
  let leases: SharedLeases
  var jobs: [JobID: ActiveJob] = [:]
  /// Jobs whose last task ended in this turn of the loop, to be read together.
  var ending: [ActiveJob] = []
  /// The job of each leased task whose job is small enough to be reduced in the commit of
  /// its last result (`StoreOp.finishIfEnded`).
  var smallJobs: [TaskID: JobID] = [:]
  var logs: LogStore
  var tailers: [(Connection, String, worker: String, level: LogLevel)] = []
  var staged: StagedParts
  /// The bytes of specs in parts held over all sessions (`SpecParts.bytes`).
  var specPartBytes = 0
  /// Tasks whose whole result arrived in parts and is being committed.
  var resultsInFlight: Set<TaskID> = []
  var accepting = true
  var reaper: RepeatedTask?
  /// When the reaper last ran, and how often it should (monotonic ns): a sweep far later
  /// than due means this process did not run meanwhile (`reap`).
  var lastReap: UInt64 = 0
  var reapPeriodNs: UInt64 = 0
  var housekeeping: RepeatedTask?
  /// Free bytes on the store's disk, measured off the loop every second.
  var diskFreeBytes: UInt64?
  /// The SQLite store's file is no longer at its path (it, or its directory, was removed
  /// while the coordinator runs): SQLite writes on to the deleted file, which is lost when
  /// the coordinator stops. Found by a tester: nothing said so, and jobs were taken.
  var storeFileGone = false
  /// Whether the critical line about a damaged store file was logged (once).
  var storeDamageSaid = false
  var diskWatch: RepeatedTask?
  /// Starts the runs of schedules that are due, every second; `firingSchedules` while a
  /// round is in flight.
  var scheduleTimer: RepeatedTask?
  var firingSchedules = false
  /// After a run could not be stored (a full disk), due runs wait until then (monotonic
  /// ms), a pause that doubles from 1 s to 1 min; and whether the disk's reserve holds
  /// them back (said once).
  var schedulesRetryAtMs: Int64 = 0
  var schedulesBackoffMs: Int64 = 0
  var schedulesHeldForDisk = false

  init(
    loop: any EventLoop, sessionLoops: [any EventLoop], store: any JobStore, config: CoordinatorConfig, logger: Logger
  ) {
    self.loop = loop
    self.sessionLoops = sessionLoops
    self.store = store
    self.config = config
    self.logger = logger
    leases = SharedLeases(durationNs: UInt64(config.leaseMs) * 1_000_000)
    logs = LogStore(capacity: config.logCapacity, capacityBytes: config.logCapacityBytes)
    staged = StagedParts(
      maxBytesPerWorker: config.session.stagedPartBytesPerWorker, maxBytes: config.session.stagedPartBytes)
    work = NIOThreadPool(numberOfThreads: 2)
    work.start()
    outbox = Outbox(loop: loop, maxUnsentBytes: config.session.outboundBytes, logger: logger)
    commits = CommitPipeline(loop: loop, logger: logger) { ops in
      let promise = loop.makePromise(of: [StoreOpResult].self)
      let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
      store.apply(ops, nowMs: nowMs) { promise.completeWith($0) }
      return promise.futureResult
    }
    commits.extra = { [unowned self] in self.claims() }
    commits.wantsCommit = { [unowned self] in self.hasClaimableCredit }
    commits.afterCommit = { [unowned self] in self.outbox.flush() }
    commits.committed = { [unowned self] duration, failed in
      self.metrics.commitDuration.record(duration)
      if failed { self.metrics.commitFailed() }
    }
  }

  // MARK: Clocks

  /// The monotonic clock, in nanoseconds: leases, waits and health.
  var now: UInt64 { NIODeadline.now().uptimeNanoseconds }
  /// Milliseconds on the monotonic clock.
  var monotonicMs: Int64 { Int64(now / 1_000_000) }
  /// The wall clock, in milliseconds since the epoch: what the store records.
  var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

  // MARK: Off the loop

  /// Runs store I/O and hands its value back on the loop.
  func onStore<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> EventLoopFuture<T> {
    let promise = loop.makePromise(of: T.self)
    promise.completeWithTask(body)
    return promise.futureResult
  }

  /// Runs CPU-heavy work on `work` and hands its value back on the loop.
  func offLoop<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
    work.runIfActive(eventLoop: loop, body)
  }

  // MARK: Lifecycle

  /// Loads what the store holds and starts the timers. Call once.
  func start() async throws {
    let recovery = try await store.recover(nowMs: nowMs)
    let diskFree = config.storeDirectory.flatMap(Self.freeBytes)
    try await loop.submit {
      self.diskFreeBytes = diskFree
      let now = self.now
      for job in recovery.jobs {
        self.jobs[job.id] = ActiveJob(id: job.id, counts: job.counts, started: job.started, cancelled: job.cancelled)
      }
      // Every stored lease gets one full period for its worker to come back, counted from
      // the end of the worker's longest reconnect pause: a worker backed off by earlier
      // restarts must not find its lease gone (and an attempt spent) for being late.
      let grace = UInt64(Defaults.reconnectCapMs) * 1_000_000
      for lease in recovery.leases {
        self.leases.grant(
          task: lease.task, attempt: lease.attempt, owner: lease.owner, now: now + grace,
          rate: Self.rateLimit(ofSpec: lease.spec))
      }
      for task in recovery.waiting {
        self.addWaiting(task.task, job: task.job, pool: task.pool, notBeforeMs: task.notBeforeMs)
      }
      // Pauses are stored on the wall clock and kept on the monotonic one.
      for pause in recovery.ratePauses {
        self.rates.pause(
          key: pause.key, pauseMs: pause.untilMs - self.nowMs, worker: pause.worker, reason: pause.reason,
          nowMs: self.monotonicMs)
      }
      let period = TimeAmount.milliseconds(Int64(max(100, min(1000, self.config.leaseMs / 4))))
      (self.lastReap, self.reapPeriodNs) = (self.now, UInt64(period.nanoseconds))
      self.reaper = self.loop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in self.reap() }
      for job in self.jobs.keys { self.finishIfEnded(job) }
      let housekeeping = TimeAmount.milliseconds(max(1_000, self.config.housekeepingMs))
      self.housekeeping = self.loop.scheduleRepeatedTask(initialDelay: .seconds(60), delay: housekeeping) { _ in
        self.keepHouse()
      }
      self.diskWatch = self.loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
        self.measureDisk()
      }
      self.scheduleTimer = self.loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
        self.fireDueSchedules()
      }
      self.logger.info(
        "store recovered",
        metadata: [
          "jobs": "\(recovery.jobs.count)", "leases": "\(recovery.leases.count)",
          "waiting": "\(recovery.waiting.count)",
        ])
    }.get()
  }

  /// Stops taking new work, lets the commit in flight finish and stops the threads.
  func shutdown() async {
    let drained: EventLoopFuture<Void> = loop.flatSubmit {
      self.accepting = false
      self.reaper?.cancel()
      self.waitTimer?.cancel()
      self.housekeeping?.cancel()
      self.scheduleTimer?.cancel()
      self.diskWatch?.cancel()
      return self.commits.drain()
    }
    try? await drained.get()
    try? await work.shutdownGracefully()
  }

  /// The store's disk, measured on `work` (statvfs may block on a sick file system).
  func measureDisk() {
    guard let directory = config.storeDirectory, case .sqlite(let file) = config.storeLocation else { return }
    offLoop { (Self.freeBytes(directory), access(file, F_OK) == 0 || errno != ENOENT) }
      .assumeIsolated().whenSuccess { free, present in
        self.diskFreeBytes = free
        if !present, !self.storeFileGone {
          self.logger.critical(
            "the store's file is gone from its path; what is written now is lost when the coordinator stops",
            metadata: ["store": "\(file)"])
        }
        self.storeFileGone = !present
        if let damage = self.store.damage, !self.storeDamageSaid {
          self.storeDamageSaid = true
          self.logger.critical(
            "the store's file is damaged; refusing new jobs (restore it from a backup)",
            metadata: ["store": "\(file)", "error": "\(damage)"])
        }
      }
  }

  static func freeBytes(_ directory: String) -> UInt64? {
    var stats = statvfs()
    guard statvfs(directory, &stats) == 0 else { return nil }
    return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
  }
}
