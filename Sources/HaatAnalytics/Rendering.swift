import Foundation
import HaatProtocol

/// Renders reports for people (aligned tables) and for spreadsheets (CSV).
public enum ReportRendering {
  /// An aligned text table: the engagement rows, the total, and the summary.
  public static func table(_ report: Report) -> String {
    var out = ""
    if report.hasEngagement {
      let header = [
        "platform", "account", "media", "posts", "likes", "comments", "shares", "saves", "reach",
        "impressions", "clicks", "ER reach", "ER impr", "CTR",
      ]
      var rows = report.engagement.rows.map(tableCells)
      rows.append(tableCells(report.engagement.total))
      out += TextTable(header: header, rightAligned: Set(3..<header.count)).render(
        rows, separatorBeforeLast: true)
    }
    let summary = report.summary
    out += "\n\(group(summary.rows)) posts from \(summary.sourcesOk) of \(summary.sources) sources"
    out += ", \(group(summary.badRows)) bad row\(summary.badRows == 1 ? "" : "s")"
    out += ", \(bytes(summary.bytes)) read\n"
    for missing in summary.missing {
      out += "missing: \(missing.source) (task \(missing.task)): \(missing.error.code): \(missing.error.message)\n"
    }
    for error in summary.rowErrors {
      let column = error.column.isEmpty ? "" : " \(error.column)"
      out += "bad row: \(error.source) row \(error.row)\(column): \(error.message)\n"
    }
    if summary.badRows > UInt64(summary.rowErrors.count) {
      out += "(\(summary.badRows - UInt64(summary.rowErrors.count)) more bad rows not listed)\n"
    }
    return out
  }

  /// CSV with a header; rates as decimals, empty where absent. A job without the
  /// engagement report has only the header.
  /// With `escapingFormulas`, a text cell that a spreadsheet would run as a formula (it
  /// starts with = + - @, a tab or a CR) gets a leading `'`; numeric columns never change.
  public static func csv(_ report: Report, escapingFormulas: Bool = false) -> String {
    var out =
      "platform,account,media_type,posts,likes,comments,shares,saves,reach,impressions,clicks,video_views,engagements,engagement_rate_reach,engagement_rate_impressions,ctr\n"
    guard report.hasEngagement else { return out }
    for row in report.engagement.rows + [report.engagement.total] {
      let text = [row.platform, row.account, row.mediaType].map { escapingFormulas ? formulaSafe($0) : $0 }
      let fields: [String] =
        text + [
          String(row.posts), String(row.likes),
          String(row.comments), String(row.shares), String(row.saves), String(row.reach),
          String(row.impressions), String(row.clicks), String(row.videoViews),
          String(row.engagements),
          row.hasEngagementRateReach ? String(row.engagementRateReach) : "",
          row.hasEngagementRateImpressions ? String(row.engagementRateImpressions) : "",
          row.hasCtr ? String(row.ctr) : "",
        ]
      out += fields.map(csvField).joined(separator: ",") + "\n"
    }
    return out
  }

  static func tableCells(_ row: Haat_V1_EngagementRow) -> [String] {
    [
      row.platform, row.account, row.mediaType, group(row.posts), group(row.likes),
      group(row.comments), group(row.shares), group(row.saves), group(row.reach),
      group(row.impressions), group(row.clicks),
      row.hasEngagementRateReach ? percent(row.engagementRateReach) : "–",
      row.hasEngagementRateImpressions ? percent(row.engagementRateImpressions) : "–",
      row.hasCtr ? percent(row.ctr) : "–",
    ]
  }

  /// `'` before a text cell a spreadsheet would take for a formula.
  public static func formulaSafe(_ text: String) -> String {
    guard let first = text.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) else { return text }
    return "'" + text
  }

  static func csvField(_ text: String) -> String {
    guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else {
      return text
    }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
  }

  /// 1234567 → "1,234,567".
  public static func group(_ value: UInt64) -> String {
    let digits = Array(String(value))
    var out = ""
    for (index, digit) in digits.enumerated() {
      if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
      out.append(digit)
    }
    return out
  }

  /// 0.05432 → "5.43%".
  public static func percent(_ ratio: Double) -> String {
    let hundredths = (ratio * 10_000).rounded()
    let whole = Int(hundredths / 100)
    let fraction = Int(abs(hundredths.truncatingRemainder(dividingBy: 100)))
    return "\(whole).\(fraction < 10 ? "0" : "")\(fraction)%"
  }

  /// 1536 → "1.5 KiB".
  public static func bytes(_ count: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(count)
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
      value /= 1024
      unit += 1
    }
    if unit == 0 { return "\(count) B" }
    let tenths = (value * 10).rounded() / 10
    return "\(tenths) \(units[unit])"
  }
}

/// A plain text table with padded columns; width counts characters, so Bengali, Urdu and
/// emoji labels stay aligned as well as a terminal allows.
public struct TextTable: Sendable {
  public var header: [String]
  public var rightAligned: Set<Int>

  public init(header: [String], rightAligned: Set<Int> = []) {
    self.header = header
    self.rightAligned = rightAligned
  }

  public func render(_ rows: [[String]], separatorBeforeLast: Bool = false) -> String {
    var widths = header.map(\.count)
    for row in rows {
      for (index, cell) in row.enumerated() where index < widths.count {
        widths[index] = max(widths[index], cell.count)
      }
    }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { index, cell in
        let pad = String(repeating: " ", count: max(0, widths[index] - cell.count))
        return rightAligned.contains(index) ? pad + cell : cell + pad
      }.joined(separator: "  ").trimmingTrailingSpaces() + "\n"
    }
    let rule = widths.map { String(repeating: "─", count: $0) }.joined(separator: "  ") + "\n"
    var out = line(header) + rule
    for (index, row) in rows.enumerated() {
      if separatorBeforeLast, index == rows.count - 1, rows.count > 1 { out += rule }
      out += line(row)
    }
    return out
  }
}

extension String {
  func trimmingTrailingSpaces() -> String {
    var copy = self
    while copy.last == " " { copy.removeLast() }
    return copy
  }
}
