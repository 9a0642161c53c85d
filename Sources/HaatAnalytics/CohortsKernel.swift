import Foundation
import HaatCore
import HaatProtocol
import HaatRecords

/// The `cohorts` report: customers grouped by the store-local month of their first order and
/// the channel that order came by, and the share of each cohort that ordered again in each
/// of the next twelve months (docs/reports.md). Built on the `Customers` keyed map, which
/// merges exactly, so any split of the orders over tasks gives the same report.
public struct CohortsKernel: Sendable {
  /// Months after the cohort's that a row follows.
  static let months = 12

  private var customers = Customers()

  public init() {}

  public init(context: ReportContext) {
    customers = Customers(timezone: context.timezone)
  }

  struct Row: Hashable, Comparable {
    var platform: String
    var account: String
    var cohort: Int64
    var channel: String

    static func < (lhs: Row, rhs: Row) -> Bool {
      for (left, right) in [(lhs.platform, rhs.platform), (lhs.account, rhs.account)] where left != right {
        return left.utf8.lexicographicallyPrecedes(right.utf8)
      }
      if lhs.cohort != rhs.cohort { return lhs.cohort < rhs.cohort }
      // "all" after the channels.
      if (lhs.channel == "all") != (rhs.channel == "all") { return rhs.channel == "all" }
      return lhs.channel.utf8.lexicographicallyPrecedes(rhs.channel.utf8)
    }
  }
}

extension CohortsKernel: ReportKernel {
  public static let name = "cohorts"
  public static let summary =
    "customers by the month of their first order and its channel, and the share who ordered again in each of the next 12 months"
  public static let records: Set<RecordType> = [.order]
  /// A map with a cell per customer: a job gets it when it names it.
  public static let defaultFor: Set<RecordType> = []

  public mutating func add(_ record: CanonicalRecord) -> Bool {
    if case .order(let order) = record { customers.add(order) }
    return true
  }

  public mutating func merge(_ other: CohortsKernel) { customers.merge(other.customers) }

  public func write(to partial: inout Partial) { partial.cohorts = customers.message }

  public init?(reading partial: Partial) {
    guard partial.hasCohorts else { return nil }
    customers = Customers(partial.cohorts)
  }

  public func finish(into report: inout Report) throws(HaatError) {
    if let refusal = customers.refusal(Self.name) {
      throw HaatError(customers.tooMany ? .tooLarge : .overflow, refusal)
    }
    // The last month each account's data reaches: later months are not known yet.
    var lastMonth: [AccountKey: Int64] = [:]
    for (key, customer) in customers.customers {
      guard let last = customer.days.keys.max() else { continue }
      let account = AccountKey(platform: key.platform, account: key.account)
      lastMonth[account] = max(lastMonth[account] ?? .min, Customers.monthIndex(last))
    }
    var rows: [Row: (customers: UInt64, active: [UInt64])] = [:]
    for (key, customer) in customers.customers {
      guard let first = customer.days.keys.min() else { continue }
      let cohort = Customers.monthIndex(first)
      let months = Set(customer.days.keys.map(Customers.monthIndex))
      for channel in [customer.firstChannel, "all"] {
        let row = Row(platform: key.platform, account: key.account, cohort: cohort, channel: channel)
        var entry = rows[row] ?? (0, [UInt64](repeating: 0, count: Self.months))
        entry.customers += 1
        for k in 1...Self.months where months.contains(cohort + Int64(k)) { entry.active[k - 1] += 1 }
        rows[row] = entry
      }
    }
    var section = Haat_V1_CohortsReport()
    section.months = UInt32(Self.months)
    section.rows = rows.keys.sorted().map { key in
      let entry = rows[key] ?? (0, [])
      let reach = (lastMonth[AccountKey(platform: key.platform, account: key.account)] ?? key.cohort) - key.cohort
      let known = Int(max(0, min(Int64(Self.months), reach)))
      var row = Haat_V1_CohortsRow()
      row.platform = key.platform
      row.account = key.account
      row.cohort = Customers.monthName(key.cohort)
      row.channel = key.channel
      row.customers = entry.customers
      row.active = Array(entry.active.prefix(known))
      row.share = row.active.map { Double($0) / Double(entry.customers) }
      return row
    }
    report.cohorts = section
  }

  public static func table(of report: Report) -> ReportTable? {
    guard report.hasCohorts else { return nil }
    let shown = [1, 2, 3, 6, 12]
    let rows = report.cohorts.rows.map { row in
      [row.platform, row.account, row.cohort, row.channel, ReportRendering.group(row.customers)]
        + shown.map { k in k <= row.share.count ? ReportRendering.percent(row.share[k - 1]) : "" }
    }
    let months = Int(report.cohorts.months)
    let csvRows = report.cohorts.rows.map { row in
      [row.platform, row.account, row.cohort, row.channel, String(row.customers)]
        + (0..<months).map { $0 < row.active.count ? String(row.active[$0]) : "" }
        + (0..<months).map { $0 < row.share.count ? String(row.share[$0]) : "" }
    }
    return ReportTable(
      columns: ["platform", "account", "cohort", "channel", "customers"] + shown.map { "month \($0)" },
      rows: rows, numeric: Set(4..<(5 + shown.count)), totalLast: false,
      csvColumns: ["platform", "account", "cohort", "channel", "customers"]
        + (1...max(1, months)).map { "active_\($0)" } + (1...max(1, months)).map { "share_\($0)" },
      csvRows: csvRows, csvText: [0, 1, 2, 3],
      notes: report.cohorts.rows.isEmpty
        ? []
        : [
          "",
          "month k: the share of the cohort with an order in the k-th month after its first (blank: not reached yet)",
        ])
  }
}
