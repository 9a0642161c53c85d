import Foundation
import GRDB
import HaatCore

/// A job's end: recorded after the coordinator's own read and reduce (`finishJob`), or in
/// the transaction that ended its last task (`finishIfEnded`).
extension SQLiteJobStore {
  func finish(
    _ job: JobID, state: JobState, report: Data?, error: String, db: Database, nowMs: Int64
  ) throws -> StoreOpResult {
    guard try openTasks(of: job, db: db) == 0 else { return .finished(job, applied: false) }
    try record(job, state: state, report: report, error: error, db: db, nowMs: nowMs)
    return .finished(job, applied: db.changesCount > 0)
  }

  /// See `StoreOp.finishIfEnded`.
  func finishIfEnded(_ job: JobID, reduce: JobReduce, db: Database, nowMs: Int64) throws -> StoreOpResult {
    guard let read = try Self.job(job, counts: false, tasks: false, db: db, nowMs: 0) else {
      return .failed(HaatError(.notFound, "job \(job) does not exist"))
    }
    // The outputs carry every task's state: no count of the open ones first.
    guard !read.state.isFinal, case let outputs = try Self.outputs(of: job, db: db),
      !outputs.contains(where: { !$0.state.isFinal }), let end = reduce((read, outputs))
    else { return .finished(job, applied: false) }
    try record(job, state: end.state, report: end.report, error: end.error, db: db, nowMs: nowMs)
    return .ended(job, end)
  }

  func openTasks(of job: JobID, db: Database) throws -> Int64 {
    var open = SQLiteBindings(
      try db.cachedStatement(sql: "SELECT count(*) FROM tasks WHERE job = ? AND state IN ('ready', 'leased')"))
    open.add(job.rawValue)
    let count = try open.step() ? open.int64(0) : 0
    open.reset()
    return count
  }

  /// Writes a job's end.
  func record(
    _ job: JobID, state: JobState, report: Data?, error: String, db: Database, nowMs: Int64
  ) throws {
    var row = SQLiteBindings(
      try db.cachedStatement(
        sql: """
          UPDATE jobs SET state = ?, report = ?, error = ?,
            finished_at = CASE WHEN finished_at > 0 THEN finished_at ELSE ? END
          WHERE id = ?
          """))
    row.add(state.rawValue)
    row.add(report)
    row.add(error)
    row.add(nowMs)
    row.add(job.rawValue)
    try row.run()
  }
}
