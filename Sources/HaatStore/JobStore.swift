import Foundation
import HaatCore

/// The durable queue. Writes come as batches of ops applied in one transaction (group
/// commit); reads may run concurrently with them. Every call is `async` (or, for the
/// coordinator's commits, reports to a completion handler): a backend does its I/O on its
/// own threads or connections (SQLite: GRDB's writer and reader queues; PostgreSQL:
/// postgres-nio), never on the coordinator's event loop.
public protocol JobStore: Sendable {
  /// Applies `ops` in order in one transaction and commits it durably before returning.
  /// An op that does not apply (an unknown task, a stale attempt) yields its own result and
  /// does not abort the batch; a failed commit throws and none of the ops took effect.
  func apply(_ ops: [StoreOp], nowMs: Int64) async throws -> [StoreOpResult]
  /// `apply(_:nowMs:)` that calls `done` with its outcome from the store's own thread: the
  /// coordinator's group commit waits on every commit, and each hop between threads on the
  /// way (an async task's start and its resumption) adds to that wait.
  func apply(
    _ ops: [StoreOp], nowMs: Int64, done: @escaping @Sendable (Result<[StoreOpResult], any Error>) -> Void)

  /// Everything a restarted coordinator needs: open jobs, leases, waiting tasks.
  func recover(nowMs: Int64) async throws -> Recovery

  func job(_ id: JobID, tasks: Bool, nowMs: Int64) async throws -> JobRecord?
  /// A page of a job's tasks in task order: at most `limit`, with an index above `after`.
  func tasks(of job: JobID, after: UInt32?, limit: Int, nowMs: Int64) async throws -> [TaskRecord]
  /// Newest first: at most `limit` jobs, older than `before` when given.
  func jobs(state: JobState?, before: JobID?, limit: Int, nowMs: Int64) async throws -> [JobRecord]
  /// Every task of a job with its partial, stats and last error, in task order.
  func outputs(of job: JobID) async throws -> [TaskOutput]
  /// For each job, its record, without its tasks and task counts (zero: the reduce counts
  /// the outputs), and `outputs(of:)`, read together: what the coordinator reduces when a
  /// job's last task ends. Jobs whose last tasks ended together are read in one call; a job
  /// the store does not hold is absent from the answer.
  func finishing(_ jobs: [JobID]) async throws -> [JobID: Finishing]
  /// Dead tasks in id order: at most `limit`, with an id above `after` when given.
  func deadTasks(job: JobID?, after: TaskID?, limit: Int) async throws -> [DeadRecord]
  /// A finished job's report as the coordinator stored it (protobuf's binary encoding;
  /// JSON from coordinators before 2026-12-02): opaque bytes to the store.
  func report(of job: JobID) async throws -> Data?
  /// Returns space freed by pruning to the file system.
  func reclaim() async throws
  /// Every schedule, by name.
  func schedules() async throws -> [ScheduleRecord]
  /// The runs of a schedule that have ended, oldest first.
  func finishedRuns(ofSchedule name: String) async throws -> [JobID]
  /// Ready tasks whose time has come, by pool, with when the oldest became ready (wall ms):
  /// the queue depth `/metrics` reports.
  func readyQueue(nowMs: Int64) async throws -> [Pool: ReadyQueue]
  /// Lets go of connections and threads (a coordinator stopping).
  func close() async
}

/// What a job's end reduces: its record and every task's output.
public typealias Finishing = (job: JobRecord, outputs: [TaskOutput])

/// A job's end as recorded: its final state, its report (opaque bytes to the store), and
/// why it did not succeed.
public struct JobEnd: Sendable {
  public var state: JobState
  public var report: Data
  public var error: String

  public init(state: JobState, report: Data, error: String) {
    (self.state, self.report, self.error) = (state, report, error)
  }
}

/// Reduces a job's stored outputs into its end, inside the store's transaction; nil
/// leaves the end to the coordinator's own read.
public typealias JobReduce = @Sendable (Finishing) -> JobEnd?

/// How `finishIfEnded` makes a job's end.
public enum JobEnding: Sendable {
  /// From the job and its outputs, read in the transaction (`reduce` may decline).
  case read(JobReduce)
  /// Made before the commit from the results the ops before it store (a 1-task job's end,
  /// from its one result): the transaction reads nothing, it only checks that the job has
  /// not ended and has no open task.
  case reduced(JobEnd)
}

/// One pool's queue: how many tasks are ready now, and since when the oldest is.
public struct ReadyQueue: Sendable, Equatable {
  public var ready: Int
  public var oldestReadyMs: Int64

  public init(ready: Int, oldestReadyMs: Int64) {
    self.ready = ready
    self.oldestReadyMs = oldestReadyMs
  }
}

extension JobStore {
  public func close() async {}

  /// Why the store's file is damaged, once a read or commit found it so (SQLite's
  /// "malformed" or "not a database"); nil while none has. A damaged store takes no new
  /// job: its commits may still succeed, but a restart cannot open it.
  public var damage: String? { nil }

  public func apply(
    _ ops: [StoreOp], nowMs: Int64, done: @escaping @Sendable (Result<[StoreOpResult], any Error>) -> Void
  ) {
    Task {
      do {
        done(.success(try await apply(ops, nowMs: nowMs)))
      } catch {
        done(.failure(error))
      }
    }
  }
}
