import Foundation
import GRDB
import HaatCore

/// The store's reads: recovery after a restart, jobs, pages of tasks, results and reports.
/// They run on the pool's reader connections, concurrently with the writer.
extension SQLiteJobStore {
  public func recover(nowMs: Int64) async throws -> Recovery {
    try await read { db in
      var jobs: [Int64: Recovery.ActiveJob] = [:]
      for row in try Row.fetchAll(
        db,
        sql:
          "SELECT id, started_at, cancelled FROM jobs WHERE state IN ('queued', 'running') OR (cancelled = 1 AND report IS NULL)"
      ) {
        let id: Int64 = row[0]
        jobs[id] = Recovery.ActiveJob(
          id: JobID(id), counts: TaskCounts(), started: (row[1] as Int64) > 0,
          cancelled: (row[2] as Int64) != 0)
      }
      for row in try Row.fetchAll(
        db,
        sql: """
          SELECT t.job, t.state, t.not_before > ?, count(*) FROM tasks t JOIN jobs j ON j.id = t.job
          WHERE j.state IN ('queued', 'running') OR (j.cancelled = 1 AND j.report IS NULL)
          GROUP BY t.job, t.state, t.not_before > ?
          """, arguments: [nowMs, nowMs])
      {
        let id: Int64 = row[0]
        guard let state = TaskState(rawValue: row[1]) else { continue }
        jobs[id]?.counts[state == .ready && (row[2] as Int64) != 0 ? .scheduled : state] += row[3] as Int
      }
      let leases = try Row.fetchAll(
        db, sql: "SELECT id, job, attempt, worker, pool, spec FROM tasks WHERE state = 'leased' ORDER BY id"
      ).compactMap { row -> Recovery.Lease? in
        guard let pool = Pool(rawValue: row[4]) else { return nil }
        return Recovery.Lease(
          task: TaskID(row[0]), job: JobID(row[1]), attempt: row[2], owner: row[3] ?? "", pool: pool,
          spec: row[5] ?? Data())
      }
      let waiting = try Row.fetchAll(
        db,
        sql: "SELECT id, job, pool, not_before FROM tasks WHERE state = 'ready' AND not_before > ? ORDER BY not_before",
        arguments: [nowMs]
      ).compactMap { row -> Recovery.Waiting? in
        guard let pool = Pool(rawValue: row[2]) else { return nil }
        return Recovery.Waiting(task: TaskID(row[0]), job: JobID(row[1]), pool: pool, notBeforeMs: row[3])
      }
      let pauses = try Row.fetchAll(
        db, sql: "SELECT key, until_ms, worker, reason FROM rate_pauses WHERE until_ms > ? ORDER BY key",
        arguments: [nowMs]
      ).map { RatePause(key: $0[0], untilMs: $0[1], worker: $0[2], reason: $0[3]) }
      return Recovery(
        jobs: jobs.values.sorted { $0.id < $1.id }, leases: leases, waiting: waiting, ratePauses: pauses)
    }
  }

  public func job(_ id: JobID, tasks: Bool, nowMs: Int64) async throws -> JobRecord? {
    try await read { db in try Self.job(id, counts: true, tasks: tasks, db: db, nowMs: nowMs) }
  }

  static func job(_ id: JobID, counts: Bool, tasks: Bool, db: Database, nowMs: Int64) throws -> JobRecord? {
    var row = SQLiteBindings(try db.cachedStatement(sql: StoreSQL.jobColumns + " WHERE id = ?"))
    row.add(id.rawValue)
    let read = try row.step() ? jobRecord(row) : nil
    row.reset()
    guard var job = read else { return nil }
    if counts { job.counts = try self.counts(of: id, db: db, nowMs: nowMs) }
    if tasks { job.tasks = try self.tasks(of: id, db: db, nowMs: nowMs) }
    return job
  }

  public func tasks(of job: JobID, after: UInt32?, limit: Int, nowMs: Int64) async throws -> [TaskRecord] {
    try await read { db in
      try Self.tasks(of: job, db: db, nowMs: nowMs, after: after.map(Int64.init) ?? -1, limit: limit)
    }
  }

  public func jobs(state: JobState?, before: JobID?, limit: Int, nowMs: Int64) async throws -> [JobRecord] {
    try await read { db in
      var rows = SQLiteBindings(
        try db.cachedStatement(
          sql: StoreSQL.jobColumns + " WHERE (? IS NULL OR state = ?) AND id < ? ORDER BY id DESC LIMIT ?"))
      rows.add(state?.rawValue)
      rows.add(state?.rawValue)
      rows.add(before?.rawValue ?? Int64.max)
      rows.add(limit)
      var jobs: [JobRecord] = []
      while try rows.step() {
        guard var job = Self.jobRecord(rows) else { continue }
        job.counts = try Self.counts(of: job.id, db: db, nowMs: nowMs)
        jobs.append(job)
      }
      return jobs
    }
  }

  public func outputs(of job: JobID) async throws -> [TaskOutput] {
    try await read { db in try Self.outputs(of: job, db: db) }
  }

  /// One read, not two (a 1-task job pays a reader's round trip per read), and no count of
  /// the tasks by state.
  public func finishing(_ jobs: [JobID]) async throws -> [JobID: Finishing] {
    try await read { db in
      var read: [JobID: Finishing] = [:]
      for id in jobs {
        guard let job = try Self.job(id, counts: false, tasks: false, db: db, nowMs: 0) else { continue }
        read[id] = (job, try Self.outputs(of: id, db: db))
      }
      return read
    }
  }

  static func outputs(of job: JobID, db: Database) throws -> [TaskOutput] {
    // Read in place, column by column (see `claim`): a job's end reads every task's row.
    var rows = SQLiteBindings(
      try db.cachedStatement(
        sql: """
          SELECT id, idx, source, state, partial, stats, last_error_code, last_error
          FROM tasks WHERE job = ? ORDER BY idx
          """))
    rows.add(job.rawValue)
    var outputs: [TaskOutput] = []
    while try rows.step() {
      guard let state = TaskState(rawValue: rows.text(3)) else { continue }
      outputs.append(
        TaskOutput(
          task: TaskID(rows.int64(0)), index: Int(rows.int64(1)), source: rows.text(2), state: state,
          partial: rows.blob(orNil: 4), stats: rows.blob(orNil: 5),
          lastError: Self.taskError(code: rows.text(orNil: 6), message: rows.text(orNil: 7))))
    }
    return outputs
  }

  public func deadTasks(job: JobID?, after: TaskID?, limit: Int) async throws -> [DeadRecord] {
    try await read { db in
      let sql = """
        SELECT id, job, source, attempt, last_error_code, last_error, updated_at FROM tasks
        WHERE state = 'dead' AND id > ? \(job == nil ? "" : "AND job = ?") ORDER BY id LIMIT ?
        """
      let after = after?.rawValue ?? -1
      let arguments: StatementArguments = job.map { [after, $0.rawValue, limit] } ?? [after, limit]
      return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
        DeadRecord(
          task: TaskID(row[0]), job: JobID(row[1]), source: row[2], attempts: row[3],
          error: Self.taskError(code: row[4], message: row[5])
            ?? TaskError(code: "unknown", message: "no error was recorded"),
          diedMs: row[6])
      }
    }
  }

  public func readyQueue(nowMs: Int64) async throws -> [Pool: ReadyQueue] {
    try await read { db in
      var queues: [Pool: ReadyQueue] = [:]
      for row in try Row.fetchAll(
        db,
        sql: """
          SELECT pool, count(*), MIN(MAX(not_before, updated_at)) FROM tasks
          WHERE state = 'ready' AND not_before <= ? GROUP BY pool
          """, arguments: [nowMs])
      {
        guard let pool = Pool(rawValue: row[0]) else { continue }
        queues[pool] = ReadyQueue(ready: row[1], oldestReadyMs: row[2])
      }
      return queues
    }
  }

  public func report(of job: JobID) async throws -> Data? {
    try await read { db in
      try Data.fetchOne(db.cachedStatement(sql: "SELECT report FROM jobs WHERE id = ?"), arguments: [job.rawValue])
    }
  }

  /// A failed commit as the coordinator reports it.
  static func commitError(_ error: any Error) -> HaatError {
    switch error {
    case let error as HaatError:
      return error
    case let error as DatabaseError where error.resultCode == .SQLITE_FULL:
      return HaatError(
        .unavailable, "the store's disk is full; refusing writes until there is room (\(error.message ?? ""))")
    default:
      return HaatError(.unavailable, "the store could not commit: \(error)")
    }
  }

  public var damage: String? { damaged.withLock { $0 } }

  /// Notes a damaged file (a tester truncated the store under a running coordinator: it
  /// went on taking jobs into a store no restart could open).
  func noteDamage(_ error: any Error) {
    guard let error = error as? DatabaseError,
      error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
    else { return }
    damaged.withLock { $0 = $0 ?? "SQLite error \(error.resultCode.rawValue): \(error.message ?? "damaged")" }
  }

  func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
    do {
      return try await pool.read(body)
    } catch let error as HaatError {
      throw error
    } catch {
      noteDamage(error)
      throw HaatError(.unavailable, "the store could not be read: \(error)")
    }
  }

  /// The job a `StoreSQL.jobColumns` statement is on, read in place.
  static func jobRecord(_ row: SQLiteBindings) -> JobRecord? {
    guard let state = JobState(rawValue: row.text(2)) else { return nil }
    return JobRecord(
      id: JobID(row.int64(0)), name: row.text(1), state: state, priority: Int32(clamping: row.int64(3)),
      createdMs: row.int64(4), startedMs: row.int64(5), finishedMs: row.int64(6), notBeforeMs: row.int64(7),
      maxAttempts: UInt32(clamping: row.int64(8)), reports: row.text(9).split(separator: ",").map(String.init),
      error: row.text(10), submittedBy: row.text(11), spec: row.blob(12), counts: TaskCounts(), tasks: [])
  }

  static func counts(of job: JobID, db: Database, nowMs: Int64) throws -> TaskCounts {
    var counts = TaskCounts()
    for row in try Row.fetchAll(
      db.cachedStatement(
        sql: "SELECT state, not_before > ?, count(*) FROM tasks WHERE job = ? GROUP BY state, not_before > ?"),
      arguments: [nowMs, job.rawValue, nowMs])
    {
      guard let state = TaskState(rawValue: row[0]) else { continue }
      counts[state == .ready && (row[1] as Int64) != 0 ? .scheduled : state] += row[2] as Int
    }
    return counts
  }

  static func tasks(
    of job: JobID, db: Database, nowMs: Int64, after: Int64 = -1, limit: Int = -1
  ) throws -> [TaskRecord] {
    try Row.fetchAll(
      db.cachedStatement(
        sql: """
          SELECT id, idx, pool, source, state, attempt, max_attempts, worker, last_error_code,
                 last_error, not_before, updated_at, stats
          FROM tasks WHERE job = ? AND idx > ? ORDER BY idx LIMIT ?
          """), arguments: [job.rawValue, after, limit]
    ).compactMap { row in
      guard let pool = Pool(rawValue: row[2]), let stored = TaskState(rawValue: row[4]) else {
        return nil
      }
      let notBefore: Int64 = row[10]
      let state = TaskState.shown(stored: stored, notBeforeMs: notBefore, nowMs: nowMs)
      return TaskRecord(
        id: TaskID(row[0]), job: job, index: row[1], pool: pool, source: row[3], state: state,
        attempt: row[5], maxAttempts: row[6], worker: row[7] ?? "",
        lastError: taskError(code: row[8], message: row[9]), notBeforeMs: notBefore,
        updatedMs: row[11], stats: row[12])
    }
  }

  static func taskError(code: String?, message: String?) -> TaskError? {
    guard let code, !code.isEmpty else { return nil }
    return TaskError(code: code, message: message ?? "")
  }
}
