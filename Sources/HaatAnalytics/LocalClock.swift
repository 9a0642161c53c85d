import Foundation
import HaatRecords

/// An account's wall clock: times read in the source's IANA zone, else as each record
/// wrote them (its own UTC offset). Offsets are cached per quarter hour of UTC time, so a
/// record costs no time zone lookup: today's transitions fall on quarter hours, but older
/// ones do not (Detroit's of 1905 and 1967, Monrovia's of 1972), so a quarter hour whose
/// end has another offset than its start is looked up per record.
struct LocalClock: Sendable, Equatable {
  let zone: TimeZone?
  private var offsets: [Int64: Int64] = [:]

  /// The zone's name for reports, or "offset" when each record's own offset is used (kept:
  /// asked once per record).
  let name: String

  init(timezone: String) {
    zone = timezone.isEmpty ? nil : TimeZone(identifier: timezone)
    // As written: Foundation names UTC "GMT", and GMT+05:45 "GMT+0545".
    name = zone == nil ? "offset" : timezone
  }

  /// Seconds since 1970-01-01 00:00 local time.
  mutating func local(_ time: Values.Timestamp) -> Int64 {
    guard let zone else { return time.epochSeconds + Int64(time.offsetMinutes) * 60 }
    let quarter = time.epochSeconds.floorDivided(by: 900)
    let cached = offsets[quarter]
    if let cached, cached != Self.mixed { return time.epochSeconds + cached }
    func offset(at seconds: Int64) -> Int64 {
      Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(seconds))))
    }
    if cached == Self.mixed { return time.epochSeconds + offset(at: time.epochSeconds) }
    let start = offset(at: quarter * 900)
    if offsets.count > 100_000 { offsets.removeAll(keepingCapacity: true) }
    guard offset(at: quarter * 900 + 899) == start else {
      offsets[quarter] = Self.mixed
      return time.epochSeconds + offset(at: time.epochSeconds)
    }
    offsets[quarter] = start
    return time.epochSeconds + start
  }

  /// Marks a quarter hour with a transition inside it.
  private static let mixed = Int64.min

  /// Hour of week, 0 = Monday 00:00–00:59 … 167 = Sunday 23:00–23:59, of a local time
  /// (1970-01-01 was a Thursday).
  static func hourOfWeek(local seconds: Int64) -> UInt32 {
    let day = seconds.floorDivided(by: 86_400)
    let weekday = ((day + 3) % 7 + 7) % 7
    let hour = (seconds - day * 86_400) / 3_600
    return UInt32(weekday * 24 + hour)
  }

  static let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
}

extension Int64 {
  func floorDivided(by divisor: Int64) -> Int64 {
    let quotient = self / divisor
    return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
  }
}
