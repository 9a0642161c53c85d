import Foundation
import GRDB
import HaatCore

/// Tasks a result adds to its job (a plan task's byte ranges), in the commit that accepts it.
extension SQLiteJobStore {
  /// Adds the tasks `spawn` makes to `task`'s job, ready, after its last task and in
  /// `task`'s place in the queue; nil (and nothing added) when it cannot make them.
  func addTasks(
    _ spawn: TaskSpawner, after task: TaskID, job: JobID, pool: Pool, db: Database, nowMs: Int64
  ) throws -> Int? {
    guard
      let row = try Row.fetchOne(
        db, sql: "SELECT spec, source, priority, max_attempts, IFNULL(place, id) FROM tasks WHERE id = ?",
        arguments: [task.rawValue]),
      let first = try Int.fetchOne(
        db, sql: "SELECT MAX(idx) + 1 FROM tasks WHERE job = ?", arguments: [job.rawValue]),
      let specs = spawn(row[0], first)
    else { return nil }
    let insert = try db.cachedStatement(
      sql: """
        INSERT INTO tasks (job, idx, pool, source, state, priority, not_before, attempt,
                           max_attempts, spec, updated_at, place)
        VALUES (?, ?, ?, ?, 'ready', ?, 0, 0, ?, ?, ?, ?)
        """)
    for (offset, spec) in specs.enumerated() {
      try insert.execute(arguments: [
        job.rawValue, first + offset, pool.rawValue, row[1] as String, row[2] as Int64,
        row[3] as Int64, spec, nowMs, row[4] as Int64,
      ])
    }
    try db.execute(
      sql: "UPDATE jobs SET total_tasks = total_tasks + ? WHERE id = ?",
      arguments: [specs.count, job.rawValue])
    return specs.count
  }
}
