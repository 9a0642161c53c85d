import CSQLiteConfig
import Foundation
import GRDB
import HaatCore
import Synchronization

/// The embedded store: one SQLite file in WAL mode.
///
/// Every write is one `BEGIN IMMEDIATE` transaction over a whole batch of ops, so a
/// coordinator that hands it everything that arrived during the previous commit gets group
/// commit for free. Reads run on the pool's reader connections, concurrently with writes.
public final class SQLiteJobStore: JobStore {
  public let path: String
  public let durability: Durability
  let pool: DatabasePool
  private let checkpointer: WALCheckpointer
  /// Why the file is damaged, once a read or commit found it so (`noteDamage`).
  let damaged = Mutex<String?>(nil)

  /// SQLite's process-wide settings, made before the first connection opens (SQLite
  /// refuses them after): multi-thread mode and no memory statistics, a mutex taken per
  /// statement and per allocation saved (GRDB gives a connection to one thread at a time).
  static let processSettings = csqlite_config_for_serialized_connections()
  /// Whether they were made (false when SQLite was already in use in this process).
  public static var processSettingsApplied: Bool { processSettings == SQLITE_OK }

  /// Opens (creating or migrating) the store at `path`.
  public init(path: String, durability: Durability = .full, busyTimeout: TimeInterval = 5)
    throws
  {
    self.path = path
    self.durability = durability
    _ = Self.processSettings
    var configuration = Configuration()
    configuration.busyMode = .timeout(busyTimeout)
    let synchronous = durability == .full ? "FULL" : "NORMAL"
    configuration.prepareDatabase { db in
      try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
      try db.execute(sql: "PRAGMA foreign_keys = ON")
      // Statements' scratch tables (a claim's `UPDATE … RETURNING` over an `IN (subquery)`)
      // in memory: by default each such statement sets up and tears down a temporary
      // file's pager (fresh memory mapped, faulted in and unmapped), and a one-task claim
      // took ten times as long (the largest part of a submit's commit).
      try db.execute(sql: "PRAGMA temp_store = MEMORY")
    }
    do {
      pool = try DatabasePool(path: path, configuration: configuration)
      try pool.writeWithoutTransaction { db in
        // A new store gives the pages pruning frees back to the file system (incremental
        // vacuum; it can only be chosen before the first table), and the writer keeps the
        // WAL at most 64 MiB after each checkpoint.
        if try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") == 0 {
          try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
          try db.execute(sql: "VACUUM")  // applies it to the (empty) file
        }
        // GRDB sets the writer to NORMAL when it turns WAL on (after prepareDatabase), so
        // `full` is applied here, on the one writer connection, or it would not hold.
        try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
        // Checkpoints run off the commit path (WALCheckpointer).
        try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
      }
      try Schema.migrate(pool)
      // A WAL left large (a crash during a large commit, a full disk) is cut back at start.
      _ = try? pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
      checkpointer = try WALCheckpointer(path: path, synchronous: synchronous) { [pool] in
        try pool.writeWithoutTransaction { db in _ = try db.checkpoint(.passive) }
      }
    } catch {
      throw HaatError(.unavailable, "cannot open the store at \(path): \((error as? HaatError)?.message ?? "\(error)")")
    }
  }

  // MARK: - Writes

  public func apply(_ ops: [StoreOp], nowMs: Int64) async throws -> [StoreOpResult] {
    do {
      return try await pool.writeWithoutTransaction { db in try self.commitOrShrink(ops, db: db, nowMs: nowMs) }
    } catch {
      noteDamage(error)
      throw Self.commitError(error)
    }
  }

  public func apply(
    _ ops: [StoreOp], nowMs: Int64, done: @escaping @Sendable (Result<[StoreOpResult], any Error>) -> Void
  ) {
    pool.asyncWriteWithoutTransaction { db in
      do {
        done(.success(try self.commitOrShrink(ops, db: db, nowMs: nowMs)))
      } catch {
        self.noteDamage(error)
        done(.failure(Self.commitError(error)))
      }
    }
  }

  /// `commit`; when the disk filled under it, the WAL is cut back before the error goes
  /// on. A transaction rolled back for want of space leaves the WAL file at the size it
  /// reached (a refused job of 300,000 tasks took a tester's whole disk, for good: under
  /// the 64 MiB `journal_size_limit`, and not given back by a restart either).
  private func commitOrShrink(_ ops: [StoreOp], db: Database, nowMs: Int64) throws -> [StoreOpResult] {
    do {
      return try commit(ops, db: db, nowMs: nowMs)
    } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
      _ = try? db.checkpoint(.truncate)
      throw error
    }
  }

  /// One transaction over the whole batch.
  private func commit(_ ops: [StoreOp], db: Database, nowMs: Int64) throws -> [StoreOpResult] {
    var random = StoreRandom()
    var results: [StoreOpResult] = []
    results.reserveCapacity(ops.count)
    try db.inTransaction(.immediate) {
      var held = HeldSubmits()
      for op in ops {
        switch op {
        case .submit(let job) where HeldSubmits.holds(job, nowMs: nowMs):
          held.hold(job, result: results.count)
          results.append(.noted)  // answered once written
        case .claim(let owner, let pool, let limit, let dueMs) where held.has(pool):
          let due = dueMs ?? nowMs
          if try self.hasReady(pool, dueMs: due, db: db) {
            // Another ready task may come first: the held ones are written ready, and the
            // claim takes what it would have.
            try self.write(&held, results: &results, db: db, nowMs: nowMs)
            results.append(try self.apply(op, db: db, nowMs: nowMs, random: &random))
          } else {
            let (submits, claimed) = held.take(claiming: (pool, limit, due))
            let leased = try self.write(
              submits, claimed: claimed, owner: owner, results: &results, db: db, nowMs: nowMs)
            results.append(.claimed(leased))
          }
        case _ where held.isEmpty || held.passes(op):
          results.append(try self.apply(op, db: db, nowMs: nowMs, random: &random))
        default:
          try self.write(&held, results: &results, db: db, nowMs: nowMs)
          results.append(try self.apply(op, db: db, nowMs: nowMs, random: &random))
        }
      }
      try self.write(&held, results: &results, db: db, nowMs: nowMs)
      return .commit
    }
    return results
  }

  private func apply(
    _ op: StoreOp, db: Database, nowMs: Int64, random: inout StoreRandom
  ) throws -> StoreOpResult {
    switch op {
    case .submit(let job):
      return try submit(job, db: db, nowMs: nowMs)
    case .prune(let endedBeforeMs, let limit):
      return try prune(endedBeforeMs: endedBeforeMs, limit: limit, db: db)
    case .claim(let owner, let pool, let limit, let dueMs):
      return .claimed(try claim(owner: owner, pool: pool, limit: limit, dueMs: dueMs ?? nowMs, db: db, nowMs: nowMs))
    case .complete(let task, let attempt, let worker, let partial, let stats, let bookmark, let spawn):
      let result = StoredResult(partial: partial, stats: stats, bookmark: bookmark, spawn: spawn)
      if spawn == nil,
        let change = try completeHeld(task, attempt: attempt, worker: worker, result, db: db, nowMs: nowMs)
      {
        return .changed(change)
      }
      // The result goes in the same UPDATE as the state: one write of the row per result.
      return try transition(
        task, .complete(attempt: attempt, worker: worker), db: db, nowMs: nowMs, random: &random,
        result: result)
    case .fail(let task, let attempt, let worker, let error, let retryable, let retryAfterMs, let stats):
      let event = TaskEvent.fail(
        attempt: attempt, worker: worker, error: error, retryable: retryable, retryAfterMs: retryAfterMs)
      return try transition(task, event, db: db, nowMs: nowMs, random: &random) { db, change in
        try db.cachedStatement(sql: "UPDATE tasks SET stats = ? WHERE id = ?")
          .execute(arguments: [stats, change.task.rawValue])
      }
    case .expire(let task, let attempt):
      return try transition(task, .expire(attempt: attempt), db: db, nowMs: nowMs, random: &random)
    case .release(let task, let attempt):
      return try transition(task, .release(attempt: attempt), db: db, nowMs: nowMs, random: &random)
    case .cancelJob(let job):
      return try cancel(job, db: db, nowMs: nowMs, random: &random)
    case .retryDead(let selector), .discardDead(let selector):
      let event: TaskEvent
      if case .retryDead = op { event = .retryDead } else { event = .discardDead }
      let changes = try updateDead(selector, event, db: db, nowMs: nowMs, random: &random)
      var counts: [JobID: TaskCounts] = [:]
      for job in Set(changes.map(\.job)) { counts[job] = try Self.counts(of: job, db: db, nowMs: nowMs) }
      return .deadUpdated(changes, counts: counts)
    case .finishJob(let job, let state, let report, let error):
      return try finish(job, state: state, report: report, error: error, db: db, nowMs: nowMs)
    case .finishIfEnded(let job, let ending):
      return try finishIfEnded(job, ending: ending, db: db, nowMs: nowMs)
    case .schedule(let schedule, let firstRun):
      return try upsert(schedule, firstRun: firstRun, db: db, nowMs: nowMs)
    case .fire(let name, let dueMs, let nextMs, let run):
      return try fire(name, dueMs: dueMs, nextMs: nextMs, run: run, db: db, nowMs: nowMs)
    case .ratePause(let pause):
      return try note(pause, db: db, nowMs: nowMs)
    case .unpause(let key):
      try db.execute(sql: "DELETE FROM rate_pauses WHERE key = ? OR until_ms <= ?", arguments: [key, nowMs])
      return .noted
    case .updateSchedule(let name, let action):
      return try update(schedule: name, action, db: db)
    }
  }

  private func prune(endedBeforeMs: Int64, limit: Int, db: Database) throws -> StoreOpResult {
    // SQLite gives a new row the id after the largest in its table: the job with the largest
    // id, and the job of the task with the largest, stay until newer rows exist, so no id a
    // script or a worker saw is ever given to another job or task.
    let ended = try Int64.fetchAll(
      db,
      sql: """
        SELECT id FROM jobs WHERE state IN ('succeeded', 'failed', 'partial', 'cancelled')
          AND finished_at > 0 AND finished_at < ?
          AND id <> (SELECT max(id) FROM jobs)
          AND id <> IFNULL((SELECT job FROM tasks ORDER BY id DESC LIMIT 1), 0)
          AND id NOT IN (\(StoreSQL.newestRuns))
        ORDER BY id LIMIT ?
        """, arguments: [endedBeforeMs, limit])
    guard !ended.isEmpty else { return .pruned(jobs: 0, tasks: 0) }
    var tasks = 0
    for job in ended {
      try db.execute(sql: "DELETE FROM tasks WHERE job = ?", arguments: [job])
      tasks += db.changesCount
      try db.execute(sql: "DELETE FROM jobs WHERE id = ?", arguments: [job])
    }
    return .pruned(jobs: ended.count, tasks: tasks)
  }

  /// Gives the pages pruning freed back to the file system (stores created with
  /// incremental auto-vacuum), and trims the WAL. Outside any transaction.
  public func reclaim() async throws {
    do {
      try await pool.writeWithoutTransaction { db in
        try db.execute(sql: "PRAGMA incremental_vacuum")
        try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
      }
    } catch {
      throw HaatError(.unavailable, "the store could not reclaim space: \(error)")
    }
  }

  private func claim(owner: String, pool: Pool, limit: Int, dueMs: Int64, db: Database, nowMs: Int64) throws
    -> [ClaimedTask]
  {
    guard limit > 0 else { return [] }
    // Each row read in place, column by column: a row of `fetchAll` is a copy whose every
    // column is decoded generically, through GRDB's DatabaseValue.
    var rows = SQLiteBindings(
      try db.cachedStatement(
        sql: """
          UPDATE tasks SET state = 'leased', attempt = attempt + 1, worker = ?1, updated_at = ?2
          WHERE id IN (SELECT id FROM tasks
                       WHERE state = 'ready' AND pool = ?3 AND not_before <= ?5
                       ORDER BY priority DESC, IFNULL(place, id), id LIMIT ?4)
          RETURNING id, job, idx, attempt, spec,
                    CASE WHEN resume_key IS NULL THEN NULL
                         ELSE (SELECT b.bookmark FROM bookmarks b JOIN jobs j ON j.id = tasks.job
                               WHERE b.key = tasks.resume_key AND \(BookmarkKeys.currentRun)) END
          """))
    rows.add(owner)
    rows.add(nowMs)
    rows.add(pool.rawValue)
    rows.add(limit)
    rows.add(dueMs)
    var claimed: [ClaimedTask] = []
    claimed.reserveCapacity(min(limit, 1_024))
    var jobs = Set<Int64>()
    while try rows.step() {
      let job = rows.int64(1)
      jobs.insert(job)
      claimed.append(
        ClaimedTask(
          task: TaskID(rows.int64(0)), job: JobID(job), index: Int(rows.int64(2)),
          attempt: UInt32(clamping: rows.int64(3)), pool: pool, spec: rows.blob(4), startedJob: false,
          bookmark: rows.text(orNil: 5)))
    }
    let start = try db.cachedStatement(
      sql: "UPDATE jobs SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'")
    var started = Set<Int64>()
    for job in jobs {
      var row = SQLiteBindings(start)
      row.add(nowMs)
      row.add(job)
      try row.run()
      if db.changesCount > 0 { started.insert(job) }
    }
    claimed.sort { $0.task < $1.task }
    if !started.isEmpty {
      for index in claimed.indices where started.remove(claimed[index].job.rawValue) != nil {
        claimed[index].startedJob = true
      }
    }
    return claimed
  }

  /// Loads a task, applies the rules, writes the new state, and lets `extra` write what
  /// goes with an accepted change.
  private func transition(
    _ task: TaskID, _ event: TaskEvent, db: Database, nowMs: Int64,
    random: inout StoreRandom, result: StoredResult? = nil,
    extra: ((Database, TaskChange) throws -> Void)? = nil
  ) throws -> StoreOpResult {
    // The row read in place (see `claim`).
    var row = SQLiteBindings(try db.cachedStatement(sql: Self.transitionColumns + " WHERE t.id = ?"))
    row.add(task.rawValue)
    // nil: no such task; .some(nil): a row whose state does not read.
    let read: TaskRow?? = try row.step() ? .some(Self.taskRow(row)) : .none
    row.reset()
    guard let read else {
      return .failed(HaatError(.notFound, "task \(task) does not exist"))
    }
    guard let loaded = read else {
      return .failed(HaatError(.internal, "task \(task) has an unreadable state"))
    }
    let change = try transition(loaded, event, db: db, nowMs: nowMs, random: &random, result: result)
    if change.transition.newState != nil, let extra { try extra(db, change) }
    return .changed(change)
  }

  /// A task row as `transitionColumns` selects it.
  private static func taskRow(_ row: Row) -> TaskRow? {
    guard let pool = Pool(rawValue: row[2]), let state = TaskState(rawValue: row[3]) else {
      return nil
    }
    return TaskRow(
      id: TaskID(row[0] as Int64), job: JobID(row[1] as Int64), pool: pool,
      status: TaskStatus(state: state, attempt: row[4], maxAttempts: row[5], owner: row[8] ?? ""),
      retry: RetryPolicy(baseMs: UInt64(row[6] as Int64), capMs: UInt64(row[7] as Int64)))
  }

  /// `taskRow` of the row a statement is on.
  private static func taskRow(_ row: SQLiteBindings) -> TaskRow? {
    guard let pool = Pool(rawValue: row.text(2)), let state = TaskState(rawValue: row.text(3)) else {
      return nil
    }
    return TaskRow(
      id: TaskID(row.int64(0)), job: JobID(row.int64(1)), pool: pool,
      status: TaskStatus(
        state: state, attempt: UInt32(clamping: row.int64(4)), maxAttempts: UInt32(clamping: row.int64(5)),
        owner: row.text(8)),
      retry: RetryPolicy(baseMs: UInt64(clamping: row.int64(6)), capMs: UInt64(clamping: row.int64(7))))
  }

  /// Applies `event` to a loaded task and writes its new state (TaskSemantics decides it).
  private func transition(
    _ task: TaskRow, _ event: TaskEvent, db: Database, nowMs: Int64,
    random: inout StoreRandom, result: StoredResult? = nil
  ) throws -> TaskChange {
    var (change, write) = TaskSemantics.plan(task, event, nowMs: nowMs, random: &random)
    if write == .done, let spawn = result?.spawn {
      if let spawned = try addTasks(spawn, after: task.id, job: task.job, pool: task.pool, db: db, nowMs: nowMs) {
        change.spawned = spawned
      } else {
        write = TaskSemantics.splitFailed(&change)
      }
    }
    try self.write(write, task: task.id, result: result, db: db, nowMs: nowMs)
    return change
  }

  /// A row write in SQLite's SQL.
  private func write(_ write: TaskRowWrite, task: TaskID, result: StoredResult?, db: Database, nowMs: Int64) throws {
    let id = task.rawValue
    switch write {
    case .unchanged:
      break
    case .done:
      guard let result else {
        try setState(task, "done", db: db, nowMs: nowMs)
        return
      }
      var row = SQLiteBindings(
        try db.cachedStatement(
          sql: "UPDATE tasks SET state = 'done', updated_at = ?, partial = ?, stats = ?, bookmark = ? WHERE id = ?"))
      row.add(nowMs)
      row.add(result.partial)
      row.add(result.stats)
      row.add(result.bookmark)
      row.add(id)
      try row.run()
      try recordBookmark(of: task, result.bookmark, db: db, nowMs: nowMs)
    case .retry(let notBeforeMs, let error):
      try db.cachedStatement(
        sql: """
          UPDATE tasks SET state = 'ready', not_before = ?, last_error_code = ?, last_error = ?,
            updated_at = ?
          WHERE id = ?
          """
      ).execute(arguments: [notBeforeMs, error.code, error.message, nowMs, id])
    case .dead(let error):
      try db.cachedStatement(
        sql: """
          UPDATE tasks SET state = 'dead', last_error_code = ?, last_error = ?, updated_at = ?
          WHERE id = ?
          """
      ).execute(arguments: [error.code, error.message, nowMs, id])
    case .released:
      try db.cachedStatement(
        sql: "UPDATE tasks SET state = 'ready', attempt = attempt - 1, updated_at = ? WHERE id = ?"
      ).execute(arguments: [nowMs, id])
    case .cancelled:
      try setState(task, "cancelled", db: db, nowMs: nowMs)
    case .revived:
      try db.cachedStatement(
        sql: """
          UPDATE tasks SET state = 'ready', not_before = 0, updated_at = ?,
            max_attempts = attempt + (SELECT max_attempts FROM jobs WHERE jobs.id = tasks.job)
          WHERE id = ?
          """
      ).execute(arguments: [nowMs, id])
    }
  }

  private func setState(_ task: TaskID, _ state: String, db: Database, nowMs: Int64) throws {
    try db.cachedStatement(sql: "UPDATE tasks SET state = ?, updated_at = ? WHERE id = ?")
      .execute(arguments: [state, nowMs, task.rawValue])
  }

  private static let transitionColumns = """
    SELECT t.id, t.job, t.pool, t.state, t.attempt, t.max_attempts, j.retry_base_ms, j.retry_cap_ms,
      t.worker
    FROM tasks t JOIN jobs j ON j.id = t.job
    """

  /// Applies `event` to every task the query selects; returns the changes that took.
  private func transitionAll(
    sql: String, arguments: StatementArguments, _ event: TaskEvent, db: Database, nowMs: Int64,
    random: inout StoreRandom
  ) throws -> [TaskChange] {
    try Row.fetchAll(db, sql: sql, arguments: arguments).compactMap(Self.taskRow).compactMap {
      let change = try transition($0, event, db: db, nowMs: nowMs, random: &random)
      return change.transition.newState == nil ? nil : change
    }
  }

  private func cancel(
    _ job: JobID, db: Database, nowMs: Int64, random: inout StoreRandom
  ) throws -> StoreOpResult {
    let state = try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE id = ?", arguments: [job.rawValue])
    if let refusal = TaskSemantics.cancelRefusal(job, state: state) { return .failed(refusal) }
    let changes = try transitionAll(
      sql: Self.transitionColumns + " WHERE t.job = ? AND t.state IN ('ready', 'leased') ORDER BY t.id",
      arguments: [job.rawValue], .cancel, db: db, nowMs: nowMs, random: &random)
    try db.execute(
      sql: "UPDATE jobs SET state = 'cancelled', cancelled = 1, finished_at = ? WHERE id = ?",
      arguments: [nowMs, job.rawValue])
    return .cancelled(job, changes)
  }

  private func updateDead(
    _ selector: DeadSelector, _ event: TaskEvent, db: Database, nowMs: Int64,
    random: inout StoreRandom
  ) throws -> [TaskChange] {
    var changes: [TaskChange] = []
    // A cancelled job's dead tasks may be discarded, never revived: it stays cancelled.
    // Nor a schedule run's once a later run exists (TaskSemantics.notSupersededRun).
    let dead =
      Self.transitionColumns + " WHERE t.state = 'dead'"
      + (event == .retryDead ? " AND j.cancelled = 0 AND " + TaskSemantics.notSupersededRun : "")
    switch selector {
    case .all:
      changes = try transitionAll(
        sql: dead + " ORDER BY t.id", arguments: [], event, db: db, nowMs: nowMs, random: &random)
    case .job(let job):
      changes = try transitionAll(
        sql: dead + " AND t.job = ? ORDER BY t.id",
        arguments: [job.rawValue], event, db: db, nowMs: nowMs, random: &random)
    case .tasks(let tasks):
      for task in tasks {
        changes += try transitionAll(
          sql: dead + " AND t.id = ?",
          arguments: [task.rawValue], event, db: db, nowMs: nowMs, random: &random)
      }
    }
    if event == .retryDead {
      // A revived task reopens its job: it runs again and gets a new report when it ends.
      let reopen = try db.cachedStatement(
        sql: """
          UPDATE jobs SET state = 'running', finished_at = 0, report = NULL, error = ''
          WHERE id = ? AND cancelled = 0
          """)
      for job in Set(changes.map(\.job.rawValue)) { try reopen.execute(arguments: [job]) }
    }
    return changes
  }

}
