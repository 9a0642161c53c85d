import CSQLiteConfig
import Foundation
import GRDB
import HaatCore
import Testing

@testable import HaatStore

/// What only the embedded SQLite store promises: its WAL and its fsyncs.
@Suite struct SQLiteJobStoreTests {
  let tests: StoreHarness
  var path: String { tests.place }

  init() throws { tests = try StoreHarness(.sqlite) }

  func open() throws -> SQLiteJobStore { try SQLiteJobStore(path: path) }

  func submit(_ store: SQLiteJobStore, _ job: NewJob) async throws -> JobID { try await tests.submit(store, job) }

  func job(tasks: Int) -> NewJob { tests.job(tasks: tasks) }

  /// A file's size; 0 when it is not there.
  static func bytes(_ file: String) -> UInt64 {
    (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? UInt64 ?? 0
  }

  /// SQLite's process-wide settings: made before the first store opened, a connection
  /// takes no mutex per statement (GRDB hands it to one thread at a time); the store says
  /// truly whether they were made (the coordinator logs it; ClusterTests checks a fresh
  /// process made them).
  /// Found by a tester: an older Haat opened a store a newer one had migrated, without a
  /// word. It is refused, saying why and what to do.
  @Test func aStoreANewerHaatMigratedIsRefused() throws {
    do { _ = try open() }
    let queue = try DatabaseQueue(path: path)
    try queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
    try queue.close()
    do {
      _ = try open()
      Issue.record("the store was opened")
    } catch {
      #expect("\(error)".contains("migrated by a newer Haat"), "\(error)")
    }
  }

  /// Found by a tester: a store file truncated under a running coordinator still took new
  /// jobs (their commits went to the WAL) into a store no restart could open. The first
  /// read that finds it damaged marks it so, and the coordinator refuses new jobs.
  @Test func aDamagedFileIsNoted() async throws {
    let store = try open()
    let job = try await tests.submit(store, tests.job(tasks: 2_000))
    // Every page in the main file, so that the cut takes pages a read needs.
    _ = try await store.pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
    #expect(store.damage == nil)
    guard truncate(path, 8_192) == 0 else { throw HaatError(.internal, "truncate: \(errno)") }
    await #expect(throws: HaatError.self) { _ = try await store.job(job, tasks: true, nowMs: 2_000) }
    #expect(store.damage?.contains("SQLite error 11") == true, "\(store.damage ?? "none")")
  }

  @Test func connectionsTakeNoMutexWhenTheSettingsWereMade() throws {
    let store = try open()
    let mutex = try store.pool.write { db in sqlite3_db_mutex(db.sqliteConnection) }
    #expect((mutex == nil) == SQLiteJobStore.processSettingsApplied)
  }

  /// Commits never checkpoint (that stalled one commit in a few hundred); the store's own
  /// checkpointer does, so the WAL is reused instead of growing with every write.
  @Test func theWALIsCheckpointedOffTheCommitPath() async throws {
    let store = try open()
    var big = job(tasks: 1)
    big.spec = Data(repeating: UInt8(ascii: "x"), count: 1 << 20)
    let bytes = Self.bytes
    for round in 1...4 {
      for _ in 0..<4 { _ = try await submit(store, big) }
      // The database file grows as a checkpoint copies this round's pages into it (the
      // WAL alone would hold them otherwise): wait for that, at most 10 s.
      let deadline = ContinuousClock.now + .seconds(10)
      while bytes(path) < UInt64(round) * (4 << 20), ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(20))
      }
      #expect(bytes(path) >= UInt64(round) * (4 << 20), "round \(round): nothing was checkpointed")
      // A PASSIVE checkpoint may still be copying the round's last frames when the file has
      // grown; the WAL is reused only once it has copied them all. Give it two more ticks
      // (on a loaded machine the first may be late).
      try await Task.sleep(for: .milliseconds(500))
    }
    let walBytes = bytes(path + "-wal")
    // Four rounds of ~4 MiB each: reused, not grown to 16 MiB.
    #expect(walBytes < 10 << 20)
  }

  /// Under writes that never pause, the WAL is still started over: it does not grow with
  /// every commit for as long as the load lasts (it did: 285 MB in a 200,000-task run).
  @Test func theWALStaysBoundedUnderSteadyWrites() async throws {
    let store = try open()
    var small = job(tasks: 1)
    small.spec = Data(repeating: UInt8(ascii: "x"), count: 16 << 10)
    // Commits back to back, with no pause for a checkpoint to catch up: 128 MiB of specs,
    // over at least two seconds (ten of the checkpointer's ticks), at most twenty.
    let started = ContinuousClock.now
    var written = 0
    while written < 128 << 20 || ContinuousClock.now - started < .seconds(2),
      ContinuousClock.now - started < .seconds(20)
    {
      _ = try await submit(store, small)
      written += small.spec.count
    }
    // Between two starts over the WAL holds what the writer wrote in a checkpoint's tick and
    // run: about 8–35 MB on the hosts measured (it follows the disk's speed). Growing with
    // every commit, it would hold all that was written (128 MiB or more, unless the host is
    // so loaded that the 20 s ran out first; then the WAL is small whatever happens).
    let walBytes = Self.bytes(path + "-wal")
    #expect(
      walBytes < max(UInt64(written / 2), 32 << 20), "the WAL holds \(walBytes) bytes after \(written) bytes of specs")
  }

  /// `--durability full` syncs the WAL at every commit: the writer really is FULL (GRDB
  /// turns it to NORMAL when it sets up WAL; `full` silently meant `normal` until this).
  @Test(arguments: [(Durability.full, 2), (Durability.normal, 1)])
  func theWriterSyncsAsTheDurabilitySays(durability: Durability, level: Int) async throws {
    let store = try SQLiteJobStore(path: path + ".\(durability.rawValue)", durability: durability)
    let writer = try await store.pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
    #expect(writer == level)
  }

  /// Statements' scratch tables live in memory on every connection: with SQLite's default
  /// (a temporary file's pager, set up and torn down by each statement) a one-task claim,
  /// an `UPDATE … RETURNING` over an `IN (subquery)`, took ten times as long.
  @Test func scratchTablesAreInMemoryOnEveryConnection() async throws {
    let store = try SQLiteJobStore(path: path)
    let writer = try await store.pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA temp_store") }
    let reader = try await store.pool.read { try Int.fetchOne($0, sql: "PRAGMA temp_store") }
    #expect(writer == 2)
    #expect(reader == 2)
  }

  /// No index keeps jobs by state: no statement reads one through it (lists page by id,
  /// pruning walks ids oldest first) and every job's insert and change of state paid for it.
  /// A store made before the change loses it when it is opened.
  @Test func jobsCarryNoStateIndex() async throws {
    let store = try SQLiteJobStore(path: path)
    try await store.pool.write { db in
      try db.execute(sql: "CREATE INDEX jobs_state ON jobs (state, id)")
      try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v7-no-jobs-state-index'")
    }
    let reopened = try SQLiteJobStore(path: path)
    let indexes = try await reopened.pool.read {
      try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'")
    }
    #expect(indexes.isEmpty, "\(indexes)")
    let plan = try await reopened.pool.read {
      try Row.fetchAll(
        $0,
        sql: """
          EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE state IN ('succeeded', 'failed', 'partial', 'cancelled')
            AND finished_at > 0 AND finished_at < 5 ORDER BY id LIMIT 10
          """
      ).map { $0["detail"] as String? ?? "" }.joined(separator: "; ")
    }
    #expect(!plan.contains("TEMP B-TREE"), "\(plan)")
  }
  /// Nor tasks by (job, state): every claim and result rewrote two of its entries, while a
  /// job's tasks by state are read once per job (its end) or row by row anyway (counts read
  /// `not_before`); both find the job's rows through `tasks_job_idx`.
  @Test func tasksCarryNoJobStateIndex() async throws {
    let store = try SQLiteJobStore(path: path)
    try await store.pool.write { db in
      try db.execute(sql: "CREATE INDEX tasks_job ON tasks (job, state)")
      try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v8-no-tasks-job-state-index'")
    }
    let reopened = try SQLiteJobStore(path: path)
    let indexes = try await reopened.pool.read {
      try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks'")
    }
    #expect(!indexes.contains("tasks_job"), "\(indexes)")
    for statement in [
      "SELECT count(*) FROM tasks WHERE job = 1 AND state IN ('ready', 'leased')",
      "SELECT state, not_before > 5, count(*) FROM tasks WHERE job = 1 GROUP BY state, not_before > 5",
    ] {
      let plan = try await reopened.pool.read {
        try Row.fetchAll($0, sql: "EXPLAIN QUERY PLAN " + statement).map { $0["detail"] as String? ?? "" }
          .joined(separator: "; ")
      }
      #expect(plan.contains("tasks_job_idx"), "\(statement): \(plan)")
    }
  }
}

/// Submits held until their pool's claim in the same transaction (inserted already leased
/// when nothing else is ready) end as the ops one at a time would: the same results, ids,
/// task states, attempts, workers and job states, over random batches of submits (due or
/// not, with bookmarks or not, of both pools and several priorities), claims (several
/// owners, limits and cut-offs), results and releases, from a queue that has ready and
/// leased tasks or none.
@Suite struct HeldSubmitTests {
  struct Random {
    var state: UInt64
    mutating func next(_ bound: Int) -> Int {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Int((state >> 33) % UInt64(bound))
    }
  }

  static func job(_ random: inout Random, now: Int64) -> NewJob {
    var job = StoreHarness.job(
      tasks: 1 + (random.next(4) == 0 ? random.next(5) : 0), priority: Int32(random.next(3)),
      notBeforeMs: random.next(5) == 0 ? now + 500 : now - Int64(random.next(100)),
      pool: random.next(4) == 0 ? .analyze : .collect)
    if random.next(6) == 0 { job.tasks[0].resumeKey = "key\(random.next(3))" }
    return job
  }

  /// The stored rows, as text, in id order.
  static func rows(_ store: SQLiteJobStore) throws -> [String] {
    try store.pool.read { db in
      let jobs = try Row.fetchAll(db, sql: "SELECT id, state, started_at FROM jobs ORDER BY id").map { "job \($0)" }
      let tasks = try Row.fetchAll(
        db, sql: "SELECT id, job, idx, pool, state, attempt, worker, updated_at FROM tasks ORDER BY id"
      ).map { "task \($0)" }
      return jobs + tasks
    }
  }

  @Test(arguments: 0..<40)
  func aBatchEndsAsItsOpsOneAtATime(seed: Int) async throws {
    var random = Random(state: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
    let now: Int64 = 10_000
    let batched = try SQLiteJobStore(path: try StoreHarness(.sqlite).place)
    let single = try SQLiteJobStore(path: try StoreHarness(.sqlite).place)
    // The queue before: some ready tasks, some leased (or none of either).
    var setup: [StoreOp] = []
    for _ in 0..<random.next(4) { setup.append(.submit(Self.job(&random, now: now - 1_000))) }
    if random.next(2) == 0 { setup.append(.claim(owner: "w0", pool: .collect, limit: random.next(4))) }
    var leased: [ClaimedTask] = []
    for store in [batched, single] {
      let results = try await store.apply(setup, nowMs: now - 1_000)
      leased = results.flatMap { result -> [ClaimedTask] in
        if case .claimed(let tasks) = result { return tasks }
        return []
      }
    }
    var ops: [StoreOp] = []
    for _ in 0..<(2 + random.next(12)) {
      switch random.next(10) {
      case 0...4:
        ops.append(.submit(Self.job(&random, now: now)))
      case 5, 6:
        let due: Int64? = random.next(3) == 0 ? now - 50 : nil
        ops.append(
          .claim(
            owner: "w\(1 + random.next(2))", pool: random.next(4) == 0 ? .analyze : .collect,
            limit: random.next(6), dueMs: due))
      case 7 where !leased.isEmpty:
        let task = leased.removeFirst()
        ops.append(
          .complete(task: task.task, attempt: task.attempt, worker: "w0", partial: Data(), stats: Data(), bookmark: ""))
      case 8 where !leased.isEmpty:
        let task = leased.removeFirst()
        ops.append(.release(task: task.task, attempt: task.attempt))
      default:
        ops.append(.claim(owner: "w1", pool: .collect, limit: 1 + random.next(8)))
      }
    }
    let together = try await batched.apply(ops, nowMs: now).map { "\($0)" }
    var apart: [String] = []
    for op in ops { apart += try await single.apply([op], nowMs: now).map { "\($0)" } }
    #expect(together == apart, "ops: \(ops)")
    #expect(try Self.rows(batched) == Self.rows(single), "ops: \(ops)")
  }

  /// A claim takes held tasks by priority, then in the order they would have been
  /// inserted, and leaves the rest ready, as it would from the ready queue.
  @Test func heldTasksAreClaimedByPriorityThenOrder() async throws {
    let ops: [StoreOp] = [
      .submit(StoreHarness.job(tasks: 2, priority: 0)), .submit(StoreHarness.job(tasks: 1, priority: 2)),
      .submit(StoreHarness.job(tasks: 3, priority: 1)), .claim(owner: "w1", pool: .collect, limit: 3),
      .claim(owner: "w2", pool: .collect, limit: 2),
    ]
    let batched = try SQLiteJobStore(path: try StoreHarness(.sqlite).place)
    let single = try SQLiteJobStore(path: try StoreHarness(.sqlite).place)
    let together = try await batched.apply(ops, nowMs: 5_000)
    var apart: [StoreOpResult] = []
    for op in ops { apart += try await single.apply([op], nowMs: 5_000) }
    #expect(together.map { "\($0)" } == apart.map { "\($0)" })
    #expect(try Self.rows(batched) == Self.rows(single))
    guard case .claimed(let first) = together[3], case .claimed(let second) = together[4] else {
      Issue.record("\(together)")
      return
    }
    // Job 2 (priority 2) and two of job 3 (priority 1) to w1; job 3's last and job 1's first to w2.
    #expect(first.map(\.task.rawValue) == [3, 4, 5] && second.map(\.task.rawValue) == [1, 6])
  }

  /// The case it is for: a 1-task job submitted with a claim in the same commit is stored
  /// leased, attempt 1, its job running, with no claim of a ready row.
  @Test func aJobAndItsClaimInOneCommitAreWrittenLeased() async throws {
    let store = try SQLiteJobStore(path: try StoreHarness(.sqlite).place)
    let results = try await store.apply(
      [.submit(StoreHarness.job(tasks: 1)), .claim(owner: "w1", pool: .collect, limit: 8)], nowMs: 5_000)
    guard case .submitted(let job, 1, _) = results[0], case .claimed(let tasks) = results[1] else {
      Issue.record("\(results)")
      return
    }
    #expect(tasks.map(\.job) == [job] && tasks.map(\.attempt) == [1] && tasks.map(\.startedJob) == [true])
    #expect(
      try Self.rows(store) == [
        "job [id:1 state:\"running\" started_at:5000]",
        "task [id:1 job:1 idx:0 pool:\"collect\" state:\"leased\" attempt:1 worker:\"w1\" updated_at:5000]",
      ])
  }
}
