import Foundation
import HaatCore
import NIOCore
import PostgresNIO

/// Recurring jobs on PostgreSQL: a schedule fires each run once, in the transaction that
/// stores the run's job, with the schedule's row locked.
extension PostgresJobStore {
  func upsert(
    _ schedule: NewSchedule, firstRun: NewJob, on db: PostgresConnection, nowMs: Int64
  ) async throws -> StoreOpResult {
    let result = try await submit(firstRun, on: db, nowMs: nowMs)
    guard case .submitted(let job, _, _) = result else { return result }
    try await db.query(
      """
      INSERT INTO schedules (
        name, spec, every, every_ms, next_ms, paused, runs, last_job, created_by, created_at, first_job)
      VALUES (\(schedule.name), \(ByteBuffer(bytes: schedule.spec)), \(schedule.every), \(schedule.everyMs),
              \(schedule.nextMs), false, 1, \(job.rawValue), \(schedule.createdBy), \(nowMs), \(job.rawValue))
      ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, every = excluded.every,
        every_ms = excluded.every_ms, next_ms = excluded.next_ms, paused = false, runs = schedules.runs + 1,
        last_job = excluded.last_job, created_by = excluded.created_by, created_at = excluded.created_at,
        first_job = excluded.first_job
      """, logger: logger)
    // As in SQLite: a schedule made, or replaced, reads from the beginning.
    let prefix = BookmarkKeys.schedulePrefix(schedule.name)
    try await db.query("DELETE FROM bookmarks WHERE starts_with(key, \(prefix))", logger: logger)
    try await db.query("UPDATE jobs SET schedule = \(schedule.name) WHERE id = \(job.rawValue)", logger: logger)
    return result
  }

  func fire(
    _ name: String, dueMs: Int64, nextMs next: Int64, run: NewJob, on db: PostgresConnection, nowMs: Int64
  ) async throws -> StoreOpResult {
    // As in SQLite: a run fires once, only while due, never beside its schedule's open run.
    // The schedule's row is locked, so two coordinators asking at once fire it once.
    guard
      next > dueMs,
      try await exists(
        """
        SELECT 1 FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job
        WHERE s.name = \(name) AND s.next_ms = \(dueMs) AND NOT s.paused
          AND (j.id IS NULL OR j.state NOT IN ('queued', 'running'))
        FOR UPDATE OF s
        """, on: db)
    else { return .notFired }
    let result = try await submit(run, on: db, nowMs: nowMs)
    guard case .submitted(let job, _, _) = result else { return result }
    try await db.query(
      "UPDATE schedules SET next_ms = \(next), runs = runs + 1, last_job = \(job.rawValue) WHERE name = \(name)",
      logger: logger)
    try await db.query("UPDATE jobs SET schedule = \(name) WHERE id = \(job.rawValue)", logger: logger)
    return result
  }
}
