/// When a failed task runs again: exponential backoff with full jitter, capped, never sooner
/// than the worker's `retry_after_ms`.
public struct RetryPolicy: Sendable, Equatable {
  /// The backoff ceiling for the first retry, in milliseconds.
  public var baseMs: UInt64
  /// The largest backoff ceiling, in milliseconds.
  public var capMs: UInt64

  /// The defaults: 1 s, doubling, capped at 5 minutes.
  public static let `default` = RetryPolicy(baseMs: 1_000, capMs: 300_000)

  public init(baseMs: UInt64, capMs: UInt64) {
    self.baseMs = baseMs
    self.capMs = max(capMs, baseMs)
  }

  /// The backoff ceiling after `attempt` attempts (1-based): `min(cap, base × 2^(attempt−1))`.
  public func ceilingMs(afterAttempt attempt: UInt32) -> UInt64 {
    let shift = UInt64(max(attempt, 1) - 1)
    guard shift < 63, baseMs <= (UInt64.max >> shift) else { return capMs }
    return min(capMs, baseMs << shift)
  }

  /// The delay before the next attempt: uniform in `0...ceiling` (full jitter), and at least
  /// `retryAfterMs`.
  public func delayMs<R: RandomNumberGenerator>(
    afterAttempt attempt: UInt32, retryAfterMs: UInt64 = 0, using random: inout R
  ) -> UInt64 {
    let jittered = UInt64.random(in: 0...ceilingMs(afterAttempt: attempt), using: &random)
    return max(jittered, retryAfterMs)
  }
}
