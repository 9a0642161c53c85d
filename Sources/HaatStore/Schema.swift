import GRDB
import HaatCore

/// The store's tables. Migrations only ever add; even so, a store a newer Haat migrated is
/// refused by an older one (`migrate`), as nothing checks that every older version would
/// write it rightly.
enum Schema {
  /// Applies the migrations the store has not seen. A store a newer Haat migrated is
  /// refused, not opened: this version would not know its tables' new meaning (a
  /// downgrade is a restore from the backup made before the upgrade).
  static func migrate(_ pool: DatabasePool) throws {
    let known = Set(migrator.migrations)
    let applied = try pool.read { try migrator.appliedIdentifiers($0) }
    if let unknown = applied.subtracting(known).sorted().first {
      throw HaatError(
        .unavailable,
        "the store was migrated by a newer Haat (grdb_migrations lists \(unknown), which this version does not know); run that version, or restore the backup made before upgrading"
      )
    }
    try migrator.migrate(pool)
  }

  static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1") { db in
      try db.execute(
        sql: """
          CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            state TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0,
            spec BLOB NOT NULL,
            reports TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL,
            not_before INTEGER NOT NULL DEFAULT 0,
            started_at INTEGER NOT NULL DEFAULT 0,
            finished_at INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            retry_base_ms INTEGER NOT NULL,
            retry_cap_ms INTEGER NOT NULL,
            total_tasks INTEGER NOT NULL,
            cancelled INTEGER NOT NULL DEFAULT 0,
            submitted_by TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            report BLOB
          );
          CREATE INDEX jobs_state ON jobs (state, id);

          CREATE TABLE tasks (
            id INTEGER PRIMARY KEY,
            job INTEGER NOT NULL REFERENCES jobs (id),
            idx INTEGER NOT NULL,
            pool TEXT NOT NULL,
            source TEXT NOT NULL,
            state TEXT NOT NULL,
            priority INTEGER NOT NULL,
            not_before INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            worker TEXT,
            spec BLOB NOT NULL,
            partial BLOB,
            stats BLOB,
            bookmark TEXT,
            last_error_code TEXT,
            last_error TEXT,
            updated_at INTEGER NOT NULL
          );
          -- Claims read this partial index only: ready tasks by pool, best first.
          CREATE INDEX tasks_ready ON tasks (pool, priority DESC, id) WHERE state = 'ready';
          CREATE INDEX tasks_job ON tasks (job, state);
          CREATE INDEX tasks_leased ON tasks (state) WHERE state IN ('leased', 'dead');
          """)
    }
    // Pages of a job's tasks (get_job with tasks) seek to their cursor instead of sorting
    // the whole job for every page.
    migrator.registerMigration("v2-task-pages") { db in
      try db.execute(sql: "CREATE INDEX tasks_job_idx ON tasks (job, idx)")
    }
    // Incremental sources: a task of one carries its source's resume key, and each accepted
    // result's bookmark is kept by key for the source's next run.
    migrator.registerMigration("v3-bookmarks") { db in
      try db.execute(
        sql: """
          ALTER TABLE tasks ADD COLUMN resume_key TEXT;
          CREATE TABLE bookmarks (
            key TEXT PRIMARY KEY,
            bookmark TEXT NOT NULL,
            job INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
          );
          """)
    }
    // Recurring jobs: schedules, and the schedule each run belongs to.
    migrator.registerMigration("v4-schedules") { db in
      try db.execute(
        sql: """
          CREATE TABLE schedules (
            name TEXT PRIMARY KEY,
            spec BLOB NOT NULL,
            every TEXT NOT NULL,
            every_ms INTEGER NOT NULL,
            next_ms INTEGER NOT NULL,
            paused INTEGER NOT NULL DEFAULT 0,
            runs INTEGER NOT NULL DEFAULT 0,
            last_job INTEGER,
            created_by TEXT NOT NULL,
            created_at INTEGER NOT NULL
          );
          ALTER TABLE jobs ADD COLUMN schedule TEXT;
          """)
    }
    // A platform's throttling outlives a coordinator restart (and, with a shared store, is
    // seen by every coordinator).
    migrator.registerMigration("v5-rate-pauses") { db in
      try db.execute(
        sql: """
          CREATE TABLE rate_pauses (
            key TEXT PRIMARY KEY,
            until_ms INTEGER NOT NULL,
            worker TEXT NOT NULL,
            reason TEXT NOT NULL
          );
          """)
    }
    // A task's place in its priority's queue, when it is not its id: a plan task's byte
    // ranges take the plan task's place (they are its work, split), instead of queueing
    // behind every task submitted before the plan ran. Claims read the index in that order.
    migrator.registerMigration("v6-task-places") { db in
      try db.execute(
        sql: """
          ALTER TABLE tasks ADD COLUMN place INTEGER;
          DROP INDEX tasks_ready;
          CREATE INDEX tasks_ready ON tasks (pool, priority DESC, IFNULL(place, id), id) WHERE state = 'ready';
          """)
    }
    // No statement reads jobs by state through an index worth its upkeep (lists page by id;
    // pruning walks ids oldest first), while every job's insert and each change of its state
    // rewrote an entry: a 1-task job paid three index writes for nothing.
    migrator.registerMigration("v7-no-jobs-state-index") { db in
      try db.execute(sql: "DROP INDEX IF EXISTS jobs_state")
    }
    // The same for tasks by (job, state): every claim and every result rewrote two of its
    // entries, yet the statements that select a job's tasks by state run once per job (its
    // end) or read each row anyway (counts need `not_before`), and find them through
    // `tasks_job_idx`.
    migrator.registerMigration("v8-no-tasks-job-state-index") { db in
      try db.execute(sql: "DROP INDEX IF EXISTS tasks_job")
    }
    // A schedule's first run under its present making (made, or replaced): runs before it
    // are another schedule's, whose bookmarks and report this one does not take.
    migrator.registerMigration("v9-schedule-first-job") { db in
      try db.execute(sql: "ALTER TABLE schedules ADD COLUMN first_job INTEGER")
    }
    return migrator
  }
}
