import Foundation
import HaatCore

/// A job to store, already validated and planned into tasks.
public struct NewJob: Sendable {
  public var name: String
  public var priority: Int32
  /// Tasks do not start before this wall-clock time (ms since the epoch); 0 = now.
  public var notBeforeMs: Int64
  public var maxAttempts: UInt32
  public var retry: RetryPolicy
  public var reports: [String]
  /// The submitted spec, as its wire JSON.
  public var spec: Data
  /// "role:name" of the session that submitted it.
  public var submittedBy: String
  public var tasks: [NewTask]

  public init(
    name: String, priority: Int32, notBeforeMs: Int64, maxAttempts: UInt32, retry: RetryPolicy,
    reports: [String], spec: Data, submittedBy: String, tasks: [NewTask]
  ) {
    self.name = name
    self.priority = priority
    self.notBeforeMs = notBeforeMs
    self.maxAttempts = maxAttempts
    self.retry = retry
    self.reports = reports
    self.spec = spec
    self.submittedBy = submittedBy
    self.tasks = tasks
  }
}

/// One planned task.
public struct NewTask: Sendable {
  public var pool: Pool
  /// The source's name, for people (dead lists, missing sources).
  public var source: String
  /// The task's spec, as its wire JSON.
  public var spec: Data
  /// For a task of an incremental source: the key its bookmark is kept under, so the
  /// source's next run starts where this one ended.
  public var resumeKey: String?

  public init(pool: Pool, source: String, spec: Data, resumeKey: String? = nil) {
    self.pool = pool
    self.source = source
    self.spec = spec
    self.resumeKey = resumeKey
  }
}

/// Which dead tasks an operator means.
public enum DeadSelector: Sendable, Equatable {
  case all
  case job(JobID)
  case tasks([TaskID])
}

/// One change to the queue. A batch of them is applied in one durable transaction.
public enum StoreOp: Sendable {
  case submit(NewJob)
  /// Lease up to `limit` ready tasks of `pool` to `owner`, highest priority first, among
  /// those whose `not_before` is at most `dueMs` (the coordinator's judgement, made on the
  /// monotonic clock, of what is due; the commit's wall-clock time when nil).
  case claim(owner: String, pool: Pool, limit: Int, dueMs: Int64? = nil)
  /// Delete up to `limit` jobs that ended before `endedBeforeMs`, with their tasks.
  case prune(endedBeforeMs: Int64, limit: Int)
  /// A result from `worker`, accepted only if it holds the lease under `attempt`; `spawn`
  /// makes the tasks it adds to its job (a plan task's byte ranges), in the same commit.
  case complete(
    task: TaskID, attempt: UInt32, worker: String, partial: Data, stats: Data, bookmark: String,
    spawn: TaskSpawner? = nil)
  /// A failure from `worker`, accepted only if it holds the lease under `attempt`.
  case fail(
    task: TaskID, attempt: UInt32, worker: String, error: TaskError, retryable: Bool, retryAfterMs: UInt64,
    stats: Data)
  case expire(task: TaskID, attempt: UInt32)
  case release(task: TaskID, attempt: UInt32)
  case cancelJob(JobID)
  case retryDead(DeadSelector)
  case discardDead(DeadSelector)
  /// Record a job's end and report; refused (`finished(applied: false)`) if it has open tasks.
  case finishJob(JobID, state: JobState, report: Data?, error: String)
  /// Record the end of the job in this transaction if the ops before this one ended its
  /// last open task, so a small job's end takes no read and no commit of its own: made as
  /// `ending` says (the job and its outputs read as `finishing` reads them and reduced, or
  /// reduced already) and recorded as `finishJob` records it. Answered `ended`, or
  /// `finished(applied: false)` when the job has open tasks, has ended already, or the
  /// reduce declined.
  case finishIfEnded(JobID, ending: JobEnding)
  /// Create or replace a schedule, with its first run (answered `submitted`); the next run
  /// is due at the schedule's `nextMs`.
  case schedule(NewSchedule, firstRun: NewJob)
  /// Start the run of `schedule` due at `dueMs`: only if it is still due then and not
  /// paused (so a run fires once, whichever coordinator asks), moving the next run to
  /// `nextMs`. Answered `submitted`, or `notFired`.
  case fire(schedule: String, dueMs: Int64, nextMs: Int64, run: NewJob)
  case updateSchedule(String, ScheduleAction)
  /// Record a rate key's pause (kept if it ends later than the one stored); expired pauses
  /// are dropped. Answered `noted`.
  case ratePause(RatePause)
  /// Forget a rate key's pause (an operator lifted it). Answered `noted`.
  case unpause(String)
}

/// Makes the specs of the tasks a result adds to its job from the task's own stored spec
/// and the index the first new task gets; nil when that spec cannot be read (the task then
/// dies with `bad_split` rather than add nothing).
public typealias TaskSpawner = @Sendable (_ spec: Data, _ firstIndex: Int) -> [Data]?

/// A recurring job spec, as submitted with `every`.
public struct NewSchedule: Sendable {
  public var name: String
  /// The spec, as its wire JSON.
  public var spec: Data
  /// As written ("6h", or a cron expression), and in milliseconds (0 for cron).
  public var every: String
  public var everyMs: Int64
  /// When the run after the first is due.
  public var nextMs: Int64
  public var createdBy: String

  public init(name: String, spec: Data, every: String, everyMs: Int64, nextMs: Int64, createdBy: String) {
    self.name = name
    self.spec = spec
    self.every = every
    self.everyMs = everyMs
    self.nextMs = nextMs
    self.createdBy = createdBy
  }
}

/// A schedule as stored.
public struct ScheduleRecord: Sendable, Equatable {
  public var name: String
  public var spec: Data
  public var every: String
  public var everyMs: Int64
  /// When the next run is due (wall clock, ms since the epoch).
  public var nextMs: Int64
  public var paused: Bool
  public var runs: Int
  public var lastJob: JobID?
  public var createdBy: String
  public var createdMs: Int64
  /// The first run under the schedule's present making (nil in a store from before it was
  /// kept): earlier runs under the name are another schedule's.
  public var firstJob: JobID? = nil
}

public enum ScheduleAction: String, Sendable, CaseIterable {
  case pause, resume, remove
}

/// What one op did.
public enum StoreOpResult: Sendable {
  case submitted(JobID, tasks: Int, notBeforeMs: Int64)
  case claimed([ClaimedTask])
  case pruned(jobs: Int, tasks: Int)
  case changed(TaskChange)
  case cancelled(JobID, [TaskChange])
  /// The changed tasks, and the task counts of every job they belong to after the change.
  case deadUpdated([TaskChange], counts: [JobID: TaskCounts])
  case finished(JobID, applied: Bool)
  /// `finishIfEnded` recorded the job's end.
  case ended(JobID, JobEnd)
  /// A schedule due at the time given was not fired: another coordinator fired it, or it
  /// was paused, removed or replaced meanwhile.
  case notFired
  case scheduleUpdated(applied: Bool)
  /// Recorded (an op that changes no task or job).
  case noted
  case failed(HaatError)
}

/// A task that moved (or was refused), with enough to update counters and reply.
public struct TaskChange: Sendable, Equatable {
  public var task: TaskID
  public var job: JobID
  public var pool: Pool
  /// The attempt the event was about.
  public var attempt: UInt32
  /// The stored state before.
  public var from: TaskState
  public var transition: TaskTransition
  /// For a retry: when the task may run again (ms since the epoch).
  public var notBeforeMs: Int64
  /// How many ready tasks the change added to the job (a plan task's ranges).
  public var spawned: Int = 0
}

/// A task leased by a claim.
public struct ClaimedTask: Sendable {
  public var task: TaskID
  public var job: JobID
  public var index: Int
  public var attempt: UInt32
  public var pool: Pool
  public var spec: Data
  /// Whether this claim started its job (queued → running).
  public var startedJob: Bool
  /// For a task of an incremental source: the bookmark of the source's last accepted
  /// run, read when the task is claimed (so a retry starts from the newest).
  public var bookmark: String? = nil
}

/// A job as stored, with its task counts.
public struct JobRecord: Sendable {
  public var id: JobID
  public var name: String
  public var state: JobState
  public var priority: Int32
  public var createdMs: Int64
  public var startedMs: Int64
  public var finishedMs: Int64
  public var notBeforeMs: Int64
  public var maxAttempts: UInt32
  public var reports: [String]
  public var error: String
  public var submittedBy: String
  public var spec: Data
  public var counts: TaskCounts
  public var tasks: [TaskRecord]
}

/// A task as stored.
public struct TaskRecord: Sendable {
  public var id: TaskID
  public var job: JobID
  public var index: Int
  public var pool: Pool
  public var source: String
  /// As shown: a ready task whose time has not come is `scheduled`.
  public var state: TaskState
  public var attempt: UInt32
  public var maxAttempts: UInt32
  public var worker: String
  public var lastError: TaskError?
  public var notBeforeMs: Int64
  public var updatedMs: Int64
  public var stats: Data?
}

/// What the reducer needs of one task of a finished job.
public struct TaskOutput: Sendable {
  public var task: TaskID
  public var index: Int
  public var source: String
  public var state: TaskState
  public var partial: Data?
  public var stats: Data?
  public var lastError: TaskError?

  public init(
    task: TaskID, index: Int, source: String, state: TaskState, partial: Data?, stats: Data?, lastError: TaskError?
  ) {
    (self.task, self.index, self.source, self.state) = (task, index, source, state)
    (self.partial, self.stats, self.lastError) = (partial, stats, lastError)
  }
}

/// A dead task, for operators.
public struct DeadRecord: Sendable {
  public var task: TaskID
  public var job: JobID
  public var source: String
  public var attempts: UInt32
  public var error: TaskError
  public var diedMs: Int64
}

/// What a coordinator needs to resume after a restart.
public struct Recovery: Sendable {
  /// A job that has not ended.
  public struct ActiveJob: Sendable {
    public var id: JobID
    public var counts: TaskCounts
    public var started: Bool
    public var cancelled: Bool
  }

  /// A task that was leased when the coordinator stopped.
  public struct Lease: Sendable {
    public var task: TaskID
    public var job: JobID
    public var attempt: UInt32
    public var owner: String
    public var pool: Pool
    /// The task's stored spec (for the rate key its holder may ask slots under).
    public var spec: Data = Data()
  }

  /// A ready task whose time has not come.
  public struct Waiting: Sendable {
    public var task: TaskID
    public var job: JobID
    public var pool: Pool
    public var notBeforeMs: Int64
  }

  public var jobs: [ActiveJob]
  public var leases: [Lease]
  public var waiting: [Waiting]
  /// Rate keys a platform paused, still paused.
  public var ratePauses: [RatePause] = []
}

/// A rate key a platform throttled: no request under it before `untilMs` (wall clock).
public struct RatePause: Sendable, Equatable {
  public var key: String
  public var untilMs: Int64
  public var worker: String
  public var reason: String

  public init(key: String, untilMs: Int64, worker: String, reason: String) {
    self.key = key
    self.untilMs = untilMs
    self.worker = worker
    self.reason = reason
  }
}

/// How hard the store works to keep a commit across a power loss.
public enum Durability: String, Sendable, CaseIterable {
  /// Every commit is fsynced (SQLite `synchronous=FULL`): survives power loss.
  case full
  /// Commits survive a process crash; the last ones may be lost on power loss
  /// (SQLite `synchronous=NORMAL` in WAL mode).
  case normal
}

/// Where incremental sources keep their bookmarks (the `bookmarks` table's keys).
public enum BookmarkKeys {
  /// What every key of a schedule's runs starts with: each schedule reads from its own
  /// bookmarks, so a schedule made over a source another schedule (or a one-off
  /// incremental job) already reads starts from the beginning, and its cumulative report
  /// has the whole history. Removing the schedule removes them.
  public static func schedulePrefix(_ name: String) -> String {
    "schedule|\(name.utf8.count):\(name)|"
  }

  /// The condition on a task's job `j` for its bookmark to be kept when it finishes, and
  /// read when it is claimed: a one-off job, or a run of its schedule as it is now. A run of
  /// a schedule removed (or replaced) while it ran wrote its bookmark after the removal had
  /// cleared them, and the schedule made again under the name did not read from the
  /// beginning; and its retry read the replacement's bookmark (the same key), skipping what
  /// lay between: such a run reads from the beginning, its schedule's bookmarks gone.
  static let currentRun = """
    (j.schedule IS NULL OR EXISTS (
      SELECT 1 FROM schedules s WHERE s.name = j.schedule AND (s.first_job IS NULL OR s.first_job <= j.id)))
    """
}
