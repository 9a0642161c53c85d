import Foundation
import HaatCore
import HaatProtocol
import HaatRecords

/// The `ads` report: spend, impressions, clicks and conversions per platform × account ×
/// day × campaign, finished into CPM, CPC, CTR, CPA and the platform's claimed ROAS per
/// campaign, and the weekly cost per platform (docs/reports.md). Sums are exact (money as
/// decimals) and merge by addition. Each task also says which days of its account it read
/// in full (`cover`): a later run of a recurring job that reads a day again, because the
/// platform revises its recent days, replaces that day's figures instead of adding to them
/// (`overlay`).
public struct AdsKernel: Sendable, Equatable {
  typealias Account = AccountKey

  struct Key: Hashable, Comparable {
    var account: Account
    var day: Int
    var campaign: String

    static func < (lhs: Key, rhs: Key) -> Bool {
      if lhs.account != rhs.account { return lhs.account < rhs.account }
      if lhs.day != rhs.day { return lhs.day < rhs.day }
      return lhs.campaign.utf8.lexicographicallyPrecedes(rhs.campaign.utf8)
    }
  }

  struct Sums: Equatable {
    var rows: UInt64 = 0
    var rowsIncomplete: UInt64 = 0
    var spend = Decimal.zero
    var impressions: UInt64 = 0
    var clicks: UInt64 = 0
    var conversions: UInt64 = 0
    var rowsWithConversions: UInt64 = 0
    /// The spend and conversions of the rows that state both (CPA's numerator and
    /// denominator, paired row by row: a row of unknown spend would make CPA look free).
    var conversionsSpend = Decimal.zero
    var conversionsWithSpend: UInt64 = 0
    var claimedRevenue = Decimal.zero
    var claimedSpend = Decimal.zero

    /// Adds another's sums; false when a count passes UInt64.max or a decimal its range.
    mutating func merge(_ other: Sums) -> Bool {
      var sum = EngagementKernel.Checked()
      rows = sum.add(rows, other.rows)
      rowsIncomplete = sum.add(rowsIncomplete, other.rowsIncomplete)
      impressions = sum.add(impressions, other.impressions)
      clicks = sum.add(clicks, other.clicks)
      conversions = sum.add(conversions, other.conversions)
      rowsWithConversions = sum.add(rowsWithConversions, other.rowsWithConversions)
      conversionsWithSpend = sum.add(conversionsWithSpend, other.conversionsWithSpend)
      // Exact or refused: Decimal's `+` rounds past 38 digits without a word.
      guard let spend = Money.exactSum(spend, other.spend),
        let conversionsSpend = Money.exactSum(conversionsSpend, other.conversionsSpend),
        let claimedRevenue = Money.exactSum(claimedRevenue, other.claimedRevenue),
        let claimedSpend = Money.exactSum(claimedSpend, other.claimedSpend)
      else { return false }
      (self.spend, self.conversionsSpend, self.claimedRevenue, self.claimedSpend) = (
        spend, conversionsSpend, claimedRevenue, claimedSpend
      )
      return !sum.overflowed && !spend.isNaN && !conversionsSpend.isNaN && !claimedRevenue.isNaN
        && !claimedSpend.isNaN
    }
  }

  private var cells: [Key: Sums] = [:]
  /// The days each account was read in full, as sorted, disjoint, non-adjacent ranges.
  private var coverage: [Account: [ClosedRange<Int>]] = [:]
  private var overflowed = false

  public init() {}

  /// The insight's cell and its one-row sums; nil when its day does not read (every
  /// connector checks it, so such a row has no cell to go to).
  static func one(_ insight: AdInsightRecord) -> (Key, Sums)? {
    guard let day = Days.number(insight.date) else { return nil }
    var one = Sums()
    one.rows = 1
    if insight.spend == nil || insight.impressions == nil || insight.clicks == nil { one.rowsIncomplete = 1 }
    let spend = insight.spend ?? .zero
    one.spend = spend
    one.impressions = insight.impressions ?? 0
    one.clicks = insight.clicks ?? 0
    if let conversions = insight.conversions {
      one.conversions = conversions
      one.rowsWithConversions = 1
      if let stated = insight.spend {
        one.conversionsSpend = stated
        one.conversionsWithSpend = conversions
      }
    }
    if let roas = insight.claimedRoas, let stated = insight.spend {
      // Exact or refused, as a sum is: a product past 38 digits would be rounded.
      guard let product = Money.exactProduct(roas, stated) else { return nil }
      one.claimedRevenue = product
      one.claimedSpend = stated
    }
    let key = Key(
      account: Account(platform: insight.platform, account: insight.account), day: day, campaign: insight.campaign)
    return (key, one)
  }

  mutating func add(_ insight: AdInsightRecord) -> Bool {
    guard let (key, one) = Self.one(insight) else { return false }
    var next = cells[key] ?? Sums()
    guard next.merge(one) else { return false }
    cells[key] = next
    return true
  }

  /// Adds days to an account's coverage, keeping its ranges sorted and disjoint.
  private mutating func cover(_ account: Account, _ days: ClosedRange<Int>) {
    var merged = days
    var kept: [ClosedRange<Int>] = []
    for range in coverage[account] ?? [] {
      if range.upperBound + 1 < merged.lowerBound || merged.upperBound + 1 < range.lowerBound {
        kept.append(range)
      } else {
        merged = min(range.lowerBound, merged.lowerBound)...max(range.upperBound, merged.upperBound)
      }
    }
    kept.append(merged)
    coverage[account] = kept.sorted { $0.lowerBound < $1.lowerBound }
  }

  private func covers(_ account: Account, _ day: Int) -> Bool {
    coverage[account]?.contains { $0.contains(day) } ?? false
  }

  /// Spend, claimed revenue and the spend it is claimed for, per platform (lower case),
  /// over every cell; nil when a sum leaves its range.
  func spendByPlatform() -> [String: (spend: Decimal, claimedRevenue: Decimal, claimedSpend: Decimal)]? {
    guard !overflowed else { return nil }
    var platforms: [String: Sums] = [:]
    for (key, sums) in cells where !platforms[key.account.platform.lowercased(), default: Sums()].merge(sums) {
      return nil
    }
    return platforms.mapValues { ($0.spend, $0.claimedRevenue, $0.claimedSpend) }
  }

  /// Monday of the week of a day number (1970-01-01 was a Thursday).
  static func monday(of day: Int) -> Int {
    day - ((day + 3) % 7 + 7) % 7
  }

  static func row(_ account: Account, campaign: String, _ sums: Sums) -> Haat_V1_AdsRow {
    var row = Haat_V1_AdsRow()
    row.platform = account.platform
    row.account = account.account
    row.campaign = campaign
    row.rows = sums.rows
    row.rowsIncomplete = sums.rowsIncomplete
    row.spend = Money.text(sums.spend)
    row.impressions = sums.impressions
    row.clicks = sums.clicks
    row.conversions = sums.conversions
    row.claimedRevenue = Money.text(sums.claimedRevenue)
    let spend = Money.double(sums.spend)
    if sums.impressions > 0 {
      row.cpm = spend / Double(sums.impressions) * 1_000
      row.ctr = Double(sums.clicks) / Double(sums.impressions)
    }
    if sums.clicks > 0 { row.cpc = spend / Double(sums.clicks) }
    if sums.conversionsWithSpend > 0 {
      row.cpa = Money.double(sums.conversionsSpend) / Double(sums.conversionsWithSpend)
    }
    if !sums.claimedSpend.isZero {
      row.claimedRoas = Money.double(sums.claimedRevenue) / Money.double(sums.claimedSpend)
    }
    return row
  }
}

extension AdsKernel: ReportKernel {
  public static let name = "ads"
  public static let summary =
    "per platform × campaign: spend, impressions, clicks, conversions, CPM, CPC, CTR, CPA and the platform's claimed ROAS; weekly cost per platform"
  public static let records: Set<RecordType> = [.adInsight]

  public mutating func add(_ record: CanonicalRecord) -> Bool {
    guard case .adInsight(let insight) = record else { return true }
    return add(insight)
  }

  /// Whether the row fits its cell (attribution reads ad insights too: a row this report
  /// refuses must be in neither).
  public func accepts(_ record: CanonicalRecord) -> Bool {
    guard case .adInsight(let insight) = record else { return true }
    guard let (key, one) = Self.one(insight) else { return false }
    var next = cells[key] ?? Sums()
    return next.merge(one)
  }

  public mutating func merge(_ other: AdsKernel) {
    if other.overflowed { overflowed = true }
    for (key, sums) in other.cells where !cells[key, default: Sums()].merge(sums) { overflowed = true }
    for (account, ranges) in other.coverage {
      for range in ranges { cover(account, range) }
    }
  }

  public mutating func overlay(_ newer: AdsKernel) {
    // The later run read these days again: what it found replaces what was found before.
    cells = cells.filter { key, _ in !newer.covers(key.account, key.day) }
    merge(newer)
  }

  public mutating func cover(_ coverage: DayCoverage) {
    cover(Account(platform: coverage.platform, account: coverage.account), coverage.days)
  }

  public func write(to partial: inout Partial) {
    var message = Haat_V1_AdsPartial()
    message.cells = cells.keys.sorted().map { key in
      let sums = cells[key] ?? Sums()
      var cell = Haat_V1_AdsCell()
      cell.platform = key.account.platform
      cell.account = key.account.account
      cell.day = Days.text(key.day)
      cell.campaign = key.campaign
      cell.rows = sums.rows
      cell.rowsIncomplete = sums.rowsIncomplete
      cell.spend = Money.text(sums.spend)
      cell.impressions = sums.impressions
      cell.clicks = sums.clicks
      cell.conversions = sums.conversions
      cell.rowsWithConversions = sums.rowsWithConversions
      cell.conversionsSpend = Money.text(sums.conversionsSpend)
      cell.conversionsWithSpend = sums.conversionsWithSpend
      cell.claimedRevenue = Money.text(sums.claimedRevenue)
      cell.claimedSpend = Money.text(sums.claimedSpend)
      return cell
    }
    message.coverage = coverage.keys.sorted().flatMap { account in
      (coverage[account] ?? []).map { range in
        var covered = Haat_V1_AdsCoverage()
        covered.platform = account.platform
        covered.account = account.account
        covered.first = Days.text(range.lowerBound)
        covered.last = Days.text(range.upperBound)
        return covered
      }
    }
    partial.ads = message
  }

  public init?(reading partial: Partial) {
    guard partial.hasAds else { return nil }
    self.init()
    for cell in partial.ads.cells {
      // A cell that does not read (a day or an amount that is not one) makes the sums
      // unknowable: reported as an error, never left out unseen.
      guard let day = Days.number(cell.day), let spend = Money.decimal(cell.spend),
        let conversionsSpend = Money.decimal(cell.conversionsSpend),
        let claimedRevenue = Money.decimal(cell.claimedRevenue), let claimedSpend = Money.decimal(cell.claimedSpend)
      else {
        overflowed = true
        continue
      }
      let sums = Sums(
        rows: cell.rows, rowsIncomplete: cell.rowsIncomplete, spend: spend, impressions: cell.impressions,
        clicks: cell.clicks, conversions: cell.conversions, rowsWithConversions: cell.rowsWithConversions,
        conversionsSpend: conversionsSpend, conversionsWithSpend: cell.conversionsWithSpend,
        claimedRevenue: claimedRevenue, claimedSpend: claimedSpend)
      let key = Key(
        account: Account(platform: cell.platform, account: cell.account), day: day, campaign: cell.campaign)
      if !cells[key, default: Sums()].merge(sums) { overflowed = true }
    }
    for covered in partial.ads.coverage {
      guard let first = Days.number(covered.first), let last = Days.number(covered.last), first <= last else {
        continue
      }
      cover(Account(platform: covered.platform, account: covered.account), first...last)
    }
  }

  public func finish(into report: inout Report) throws(HaatError) {
    guard !overflowed else {
      throw HaatError(
        .overflow,
        "the ads report's sums pass their range (counts 2^64 - 1, amounts 38 digits) or a partial's amount or day does not read"
      )
    }
    struct Campaign: Hashable, Comparable {
      var account: Account
      var campaign: String
      static func < (lhs: Campaign, rhs: Campaign) -> Bool {
        if lhs.account != rhs.account { return lhs.account < rhs.account }
        return lhs.campaign.utf8.lexicographicallyPrecedes(rhs.campaign.utf8)
      }
    }
    struct Week: Hashable, Comparable {
      var platform: String
      var monday: Int
      static func < (lhs: Week, rhs: Week) -> Bool {
        if lhs.platform != rhs.platform { return lhs.platform.utf8.lexicographicallyPrecedes(rhs.platform.utf8) }
        return lhs.monday < rhs.monday
      }
    }
    var campaigns: [Campaign: Sums] = [:]
    var weeks: [Week: Sums] = [:]
    var total = Sums()
    var first = Int.max
    var last = Int.min
    let overflow = HaatError(.overflow, "the ads report's sums pass their range (counts 2^64 - 1, amounts 38 digits)")
    for (key, sums) in cells {
      guard campaigns[Campaign(account: key.account, campaign: key.campaign), default: Sums()].merge(sums),
        weeks[Week(platform: key.account.platform, monday: Self.monday(of: key.day)), default: Sums()].merge(sums),
        total.merge(sums)
      else { throw overflow }
      first = min(first, key.day)
      last = max(last, key.day)
    }
    var section = Haat_V1_AdsReport()
    section.rows = campaigns.keys.sorted().map { Self.row($0.account, campaign: $0.campaign, campaigns[$0] ?? Sums()) }
    section.total = Self.row(Account(platform: "all", account: "all"), campaign: "all", total)
    section.weeks = weeks.keys.sorted().map { week in
      let sums = weeks[week] ?? Sums()
      var row = Haat_V1_AdsWeek()
      row.platform = week.platform
      row.week = Days.text(week.monday)
      row.spend = Money.text(sums.spend)
      row.impressions = sums.impressions
      row.clicks = sums.clicks
      let spend = Money.double(sums.spend)
      if sums.impressions > 0 { row.cpm = spend / Double(sums.impressions) * 1_000 }
      if sums.clicks > 0 { row.cpc = spend / Double(sums.clicks) }
      return row
    }
    if first <= last {
      section.first = Days.text(first)
      section.last = Days.text(last)
    }
    report.ads = section
  }

  public static func table(of report: Report) -> ReportTable? {
    guard report.hasAds else { return nil }
    let rows = report.ads.rows + [report.ads.total]
    let group = ReportRendering.group
    let percent = ReportRendering.percent
    func number(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
    // `incompl.` beside the rates: a row of unknown spend adds nothing to `spend`, so a
    // campaign of such rows would otherwise read as free.
    let columns = [
      "platform", "campaign", "spend", "impressions", "clicks", "conv.", "incompl.", "CPM", "CPC", "CTR", "CPA",
      "claimed ROAS",
    ]
    return ReportTable(
      columns: columns,
      rows: rows.map { row in
        [
          row.platform, row.campaign, Money.display(row.spend), group(row.impressions), group(row.clicks),
          group(row.conversions), group(row.rowsIncomplete),
          row.hasCpm ? number(row.cpm, 2) : "–", row.hasCpc ? number(row.cpc, 2) : "–",
          row.hasCtr ? percent(row.ctr) : "–", row.hasCpa ? number(row.cpa, 2) : "–",
          row.hasClaimedRoas ? number(row.claimedRoas, 2) : "–",
        ]
      },
      numeric: Set(2..<columns.count), totalLast: true,
      csvColumns: [
        "platform", "account", "campaign", "rows", "rows_incomplete", "spend", "impressions", "clicks", "conversions",
        "cpm", "cpc", "ctr", "cpa", "claimed_roas", "claimed_revenue",
      ],
      csvRows: rows.map { row in
        [
          row.platform, row.account, row.campaign, String(row.rows), String(row.rowsIncomplete), row.spend,
          String(row.impressions), String(row.clicks), String(row.conversions),
          row.hasCpm ? String(row.cpm) : "", row.hasCpc ? String(row.cpc) : "",
          row.hasCtr ? String(row.ctr) : "", row.hasCpa ? String(row.cpa) : "",
          row.hasClaimedRoas ? String(row.claimedRoas) : "", row.claimedRevenue,
        ]
      },
      csvText: [0, 1, 2])
  }
}
