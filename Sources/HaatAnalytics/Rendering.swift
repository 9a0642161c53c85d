import Foundation
import HaatCore
import HaatProtocol

/// Renders reports for people (aligned tables) and for spreadsheets (CSV).
public enum ReportRendering {
  /// Report tables are laid out to read on a terminal this wide (wider ones in panels).
  public static let terminalWidth = 100

  /// Aligned text tables: each report's section (`ReportKernel.table`), or only the one
  /// named, then the summary.
  public static func table(_ report: Report, only name: String? = nil) -> String {
    var out = ""
    for kernel in Reports.all where name == nil || kernel.name == name {
      guard let table = kernel.table(of: report) else { continue }
      if !out.isEmpty { out += "\n" }
      out += TextTable(header: table.columns, rightAligned: table.numeric).render(
        table.rows, separatorBeforeLast: table.totalLast, maxWidth: Self.terminalWidth)
      for line in table.notes { out += wrapped(line, width: Self.terminalWidth) }
    }
    let summary = report.summary
    out += "\n\(group(summary.rows)) records from \(summary.sourcesOk) of \(summary.sources) sources"
    out += ", \(group(summary.badRows)) bad row\(summary.badRows == 1 ? "" : "s")"
    out += ", \(bytes(summary.bytes)) read\n"
    // One line each, whatever a source's name, URL or error holds (a line break in a URL
    // printed as one split the line, and a reader took its second half for another line).
    let shown = { (text: String) in DisplayText.escape(text) }
    for missing in summary.missing {
      out +=
        "missing: \(shown(missing.source)) (task \(missing.task)): \(shown(missing.error.code)): \(shown(missing.error.message))\n"
    }
    for error in summary.rowErrors {
      let column = error.column.isEmpty ? "" : " \(shown(error.column))"
      // A note's record was kept: it is not one of the bad rows counted above.
      out +=
        "\(error.note ? "note" : "bad row"): \(shown(error.source)) row \(error.row)\(column): \(shown(error.message))\n"
    }
    let listed = UInt64(summary.rowErrors.filter { !$0.note }.count)
    if summary.badRows > listed {
      out += "(\(summary.badRows - listed) more bad rows not listed)\n"
    }
    return out
  }

  /// A note as lines of at most `width` characters, broken at spaces, later lines indented
  /// by two (a word longer than a line stays whole); each line ends in a newline.
  static func wrapped(_ note: String, width: Int) -> String {
    // Escaped before it is measured: an escape is what the terminal shows (a tester's
    // `\u{202E}` made wrapped lines 112 columns wide).
    let note = DisplayText.escape(note)
    guard DisplayText.width(note) > width else { return note + "\n" }
    var out = ""
    var line = ""
    for word in note.split(separator: " ", omittingEmptySubsequences: false) {
      if !line.isEmpty, DisplayText.width(line) + 1 + DisplayText.width(String(word)) > width {
        out += line + "\n"
        line = "  "
      }
      line += (line.isEmpty || line == "  " ? "" : " ") + word
    }
    return out + line + "\n"
  }

  /// CSV with a header: the section of `report` named (by default the first the report
  /// has); rates as decimals, empty where absent. A report without it is the bare header
  /// of the first report of this build.
  /// With `escapingFormulas`, a text cell that a spreadsheet would run as a formula (it
  /// starts with = + - @, a tab or a CR) gets a leading `'`; numeric columns never change.
  public static func csv(_ report: Report, named name: String? = nil, escapingFormulas: Bool = false) -> String {
    let kernels = name.flatMap { Reports.kernel(named: $0) }.map { [$0] } ?? Reports.all
    guard let table = kernels.lazy.compactMap({ $0.table(of: report) }).first else {
      let header = kernels.first.flatMap { $0.table(of: Self.emptyReport(for: $0)) }?.csvColumns ?? []
      return header.joined(separator: ",") + "\n"
    }
    var out = table.csvColumns.joined(separator: ",") + "\n"
    for row in table.csvRows {
      let cells = row.enumerated().map { index, cell in
        escapingFormulas && table.csvText.contains(index) ? formulaSafe(cell) : cell
      }
      out += cells.map(csvField).joined(separator: ",") + "\n"
    }
    return out
  }

  /// A report with `kernel`'s empty section (for its header alone).
  static func emptyReport(for kernel: any ReportKernel.Type) -> Report {
    var report = Report()
    try? kernel.init().finish(into: &report)
    return report
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
  /// A sign is kept below one percent (−0.005 → "-0.50%"); a ratio past what hundredths in
  /// an Int hold (a partial may claim any count) is written with an exponent, never trapped.
  public static func percent(_ ratio: Double) -> String {
    let hundredths = (abs(ratio) * 10_000).rounded()
    guard hundredths < 1e15 else { return ratio.isNaN ? "nan%" : String(format: "%.3g%%", ratio * 100) }
    let whole = Int(hundredths / 100)
    let fraction = Int(hundredths.truncatingRemainder(dividingBy: 100))
    return "\(ratio < 0 && hundredths > 0 ? "-" : "")\(whole).\(fraction < 10 ? "0" : "")\(fraction)%"
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

/// A plain text table with padded columns; width counts terminal columns
/// (`DisplayText.width`), so CJK, Bengali, Urdu and emoji labels stay aligned as well as a
/// terminal allows.
public struct TextTable: Sendable {
  public var header: [String]
  public var rightAligned: Set<Int>

  public init(header: [String], rightAligned: Set<Int> = []) {
    self.header = header
    self.rightAligned = rightAligned
  }

  public func render(_ rows: [[String]], separatorBeforeLast: Bool = false) -> String {
    let rows = Self.visible(rows)
    return render(rows, columns: Array(header.indices), widths: widths(rows), separatorBeforeLast: separatorBeforeLast)
  }

  /// Cells with their control characters, line breaks included, made visible: a cell is
  /// one line of the table, whoever wrote it (a worker's host, an account name).
  static func visible(_ rows: [[String]]) -> [[String]] {
    rows.map { $0.map { DisplayText.escape($0) } }
  }

  /// The same, in panels no wider than `maxWidth` characters: when the whole table is
  /// wider, its leading left-aligned columns (the keys: platform, account, …) repeat in
  /// each panel, and the other columns are packed, in order, into as few panels as fit.
  public func render(_ rows: [[String]], separatorBeforeLast: Bool = false, maxWidth: Int) -> String {
    // A key (a name: platform, account, campaign) wider than a third of the line is cut,
    // marked "…": a 146-character account name made every panel 171 columns wide (a
    // tester's). CSV and JSON have it whole.
    let keyLimit = max(12, maxWidth / 3)
    var cut = false
    let rows = Self.visible(rows).map { row in
      row.enumerated().map { index, cell in
        guard !rightAligned.contains(index), DisplayText.width(cell) > keyLimit else { return cell }
        cut = true
        return Self.truncated(cell, to: keyLimit)
      }
    }
    let note = cut ? "(names over \(keyLimit) columns are cut, marked …; --format csv or json has them whole)\n" : ""
    return render(cut: rows, separatorBeforeLast: separatorBeforeLast, maxWidth: maxWidth) + note
  }

  /// `text` cut to at most `columns` terminal columns, its last one "…".
  static func truncated(_ text: String, to columns: Int) -> String {
    var out = ""
    var used = 0
    for character in text {
      let width = DisplayText.width(String(character))
      if used + width > columns - 1 { break }
      out.append(character)
      used += width
    }
    return out + "…"
  }

  private func render(cut rows: [[String]], separatorBeforeLast: Bool, maxWidth: Int) -> String {
    let widths = widths(rows)
    func width(_ columns: [Int]) -> Int { columns.reduce(0) { $0 + widths[$1] } + 2 * max(0, columns.count - 1) }
    guard width(Array(header.indices)) > maxWidth else {
      return render(rows, columns: Array(header.indices), widths: widths, separatorBeforeLast: separatorBeforeLast)
    }
    let keys = Array(header.indices.prefix { !rightAligned.contains($0) })
    var panels: [[Int]] = []
    for column in header.indices.dropFirst(keys.count) {
      if let last = panels.last, width(keys + last + [column]) <= maxWidth {
        panels[panels.count - 1].append(column)
      } else {
        panels.append([column])
      }
    }
    return panels.map {
      render(rows, columns: keys + $0, widths: widths, separatorBeforeLast: separatorBeforeLast)
    }.joined(separator: "\n")
  }

  private func widths(_ rows: [[String]]) -> [Int] {
    var widths = header.map(DisplayText.width)
    for row in rows {
      for (index, cell) in row.enumerated() where index < widths.count {
        widths[index] = max(widths[index], DisplayText.width(cell))
      }
    }
    return widths
  }

  private func render(_ rows: [[String]], columns: [Int], widths: [Int], separatorBeforeLast: Bool) -> String {
    func line(_ cells: [String]) -> String {
      columns.map { index in
        let cell = index < cells.count ? cells[index] : ""
        let pad = String(repeating: " ", count: max(0, widths[index] - DisplayText.width(cell)))
        return rightAligned.contains(index) ? pad + cell : cell + pad
      }.joined(separator: "  ").trimmingTrailingSpaces() + "\n"
    }
    let rule = columns.map { String(repeating: "─", count: widths[$0]) }.joined(separator: "  ") + "\n"
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

extension ReportRendering {
  /// Text for an SVG document: &, <, >, " and ' as entities, and control and format
  /// characters shown as a terminal shows them (`\t`, `\u{202E}`): a bidi override in an
  /// account name read a tester's heading backwards, and a tab was dropped without a mark.
  public static func xmlEscaped(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&apos;"
      default:
        if DisplayText.isUnsafe(scalar) || scalar.properties.generalCategory == .control {
          out += DisplayText.escape(String(scalar))
          continue
        }
        out.unicodeScalars.append(scalar)
      }
    }
    return out
  }
}
