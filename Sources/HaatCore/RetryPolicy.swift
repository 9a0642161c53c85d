import Foundation

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

  /// The longest wait a worker's `retry_after_ms` may ask for: a platform's Retry-After is
  /// capped at an hour too, and a larger value would park the task for days.
  public static let maxRetryAfterMs: UInt64 = 3_600_000

  /// The delay before the next attempt: uniform in `0...ceiling` (full jitter), and at least
  /// `retryAfterMs` (at most an hour of it).
  public func delayMs<R: RandomNumberGenerator>(
    afterAttempt attempt: UInt32, retryAfterMs: UInt64 = 0, using random: inout R
  ) -> UInt64 {
    let jittered = UInt64.random(in: 0...ceilingMs(afterAttempt: attempt), using: &random)
    return max(jittered, min(retryAfterMs, Self.maxRetryAfterMs))
  }

  /// Retry-After as delay-seconds or an HTTP-date, in milliseconds (at most an hour).
  public static func retryAfterMs(_ value: String) -> UInt64? {
    let cap = maxRetryAfterMs
    let trimmed = value.trimmingCharacters(in: .whitespaces)
    if let seconds = UInt64(trimmed) {
      return min(seconds.multipliedReportingOverflow(by: 1000).partialValue, cap)
    }
    // Fractional seconds ("2.0"), as Shopify writes them.
    if let seconds = Double(trimmed), seconds.isFinite, seconds >= 0, trimmed.first?.isNumber == true {
      return min(UInt64(min(seconds * 1000, Double(cap)).rounded(.up)), cap)
    }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "GMT")
    formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
    guard let date = formatter.date(from: value) else { return nil }
    let delay = date.timeIntervalSinceNow
    return delay <= 0 ? 0 : min(UInt64(delay * 1000), cap)
  }
}
