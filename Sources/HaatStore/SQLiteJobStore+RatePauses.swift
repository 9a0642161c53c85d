import GRDB
import HaatCore

/// Rate pauses: kept so a restarted coordinator (or another one) holds a platform's
/// throttling until it ends.
extension SQLiteJobStore {
  /// Keeps `pause` if it ends later than the one stored under its key; drops ended ones.
  func note(_ pause: RatePause, db: Database, nowMs: Int64) throws -> StoreOpResult {
    try db.execute(sql: "DELETE FROM rate_pauses WHERE until_ms <= ?", arguments: [nowMs])
    try db.execute(
      sql: """
        INSERT INTO rate_pauses (key, until_ms, worker, reason) VALUES (?, ?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET until_ms = excluded.until_ms, worker = excluded.worker,
          reason = excluded.reason
        WHERE excluded.until_ms > rate_pauses.until_ms
        """, arguments: [pause.key, pause.untilMs, pause.worker, pause.reason])
    return .noted
  }
}
