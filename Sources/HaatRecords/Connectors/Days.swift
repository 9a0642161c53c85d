import Foundation
import HaatCore
import HaatProtocol

/// Whole days as numbers (days since 1970-01-01) and back, and a source's days
/// (`since`/`until`) as date windows.
public enum Days {
  /// The longest span a source may ask for: about three years of daily reports.
  public static let maxSpan = 1_100

  /// Today's day number, by the UTC calendar.
  public static func today() -> Int {
    Int((Date().timeIntervalSince1970 / 86_400).rounded(.down))
  }

  /// The source's last day: `until`, or today (UTC) when it names none, so a recurring
  /// job's runs each read through the day they run.
  static func until(_ source: Source) -> Int? {
    source.until.isEmpty ? today() : number(source.until)
  }

  /// Checks a source's `since` and `until` (which may be left out: through today).
  public static func check(_ source: Source, field: String) throws(HaatError) {
    // Said apart: a since left out, and a day that is not one (2026-02-30, 01/02/2026).
    guard !source.since.isEmpty else {
      throw HaatError(
        .badSpec, "is required for a source of kind \(source.kind): the first day to collect, YYYY-MM-DD",
        field: "\(field).since")
    }
    guard let since = number(source.since) else {
      throw HaatError(
        .badSpec,
        "\"\(DisplayText.escape(String(source.since.prefix(32))))\" is not a day: the first day to collect, YYYY-MM-DD",
        field: "\(field).since")
    }
    guard let until = until(source) else {
      throw HaatError(
        .badSpec,
        "\"\(DisplayText.escape(String(source.until.prefix(32))))\" is not a day: the last day to collect, YYYY-MM-DD (or left out: through today)",
        field: "\(field).until")
    }
    guard since <= until else {
      let last = source.until.isEmpty ? "today, \(text(until))" : source.until
      throw HaatError(.badSpec, "(\(last)) is before since (\(source.since))", field: "\(field).until")
    }
    guard until - since < maxSpan else {
      throw HaatError(.badSpec, "spans more than \(maxSpan) days; split the source", field: "\(field).until")
    }
  }

  /// How many windows of at most `days` the source's days make.
  public static func windowCount(_ source: Source, days: Int) -> Int {
    guard let since = number(source.since), let until = until(source), since <= until else { return 1 }
    return (until - since) / days + 1
  }

  /// Shapes task `part` of a by-day source: window `part` of its days, each `days` long but
  /// the last, and the source's last day written out (a source that names none reads
  /// through today: the day the job is planned).
  public static func plan(_ task: inout TaskSpec, part: Int, of source: Source, days: Int) {
    guard let since = number(source.since), let until = until(source) else { return }
    let start = since + part * days
    var window = DateWindow()
    window.start = text(start)
    window.end = text(min(until, start + days - 1))
    task.window = window
    task.source.until = text(until)
  }

  /// The task's window, or the source's whole span when it has none.
  static func window(of task: TaskSpec) -> DateWindow {
    if task.hasWindow { return task.window }
    var whole = DateWindow()
    whole.start = task.source.since
    whole.end = task.source.until
    return whole
  }

  /// "YYYY-MM-DD" → its day number; nil if it is not a real date.
  public static func number(_ text: String) -> Int? {
    let parts = text.split(separator: "-", omittingEmptySubsequences: false)
    guard text.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
      let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]), year >= 1970,
      (1...12).contains(month), day >= 1, day <= Values.daysIn(month: month, year: year)
    else { return nil }
    return Values.daysFromCivil(year: year, month: month, day: day)
  }

  /// A day number → "YYYY-MM-DD".
  public static func text(_ number: Int) -> String {
    let (year, month, day) = CivilDate.of(day: number)
    // Zero-padded as formats.md writes dates: years 0001–9999 (a review can be older than 1970).
    func padded(_ value: Int, _ width: Int) -> String {
      let digits = String(value)
      return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    return "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))"
  }
}

/// The days one task of a by-day kind reads. Ad platforms revise their recent days after
/// the fact (late conversions are attributed back to the day of the click), so a run of an
/// incremental source reads again every day of its window that is newer than the bookmark
/// (never read) or inside the platform's lookback window before the run's last day (read,
/// but since revised); the rest an earlier run read for good. What it reads is its
/// coverage: the `ads` report lays it over the earlier runs' figures for those days.
public struct DayReading: Sendable, Equatable {
  /// The days to ask for; nil when the task has none left to read.
  public let days: DateWindow?

  /// Whether `day` ("YYYY-MM-DD") is one of the days asked for.
  public func asked(_ day: String) -> Bool {
    guard let days else { return false }
    return days.start <= day && day <= days.end
  }
  private let previous: String
  private let platform: String
  private let account: String

  /// `lookbackDays`: how many days before the run's last day, that day included, the
  /// platform may still change.
  public init(task: TaskSpec, lookbackDays: Int) {
    let window = Days.window(of: task)
    previous = task.bookmark
    platform = task.source.platform
    account = task.source.account
    guard let start = Days.number(window.start), let end = Days.number(window.end) else {
      days = window
      return
    }
    var first = start
    if let read = Days.number(task.bookmark) {
      let until = Days.number(task.source.until) ?? end
      first = max(start, min(read + 1, until - lookbackDays + 1))
    }
    guard first <= end else {
      days = nil
      return
    }
    var narrowed = window
    narrowed.start = Days.text(first)
    days = narrowed
  }

  /// Where the next run starts: the last day read (the bookmark it had, when it read none).
  public var bookmark: String { days?.end ?? previous }

  /// The days read in full, once the task succeeds.
  public var coverage: DayCoverage? {
    guard let days, let first = Days.number(days.start), let last = Days.number(days.end) else { return nil }
    return DayCoverage(platform: platform, account: account, days: first...last)
  }
}
