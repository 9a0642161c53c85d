import HaatCore

/// A business's opening hours in its own time zone, as a source writes them:
/// `"Sat-Thu 10:00-20:00"`, or several parts, `"Mon-Fri 09:00-17:30; Sat 10:00-14:00"`.
/// Days are Mon…Sun (a range may wrap past Sunday); times are HH:MM, the end after the
/// start (24:00 allowed as an end), the end itself outside.
public struct BusinessHours: Sendable, Equatable {
  /// Per weekday (Monday 0), the open minutes of the day as half-open ranges.
  let open: [[Range<Int>]]

  /// The hours a source states; nil when its text states none (empty, or only spaces, tabs
  /// and separators).
  public static func stated(_ text: String) throws(HaatError) -> BusinessHours? {
    parts(text).isEmpty ? nil : try BusinessHours(text)
  }

  /// The text's parts, each split into its fields: empty parts and runs of spaces and tabs
  /// are passed over.
  private static func parts(_ text: String) -> [[Substring]] {
    text.split(whereSeparator: { $0 == ";" || $0 == "," }).map {
      $0.split(whereSeparator: { $0 == " " || $0 == "\t" })
    }.filter { !$0.isEmpty }
  }

  public init(_ text: String) throws(HaatError) {
    var open = [[Range<Int>]](repeating: [], count: 7)
    let parts = Self.parts(text)
    guard !parts.isEmpty else { throw Self.bad(text, because: "it names no days and times") }
    for fields in parts {
      let part = fields.joined(separator: " ")
      guard fields.count == 2 else {
        throw Self.bad(
          text,
          because:
            "the part \"\(part)\" is not days then times, with a space between (\";\" and \",\" both separate parts)")
      }
      let dayNames = fields[0].split(separator: "-", omittingEmptySubsequences: false)
      let days = dayNames.map { LocalClock.days.firstIndex(of: String($0)) }
      guard (1...2).contains(days.count), let first = days.first ?? nil, let last = days.last ?? nil else {
        throw Self.bad(
          text,
          because:
            "\"\(fields[0])\" is not a day or a range of days: write Mon, Tue, Wed, Thu, Fri, Sat or Sun, as written here, or two joined by \"-\""
        )
      }
      let times = fields[1].split(separator: "-", omittingEmptySubsequences: false).map { Self.minutes(String($0)) }
      guard times.count == 2, let start = times[0], let end = times[1] else {
        throw Self.bad(text, because: "\"\(fields[1])\" is not a time range HH:MM-HH:MM (24-hour, two digits each)")
      }
      guard start < end else {
        throw Self.bad(
          text,
          because: start == end
            ? "\"\(fields[1])\" opens for no time: the end must be after the start"
            : "\"\(fields[1])\" ends before it starts: a range does not pass midnight, so write a late shift as two parts (\"Fri 20:00-24:00; Sat 00:00-02:00\")"
        )
      }
      var day = first
      while true {
        open[day].append(start..<end)
        if day == last { break }
        day = (day + 1) % 7
      }
    }
    self.open = open
  }

  static func bad(_ text: String, because reason: String) -> HaatError {
    HaatError(
      .badSpec,
      "is not business hours: \"\(DisplayText.escape(String(text.prefix(80))))\": \(DisplayText.escape(String(reason.prefix(240)))); write days and times such as \"Sat-Thu 10:00-20:00\" or \"Mon-Fri 09:00-17:30; Sat 10:00-14:00\""
    )
  }

  /// "HH:MM" → minutes since midnight (24:00 is 1440); nil if it is not one.
  static func minutes(_ text: String) -> Int? {
    let parts = text.split(separator: ":")
    guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hours = Int(parts[0]),
      let minutes = Int(parts[1]), (0...24).contains(hours), (0..<60).contains(minutes),
      hours < 24 || minutes == 0
    else { return nil }
    return hours * 60 + minutes
  }

  /// Whether a local time (seconds since 1970-01-01 00:00 local) is inside the hours.
  func contains(local seconds: Int64) -> Bool {
    let day = seconds.floorDivided(by: 86_400)
    let weekday = Int(((day + 3) % 7 + 7) % 7)
    let minute = Int((seconds - day * 86_400) / 60)
    return open[weekday].contains { $0.contains(minute) }
  }
}
