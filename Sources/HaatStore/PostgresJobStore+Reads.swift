import Foundation
import HaatCore
import NIOCore
import PostgresNIO

/// The PostgreSQL store's reads, on pooled connections, concurrently with writes.
extension PostgresJobStore {
  public func recover(nowMs: Int64) async throws -> Recovery {
    try await read { db in
      var jobs: [Int64: Recovery.ActiveJob] = [:]
      for try await (id, started, cancelled) in try await db.query(
        """
        SELECT id, started_at, cancelled FROM jobs
        WHERE state IN ('queued', 'running') OR (cancelled AND report IS NULL)
        """, logger: self.logger
      ).decode((Int64, Int64, Bool).self) {
        jobs[id] = Recovery.ActiveJob(id: JobID(id), counts: TaskCounts(), started: started > 0, cancelled: cancelled)
      }
      for try await (job, state, waits, count) in try await db.query(
        """
        SELECT job, state, waits, count(*) FROM (
          SELECT t.job, t.state, t.not_before > \(nowMs) AS waits FROM tasks t JOIN jobs j ON j.id = t.job
          WHERE j.state IN ('queued', 'running') OR (j.cancelled AND j.report IS NULL)) open
        GROUP BY job, state, waits
        """, logger: self.logger
      ).decode((Int64, String, Bool, Int64).self) {
        guard let state = TaskState(rawValue: state) else { continue }
        jobs[job]?.counts[state == .ready && waits ? .scheduled : state] += Int(count)
      }
      var leases: [Recovery.Lease] = []
      for try await (id, job, attempt, worker, pool, spec) in try await db.query(
        "SELECT id, job, attempt, worker, pool, spec FROM tasks WHERE state = 'leased' ORDER BY id", logger: self.logger
      ).decode((Int64, Int64, Int64, String?, String, ByteBuffer?).self) {
        guard let pool = Pool(rawValue: pool) else { continue }
        leases.append(
          Recovery.Lease(
            task: TaskID(id), job: JobID(job), attempt: UInt32(clamping: attempt), owner: worker ?? "", pool: pool,
            spec: spec.map { Data($0.readableBytesView) } ?? Data()))
      }
      var waiting: [Recovery.Waiting] = []
      for try await (id, job, pool, notBefore) in try await db.query(
        """
        SELECT id, job, pool, not_before FROM tasks WHERE state = 'ready' AND not_before > \(nowMs)
        ORDER BY not_before
        """, logger: self.logger
      ).decode((Int64, Int64, String, Int64).self) {
        guard let pool = Pool(rawValue: pool) else { continue }
        waiting.append(Recovery.Waiting(task: TaskID(id), job: JobID(job), pool: pool, notBeforeMs: notBefore))
      }
      var pauses: [RatePause] = []
      for try await (key, until, worker, reason) in try await db.query(
        "SELECT key, until_ms, worker, reason FROM rate_pauses WHERE until_ms > \(nowMs) ORDER BY key",
        logger: self.logger
      ).decode((String, Int64, String, String).self) {
        pauses.append(RatePause(key: key, untilMs: until, worker: worker, reason: reason))
      }
      return Recovery(
        jobs: jobs.values.sorted { $0.id < $1.id }, leases: leases, waiting: waiting, ratePauses: pauses)
    }
  }

  public func job(_ id: JobID, tasks: Bool, nowMs: Int64) async throws -> JobRecord? {
    try await read { db in
      guard var job = try await self.job(id, on: db) else { return nil }
      job.counts = try await self.counts(of: id, on: db, nowMs: nowMs)
      if tasks { job.tasks = try await self.tasks(of: id, on: db, nowMs: nowMs, after: -1, limit: nil) }
      return job
    }
  }

  public func tasks(of job: JobID, after: UInt32?, limit: Int, nowMs: Int64) async throws -> [TaskRecord] {
    try await read { db in
      try await self.tasks(of: job, on: db, nowMs: nowMs, after: after.map(Int64.init) ?? -1, limit: limit)
    }
  }

  public func jobs(state: JobState?, before: JobID?, limit: Int, nowMs: Int64) async throws -> [JobRecord] {
    try await read { db in
      var binds = PostgresBindings()
      binds.append(before?.rawValue ?? Int64.max)
      binds.append(Int64(limit))
      var sql = StoreSQL.jobColumns + " WHERE id < $1"
      if let state {
        binds.append(state.rawValue)
        sql += " AND state = $3"
      }
      var jobs = try await self.jobRecords(
        PostgresQuery(unsafeSQL: sql + " ORDER BY id DESC LIMIT $2", binds: binds), on: db)
      for index in jobs.indices {
        jobs[index].counts = try await self.counts(of: jobs[index].id, on: db, nowMs: nowMs)
      }
      return jobs
    }
  }

  public func outputs(of job: JobID) async throws -> [TaskOutput] {
    try await read { db in try await self.outputs(of: job, on: db) }
  }

  /// One connection for both, and no count of the tasks by state.
  public func finishing(_ jobs: [JobID]) async throws -> [JobID: Finishing] {
    try await read { db in
      var read: [JobID: Finishing] = [:]
      for id in jobs {
        guard let job = try await self.job(id, on: db) else { continue }
        read[id] = (job, try await self.outputs(of: id, on: db))
      }
      return read
    }
  }

  /// A job's row, without its counts and tasks.
  func job(_ id: JobID, on db: PostgresConnection) async throws -> JobRecord? {
    try await jobRecords(
      PostgresQuery(unsafeSQL: StoreSQL.jobColumns + " WHERE id = $1", binds: try Self.binds(id.rawValue)), on: db
    ).first
  }

  func outputs(of job: JobID, on db: PostgresConnection) async throws -> [TaskOutput] {
    try await outputs(ofJobs: [job.rawValue], on: db)[job.rawValue] ?? []
  }

  /// Every task's output of each job named, in task order, in one query.
  func outputs(ofJobs jobs: [Int64], on db: PostgresConnection) async throws -> [Int64: [TaskOutput]] {
    var outputs: [Int64: [TaskOutput]] = [:]
    for try await (job, id, index, source, state, partial, stats, code, message) in try await db.query(
      """
      SELECT job, id, idx, source, state, partial, stats, last_error_code, last_error
      FROM tasks WHERE job = ANY(\(jobs)) ORDER BY job, idx
      """, logger: logger
    ).decode((Int64, Int64, Int64, String, String, ByteBuffer?, ByteBuffer?, String?, String?).self) {
      guard let state = TaskState(rawValue: state) else { continue }
      outputs[job, default: []].append(
        TaskOutput(
          task: TaskID(id), index: Int(index), source: source, state: state,
          partial: partial.map { Data($0.readableBytesView) }, stats: stats.map { Data($0.readableBytesView) },
          lastError: Self.taskError(code: code, message: message)))
    }
    return outputs
  }

  public func deadTasks(job: JobID?, after: TaskID?, limit: Int) async throws -> [DeadRecord] {
    try await read { db in
      var binds = PostgresBindings()
      binds.append(after?.rawValue ?? -1)
      binds.append(Int64(limit))
      var sql = "SELECT id, job, source, attempt, last_error_code, last_error, updated_at FROM tasks"
      sql += " WHERE state = 'dead' AND id > $1"
      if let job {
        binds.append(job.rawValue)
        sql += " AND job = $3"
      }
      var dead: [DeadRecord] = []
      for try await (id, job, source, attempts, code, message, died) in try await db.query(
        PostgresQuery(unsafeSQL: sql + " ORDER BY id LIMIT $2", binds: binds), logger: self.logger
      ).decode((Int64, Int64, String, Int64, String?, String?, Int64).self) {
        dead.append(
          DeadRecord(
            task: TaskID(id), job: JobID(job), source: source, attempts: UInt32(clamping: attempts),
            error: Self.taskError(code: code, message: message)
              ?? TaskError(code: "unknown", message: "no error was recorded"),
            diedMs: died))
      }
      return dead
    }
  }

  public func readyQueue(nowMs: Int64) async throws -> [Pool: ReadyQueue] {
    try await read { db in
      var queues: [Pool: ReadyQueue] = [:]
      for try await (pool, ready, oldest) in try await db.query(
        """
        SELECT pool, count(*), MIN(GREATEST(not_before, updated_at)) FROM tasks
        WHERE state = 'ready' AND not_before <= \(nowMs) GROUP BY pool
        """, logger: self.logger
      ).decode((String, Int64, Int64).self) {
        guard let pool = Pool(rawValue: pool) else { continue }
        queues[pool] = ReadyQueue(ready: Int(ready), oldestReadyMs: oldest)
      }
      return queues
    }
  }

  public func report(of job: JobID) async throws -> Data? {
    try await read { db in
      guard
        let (report) = try await db.query("SELECT report FROM jobs WHERE id = \(job.rawValue)", logger: self.logger)
          .first(decoding: ByteBuffer?.self), let report
      else { return nil }
      return Data(report.readableBytesView)
    }
  }

  public func schedules() async throws -> [ScheduleRecord] {
    try await read { db in
      var schedules: [ScheduleRecord] = []
      for try await (name, spec, every, everyMs, nextMs, paused, runs, lastJob, createdBy, created, firstJob)
        in try await db
        .query(
          """
          SELECT name, spec, every, every_ms, next_ms, paused, runs, last_job, created_by, created_at, first_job
          FROM schedules ORDER BY name
          """, logger: self.logger
        ).decode((String, ByteBuffer, String, Int64, Int64, Bool, Int64, Int64?, String, Int64, Int64?).self)
      {
        schedules.append(
          ScheduleRecord(
            name: name, spec: Data(spec.readableBytesView), every: every, everyMs: everyMs, nextMs: nextMs,
            paused: paused, runs: Int(runs), lastJob: lastJob.map { JobID($0) }, createdBy: createdBy,
            createdMs: created, firstJob: firstJob.map { JobID($0) }))
      }
      return schedules
    }
  }

  public func finishedRuns(ofSchedule name: String) async throws -> [JobID] {
    try await read { db in
      try await db.query(
        "SELECT id FROM jobs WHERE schedule = \(name) AND state NOT IN ('queued', 'running') ORDER BY id",
        logger: self.logger
      ).all(decoding: Int64.self).map { JobID($0) }
    }
  }

  // MARK: - Helpers

  func read<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
    do {
      return try await client.withConnection { try await body($0) }
    } catch let error as HaatError {
      throw error
    } catch {
      throw HaatError(.unavailable, "the store could not be read: \(Self.describe(error))")
    }
  }

  func jobRecords(_ query: PostgresQuery, on db: PostgresConnection) async throws -> [JobRecord] {
    var jobs: [JobRecord] = []
    for try await row in try await db.query(query, logger: logger) {
      let (id, name, state, priority, created, started, finished, notBefore, maxAttempts, reports, error, by, spec) =
        try row.decode(
          (Int64, String, String, Int64, Int64, Int64, Int64, Int64, Int64, String, String, String, ByteBuffer).self)
      guard let state = JobState(rawValue: state) else { continue }
      jobs.append(
        JobRecord(
          id: JobID(id), name: name, state: state, priority: Int32(clamping: priority), createdMs: created,
          startedMs: started, finishedMs: finished, notBeforeMs: notBefore,
          maxAttempts: UInt32(clamping: maxAttempts), reports: reports.split(separator: ",").map(String.init),
          error: error, submittedBy: by, spec: Data(spec.readableBytesView), counts: TaskCounts(), tasks: []))
    }
    return jobs
  }

  func counts(of job: JobID, on db: PostgresConnection, nowMs: Int64) async throws -> TaskCounts {
    var counts = TaskCounts()
    for try await (state, waits, count) in try await db.query(
      """
      SELECT state, waits, count(*) FROM (
        SELECT state, not_before > \(nowMs) AS waits FROM tasks WHERE job = \(job.rawValue)) counted
      GROUP BY state, waits
      """, logger: logger
    ).decode((String, Bool, Int64).self) {
      guard let state = TaskState(rawValue: state) else { continue }
      counts[state == .ready && waits ? .scheduled : state] += Int(count)
    }
    return counts
  }

  func tasks(of job: JobID, on db: PostgresConnection, nowMs: Int64, after: Int64, limit: Int?) async throws
    -> [TaskRecord]
  {
    var tasks: [TaskRecord] = []
    let limit = limit.map(Int64.init) ?? Int64.max
    for try await row in try await db.query(
      """
      SELECT id, idx, pool, source, state, attempt, max_attempts, worker, last_error_code,
             last_error, not_before, updated_at, stats
      FROM tasks WHERE job = \(job.rawValue) AND idx > \(after) ORDER BY idx LIMIT \(limit)
      """, logger: logger)
    {
      let (id, index, pool, source, stored, attempt, maxAttempts, worker, code, message, notBefore, updated, stats) =
        try row.decode(
          (Int64, Int64, String, String, String, Int64, Int64, String?, String?, String?, Int64, Int64, ByteBuffer?)
            .self)
      guard let pool = Pool(rawValue: pool), let stored = TaskState(rawValue: stored) else { continue }
      tasks.append(
        TaskRecord(
          id: TaskID(id), job: job, index: Int(index), pool: pool, source: source,
          state: TaskState.shown(stored: stored, notBeforeMs: notBefore, nowMs: nowMs),
          attempt: UInt32(clamping: attempt), maxAttempts: UInt32(clamping: maxAttempts), worker: worker ?? "",
          lastError: Self.taskError(code: code, message: message), notBeforeMs: notBefore, updatedMs: updated,
          stats: stats.map { Data($0.readableBytesView) }))
    }
    return tasks
  }

  static func taskError(code: String?, message: String?) -> TaskError? {
    guard let code, !code.isEmpty else { return nil }
    return TaskError(code: code, message: message ?? "")
  }
}
