import Foundation
import HaatCore
import Logging
import NIOCore
import PostgresNIO

/// The PostgreSQL store (postgres-nio): the same queue semantics as the embedded SQLite
/// store (`TaskSemantics`), for deployments whose store must outlive one machine.
///
/// A batch of ops is one transaction on one pooled connection. Claims take ready rows with
/// `FOR UPDATE SKIP LOCKED`, and every transition locks its task's row first, so concurrent
/// writers (another coordinator on the same database) never take one task twice nor answer
/// one lease twice.
public final class PostgresJobStore: JobStore {
  public let location: PostgresLocation
  let client: PostgresClient
  let logger: Logger
  private let runner: Task<Void, Never>
  /// The takeover number this store's coordinator took as it became active, and what to
  /// do when another has taken a later one (`fenced`); nil for a store not fenced.
  let epoch: Int64?
  let onFenced: @Sendable () -> Void

  /// Connects (the pool runs until `close()`), and creates or migrates the schema.
  /// `fenced`: this store belongs to the active coordinator (the one holding the store's
  /// lock): it takes the next takeover number, and every write checks no later one has
  /// been taken, calling `fenced` (once or more) and failing the write if one has.
  public init(
    _ location: PostgresLocation, logger: Logger = Logger(label: "haat.store.postgres"),
    fenced: (@Sendable () -> Void)? = nil
  ) async throws {
    self.location = location
    self.logger = logger
    self.onFenced = fenced ?? {}
    var configuration = PostgresClient.Configuration(
      host: location.host, port: location.port, username: location.user, password: location.password,
      database: location.database, tls: location.requireTLS ? .require(.makeClientConfiguration()) : .disable)
    // Quoted, as in the migration: a keyword is a schema's name like any other.
    // A coordinator frozen inside a transaction (a paused VM) holds the fence's row, and a
    // standby's takeover waits on it: the server ends such a transaction after 15 s idle
    // (Haat's transactions never wait between statements but for the store itself).
    configuration.options.additionalStartupParameters = [
      ("search_path", "\"\(location.schema)\""), ("idle_in_transaction_session_timeout", "15000"),
    ]
    configuration.options.connectTimeout = .seconds(5)
    let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
    self.client = client
    // The pool runs on a task of its own; a query before it runs makes postgres-nio warn
    // (on the pool's own logger, at warning: an operator's alert) and wait. So the first
    // query waits for the pool's task to start.
    let (started, starting) = AsyncStream<Void>.makeStream()
    runner = Task {
      starting.finish()
      await client.run()
    }
    for await _ in started {}
    do {
      try await Task.sleep(for: .milliseconds(20))
      var quiet = logger
      quiet.logLevel = .error
      try await PostgresSchema.migrate(client, schema: location.schema, logger: quiet)
      // Waits for a write of the coordinator active before (its fence check holds the row):
      // what it committed is in the store this one recovers from, and what it tries after
      // is refused.
      epoch =
        fenced == nil
        ? nil
        : try await client.query("UPDATE leader SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch", logger: quiet)
          .first(decoding: Int64.self)
    } catch {
      runner.cancel()
      throw HaatError(.unavailable, "cannot open the store at \(location.redacted): \(Self.describe(error))")
    }
  }

  deinit { runner.cancel() }

  public func close() async {
    runner.cancel()
    await runner.value
  }

  // MARK: - Writes

  public func apply(_ ops: [StoreOp], nowMs: Int64) async throws -> [StoreOpResult] {
    do {
      return try await client.withTransaction(logger: logger) { connection in
        try await self.checkFence(connection)
        var random = StoreRandom()
        var results: [StoreOpResult] = []
        results.reserveCapacity(ops.count)
        var next = ops.startIndex
        while next < ops.endIndex {
          // Submits, and results and job ends, in a row are a few round trips for all
          // (PostgresJobStore+Submits, +Results).
          let submits = Self.submitRun(ops[next...])
          if !submits.isEmpty {
            results += try await self.submit(submits, on: connection, nowMs: nowMs)
            next += submits.count
            continue
          }
          let run = Self.run(ops[next...])
          if run.count > 1 {
            results += try await self.apply(
              run, ops[next..<(next + run.count)], on: connection, nowMs: nowMs, random: &random)
            next += run.count
          } else {
            results.append(try await self.apply(ops[next], on: connection, nowMs: nowMs, random: &random))
            next += 1
          }
        }
        return results
      }
    } catch {
      throw Self.commitError(error)
    }
  }

  func apply(
    _ op: StoreOp, on db: PostgresConnection, nowMs: Int64, random: inout StoreRandom
  ) async throws -> StoreOpResult {
    switch op {
    case .submit(let job):
      return try await submit(job, on: db, nowMs: nowMs)
    case .prune(let endedBeforeMs, let limit):
      return try await prune(endedBeforeMs: endedBeforeMs, limit: limit, on: db)
    case .claim(let owner, let pool, let limit, let dueMs):
      return .claimed(
        try await claim(owner: owner, pool: pool, limit: limit, dueMs: dueMs ?? nowMs, on: db, nowMs: nowMs))
    case .complete(let task, let attempt, let worker, let partial, let stats, let bookmark, let spawn):
      return try await transition(
        task, .complete(attempt: attempt, worker: worker), on: db, nowMs: nowMs, random: &random,
        result: StoredResult(partial: partial, stats: stats, bookmark: bookmark, spawn: spawn))
    case .fail(let task, let attempt, let worker, let error, let retryable, let retryAfterMs, let stats):
      let event = TaskEvent.fail(
        attempt: attempt, worker: worker, error: error, retryable: retryable, retryAfterMs: retryAfterMs)
      let result = try await transition(task, event, on: db, nowMs: nowMs, random: &random)
      if case .changed(let change) = result, change.transition.newState != nil {
        try await db.query(
          "UPDATE tasks SET stats = \(ByteBuffer(bytes: stats)) WHERE id = \(task.rawValue)", logger: logger)
      }
      return result
    case .expire(let task, let attempt):
      return try await transition(task, .expire(attempt: attempt), on: db, nowMs: nowMs, random: &random)
    case .release(let task, let attempt):
      return try await transition(task, .release(attempt: attempt), on: db, nowMs: nowMs, random: &random)
    case .cancelJob(let job):
      return try await cancel(job, on: db, nowMs: nowMs, random: &random)
    case .retryDead(let selector), .discardDead(let selector):
      let event: TaskEvent
      if case .retryDead = op { event = .retryDead } else { event = .discardDead }
      let changes = try await updateDead(selector, event, on: db, nowMs: nowMs, random: &random)
      var jobCounts: [JobID: TaskCounts] = [:]
      for job in Set(changes.map(\.job)) { jobCounts[job] = try await counts(of: job, on: db, nowMs: nowMs) }
      return .deadUpdated(changes, counts: jobCounts)
    case .finishJob(let job, let state, let report, let error):
      return try await finish(job, state: state, report: report, error: error, on: db, nowMs: nowMs)
    case .finishIfEnded(let job, let ending):
      return try await finishIfEnded(job, ending: ending, on: db, nowMs: nowMs)
    case .schedule(let schedule, let firstRun):
      return try await upsert(schedule, firstRun: firstRun, on: db, nowMs: nowMs)
    case .fire(let name, let dueMs, let nextMs, let run):
      return try await fire(name, dueMs: dueMs, nextMs: nextMs, run: run, on: db, nowMs: nowMs)
    case .ratePause(let pause):
      try await db.query("DELETE FROM rate_pauses WHERE until_ms <= \(nowMs)", logger: logger)
      try await db.query(
        """
        INSERT INTO rate_pauses (key, until_ms, worker, reason)
        VALUES (\(pause.key), \(pause.untilMs), \(pause.worker), \(pause.reason))
        ON CONFLICT (key) DO UPDATE SET until_ms = excluded.until_ms, worker = excluded.worker,
          reason = excluded.reason
        WHERE excluded.until_ms > rate_pauses.until_ms
        """, logger: logger)
      return .noted
    case .unpause(let key):
      try await db.query("DELETE FROM rate_pauses WHERE key = \(key) OR until_ms <= \(nowMs)", logger: logger)
      return .noted
    case .updateSchedule(let name, let action):
      let sql: PostgresQuery
      switch action {
      case .pause: sql = "UPDATE schedules SET paused = true WHERE name = \(name) RETURNING name"
      case .resume: sql = "UPDATE schedules SET paused = false WHERE name = \(name) RETURNING name"
      case .remove:
        let prefix = BookmarkKeys.schedulePrefix(name)
        try await db.query("DELETE FROM bookmarks WHERE starts_with(key, \(prefix))", logger: logger)
        sql = "DELETE FROM schedules WHERE name = \(name) RETURNING name"
      }
      return .scheduleUpdated(applied: try await exists(sql, on: db))
    }
  }

  /// One job's submit: a run of one (PostgresJobStore+Submits).
  func submit(_ job: NewJob, on db: PostgresConnection, nowMs: Int64) async throws -> StoreOpResult {
    guard let result = try await submit([job], on: db, nowMs: nowMs).first else {
      throw HaatError(.internal, "the store did not number the job")
    }
    return result
  }

  private func prune(endedBeforeMs: Int64, limit: Int, on db: PostgresConnection) async throws -> StoreOpResult {
    // The newest job, and the job of the newest task, stay as on SQLite (whose ids would
    // come back without them; a sequence's never do): one rule for both stores.
    let ended = try await db.query(
      """
      SELECT id FROM jobs WHERE state IN ('succeeded', 'failed', 'partial', 'cancelled')
        AND finished_at > 0 AND finished_at < \(endedBeforeMs)
        AND id <> (SELECT max(id) FROM jobs)
        AND id <> COALESCE((SELECT job FROM tasks ORDER BY id DESC LIMIT 1), 0)
        AND id NOT IN (\(unescaped: StoreSQL.newestRuns))
      ORDER BY id LIMIT \(Int64(limit))
      """, logger: logger
    ).all(decoding: Int64.self)
    guard !ended.isEmpty else { return .pruned(jobs: 0, tasks: 0) }
    let tasks = try await db.query(
      "WITH gone AS (DELETE FROM tasks WHERE job = ANY(\(ended)) RETURNING 1) SELECT count(*) FROM gone",
      logger: logger
    ).first(decoding: Int64.self)
    try await db.query("DELETE FROM jobs WHERE id = ANY(\(ended))", logger: logger)
    return .pruned(jobs: ended.count, tasks: Int(tasks ?? 0))
  }

  /// PostgreSQL's autovacuum returns pruned space; nothing to do here.
  public func reclaim() async throws {}

  private func claim(
    owner: String, pool: Pool, limit: Int, dueMs: Int64, on db: PostgresConnection, nowMs: Int64
  ) async throws -> [ClaimedTask] {
    guard limit > 0 else { return [] }
    let rows = try await db.query(
      """
      WITH picked AS (
        SELECT id FROM tasks
        WHERE state = 'ready' AND pool = \(pool.rawValue) AND not_before <= \(dueMs)
        ORDER BY priority DESC, COALESCE(place, id), id LIMIT \(Int64(limit))
        FOR UPDATE SKIP LOCKED)
      UPDATE tasks t SET state = 'leased', attempt = t.attempt + 1, worker = \(owner), updated_at = \(nowMs)
      FROM picked WHERE t.id = picked.id
      RETURNING t.id, t.job, t.idx, t.attempt, t.spec,
                (SELECT b.bookmark FROM bookmarks b JOIN jobs j ON j.id = t.job
                 WHERE b.key = t.resume_key AND \(unescaped: BookmarkKeys.currentRun))
      """, logger: logger)
    var claimed: [ClaimedTask] = []
    for try await (id, job, index, attempt, spec, bookmark) in rows.decode(
      (Int64, Int64, Int64, Int64, ByteBuffer, String?).self)
    {
      claimed.append(
        ClaimedTask(
          task: TaskID(id), job: JobID(job), index: Int(index), attempt: UInt32(clamping: attempt), pool: pool,
          spec: Data(spec.readableBytesView), startedJob: false, bookmark: bookmark))
    }
    claimed.sort { $0.task < $1.task }
    let jobs = Array(Set(claimed.map(\.job.rawValue)))
    guard !jobs.isEmpty else { return claimed }
    var started = Set(
      try await db.query(
        """
        UPDATE jobs SET state = 'running', started_at = \(nowMs)
        WHERE id = ANY(\(jobs)) AND state = 'queued' RETURNING id
        """, logger: logger
      ).all(decoding: Int64.self))
    for index in claimed.indices where started.remove(claimed[index].job.rawValue) != nil {
      claimed[index].startedJob = true
    }
    return claimed
  }

  static let transitionColumns = """
    SELECT t.id, t.job, t.pool, t.state, t.attempt, t.max_attempts, j.retry_base_ms, j.retry_cap_ms, t.worker
    FROM tasks t JOIN jobs j ON j.id = t.job
    """

  /// Loads (and locks) a task, applies the rules, writes the new state.
  private func transition(
    _ task: TaskID, _ event: TaskEvent, on db: PostgresConnection, nowMs: Int64,
    random: inout StoreRandom, result: StoredResult? = nil
  ) async throws -> StoreOpResult {
    let rows = try await loadRows(
      PostgresQuery(
        unsafeSQL: Self.transitionColumns + " WHERE t.id = $1 FOR UPDATE OF t",
        binds: try Self.binds(task.rawValue)),
      on: db)
    guard let row = rows.first else { return .failed(HaatError(.notFound, "task \(task) does not exist")) }
    guard let loaded = row else { return .failed(HaatError(.internal, "task \(task) has an unreadable state")) }
    return .changed(try await transition(loaded, event, on: db, nowMs: nowMs, random: &random, result: result))
  }

  private func transition(
    _ task: TaskRow, _ event: TaskEvent, on db: PostgresConnection, nowMs: Int64,
    random: inout StoreRandom, result: StoredResult? = nil
  ) async throws -> TaskChange {
    var (change, write) = TaskSemantics.plan(task, event, nowMs: nowMs, random: &random)
    if write == .done, let spawn = result?.spawn {
      if let spawned = try await addTasks(spawn, after: task, on: db, nowMs: nowMs) {
        change.spawned = spawned
      } else {
        write = TaskSemantics.splitFailed(&change)
      }
    }
    try await self.write(write, task: task.id.rawValue, result: result, on: db, nowMs: nowMs)
    return change
  }

  /// A row write in PostgreSQL's SQL.
  func write(
    _ write: TaskRowWrite, task id: Int64, result: StoredResult?, on db: PostgresConnection, nowMs: Int64
  ) async throws {
    switch write {
    case .unchanged:
      return
    case .done:
      guard let result else {
        try await db.query("UPDATE tasks SET state = 'done', updated_at = \(nowMs) WHERE id = \(id)", logger: logger)
        return
      }
      try await db.query(
        """
        UPDATE tasks SET state = 'done', updated_at = \(nowMs), partial = \(ByteBuffer(bytes: result.partial)),
          stats = \(ByteBuffer(bytes: result.stats)), bookmark = \(result.bookmark)
        WHERE id = \(id)
        """, logger: logger)
      if !result.bookmark.isEmpty {
        // An incremental source's next run starts from here (the same commit).
        try await db.query(
          """
          INSERT INTO bookmarks (key, bookmark, job, updated_at)
          SELECT t.resume_key, \(result.bookmark), t.job, \(nowMs) FROM tasks t JOIN jobs j ON j.id = t.job
          WHERE t.id = \(id) AND t.resume_key IS NOT NULL AND \(unescaped: BookmarkKeys.currentRun)
          ON CONFLICT (key) DO UPDATE SET bookmark = excluded.bookmark, job = excluded.job,
                                         updated_at = excluded.updated_at
          """, logger: logger)
      }
    case .retry(let notBeforeMs, let error):
      try await db.query(
        """
        UPDATE tasks SET state = 'ready', not_before = \(notBeforeMs), last_error_code = \(error.code),
          last_error = \(error.message), updated_at = \(nowMs)
        WHERE id = \(id)
        """, logger: logger)
    case .dead(let error):
      try await db.query(
        """
        UPDATE tasks SET state = 'dead', last_error_code = \(error.code), last_error = \(error.message),
          updated_at = \(nowMs)
        WHERE id = \(id)
        """, logger: logger)
    case .released:
      try await db.query(
        "UPDATE tasks SET state = 'ready', attempt = attempt - 1, updated_at = \(nowMs) WHERE id = \(id)",
        logger: logger)
    case .cancelled:
      try await db.query("UPDATE tasks SET state = 'cancelled', updated_at = \(nowMs) WHERE id = \(id)", logger: logger)
    case .revived:
      try await db.query(
        """
        UPDATE tasks SET state = 'ready', not_before = 0, updated_at = \(nowMs),
          max_attempts = attempt + (SELECT max_attempts FROM jobs WHERE jobs.id = tasks.job)
        WHERE id = \(id)
        """,
        logger: logger)
    }
  }

  /// Adds the tasks `spawn` makes to `task`'s job, ready, after its last task; nil (and
  /// nothing added) when it cannot make them.
  private func addTasks(
    _ spawn: TaskSpawner, after task: TaskRow, on db: PostgresConnection, nowMs: Int64
  ) async throws -> Int? {
    let id = task.id.rawValue
    let job = task.job.rawValue
    guard
      let (spec, source, priority, maxAttempts, place) = try await db.query(
        "SELECT spec, source, priority, max_attempts, COALESCE(place, id) FROM tasks WHERE id = \(id)", logger: logger
      ).first(decoding: (ByteBuffer, String, Int64, Int64, Int64).self),
      let next = try await db.query("SELECT MAX(idx) + 1 FROM tasks WHERE job = \(job)", logger: logger)
        .first(decoding: Int64?.self), let first = next,
      let specs = spawn(Data(spec.readableBytesView), Int(first))
    else { return nil }
    try await db.query(
      """
      INSERT INTO tasks (job, idx, pool, source, state, priority, not_before, attempt, max_attempts, spec, updated_at,
                         place)
      SELECT \(job), \(first) + n - 1, \(task.pool.rawValue), \(source), 'ready', \(priority), 0, 0,
             \(maxAttempts), spec, \(nowMs), \(place)
      FROM unnest(\(specs.map { ByteBuffer(bytes: $0) })::bytea[]) WITH ORDINALITY AS t(spec, n)
      """, logger: logger)
    try await db.query(
      "UPDATE jobs SET total_tasks = total_tasks + \(Int64(specs.count)) WHERE id = \(job)", logger: logger)
    return specs.count
  }

  /// Applies `event` to every task the query selects (locking them); the changes that took.
  private func transitionAll(
    _ query: PostgresQuery, _ event: TaskEvent, on db: PostgresConnection, nowMs: Int64,
    random: inout StoreRandom
  ) async throws -> [TaskChange] {
    var changes: [TaskChange] = []
    for case let row? in try await loadRows(query, on: db) {
      let change = try await transition(row, event, on: db, nowMs: nowMs, random: &random)
      if change.transition.newState != nil { changes.append(change) }
    }
    return changes
  }

  private func cancel(
    _ job: JobID, on db: PostgresConnection, nowMs: Int64, random: inout StoreRandom
  ) async throws -> StoreOpResult {
    let state = try await db.query("SELECT state FROM jobs WHERE id = \(job.rawValue) FOR UPDATE", logger: logger)
      .first(decoding: String.self)
    if let refusal = TaskSemantics.cancelRefusal(job, state: state) { return .failed(refusal) }
    let changes = try await transitionAll(
      PostgresQuery(
        unsafeSQL: Self.transitionColumns
          + " WHERE t.job = $1 AND t.state IN ('ready', 'leased') ORDER BY t.id FOR UPDATE OF t",
        binds: try Self.binds(job.rawValue)),
      .cancel, on: db, nowMs: nowMs, random: &random)
    try await db.query(
      "UPDATE jobs SET state = 'cancelled', cancelled = true, finished_at = \(nowMs) WHERE id = \(job.rawValue)",
      logger: logger)
    return .cancelled(job, changes)
  }

  private func updateDead(
    _ selector: DeadSelector, _ event: TaskEvent, on db: PostgresConnection, nowMs: Int64,
    random: inout StoreRandom
  ) async throws -> [TaskChange] {
    // A cancelled job's dead tasks may be discarded, never revived: it stays cancelled.
    // Nor a schedule run's once a later run exists (TaskSemantics.notSupersededRun).
    let dead =
      Self.transitionColumns + " WHERE t.state = 'dead'"
      + (event == .retryDead ? " AND NOT j.cancelled AND " + TaskSemantics.notSupersededRun : "")
    let query: PostgresQuery
    switch selector {
    case .all:
      query = PostgresQuery(unsafeSQL: dead + " ORDER BY t.id FOR UPDATE OF t")
    case .job(let job):
      query = PostgresQuery(
        unsafeSQL: dead + " AND t.job = $1 ORDER BY t.id FOR UPDATE OF t", binds: try Self.binds(job.rawValue))
    case .tasks(let tasks):
      // In the order named, each once.
      var seen = Set<TaskID>()
      var changes: [TaskChange] = []
      for task in tasks where seen.insert(task).inserted {
        changes += try await transitionAll(
          PostgresQuery(unsafeSQL: dead + " AND t.id = $1 FOR UPDATE OF t", binds: try Self.binds(task.rawValue)),
          event, on: db, nowMs: nowMs, random: &random)
      }
      try await reopen(changes, event, on: db)
      return changes
    }
    let changes = try await transitionAll(query, event, on: db, nowMs: nowMs, random: &random)
    try await reopen(changes, event, on: db)
    return changes
  }

  private func finish(
    _ job: JobID, state: JobState, report: Data?, error: String, on db: PostgresConnection, nowMs: Int64
  ) async throws -> StoreOpResult {
    guard try await hasEnded(job, on: db) else { return .finished(job, applied: false) }
    try await record(job, state: state, report: report, error: error, on: db, nowMs: nowMs)
    return .finished(job, applied: true)
  }

  /// See `StoreOp.finishIfEnded`.
  private func finishIfEnded(_ job: JobID, ending: JobEnding, on db: PostgresConnection, nowMs: Int64)
    async throws -> StoreOpResult
  {
    guard let read = try await self.job(job, on: db) else {
      return .failed(HaatError(.notFound, "job \(job) does not exist"))
    }
    guard !read.state.isFinal, try await hasEnded(job, on: db) else { return .finished(job, applied: false) }
    let made: JobEnd?
    switch ending {
    case .read(let reduce): made = reduce((read, try await outputs(of: job, on: db)))
    case .reduced(let end): made = end
    }
    guard let end = made else { return .finished(job, applied: false) }
    try await record(job, state: end.state, report: end.report, error: end.error, on: db, nowMs: nowMs)
    return .ended(job, end)
  }

  /// Whether the job exists with no open task. Its row is locked first, so a concurrent
  /// claim or revive cannot slip in between.
  private func hasEnded(_ job: JobID, on db: PostgresConnection) async throws -> Bool {
    guard try await exists("SELECT id FROM jobs WHERE id = \(job.rawValue) FOR UPDATE", on: db) else { return false }
    return try await !exists(
      "SELECT 1 FROM tasks WHERE job = \(job.rawValue) AND state IN ('ready', 'leased') LIMIT 1", on: db)
  }

  /// Writes a job's end.
  private func record(
    _ job: JobID, state: JobState, report: Data?, error: String, on db: PostgresConnection, nowMs: Int64
  ) async throws {
    try await db.query(
      """
      UPDATE jobs SET state = \(state.rawValue), report = \(report.map { ByteBuffer(bytes: $0) }), error = \(error),
        finished_at = CASE WHEN finished_at > 0 THEN finished_at ELSE \(nowMs) END
      WHERE id = \(job.rawValue)
      """, logger: logger)
  }
}
