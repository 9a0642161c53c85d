import Foundation
import HaatCore
import HaatProtocol

/// The `best_time` report drawn: a terminal heatmap per account, an SVG of every account's
/// week, and the report's table.
extension BestTimeKernel {
  /// A terminal heatmap of one account's week: a row per day, a column per hour, shaded by
  /// the slot's median (of what the account is ranked by) against the account's best.
  static func heatmap(_ account: Haat_V1_BestTimeAccount) -> [String] {
    let shades = ["░", "▒", "▓", "█"]
    let byRate = account.rankedBy == "median_rate"
    var values = [Double?](repeating: nil, count: 168)
    for slot in account.slots where slot.hour < 168 {
      values[Int(slot.hour)] = byRate ? (slot.hasMedianRate ? slot.medianRate : nil) : slot.medianEngagements
    }
    let best = values.compactMap { $0 }.max() ?? 0
    var lines = [
      "\(account.platform) \(account.account) (\(account.zone), by \(byRate ? "median engagement rate" : "median engagements per post"); · no posts)",
      "     0     6     12    18",
    ]
    for day in 0..<7 {
      var line = days[day] + "  "
      for hour in 0..<24 {
        guard let value = values[day * 24 + hour] else {
          line += "·"
          continue
        }
        let level = best > 0 ? min(shades.count - 1, Int(value / best * Double(shades.count))) : 0
        line += shades[level]
      }
      lines.append(line)
    }
    return lines
  }

  /// Every account's week as a heatmap (a row per day, a column per hour), shaded as the
  /// terminal's, with each slot's posts and median in its tooltip.
  /// With `limit`, the busiest `limit` accounts, and a line saying how many are left out.
  public static func svg(of report: Report, limit: Int?) -> String? {
    guard report.hasBestTime else { return nil }
    let cell = 22
    let left = 44
    let blockHeight = 40 + 7 * cell + 24
    let all = report.bestTime.accounts
    let accounts = limit.map { limit in busiest(all).prefix(limit).map { all[$0] } } ?? all
    let leftOut = all.count - accounts.count
    let width = left + 24 * cell + 20
    let height = max(1, accounts.count) * blockHeight + 10 + (leftOut > 0 ? 24 : 0)
    var svg = [
      #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(width)" height="\#(height)" font-family="sans-serif" font-size="11">"#
    ]
    if accounts.isEmpty { svg.append(#"<text x="10" y="20">no posts</text>"#) }
    if leftOut > 0 {
      svg.append(
        #"<text x="4" y="\#(accounts.count * blockHeight + 24)">the \#(accounts.count) accounts with the most posts; \#(leftOut) more left out (haat result --svg-limit 0 draws them all; every slot is in --format csv or json)</text>"#
      )
    }
    for (index, account) in accounts.enumerated() {
      let top = index * blockHeight
      let byRate = account.rankedBy == "median_rate"
      var values = [Double?](repeating: nil, count: 168)
      var slots = [Haat_V1_BestTimeSlot?](repeating: nil, count: 168)
      for slot in account.slots where slot.hour < 168 {
        values[Int(slot.hour)] = byRate ? (slot.hasMedianRate ? slot.medianRate : nil) : slot.medianEngagements
        slots[Int(slot.hour)] = slot
      }
      let best = values.compactMap { $0 }.max() ?? 0
      let title =
        "\(account.platform) \(account.account) (\(account.zone), by \(byRate ? "median engagement rate" : "median engagements per post"))"
      svg.append(#"<text x="4" y="\#(top + 20)" font-size="13">\#(ReportRendering.xmlEscaped(title))</text>"#)
      for hour in stride(from: 0, to: 24, by: 3) {
        svg.append(#"<text x="\#(left + hour * cell + 2)" y="\#(top + 36)">\#(hour)</text>"#)
      }
      for day in 0..<7 {
        let y = top + 40 + day * cell
        svg.append(#"<text x="4" y="\#(y + 15)">\#(days[day])</text>"#)
        for hour in 0..<24 {
          let x = left + hour * cell
          let at = day * 24 + hour
          guard let value = values[at], let slot = slots[at] else {
            // A slot with posts but no rate (none stated its reach) is unshaded, and says so.
            let tip = slots[at].map {
              "<title>\(ReportRendering.xmlEscaped("\($0.label): \($0.posts) posts, no rate"))</title>"
            }
            svg.append(
              #"<rect x="\#(x)" y="\#(y)" width="\#(cell - 2)" height="\#(cell - 2)" fill="rgb(238,238,238)""#
                + (tip.map { ">\($0)</rect>" } ?? "/>"))
            continue
          }
          let share = best > 0 ? value / best : 0
          let median = byRate ? ReportRendering.percent(value) : String(format: "%.0f", value)
          let tip = "\(slot.label): \(slot.posts) posts, median \(median)"
          svg.append(
            #"<rect x="\#(x)" y="\#(y)" width="\#(cell - 2)" height="\#(cell - 2)" fill="rgb(31,111,235)" fill-opacity="\#(String(format: "%.3f", 0.12 + 0.88 * share))"><title>\#(ReportRendering.xmlEscaped(tip))</title></rect>"#
          )
        }
      }
    }
    svg.append("</svg>")
    return svg.joined(separator: "\n") + "\n"
  }

  /// The accounts' indices, most posts first (ties in the report's order).
  static func busiest(_ accounts: [Haat_V1_BestTimeAccount]) -> [Int] {
    let posts = accounts.map { $0.slots.reduce(UInt64(0)) { $0 &+ $1.posts } }
    return accounts.indices.sorted { posts[$0] != posts[$1] ? posts[$0] > posts[$1] : $0 < $1 }
  }

  public static func table(of report: Report) -> ReportTable? {
    guard report.hasBestTime else { return nil }
    let group = ReportRendering.group
    let percent = ReportRendering.percent
    var rows: [[String]] = []
    var csvRows: [[String]] = []
    var notes: [String] = []
    for account in report.bestTime.accounts {
      if account.recommended.isEmpty {
        rows.append([
          account.platform, account.account, account.zone, "–",
          "no slot has \(report.bestTime.minPosts) posts", "", "", "",
        ])
      }
      for (rank, slot) in account.recommended.enumerated() {
        rows.append([
          account.platform, account.account, account.zone, String(rank + 1), slot.label, group(slot.posts),
          slot.hasMedianRate ? percent(slot.medianRate) : "–",
          // A sketch's median is within 1 %: whole engagements, no false decimals.
          slot.hasMedianEngagements ? group(UInt64(slot.medianEngagements.rounded())) : "–",
        ])
      }
      let ranks = Dictionary(
        account.recommended.enumerated().map { ($0.element.hour, $0.offset + 1) },
        uniquingKeysWith: { first, _ in first })
      for slot in account.slots {
        csvRows.append([
          account.platform, account.account, account.zone, String(slot.hour), slot.label, String(slot.posts),
          String(slot.postsWithRate), slot.hasMedianRate ? String(slot.medianRate) : "",
          slot.hasMedianEngagements ? String(slot.medianEngagements) : "", String(slot.meanEngagements),
          ranks[slot.hour].map(String.init) ?? "",
        ])
      }
    }
    // Heatmaps of the accounts with the most posts; the rest would bury the table. Every
    // slot of every account is in the CSV and JSON.
    let accounts = report.bestTime.accounts
    for index in busiest(accounts).prefix(maxHeatmaps) { notes += [""] + heatmap(accounts[index]) }
    if accounts.count > maxHeatmaps {
      notes += [
        "",
        "(heatmaps of the \(maxHeatmaps) accounts with the most posts; \(accounts.count - maxHeatmaps) more left out; every slot of all \(accounts.count) is in --format csv or json)",
      ]
    }
    return ReportTable(
      columns: ["platform", "account", "zone", "#", "slot", "posts", "median rate", "median eng."],
      rows: rows, numeric: [3, 5, 6, 7], totalLast: false,
      csvColumns: [
        "platform", "account", "zone", "hour", "slot", "posts", "posts_with_rate", "median_rate",
        "median_engagements", "mean_engagements", "recommended",
      ],
      csvRows: csvRows, csvText: [0, 1, 2, 4], notes: notes)
  }
}
