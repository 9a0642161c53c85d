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
  func finishIfEnded(_ job: JobID, ending: JobEnding, db: Database, nowMs: Int64) throws -> StoreOpResult {
    let reduce: JobReduce
    switch ending {
    case .read(let read): reduce = read
    case .reduced(let end): return try finishReduced(job, end, db: db, nowMs: nowMs)
    }
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

  /// A job's end reduced before the commit: one statement writes it if the job has not
  /// ended and none of its tasks is open (the job's row and its outputs are not read).
  private func finishReduced(_ job: JobID, _ end: JobEnd, db: Database, nowMs: Int64) throws -> StoreOpResult {
    var row = SQLiteBindings(
      try db.cachedStatement(
        sql: """
          UPDATE jobs SET state = ?, report = ?, error = ?,
            finished_at = CASE WHEN finished_at > 0 THEN finished_at ELSE ? END
          WHERE id = ? AND state IN ('queued', 'running')
            AND NOT EXISTS (SELECT 1 FROM tasks WHERE job = ? AND state IN ('ready', 'leased'))
          """))
    row.add(end.state.rawValue)
    row.add(end.report)
    row.add(end.error)
    row.add(nowMs)
    row.add(job.rawValue)
    row.add(job.rawValue)
    try row.run()
    if db.changesCount > 0 { return .ended(job, end) }
    guard try Bool.fetchOne(db, sql: "SELECT 1 FROM jobs WHERE id = ?", arguments: [job.rawValue]) != nil else {
      return .failed(HaatError(.notFound, "job \(job) does not exist"))
    }
    return .finished(job, applied: false)
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
