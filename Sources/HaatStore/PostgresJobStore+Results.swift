import Foundation
import HaatCore
import NIOCore
import PostgresNIO

/// Results and job ends in a row of a batch, applied together: a worker's results arrive
/// in bursts and the group commit gathers them (each 1-task job's result followed by its
/// end, `finishIfEnded`), but one at a time each cost its own round trips to the server (a
/// result two, a job's end five), and postgres-nio's per-query work was most of the
/// coordinator's CPU per task on PostgreSQL (perf). Together they are a fixed number of
/// statements for the run, and each op gets the answer it would have got alone
/// (`TaskSemantics`, in the batch's order; `ResultRunTests`).
extension PostgresJobStore {
  /// One result of a run: its task, the lease it answers for, and what it carries.
  struct PlainResult {
    var task: TaskID
    var attempt: UInt32
    var worker: String
    var partial: Data
    var stats: Data
  }

  /// An op of a run.
  enum RunOp {
    case result(PlainResult)
    /// `finishIfEnded`: the job's end, if the ops before it ended its last open task.
    case finish(JobID, JobEnding)
  }

  /// The ops at the front of `ops` that may be applied together: plain results (no bookmark
  /// to keep, no tasks to spawn) and job ends, each for a task or job no earlier op of the
  /// run names (a second answer for a task must see the first's).
  static func run(_ ops: ArraySlice<StoreOp>) -> [RunOp] {
    var run: [RunOp] = []
    var tasks = Set<TaskID>()
    var jobs = Set<JobID>()
    for op in ops {
      switch op {
      case .complete(let task, let attempt, let worker, let partial, let stats, let bookmark, let spawn)
      where bookmark.isEmpty && spawn == nil && !tasks.contains(task):
        tasks.insert(task)
        run.append(.result(PlainResult(task: task, attempt: attempt, worker: worker, partial: partial, stats: stats)))
      case .finishIfEnded(let job, let ending) where !jobs.contains(job):
        jobs.insert(job)
        run.append(.finish(job, ending))
      default:
        return run
      }
    }
    return run
  }

  /// Applies a run (`ops`, as `run` read them): what each op would give applied alone, in
  /// order. Results are judged first, then job ends; a job's end that a later result of the
  /// run would change (a result for one of its tasks after it) sends the run one op at a
  /// time.
  func apply(
    _ run: [RunOp], _ ops: ArraySlice<StoreOp>, on db: PostgresConnection, nowMs: Int64,
    random: inout StoreRandom
  ) async throws -> [StoreOpResult] {
    var ids: [Int64] = []
    for case .result(let result) in run { ids.append(result.task.rawValue) }
    var rows: [Int64: TaskRow?] = [:]
    if !ids.isEmpty {
      var binds = PostgresBindings()
      binds.append(ids)
      // Locked in id order, as any other batch locks them, whatever order the results came in.
      let loaded = try await loadRowsWithIDs(
        PostgresQuery(
          unsafeSQL: Self.transitionColumns + " WHERE t.id = ANY($1) ORDER BY t.id FOR UPDATE OF t", binds: binds),
        on: db)
      rows = Dictionary(loaded.map { ($0.id, $0.row) }, uniquingKeysWith: { first, _ in first })
    }
    var lastResult: [JobID: Int] = [:]
    for (position, op) in run.enumerated() {
      if case .result(let result) = op, let found = rows[result.task.rawValue], let row = found {
        lastResult[row.job] = position
      }
    }
    for (position, op) in run.enumerated() {
      guard case .finish(let job, _) = op, let last = lastResult[job], last > position else { continue }
      var answers: [StoreOpResult] = []
      for op in ops { answers.append(try await apply(op, on: db, nowMs: nowMs, random: &random)) }
      return answers
    }
    var answers = [StoreOpResult?](repeating: nil, count: run.count)
    var done: [PlainResult] = []
    for (position, op) in run.enumerated() {
      guard case .result(let result) = op else { continue }
      guard let found = rows[result.task.rawValue] else {
        answers[position] = .failed(HaatError(.notFound, "task \(result.task) does not exist"))
        continue
      }
      guard let row = found else {
        answers[position] = .failed(HaatError(.internal, "task \(result.task) has an unreadable state"))
        continue
      }
      let (change, write) = TaskSemantics.plan(
        row, .complete(attempt: result.attempt, worker: result.worker), nowMs: nowMs, random: &random)
      switch write {
      case .done: done.append(result)
      case .unchanged: break
      default:
        // The rules give a result only `done` or nothing today; any other write is made
        // as a result alone would make it.
        try await self.write(
          write, task: result.task.rawValue,
          result: StoredResult(partial: result.partial, stats: result.stats, bookmark: "", spawn: nil), on: db,
          nowMs: nowMs)
      }
      answers[position] = .changed(change)
    }
    try await writeDone(done, on: db, nowMs: nowMs)
    try await finish(run, into: &answers, on: db, nowMs: nowMs)
    return answers.map { $0 ?? .failed(HaatError(.internal, "an op of the batch got no answer")) }
  }

  /// The accepted results' rows, as a result alone writes its row (`write(.done…)`): its
  /// partial, its stats, no bookmark.
  private func writeDone(_ done: [PlainResult], on db: PostgresConnection, nowMs: Int64) async throws {
    guard !done.isEmpty else { return }
    var binds = PostgresBindings()
    binds.append(done.map(\.task.rawValue))
    binds.append(done.map { ByteBuffer(bytes: $0.partial) })
    binds.append(done.map { ByteBuffer(bytes: $0.stats) })
    binds.append(nowMs)
    try await db.query(
      PostgresQuery(
        unsafeSQL: """
          UPDATE tasks SET state = 'done', updated_at = $4, partial = u.partial, stats = u.stats, bookmark = ''
          FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS u(id, partial, stats)
          WHERE tasks.id = u.id
          """, binds: binds),
      logger: logger)
  }

  /// The run's job ends, as `finishIfEnded` alone answers them: the jobs read, their rows
  /// locked, their open tasks looked for, the ended ones' outputs read and reduced, and
  /// their ends recorded, each step one statement for all.
  private func finish(
    _ run: [RunOp], into answers: inout [StoreOpResult?], on db: PostgresConnection, nowMs: Int64
  ) async throws {
    var finishes: [(position: Int, job: JobID, ending: JobEnding)] = []
    for (position, op) in run.enumerated() {
      if case .finish(let job, let ending) = op { finishes.append((position, job, ending)) }
    }
    guard !finishes.isEmpty else { return }
    let ids = finishes.map(\.job.rawValue)
    var binds = PostgresBindings()
    binds.append(ids)
    let records = Dictionary(
      try await jobRecords(PostgresQuery(unsafeSQL: StoreSQL.jobColumns + " WHERE id = ANY($1)", binds: binds), on: db)
        .map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    // Locked first, so a concurrent claim or revive cannot slip in between (`hasEnded`).
    let locked = Set(
      try await db.query("SELECT id FROM jobs WHERE id = ANY(\(ids)) ORDER BY id FOR UPDATE", logger: logger)
        .all(decoding: Int64.self))
    let open = Set(
      try await db.query(
        "SELECT DISTINCT job FROM tasks WHERE job = ANY(\(ids)) AND state IN ('ready', 'leased')", logger: logger
      ).all(decoding: Int64.self))
    func ended(_ job: JobID) -> Bool {
      guard let record = records[job] else { return false }
      return !record.state.isFinal && locked.contains(job.rawValue) && !open.contains(job.rawValue)
    }
    // Only the ends still to reduce read their outputs.
    let reading = finishes.filter {
      if case .read = $0.ending { return ended($0.job) }
      return false
    }.map(\.job.rawValue)
    let outputs = reading.isEmpty ? [:] : try await self.outputs(ofJobs: reading, on: db)
    var ends: [(job: Int64, end: JobEnd)] = []
    for finish in finishes {
      guard let record = records[finish.job] else {
        answers[finish.position] = .failed(HaatError(.notFound, "job \(finish.job) does not exist"))
        continue
      }
      let made: JobEnd?
      switch finish.ending {
      case .read(let reduce): made = ended(finish.job) ? reduce((record, outputs[finish.job.rawValue] ?? [])) : nil
      case .reduced(let end): made = ended(finish.job) ? end : nil
      }
      guard let end = made else {
        answers[finish.position] = .finished(finish.job, applied: false)
        continue
      }
      ends.append((finish.job.rawValue, end))
      answers[finish.position] = .ended(finish.job, end)
    }
    guard !ends.isEmpty else { return }
    var writes = PostgresBindings()
    writes.append(ends.map(\.job))
    writes.append(ends.map(\.end.state.rawValue))
    writes.append(ends.map { ByteBuffer(bytes: $0.end.report) })
    writes.append(ends.map(\.end.error))
    writes.append(nowMs)
    // As `record` writes one job's end.
    try await db.query(
      PostgresQuery(
        unsafeSQL: """
          UPDATE jobs SET state = u.state, report = u.report, error = u.error,
            finished_at = CASE WHEN jobs.finished_at > 0 THEN jobs.finished_at ELSE $5 END
          FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::text[]) AS u(id, state, report, error)
          WHERE jobs.id = u.id
          """, binds: writes),
      logger: logger)
  }

  /// Task rows as `transitionColumns` selects them; nil for one that cannot be read.
  func loadRows(_ query: PostgresQuery, on db: PostgresConnection) async throws -> [TaskRow?] {
    try await loadRowsWithIDs(query, on: db).map(\.row)
  }

  /// `loadRows`, each row with its id (which an unreadable row still has).
  func loadRowsWithIDs(_ query: PostgresQuery, on db: PostgresConnection) async throws -> [(
    id: Int64, row: TaskRow?
  )] {
    var loaded: [(id: Int64, row: TaskRow?)] = []
    for try await (id, job, pool, state, attempt, maxAttempts, base, cap, worker) in try await db.query(
      query, logger: logger
    ).decode((Int64, Int64, String, String, Int64, Int64, Int64, Int64, String?).self) {
      guard let pool = Pool(rawValue: pool), let state = TaskState(rawValue: state) else {
        loaded.append((id, nil))
        continue
      }
      loaded.append(
        (
          id,
          TaskRow(
            id: TaskID(id), job: JobID(job), pool: pool,
            status: TaskStatus(
              state: state, attempt: UInt32(clamping: attempt), maxAttempts: UInt32(clamping: maxAttempts),
              owner: worker ?? ""),
            retry: RetryPolicy(baseMs: UInt64(clamping: base), capMs: UInt64(clamping: cap)))
        ))
    }
    return loaded
  }
}
