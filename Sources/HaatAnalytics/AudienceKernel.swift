import Foundation
import HaatCore
import HaatProtocol
import HaatRecords

/// The `audience` report: per platform × account, how many distinct customers ordered
/// (orders' customer keys) and how many distinct conversations a customer wrote in
/// (messages' conversation ids, inbound), as HyperLogLog estimates within a stated error,
/// beside the exact counts of orders, guest orders and inbound messages; and the union over
/// every account (a customer of two stores counted once). Docs: docs/reports.md.
public struct AudienceKernel: Sendable, Equatable {
  typealias Key = AccountKey

  struct Cell: Equatable {
    var customers = HyperLogLog()
    var orders: UInt64 = 0
    var guestOrders: UInt64 = 0
    var writers = HyperLogLog()
    var inbound: UInt64 = 0

    mutating func merge(_ other: Cell) -> Bool {
      var sum = EngagementKernel.Checked()
      customers.merge(other.customers)
      writers.merge(other.writers)
      orders = sum.add(orders, other.orders)
      guestOrders = sum.add(guestOrders, other.guestOrders)
      inbound = sum.add(inbound, other.inbound)
      return !sum.overflowed
    }
  }

  private var cells: [Key: Cell] = [:]
  private var overflowed = false

  public init() {}

  /// A 95 % interval's half width, relative: two standard errors.
  public static let errorBound = 2 * HyperLogLog.standardError

  static func row(_ key: Key, _ cell: Cell) -> Haat_V1_AudienceRow {
    var row = Haat_V1_AudienceRow()
    row.platform = key.platform
    row.account = key.account
    row.customers = UInt64(cell.customers.estimate.rounded())
    row.orders = cell.orders
    row.guestOrders = cell.guestOrders
    row.conversations = UInt64(cell.writers.estimate.rounded())
    row.inboundMessages = cell.inbound
    return row
  }
}

extension AudienceKernel: ReportKernel {
  public static let name = "audience"
  public static let summary =
    "per platform × account: distinct customers who ordered and distinct conversations customers wrote in (HyperLogLog, ±1.6 % at 95 %), and their union over all accounts"
  public static let records: Set<RecordType> = [.order, .message]
  /// Attribution answers orders by default; distinct counts are asked for by name.
  public static let defaultFor: Set<RecordType> = [.message]

  public mutating func add(_ record: CanonicalRecord) -> Bool {
    switch record {
    case .order(let order):
      let key = Key(platform: order.platform, account: order.account)
      var one = Cell(orders: 1, guestOrders: order.customer.isEmpty ? 1 : 0)
      if !order.customer.isEmpty { one.customers.add(order.customer) }
      return merge(one, into: key)
    case .message(let message):
      guard message.direction == .inbound else { return true }
      var one = Cell(inbound: 1)
      one.writers.add(message.conversation)
      return merge(one, into: Key(platform: message.platform, account: message.account))
    default:
      return true
    }
  }

  /// Orders and messages feed other reports too: a count past its range marks the kernel
  /// overflowed (its partial says so, and the report fails) rather than refuse the record.
  private mutating func merge(_ one: Cell, into key: Key) -> Bool {
    if !cells[key, default: Cell()].merge(one) { overflowed = true }
    return true
  }

  public mutating func merge(_ other: AudienceKernel) {
    if other.overflowed { overflowed = true }
    for (key, cell) in other.cells where !cells[key, default: Cell()].merge(cell) { overflowed = true }
  }

  public func write(to partial: inout Partial) {
    var message = Haat_V1_AudiencePartial()
    message.cells = cells.keys.sorted().map { key in
      let cell = cells[key] ?? Cell()
      var out = Haat_V1_AudienceCell()
      out.platform = key.platform
      out.account = key.account
      out.customers = cell.customers.message
      out.orders = cell.orders
      out.guestOrders = cell.guestOrders
      out.conversations = cell.writers.message
      out.inboundMessages = cell.inbound
      return out
    }
    message.overflowed = overflowed
    partial.audience = message
  }

  public init?(reading partial: Partial) {
    guard partial.hasAudience else { return nil }
    self.init()
    overflowed = partial.audience.overflowed
    for cell in partial.audience.cells {
      // A sketch that does not read makes the counts unknowable: the report fails.
      guard let customers = HyperLogLog(cell.customers), let writers = HyperLogLog(cell.conversations) else {
        overflowed = true
        continue
      }
      let read = Cell(
        customers: customers, orders: cell.orders, guestOrders: cell.guestOrders, writers: writers,
        inbound: cell.inboundMessages)
      if !cells[Key(platform: cell.platform, account: cell.account), default: Cell()].merge(read) {
        overflowed = true
      }
    }
  }

  public func finish(into report: inout Report) throws(HaatError) {
    let overflow = HaatError(
      .overflow,
      "the audience report's counts pass 18446744073709551615 (2^64 - 1) or a partial's sketch does not read")
    guard !overflowed else { throw overflow }
    var total = Cell()
    var rows: [Haat_V1_AudienceRow] = []
    for key in cells.keys.sorted() {
      let cell = cells[key] ?? Cell()
      guard total.merge(cell) else { throw overflow }
      rows.append(Self.row(key, cell))
    }
    var section = Haat_V1_AudienceReport()
    section.rows = rows
    section.total = Self.row(Key(platform: "all", account: "all"), total)
    section.errorBound = Self.errorBound
    report.audience = section
  }

  public static func table(of report: Report) -> ReportTable? {
    guard report.hasAudience else { return nil }
    let group = ReportRendering.group
    let rows = report.audience.rows + [report.audience.total]
    let bound = String(format: "%.1f", report.audience.errorBound * 100)
    return ReportTable(
      columns: ["platform", "account", "customers ≈", "orders", "guest orders", "conversations ≈", "inbound"],
      rows: rows.map { row in
        [
          row.platform, row.account, group(row.customers), group(row.orders), group(row.guestOrders),
          group(row.conversations), group(row.inboundMessages),
        ]
      },
      numeric: Set(2...6), totalLast: true,
      csvColumns: [
        "platform", "account", "customers", "orders", "guest_orders", "conversations", "inbound_messages",
        "error_bound",
      ],
      csvRows: rows.map { row in
        [
          row.platform, row.account, String(row.customers), String(row.orders), String(row.guestOrders),
          String(row.conversations), String(row.inboundMessages), String(report.audience.errorBound),
        ]
      },
      csvText: [0, 1],
      notes: [
        "≈ distinct counts (HyperLogLog): within ±\(bound) % of the true count 95 % of the time; the all row counts a customer of two accounts once"
      ])
  }
}
