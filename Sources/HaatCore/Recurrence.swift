import Foundation

/// How often a schedule runs: every fixed duration ("6h") or at the times a cron expression
/// names ("0 6 * * 1-5", in UTC). Computes the run after a due one; missed runs (a
/// coordinator down for a while) are not made up: the next is the first due after now.
public enum Recurrence: Sendable, Equatable {
  case every(ms: Int64)
  case cron(Cron)

  /// "90m", "6h", "1d", "1h30m" (1 s to 365 d), or a five-field cron expression.
  public init(_ text: String) throws(RecurrenceError) {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if trimmed.contains(" ") {
      self = .cron(try Cron(trimmed))
      return
    }
    guard let ms = DurationText.milliseconds(trimmed), (1_000...365 * 86_400_000).contains(ms) else {
      throw RecurrenceError(
        "must be a duration from 1s to 365d (90m, 6h, 1d) or a cron expression (\"0 6 * * 1\"), not \"\(text)\"")
    }
    self = .every(ms: ms)
  }

  /// The fixed period, if it is one (0 for cron).
  public var everyMs: Int64 {
    if case .every(let ms) = self { return ms }
    return 0
  }

  /// When the run after the one due at `dueMs` is due, seen at `nowMs` (ms since the epoch).
  public func next(dueMs: Int64, nowMs: Int64) -> Int64? {
    switch self {
    case .every(let ms):
      var next = dueMs + ms
      if next <= nowMs { next += ((nowMs - next) / ms + 1) * ms }
      return next
    case .cron(let cron):
      return cron.next(afterMs: max(dueMs, nowMs))
    }
  }
}

public struct RecurrenceError: Error, Sendable, Equatable {
  public var message: String
  public init(_ message: String) { self.message = message }
}

/// A five-field cron expression, in UTC: minute (0–59), hour (0–23), day of month (1–31),
/// month (1–12 or jan–dec), day of week (0–7 or sun–sat; 0 and 7 are Sunday). Each field
/// is `*`, a value, a range `a-b`, a step `*/n` or `a-b/n`, or a list of those. When both
/// day fields are restricted, a day matching either runs (as Vixie cron does).
public struct Cron: Sendable, Equatable {
  public let text: String
  let minutes: Set<Int>
  let hours: Set<Int>
  let days: Set<Int>
  let months: Set<Int>
  let weekdays: Set<Int>
  let anyDay: Bool
  let anyWeekday: Bool

  public init(_ text: String) throws(RecurrenceError) {
    let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    guard fields.count == 5 else {
      throw RecurrenceError(
        "a cron expression has five fields (minute hour day-of-month month day-of-week), not \(fields.count): \"\(text)\""
      )
    }
    self.text = fields.joined(separator: " ")
    let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    minutes = try Self.field(fields[0], "minute", 0...59)
    hours = try Self.field(fields[1], "hour", 0...23)
    days = try Self.field(fields[2], "day of month", 1...31)
    months = try Self.field(fields[3], "month", 1...12, names: monthNames, firstName: 1)
    weekdays = Set(try Self.field(fields[4], "day of week", 0...7, names: dayNames, firstName: 0).map { $0 % 7 })
    anyDay = fields[2] == "*"
    anyWeekday = fields[4] == "*"
  }

  private static func field(
    _ text: String, _ name: String, _ range: ClosedRange<Int>, names: [String] = [], firstName: Int = 0
  ) throws(RecurrenceError) -> Set<Int> {
    func value(_ part: Substring) throws(RecurrenceError) -> Int {
      if let number = Int(part), range.contains(number) { return number }
      if let index = names.firstIndex(of: part.lowercased()) { return index + firstName }
      throw RecurrenceError("the \(name) field's \"\(part)\" is not in \(range.lowerBound)–\(range.upperBound)")
    }
    var values = Set<Int>()
    for item in text.split(separator: ",", omittingEmptySubsequences: false) {
      let pieces = item.split(separator: "/", omittingEmptySubsequences: false)
      guard pieces.count <= 2, !pieces[0].isEmpty else {
        throw RecurrenceError("the \(name) field's \"\(item)\" is not a value, range or step")
      }
      var step = 1
      if pieces.count == 2 {
        guard let number = Int(pieces[1]), number >= 1 else {
          throw RecurrenceError("the \(name) field's step \"\(pieces[1])\" is not a whole number from 1")
        }
        step = number
      }
      let low: Int
      let high: Int
      if pieces[0] == "*" {
        (low, high) = (range.lowerBound, range.upperBound)
      } else if let dash = pieces[0].firstIndex(of: "-") {
        low = try value(pieces[0][..<dash])
        high = try value(pieces[0][pieces[0].index(after: dash)...])
        guard low <= high else { throw RecurrenceError("the \(name) field's range \"\(pieces[0])\" runs backwards") }
      } else {
        low = try value(pieces[0])
        high = pieces.count == 2 ? range.upperBound : low
      }
      values.formUnion(stride(from: low, through: high, by: step))
    }
    return values
  }

  /// The first minute strictly after `afterMs` (ms since the epoch) the expression names, in
  /// ms; nil if none within five years (e.g. "0 0 31 2 *").
  public func next(afterMs: Int64) -> Int64? {
    let afterMinute = afterMs >= 0 ? afterMs / 60_000 : (afterMs - 59_999) / 60_000
    let startDay = Int(afterMinute / 1_440)
    for day in startDay...(startDay + 5 * 366) {
      let (_, month, dayOfMonth) = CivilDate.of(day: day)
      guard months.contains(month) else { continue }
      let weekday = ((day % 7) + 11) % 7  // 1970-01-01 was a Thursday (4)
      let dayMatches: Bool
      switch (anyDay, anyWeekday) {
      case (true, true): dayMatches = true
      case (false, true): dayMatches = days.contains(dayOfMonth)
      case (true, false): dayMatches = weekdays.contains(weekday)
      case (false, false): dayMatches = days.contains(dayOfMonth) || weekdays.contains(weekday)
      }
      guard dayMatches else { continue }
      for hour in hours.sorted() {
        for minute in minutes.sorted() {
          let at = Int64(day) * 1_440 + Int64(hour * 60 + minute)
          if at > afterMinute { return at * 60_000 }
        }
      }
    }
    return nil
  }

}

/// Calendar dates of day numbers (days since 1970-01-01, proleptic Gregorian).
public enum CivilDate {
  /// Year, month, day of a day number (Howard Hinnant's `civil_from_days`).
  public static func of(day number: Int) -> (year: Int, month: Int, day: Int) {
    let z = number + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthIndex = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
    let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
  }
}
