import Foundation
import HaatCore
import Logging
import PostgresNIO

/// The PostgreSQL store's tables: SQLite's schema (Schema.swift) in PostgreSQL's types.
/// Migrations run under a transaction-scoped advisory lock per schema, so coordinators
/// starting at once on one store migrate it once; like SQLite's, they only ever add.
enum PostgresSchema {
  /// A store a newer Haat migrated: refused, not opened (this version would not know its
  /// tables' new meaning).
  static func newer(_ unknown: String) -> HaatError {
    HaatError(
      .unavailable,
      "the store was migrated by a newer Haat (its migrations table lists \(unknown), which this version does not know); run that version, or restore the backup made before upgrading"
    )
  }

  static let migrations: [(name: String, sql: [String])] = [
    (
      "v1",
      [
        """
        CREATE TABLE jobs (
          id BIGSERIAL PRIMARY KEY,
          name TEXT NOT NULL,
          state TEXT NOT NULL,
          priority BIGINT NOT NULL DEFAULT 0,
          spec BYTEA NOT NULL,
          reports TEXT NOT NULL DEFAULT '',
          created_at BIGINT NOT NULL,
          not_before BIGINT NOT NULL DEFAULT 0,
          started_at BIGINT NOT NULL DEFAULT 0,
          finished_at BIGINT NOT NULL DEFAULT 0,
          max_attempts BIGINT NOT NULL,
          retry_base_ms BIGINT NOT NULL,
          retry_cap_ms BIGINT NOT NULL,
          total_tasks BIGINT NOT NULL,
          cancelled BOOLEAN NOT NULL DEFAULT false,
          submitted_by TEXT NOT NULL DEFAULT '',
          error TEXT NOT NULL DEFAULT '',
          report BYTEA,
          schedule TEXT
        )
        """,
        "CREATE INDEX jobs_state ON jobs (state, id)",
        """
        CREATE TABLE tasks (
          id BIGSERIAL PRIMARY KEY,
          job BIGINT NOT NULL REFERENCES jobs (id),
          idx BIGINT NOT NULL,
          pool TEXT NOT NULL,
          source TEXT NOT NULL,
          state TEXT NOT NULL,
          priority BIGINT NOT NULL,
          not_before BIGINT NOT NULL,
          attempt BIGINT NOT NULL,
          max_attempts BIGINT NOT NULL,
          worker TEXT,
          spec BYTEA NOT NULL,
          partial BYTEA,
          stats BYTEA,
          bookmark TEXT,
          last_error_code TEXT,
          last_error TEXT,
          updated_at BIGINT NOT NULL,
          resume_key TEXT
        )
        """,
        // Claims read this partial index only: ready tasks by pool, best first.
        "CREATE INDEX tasks_ready ON tasks (pool, priority DESC, id) WHERE state = 'ready'",
        "CREATE INDEX tasks_job ON tasks (job, state)",
        "CREATE INDEX tasks_job_idx ON tasks (job, idx)",
        "CREATE INDEX tasks_leased ON tasks (state) WHERE state IN ('leased', 'dead')",
        """
        CREATE TABLE bookmarks (
          key TEXT PRIMARY KEY,
          bookmark TEXT NOT NULL,
          job BIGINT NOT NULL,
          updated_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE schedules (
          name TEXT PRIMARY KEY,
          spec BYTEA NOT NULL,
          every TEXT NOT NULL,
          every_ms BIGINT NOT NULL,
          next_ms BIGINT NOT NULL,
          paused BOOLEAN NOT NULL DEFAULT false,
          runs BIGINT NOT NULL DEFAULT 0,
          last_job BIGINT,
          created_by TEXT NOT NULL,
          created_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE rate_pauses (
          key TEXT PRIMARY KEY,
          until_ms BIGINT NOT NULL,
          worker TEXT NOT NULL,
          reason TEXT NOT NULL
        )
        """,
      ]
    ),
    (
      // A plan task's byte ranges take its place in the queue (Schema.swift "v6-task-places").
      "v2-task-places",
      [
        "ALTER TABLE tasks ADD COLUMN place BIGINT",
        "DROP INDEX tasks_ready",
        "CREATE INDEX tasks_ready ON tasks (pool, priority DESC, (COALESCE(place, id)), id) WHERE state = 'ready'",
      ]
    ),
    // A schedule's first run under its present making (Schema.swift "v9-schedule-first-job").
    ("v3-schedule-first-job", ["ALTER TABLE schedules ADD COLUMN first_job BIGINT"]),
    // The active coordinator's fence: each takeover adds one, and every write transaction
    // checks it holds the number it took (PostgresJobStore.fenced).
    (
      "v4-leader-epoch",
      [
        "CREATE TABLE leader (id INTEGER PRIMARY KEY CHECK (id = 1), epoch BIGINT NOT NULL)",
        "INSERT INTO leader (id, epoch) VALUES (1, 0)",
      ]
    ),
  ]

  /// Creates `schema` and applies the migrations it has not seen, in one transaction.
  static func migrate(_ client: PostgresClient, schema: String, logger: Logger) async throws {
    try await client.withTransaction(logger: logger) { db in
      // One key per schema: coordinators of one store migrate it once, and those of other
      // stores in the same database do not queue behind each other (a test suite starts
      // dozens at once; one key for all made a start wait past 30 s under load).
      let key = PostgresLeadership.lockKey("haat-migrate:\(schema)")
      try await db.query("SELECT pg_advisory_xact_lock(\(key))", logger: logger)
      // `schema` is validated (a-z, 0-9, _) by PostgresLocation: safe to write into the SQL,
      // quoted, so that a keyword (`select`) or a leading digit is a name like any other.
      // CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
      // exists: a role given only a schema made for it could not open the store.
      let exists = try await db.query("SELECT 1 FROM pg_namespace WHERE nspname = \(schema)", logger: logger)
        .first(decoding: Int32.self)
      if exists == nil {
        try await db.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \"\(schema)\""), logger: logger)
      }
      try await db.query(PostgresQuery(unsafeSQL: "SET LOCAL search_path TO \"\(schema)\""), logger: logger)
      try await db.query(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        logger: logger)
      var applied = Set<String>()
      for try await name in try await db.query("SELECT name FROM migrations", logger: logger).decode(String.self) {
        applied.insert(name)
      }
      let known = Set(migrations.map(\.name))
      if let unknown = applied.subtracting(known).sorted().first { throw newer(unknown) }
      for migration in migrations where !applied.contains(migration.name) {
        for statement in migration.sql { try await db.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
        try await db.query("INSERT INTO migrations (name) VALUES (\(migration.name))", logger: logger)
      }
    }
  }
}
