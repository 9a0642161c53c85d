import Foundation
import Testing

@testable import HaatCore

/// Milliseconds of a UTC time written "YYYY-MM-DD HH:MM".
private func ms(_ text: String) -> Int64 {
  let formatter = DateFormatter()
  formatter.locale = Locale(identifier: "en_US_POSIX")
  formatter.timeZone = TimeZone(identifier: "UTC")
  formatter.dateFormat = "yyyy-MM-dd HH:mm"
  return Int64((formatter.date(from: text)?.timeIntervalSince1970 ?? 0) * 1000)
}

@Suite("Recurrence")
struct RecurrenceTests {
  @Test("cron: the next minute the expression names, strictly after the time given")
  func cronNext() throws {
    let cases: [(String, String, String)] = [
      ("0 6 * * *", "2026-11-30 05:59", "2026-11-30 06:00"),
      ("0 6 * * *", "2026-11-30 06:00", "2026-12-01 06:00"),
      ("*/15 * * * *", "2026-11-30 10:07", "2026-11-30 10:15"),
      ("0 9 * * mon-fri", "2026-11-28 12:00", "2026-11-30 09:00"),  // a Saturday → Monday
      ("30 23 31 12 *", "2026-06-01 00:00", "2026-12-31 23:30"),
      ("0 0 29 feb *", "2026-03-01 00:00", "2028-02-29 00:00"),  // the next leap day
      ("0 12 1 * 0", "2026-11-30 13:00", "2026-12-01 12:00"),  // day 1 OR Sunday: Tuesday the 1st
      ("0 12 15 * 7", "2026-12-02 00:00", "2026-12-06 12:00"),  // 7 is Sunday too
      ("5,35 8-10/2 * jan,dec *", "2026-12-31 10:35", "2027-01-01 08:05"),
    ]
    for (expression, after, expected) in cases {
      let cron = try Cron(expression)
      #expect(cron.next(afterMs: ms(after)) == ms(expected), "\(expression) after \(after)")
    }
    #expect(try Cron("0 0 31 2 *").next(afterMs: ms("2026-01-01 00:00")) == nil)
  }

  @Test("cron: a malformed expression is refused, saying which field and why")
  func cronRefusals() {
    for (bad, says) in [
      ("0 6 * *", "five fields"), ("60 * * * *", "minute"), ("* 24 * * *", "hour"), ("* * 0 * *", "day of month"),
      ("* * * 13 *", "month"), ("* * * * 8", "day of week"), ("*/0 * * * *", "step"), ("5-1 * * * *", "backwards"),
      ("* * * foo *", "month"), ("1,,2 * * * *", "minute"),
    ] {
      #expect(performing: { _ = try Cron(bad) }, throws: { ($0 as? RecurrenceError)?.message.contains(says) == true })
    }
  }

  @Test("every: fixed periods, and missed runs not made up")
  func everyNext() throws {
    let hourly = try Recurrence("1h")
    #expect(hourly == .every(ms: 3_600_000))
    #expect(hourly.next(dueMs: 1_000, nowMs: 2_000) == 3_601_000)
    let late: Int64? = hourly.next(dueMs: 1_000, nowMs: 36_000_000)
    #expect(late == 36_001_000, "\(String(describing: late))")
    #expect(try Recurrence("1h30m").everyMs == 5_400_000)
    // Each unit once, largest first: `1h1h` was two hours and `30m1h` ninety minutes.
    for slip in ["1h1h", "30m1h", "1s1s", "1s1m"] { #expect(throws: RecurrenceError.self) { try Recurrence(slip) } }
    #expect(DurationText.milliseconds("1d2h3m4s") == 93_784_000)
    for bad in ["0s", "366d", "6x", "", "h"] {
      #expect(throws: RecurrenceError.self, "\(bad)") { try Recurrence(bad) }
    }
    let weekdays = try Recurrence("0 9 * * 1-5")
    #expect(weekdays.everyMs == 0)
    // Missed runs of a cron schedule: the next is the first after now.
    #expect(weekdays.next(dueMs: ms("2026-11-02 09:00"), nowMs: ms("2026-11-30 10:00")) == ms("2026-12-01 09:00"))
  }
}
