import Foundation
import HaatCore
import NIOCore
import PostgresNIO

/// Submits in a row of a batch, written together: a client with many jobs in flight (1-task
/// jobs above all) sends them in bursts that the group commit gathers, and each alone cost
/// two round trips (its job row, then its tasks). Together they are numbered in one
/// statement, their job rows written in one and their tasks in one per 2,000; each gets the
/// id and answer it would have got alone (ids ascending in the batch's order). A lone
/// submit is a run of one.
extension PostgresJobStore {
  /// The submits at the front of `ops`.
  static func submitRun(_ ops: ArraySlice<StoreOp>) -> [NewJob] {
    var run: [NewJob] = []
    for op in ops {
      guard case .submit(let job) = op else { break }
      run.append(job)
    }
    return run
  }

  func submit(_ jobs: [NewJob], on db: PostgresConnection, nowMs: Int64) async throws -> [StoreOpResult] {
    // The sequence's next values, ascending: one at a time each submit took the next.
    let ids = try await db.query(
      "SELECT nextval(pg_get_serial_sequence('jobs', 'id')) FROM generate_series(1, \(Int64(jobs.count)))",
      logger: logger
    ).all(decoding: Int64.self).sorted()
    guard ids.count == jobs.count else { throw HaatError(.internal, "the store did not number the jobs") }
    // As `submit` writes one job's row.
    try await db.query(
      """
      INSERT INTO jobs (id, name, state, priority, spec, reports, created_at, not_before,
                        max_attempts, retry_base_ms, retry_cap_ms, total_tasks, submitted_by)
      SELECT id, name, 'queued', priority, spec, reports, \(nowMs), not_before, max_attempts, base_ms, cap_ms,
             total, submitter
      FROM unnest(\(ids)::bigint[], \(jobs.map(\.name))::text[], \(jobs.map { Int64($0.priority) })::bigint[],
                  \(jobs.map { ByteBuffer(bytes: $0.spec) })::bytea[],
                  \(jobs.map { $0.reports.joined(separator: ",") })::text[], \(jobs.map(\.notBeforeMs))::bigint[],
                  \(jobs.map { Int64($0.maxAttempts) })::bigint[],
                  \(jobs.map { Int64(clamping: $0.retry.baseMs) })::bigint[],
                  \(jobs.map { Int64(clamping: $0.retry.capMs) })::bigint[],
                  \(jobs.map { Int64($0.tasks.count) })::bigint[], \(jobs.map(\.submittedBy))::text[])
           AS u(id, name, priority, spec, reports, not_before, max_attempts, base_ms, cap_ms, total, submitter)
      """, logger: logger)
    // Every job's tasks, in job order then task order, a few thousand per statement.
    let tasks = zip(ids, jobs).flatMap { id, job in
      job.tasks.enumerated().map { index, task in (job: id, index: Int64(index), task: task, of: job) }
    }
    for chunk in tasks.chunked(2_000) {
      try await db.query(
        """
        INSERT INTO tasks (job, idx, pool, source, state, priority, not_before, attempt, max_attempts,
                           spec, updated_at, resume_key)
        SELECT job, idx, pool, source, 'ready', priority, not_before, 0, max_attempts, spec, \(nowMs),
               NULLIF(resume_key, '')
        FROM unnest(\(chunk.map(\.job))::bigint[], \(chunk.map(\.index))::bigint[],
                    \(chunk.map(\.task.pool.rawValue))::text[], \(chunk.map(\.task.source))::text[],
                    \(chunk.map { Int64($0.of.priority) })::bigint[], \(chunk.map(\.of.notBeforeMs))::bigint[],
                    \(chunk.map { Int64($0.of.maxAttempts) })::bigint[],
                    \(chunk.map { ByteBuffer(bytes: $0.task.spec) })::bytea[],
                    \(chunk.map { $0.task.resumeKey ?? "" })::text[])
             AS t(job, idx, pool, source, priority, not_before, max_attempts, spec, resume_key)
        """, logger: logger)
    }
    return zip(ids, jobs).map { id, job in
      .submitted(JobID(id), tasks: job.tasks.count, notBeforeMs: job.notBeforeMs)
    }
  }
}
