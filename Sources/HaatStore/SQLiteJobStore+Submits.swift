import Foundation
import GRDB
import HaatCore

/// Submits held back within one transaction until a claim of their pool: when the pool has
/// no other ready task, the claim's share of them is inserted already leased, instead of
/// inserted ready and then updated by the claim (a row written twice, its entry added to
/// the ready index and taken out again: a third of the store's work for a 1-task job).
///
/// The transaction's outcome is the one the ops in their order would have: nothing that
/// runs while a submit is held inserts jobs or tasks (anything else writes the held ones
/// first), so every id is the one the ops in order would have given, and a claim takes the
/// held tasks in its own order (priority, then id) only when no other task could come
/// before them.
struct HeldSubmits {
  struct Held {
    /// The submit's place among the transaction's results (answered once written).
    var result: Int
    var job: NewJob
  }

  /// A held task: its submit's place among the held ones, and its index in its job.
  struct Position: Hashable {
    var place: Int
    var index: Int
  }

  private(set) var submits: [Held] = []
  /// The pools their tasks are in (kept, not searched: a held job may have a million tasks,
  /// and every op that passes asks).
  private var pools = Set<Pool>()

  var isEmpty: Bool { submits.isEmpty }

  /// Whether a submit may wait for its pool's claim: due now (a claim could take it), with
  /// no task reading a bookmark (a claim reads it, in its own statement).
  static func holds(_ job: NewJob, nowMs: Int64) -> Bool {
    job.notBeforeMs <= nowMs && !job.tasks.isEmpty && job.tasks.allSatisfy { $0.resumeKey == nil }
  }

  /// Whether `op` may run while these submits are held: it inserts no job or task, and
  /// reads no ready queue they are in (a claim of another pool reads its own).
  func passes(_ op: StoreOp) -> Bool {
    switch op {
    case .complete(_, _, _, _, _, _, let spawn): return spawn == nil
    case .fail, .expire, .release, .finishJob, .finishIfEnded: return true
    case .claim(_, let pool, _, _): return !has(pool)
    default: return false
    }
  }

  mutating func hold(_ job: NewJob, result: Int) {
    submits.append(Held(result: result, job: job))
    for task in job.tasks { pools.insert(task.pool) }
  }

  /// Whether a held submit has a task in `pool`.
  func has(_ pool: Pool) -> Bool {
    pools.contains(pool)
  }

  /// Takes every held submit out, with the held tasks a claim of `limit` in `pool` takes
  /// (nil: none), in the claim's order: priority first, then the order the
  /// tasks would have been inserted in.
  mutating func take(claiming claim: (pool: Pool, limit: Int, dueMs: Int64)?) -> (
    [Held], claimed: Set<Position>
  ) {
    defer {
      submits = []
      pools = []
    }
    guard let claim, claim.limit > 0 else { return (submits, []) }
    // Priority first (a job's tasks share its priority), then the order of insertion,
    // which is their ids': a stable sort of the jobs, then their tasks in order.
    let places = submits.indices.filter { submits[$0].job.notBeforeMs <= claim.dueMs }
      .enumerated().sorted { lhs, rhs in
        let (left, right) = (submits[lhs.element].job.priority, submits[rhs.element].job.priority)
        return left != right ? left > right : lhs.offset < rhs.offset
      }.map(\.element)
    var claimed = Set<Position>()
    for place in places {
      for (index, task) in submits[place].job.tasks.enumerated() where task.pool == claim.pool {
        guard claimed.count < claim.limit else { return (submits, claimed) }
        claimed.insert(Position(place: place, index: index))
      }
    }
    return (submits, claimed)
  }
}

extension SQLiteJobStore {
  func submit(_ job: NewJob, db: Database, nowMs: Int64) throws -> StoreOpResult {
    let jobID = try insert(job, started: false, db: db, nowMs: nowMs)
    _ = try insertTasks(of: job, job: jobID, leased: [], to: "", db: db, nowMs: nowMs)
    return .submitted(JobID(jobID), tasks: job.tasks.count, notBeforeMs: job.notBeforeMs)
  }

  /// Inserts a job's row, `running` from `nowMs` when a task of it is inserted leased.
  func insert(_ job: NewJob, started: Bool, db: Database, nowMs: Int64) throws -> Int64 {
    var row = SQLiteBindings(
      try db.cachedStatement(
        sql: """
          INSERT INTO jobs (name, state, priority, spec, reports, created_at, not_before,
                            max_attempts, retry_base_ms, retry_cap_ms, total_tasks, submitted_by, started_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          """))
    row.add(job.name)
    row.add(started ? "running" : "queued")
    row.add(Int64(job.priority))
    row.add(job.spec)
    row.add(job.reports.joined(separator: ","))
    row.add(nowMs)
    row.add(job.notBeforeMs)
    row.add(Int64(job.maxAttempts))
    row.add(Int64(job.retry.baseMs))
    row.add(Int64(job.retry.capMs))
    row.add(job.tasks.count)
    row.add(job.submittedBy)
    row.add(started ? nowMs : 0)
    try row.run()
    return db.lastInsertedRowID
  }

  /// Inserts a job's tasks in order, ready, or leased to `owner` (attempt 1) for the indices
  /// in `leased`; returns their ids.
  func insertTasks(
    of job: NewJob, job jobID: Int64, leased: Set<Int>, to owner: String, db: Database, nowMs: Int64
  ) throws -> [Int64] {
    let insert = try db.cachedStatement(
      sql: """
        INSERT INTO tasks (job, idx, pool, source, state, priority, not_before, attempt,
                           max_attempts, spec, updated_at, resume_key, worker)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """)
    var ids: [Int64] = []
    ids.reserveCapacity(job.tasks.count)
    for (index, task) in job.tasks.enumerated() {
      let lease = leased.contains(index)
      var row = SQLiteBindings(insert)
      row.add(jobID)
      row.add(index)
      row.add(task.pool.rawValue)
      row.add(task.source)
      row.add(lease ? "leased" : "ready")
      row.add(Int64(job.priority))
      row.add(job.notBeforeMs)
      row.add(lease ? 1 : 0)
      row.add(Int64(job.maxAttempts))
      row.add(task.spec)
      row.add(nowMs)
      row.add(task.resumeKey)
      row.add(lease ? owner : nil)
      try row.run()
      ids.append(db.lastInsertedRowID)
    }
    return ids
  }

  /// Whether `pool` has a ready task a claim with `dueMs` would take.
  func hasReady(_ pool: Pool, dueMs: Int64, db: Database) throws -> Bool {
    var row = SQLiteBindings(
      try db.cachedStatement(
        sql: "SELECT 1 FROM tasks WHERE state = 'ready' AND pool = ?1 AND not_before <= ?2 LIMIT 1"))
    row.add(pool.rawValue)
    row.add(dueMs)
    defer { row.reset() }
    return try row.step()
  }

  /// Writes every held submit, ready.
  func write(_ held: inout HeldSubmits, results: inout [StoreOpResult], db: Database, nowMs: Int64) throws {
    try write(held.take(claiming: nil).0, claimed: [], owner: "", results: &results, db: db, nowMs: nowMs)
  }

  /// Writes held submits, the tasks a claim took from them leased to `owner`; answers each
  /// submit's result and returns the claimed tasks, in task order (as `claim` does: they
  /// are written in it).
  @discardableResult
  func write(
    _ held: [HeldSubmits.Held], claimed: Set<HeldSubmits.Position>, owner: String, results: inout [StoreOpResult],
    db: Database, nowMs: Int64
  ) throws -> [ClaimedTask] {
    var tasks: [ClaimedTask] = []
    for (place, submit) in held.enumerated() {
      let leased = submit.job.tasks.indices.filter { claimed.contains(HeldSubmits.Position(place: place, index: $0)) }
      let job = try insert(submit.job, started: !leased.isEmpty, db: db, nowMs: nowMs)
      let ids = try insertTasks(of: submit.job, job: job, leased: Set(leased), to: owner, db: db, nowMs: nowMs)
      results[submit.result] = .submitted(
        JobID(job), tasks: submit.job.tasks.count, notBeforeMs: submit.job.notBeforeMs)
      for (order, index) in leased.enumerated() {
        let task = submit.job.tasks[index]
        tasks.append(
          ClaimedTask(
            task: TaskID(ids[index]), job: JobID(job), index: index, attempt: 1, pool: task.pool, spec: task.spec,
            startedJob: order == 0, bookmark: nil))
      }
    }
    return tasks
  }
}
