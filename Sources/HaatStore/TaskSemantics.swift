import Foundation
import HaatCore

/// What the store knows of a task when an event reaches it, loaded by any backend.
struct TaskRow: Sendable {
  var id: TaskID
  var job: JobID
  var pool: Pool
  var status: TaskStatus
  var retry: RetryPolicy
}

/// What an accepted change writes to the task's row. Backend-neutral: `TaskSemantics`
/// decides it from HaatCore's `TaskRules`, and a backend only turns it into its SQL, so every
/// backend keeps the same queue semantics.
enum TaskRowWrite: Sendable, Equatable {
  /// Nothing (a refused event, or a claim, which backends write in bulk).
  case unchanged
  /// `done`, with the result the event carried (partial, stats, bookmark) when it has one.
  case done
  /// Back to `ready`, not before `notBeforeMs`, with the error that sent it back.
  case retry(notBeforeMs: Int64, error: TaskError)
  case dead(TaskError)
  /// Back to `ready` at once, the attempt count undone (`attempt - 1`).
  case released
  case cancelled
  /// Back to `ready` with a fresh set of attempts: `max_attempts` becomes the attempts so
  /// far plus the job's, and `attempt` goes on counting, so a revived task's lease is never
  /// one an earlier lease of it had (`not_before = 0`).
  case revived
}

/// The queue's semantics above SQL: one event on one loaded task gives the change to report
/// and the row write to make.
enum TaskSemantics {
  /// SQL (SQLite and PostgreSQL alike) that holds for a task whose job `j` is no schedule
  /// run, or its schedule's latest run: a dead task of a run that a later run has followed
  /// is not revived. The later run already read, from the same bookmark, what it would
  /// read, and the cumulative report would count it twice (found by a tester).
  /// Only a later run of the same making counts: runs of a schedule made again under the
  /// name (from its `first_job` on) are another schedule's, and the old one's last run
  /// could not be retried at all once they existed (found by a tester).
  static let notSupersededRun = """
    NOT (j.schedule IS NOT NULL AND EXISTS (SELECT 1 FROM jobs later WHERE later.schedule = j.schedule \
    AND later.id > j.id AND NOT EXISTS (SELECT 1 FROM schedules s WHERE s.name = j.schedule \
    AND s.first_job IS NOT NULL AND j.id < s.first_job AND later.id >= s.first_job)))
    """

  static func plan<R: RandomNumberGenerator>(
    _ row: TaskRow, _ event: TaskEvent, nowMs: Int64, random: inout R
  ) -> (change: TaskChange, write: TaskRowWrite) {
    let transition = TaskRules.apply(event, to: row.status, retry: row.retry, random: &random)
    var change = TaskChange(
      task: row.id, job: row.job, pool: row.pool, attempt: attempt(of: event, row.status),
      from: row.status.state, transition: transition, notBeforeMs: 0)
    let write: TaskRowWrite
    switch transition {
    case .refused, .leased:
      write = .unchanged
    case .done:
      write = .done
    case .retry(let delayMs):
      change.notBeforeMs = nowMs + Int64(clamping: delayMs)
      write = .retry(
        notBeforeMs: change.notBeforeMs, error: error(of: event) ?? TaskError(code: "failed", message: ""))
    case .dead(let error):
      write = .dead(error)
    case .released:
      write = .released
    case .cancelled:
      write = .cancelled
    case .revived:
      write = .revived
    }
    return (change, write)
  }

  /// A result whose ranges cannot be added (the task is no plan task, or its stored spec
  /// does not read back) is refused, `bad_split`, and nothing is recorded: acking it as
  /// accepted while the task died lost the result (the worker's own `fail` follows).
  static func splitFailed(_ change: inout TaskChange) -> TaskRowWrite {
    change.transition = .refused(.badSplit)
    return .unchanged
  }

  /// Whether `cancel` may end a job in `state`; the refusal when it may not.
  static func cancelRefusal(_ job: JobID, state: String?) -> HaatError? {
    guard let state else { return HaatError(.notFound, "no job \(job)") }
    if let jobState = JobState(rawValue: state), jobState.isFinal {
      return HaatError(.badRequest, "job \(job) has already ended (\(state))")
    }
    return nil
  }

  /// The error an event reports, if it is a failure.
  private static func error(of event: TaskEvent) -> TaskError? {
    switch event {
    case .fail(_, _, let error, _, _): return error
    case .expire: return .leaseExpired
    default: return nil
    }
  }

  /// The attempt an event is about.
  private static func attempt(of event: TaskEvent, _ status: TaskStatus) -> UInt32 {
    switch event {
    case .complete(let attempt, _), .fail(let attempt, _, _, _, _), .expire(let attempt),
      .release(let attempt):
      return attempt
    case .claim, .cancel, .retryDead, .discardDead:
      return status.attempt
    }
  }
}

/// The retry jitter's randomness: the system's generator with one word of state.
/// `SystemRandomNumberGenerator` is zero-sized, and ThreadSanitizer's instrumentation of an
/// `inout` access to a zero-sized value touched an address it keeps no shadow for (a SEGV
/// inside tsan's StoreShadow, `make tsan`, once a parameter moved the frame): the state
/// gives the value a real address.
struct StoreRandom: RandomNumberGenerator {
  private var system = SystemRandomNumberGenerator()
  private var draws: UInt64 = 0

  mutating func next() -> UInt64 {
    draws &+= 1
    return system.next()
  }
}

/// What a `complete` stores with the task's end.
struct StoredResult: Sendable {
  var partial: Data
  var stats: Data
  var bookmark: String
  var spawn: TaskSpawner?
}

/// SQL both backends write the same way.
enum StoreSQL {
  /// The newest finished run of every schedule that exists, and its newest run with a
  /// report (succeeded or partial): retention keeps them, so the schedule's last job and
  /// its cumulative report stay readable (a cancelled last run has none of its own).
  static let newestRuns = """
    SELECT max(j.id) FROM jobs j JOIN schedules s ON s.name = j.schedule
    WHERE j.state IN ('succeeded', 'failed', 'partial', 'cancelled') GROUP BY j.schedule
    UNION
    SELECT max(j.id) FROM jobs j JOIN schedules s ON s.name = j.schedule
    WHERE j.state IN ('succeeded', 'partial') GROUP BY j.schedule
    """

  /// A job's columns, in the order `JobRecord` is read from them.
  static let jobColumns = """
    SELECT id, name, state, priority, created_at, started_at, finished_at, not_before,
           max_attempts, reports, error, submitted_by, spec FROM jobs
    """
}
