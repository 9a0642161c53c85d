import Foundation
import GRDB
import HaatCore

/// Results: the common one, for the lease its task is under, without the rules' read.
extension SQLiteJobStore {
  /// A result for the lease its task is under (the rules' only way to `done` without a
  /// split): an UPDATE guarded by the lease, then the task's job and pool from its row,
  /// where reading the task and its job first for the rules cost a join per result (and a
  /// guarded `UPDATE … RETURNING` measured slower still). nil, with nothing written, when
  /// the lease is not the task's: the rules then say why (`transition`).
  func completeHeld(
    _ task: TaskID, attempt: UInt32, worker: String, _ result: StoredResult, db: Database, nowMs: Int64
  ) throws -> TaskChange? {
    var update = SQLiteBindings(
      try db.cachedStatement(
        sql: """
          UPDATE tasks SET state = 'done', updated_at = ?, partial = ?, stats = ?, bookmark = ?
          WHERE id = ? AND state = 'leased' AND attempt = ? AND worker = ?
          """))
    update.add(nowMs)
    update.add(result.partial)
    update.add(result.stats)
    update.add(result.bookmark)
    update.add(task.rawValue)
    update.add(Int64(attempt))
    update.add(worker)
    try update.run()
    guard db.changesCount == 1 else { return nil }
    // The row is there (it was just written), and so are its job and pool.
    var read = SQLiteBindings(try db.cachedStatement(sql: "SELECT job, pool FROM tasks WHERE id = ?"))
    read.add(task.rawValue)
    let found = try read.step()
    let job = JobID(read.int64(0))
    let pool = found ? Pool(rawValue: read.text(1)) : nil
    read.reset()
    guard let pool else {
      throw HaatError(.internal, "task \(task) has an unreadable pool")
    }
    try recordBookmark(of: task, result.bookmark, db: db, nowMs: nowMs)
    return TaskChange(
      task: task, job: job, pool: pool, attempt: attempt, from: .leased, transition: .done, notBeforeMs: 0)
  }

  /// An incremental source's next run starts from an accepted result's bookmark (the
  /// result's own commit).
  func recordBookmark(of task: TaskID, _ bookmark: String, db: Database, nowMs: Int64) throws {
    guard !bookmark.isEmpty else { return }
    try db.cachedStatement(
      sql: """
        INSERT INTO bookmarks (key, bookmark, job, updated_at)
        SELECT t.resume_key, ?, t.job, ? FROM tasks t JOIN jobs j ON j.id = t.job
        WHERE t.id = ? AND t.resume_key IS NOT NULL AND \(BookmarkKeys.currentRun)
        ON CONFLICT (key) DO UPDATE SET bookmark = excluded.bookmark, job = excluded.job,
                                       updated_at = excluded.updated_at
        """
    ).execute(arguments: [bookmark, nowMs, task.rawValue])
  }
}
