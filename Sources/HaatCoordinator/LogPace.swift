/// How fast one session may ship log lines: a burst of `burst`, then `perSecond`. Past it,
/// the session is not read until its bucket has room again, so TCP holds the rest back on
/// the worker's side: nothing is dropped, and the loops are not spent on them (one worker
/// shipping 115,000 lines a second kept clients' handshakes waiting 5 s: a tester).
struct LogPace {
  static let perSecond = 2_000.0
  static let burst = 10_000.0

  private var tokens = burst
  private var last: UInt64?

  /// Takes one line at monotonic `now` (ns): nil when it fits, else how many
  /// milliseconds the session should go unread.
  mutating func take(now: UInt64) -> Int64? {
    tokens -= 1
    return wait(now: now)
  }

  /// The milliseconds still to wait at `now` for the lines taken so far, or nil: a pause
  /// ends only when the bucket is out of debt, lines a read batch held included.
  mutating func wait(now: UInt64) -> Int64? {
    if let last { tokens = min(Self.burst, tokens + Double(now &- last) / 1e9 * Self.perSecond) }
    last = now
    guard tokens < 0 else { return nil }
    return Int64(-tokens / Self.perSecond * 1_000) + 1
  }
}
