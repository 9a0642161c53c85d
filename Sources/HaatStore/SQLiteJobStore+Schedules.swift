import Foundation
import GRDB
import HaatCore

/// Recurring jobs: a schedule fires its runs exactly once each, in the same transaction
/// that stores the run's job.
extension SQLiteJobStore {
  func upsert(_ schedule: NewSchedule, firstRun: NewJob, db: Database, nowMs: Int64) throws -> StoreOpResult {
    let result = try submit(firstRun, db: db, nowMs: nowMs)
    guard case .submitted(let job, _, _) = result else { return result }
    try db.execute(
      sql: """
        INSERT INTO schedules (
          name, spec, every, every_ms, next_ms, paused, runs, last_job, created_by, created_at, first_job)
        VALUES (?, ?, ?, ?, ?, 0, 1, ?, ?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, every = excluded.every,
          every_ms = excluded.every_ms, next_ms = excluded.next_ms, paused = 0, runs = runs + 1,
          last_job = excluded.last_job, created_by = excluded.created_by, created_at = excluded.created_at,
          first_job = excluded.first_job
        """,
      arguments: [
        schedule.name, schedule.spec, schedule.every, schedule.everyMs, schedule.nextMs, job.rawValue,
        schedule.createdBy, nowMs, job.rawValue,
      ])
    // A schedule made, or replaced, reads from the beginning: its report starts afresh, so
    // the bookmarks of the one it replaces would leave their history out of it.
    let prefix = BookmarkKeys.schedulePrefix(schedule.name)
    try db.execute(
      sql: "DELETE FROM bookmarks WHERE substr(key, 1, ?) = ?", arguments: [prefix.unicodeScalars.count, prefix])
    try db.execute(sql: "UPDATE jobs SET schedule = ? WHERE id = ?", arguments: [schedule.name, job.rawValue])
    return result
  }

  func fire(_ name: String, dueMs: Int64, nextMs next: Int64, run: NewJob, db: Database, nowMs: Int64) throws
    -> StoreOpResult
  {
    // Runs of one schedule never overlap: while the last run is open, the next stays due
    // (its source would otherwise be read twice, with no bookmark yet to start from).
    // The next due time comes from the schedule's `Recurrence` (missed runs are not made up).
    guard
      try Int64.fetchOne(
        db,
        sql: """
          SELECT 1 FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job
          WHERE s.name = ? AND s.next_ms = ? AND s.paused = 0
            AND (j.id IS NULL OR j.state NOT IN ('queued', 'running'))
          """,
        arguments: [name, dueMs]) != nil, next > dueMs
    else { return .notFired }
    let result = try submit(run, db: db, nowMs: nowMs)
    guard case .submitted(let job, _, _) = result else { return result }
    try db.execute(
      sql: "UPDATE schedules SET next_ms = ?, runs = runs + 1, last_job = ? WHERE name = ?",
      arguments: [next, job.rawValue, name])
    try db.execute(sql: "UPDATE jobs SET schedule = ? WHERE id = ?", arguments: [name, job.rawValue])
    return result
  }

  func update(schedule name: String, _ action: ScheduleAction, db: Database) throws -> StoreOpResult {
    switch action {
    case .pause: try db.execute(sql: "UPDATE schedules SET paused = 1 WHERE name = ?", arguments: [name])
    case .resume: try db.execute(sql: "UPDATE schedules SET paused = 0 WHERE name = ?", arguments: [name])
    case .remove:
      try db.execute(sql: "DELETE FROM schedules WHERE name = ?", arguments: [name])
      let removed = db.changesCount > 0
      let prefix = BookmarkKeys.schedulePrefix(name)
      try db.execute(
        sql: "DELETE FROM bookmarks WHERE substr(key, 1, ?) = ?", arguments: [prefix.unicodeScalars.count, prefix])
      return .scheduleUpdated(applied: removed)
    }
    return .scheduleUpdated(applied: db.changesCount > 0)
  }

  public func schedules() async throws -> [ScheduleRecord] {
    try await read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT name, spec, every, every_ms, next_ms, paused, runs, last_job, created_by, created_at, first_job
          FROM schedules ORDER BY name
          """
      ).map { row in
        let lastJob: Int64? = row[7]
        let firstJob: Int64? = row[10]
        return ScheduleRecord(
          name: row[0], spec: row[1], every: row[2], everyMs: row[3], nextMs: row[4], paused: row[5],
          runs: row[6], lastJob: lastJob.map { JobID($0) }, createdBy: row[8], createdMs: row[9],
          firstJob: firstJob.map { JobID($0) })
      }
    }
  }

  public func finishedRuns(ofSchedule name: String) async throws -> [JobID] {
    try await read { db in
      try Int64.fetchAll(
        db, sql: "SELECT id FROM jobs WHERE schedule = ? AND state NOT IN ('queued', 'running') ORDER BY id",
        arguments: [name]
      ).map { JobID($0) }
    }
  }
}
