import Foundation
import HaatCore
import NIOCore
import PostgresNIO

/// Results in a row of a batch, applied together: a worker's results arrive in bursts and
/// the group commit gathers them, but each one alone cost two round trips to the server
/// (its row locked and read, then written), most of the coordinator's CPU per task on
/// PostgreSQL (perf: postgres-nio's per-query work). Together they are one `SELECT … FOR
/// UPDATE` and one `UPDATE … FROM unnest(…)`, and each result gets the answer it would
/// have got alone (`TaskSemantics`, in the batch's order).
extension PostgresJobStore {
  /// One result of a run: its task, the lease it answers for, and what it carries.
  struct PlainResult {
    var task: TaskID
    var attempt: UInt32
    var worker: String
    var partial: Data
    var stats: Data
  }

  /// The results at the front of `ops` that may be applied together: plain ones (no
  /// bookmark to keep, no tasks to spawn), each for a task no earlier one of the run names
  /// (a second answer for a task must see the first's).
  static func resultRun(_ ops: ArraySlice<StoreOp>) -> [PlainResult] {
    var run: [PlainResult] = []
    var tasks = Set<TaskID>()
    for op in ops {
      guard case .complete(let task, let attempt, let worker, let partial, let stats, let bookmark, let spawn) = op,
        bookmark.isEmpty, spawn == nil, tasks.insert(task).inserted
      else { break }
      run.append(PlainResult(task: task, attempt: attempt, worker: worker, partial: partial, stats: stats))
    }
    return run
  }

  /// Applies a run of results: what each would give applied alone, in order.
  func complete(
    _ run: [PlainResult], on db: PostgresConnection, nowMs: Int64, random: inout StoreRandom
  ) async throws -> [StoreOpResult] {
    var binds = PostgresBindings()
    binds.append(run.map(\.task.rawValue))
    // Locked in id order, as any other batch locks them, whatever order the results came in.
    let loaded = try await loadRowsWithIDs(
      PostgresQuery(
        unsafeSQL: Self.transitionColumns + " WHERE t.id = ANY($1) ORDER BY t.id FOR UPDATE OF t", binds: binds),
      on: db)
    let rows = Dictionary(loaded.map { ($0.id, $0.row) }, uniquingKeysWith: { first, _ in first })
    var results: [StoreOpResult] = []
    results.reserveCapacity(run.count)
    var done: [PlainResult] = []
    for result in run {
      guard let found = rows[result.task.rawValue] else {
        results.append(.failed(HaatError(.notFound, "task \(result.task) does not exist")))
        continue
      }
      guard let row = found else {
        results.append(.failed(HaatError(.internal, "task \(result.task) has an unreadable state")))
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
      results.append(.changed(change))
    }
    if !done.isEmpty {
      var writes = PostgresBindings()
      writes.append(done.map(\.task.rawValue))
      writes.append(done.map { ByteBuffer(bytes: $0.partial) })
      writes.append(done.map { ByteBuffer(bytes: $0.stats) })
      writes.append(nowMs)
      // As a result alone writes its row (`write(.done…)`): its partial, stats, no bookmark.
      try await db.query(
        PostgresQuery(
          unsafeSQL: """
            UPDATE tasks SET state = 'done', updated_at = $4, partial = u.partial, stats = u.stats, bookmark = ''
            FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS u(id, partial, stats)
            WHERE tasks.id = u.id
            """, binds: writes),
        logger: logger)
    }
    return results
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
