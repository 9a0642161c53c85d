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
