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
  /// delay-seconds are ASCII digits (RFC 9110 §10.2.3), or digits with a fraction ("2.0",
  /// as Shopify writes them); a sign, an exponent or hexadecimal is no delay (Swift's
  /// number parsers take `+9`, `1e3` and `0x1p4`).
  public static func retryAfterMs(_ value: String) -> UInt64? {
    let cap = maxRetryAfterMs
    let trimmed = value.trimmingCharacters(in: .whitespaces)
    let bytes = Array(trimmed.utf8)
    func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    let whole = bytes.prefix(while: isDigit)
    if !whole.isEmpty {
      let fraction = bytes.dropFirst(whole.count)
      if fraction.isEmpty {
        // Past seven digits the delay is over the cap (and multiplying could wrap).
        let significant = whole.drop { $0 == 0x30 }
        guard significant.count <= 7 else { return cap }
        let seconds = significant.reduce(UInt64(0)) { $0 * 10 + UInt64($1 - 0x30) }
        return min(seconds * 1000, cap)
      }
      guard fraction.first == 0x2E, fraction.count > 1, fraction.dropFirst().allSatisfy(isDigit),
        let seconds = Double(trimmed), seconds.isFinite
      else { return nil }
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
