import Foundation
import HaatCore
import HaatProtocol
import HaatRecords

/// A keyed map of customers (per platform × account × currency × customer id): when they
/// first ordered and by which channel, how many orders, and the revenue of each store-local
/// day they ordered on. It is what cohorts and lifetime value need (recency, frequency and
/// monetary value per customer) and it merges exactly: days are a union, their revenues
/// and the order counts add, and the first order is the earliest. The coordinator holds it
/// in memory up to `maxCustomers` per job; past that the report says so and stops
/// growing (docs/architecture.md designs the second reduce stage by key hash beyond it).
struct Customers: Sendable, Equatable {
  /// The most customers a job's map holds in the coordinator's memory.
  static let maxCustomers = 1_000_000

  struct Key: Hashable, Comparable {
    var platform: String
    var account: String
    var currency: String
    var customer: String

    var store: Store { Store(platform: platform, account: account, currency: currency) }

    static func < (lhs: Key, rhs: Key) -> Bool {
      if lhs.store != rhs.store { return lhs.store < rhs.store }
      return lhs.customer.utf8.lexicographicallyPrecedes(rhs.customer.utf8)
    }
  }

  /// One store's customers in one currency: the unit a model is fitted on.
  struct Store: Hashable, Comparable {
    var platform: String
    var account: String
    var currency: String

    static func < (lhs: Store, rhs: Store) -> Bool {
      for (left, right) in [(lhs.platform, rhs.platform), (lhs.account, rhs.account), (lhs.currency, rhs.currency)]
      where left != right {
        return left.utf8.lexicographicallyPrecedes(right.utf8)
      }
      return false
    }
  }

  struct Customer: Equatable {
    var firstAt: Int64 = .max
    var firstChannel = ""
    var orders: UInt64 = 0
    /// Store-local day → that day's revenue.
    var days: [Int64: Decimal] = [:]

    /// Adds another's orders; false when a count passes UInt64.max or revenue does not add.
    mutating func merge(_ other: Customer) -> Bool {
      if other.firstAt < firstAt
        || (other.firstAt == firstAt && other.firstChannel.utf8.lexicographicallyPrecedes(firstChannel.utf8))
      {
        firstAt = other.firstAt
        firstChannel = other.firstChannel
      }
      let (sum, overflow) = orders.addingReportingOverflow(other.orders)
      orders = sum
      var valid = !overflow
      for (day, revenue) in other.days {
        guard let total = Money.exactSum(days[day, default: .zero], revenue) else {
          valid = false
          continue
        }
        days[day] = total
      }
      return valid
    }

    /// Every day's revenue, exact; nil when the total is not (`Money.exactTotal`).
    var revenue: Decimal? { Money.exactTotal(days.keys.sorted().compactMap { days[$0] }) }
  }

  private(set) var customers: [Key: Customer] = [:]
  /// A count passed its range, revenue did not add, or a cell did not read.
  private(set) var overflowed = false
  /// More than `maxCustomers`: the map stopped taking new customers.
  private(set) var tooMany = false
  /// The most customers this map holds (`maxCustomers`; smaller in tests).
  var bound = maxCustomers
  private var clock = LocalClock(timezone: "")

  init() {}

  init(timezone: String) {
    clock = LocalClock(timezone: timezone)
  }

  /// Adds one order; guests (no customer id) are in no cell.
  mutating func add(_ order: OrderRecord) {
    guard !order.customer.isEmpty else { return }
    let key = Key(
      platform: order.platform, account: order.account, currency: Channels.uppercased(order.currency),
      customer: order.customer)
    let day = clock.local(order.createdAt).floorDivided(by: 86_400)
    let one = Customer(
      firstAt: order.createdAt.epochSeconds, firstChannel: Channels.classify(order).channel, orders: 1,
      days: [day: order.total])
    merge(one, into: key)
  }

  private mutating func merge(_ one: Customer, into key: Key) {
    if customers[key] == nil && customers.count >= bound {
      tooMany = true
      return
    }
    if !customers[key, default: Customer()].merge(one) { overflowed = true }
  }

  mutating func merge(_ other: Customers) {
    if other.overflowed { overflowed = true }
    if other.tooMany { tooMany = true }
    for (key, customer) in other.customers { merge(customer, into: key) }
  }

  var message: Haat_V1_CustomersPartial {
    var message = Haat_V1_CustomersPartial()
    message.customers = customers.keys.sorted().map { key in
      let customer = customers[key] ?? Customer()
      var cell = Haat_V1_CustomerCell()
      cell.platform = key.platform
      cell.account = key.account
      cell.currency = key.currency
      cell.customer = key.customer
      cell.firstAt = customer.firstAt
      cell.firstChannel = customer.firstChannel
      cell.orders = customer.orders
      let days = customer.days.keys.sorted()
      cell.days = days
      cell.dayRevenue = days.map { Money.text(customer.days[$0] ?? .zero) }
      return cell
    }
    // A map that stopped growing cannot be finished: carried as overflowed.
    message.overflowed = overflowed || tooMany
    return message
  }

  init(_ message: Haat_V1_CustomersPartial, bound: Int = maxCustomers) {
    self.bound = bound
    overflowed = message.overflowed
    // The wire has one flag for both: a map that stopped at the bound carries exactly as
    // many customers, so that is read as too many (said so), not as a count past 2^64.
    if message.overflowed, message.customers.count >= bound { tooMany = true }
    for cell in message.customers {
      // A cell that does not read makes the report unknowable: said, never dropped.
      guard cell.days.count == cell.dayRevenue.count, !cell.days.isEmpty else {
        overflowed = true
        continue
      }
      var customer = Customer(firstAt: cell.firstAt, firstChannel: cell.firstChannel, orders: cell.orders)
      for (day, text) in zip(cell.days, cell.dayRevenue) {
        guard let revenue = Money.decimal(text), !text.isEmpty else {
          overflowed = true
          break
        }
        guard let total = Money.exactSum(customer.days[day, default: .zero], revenue) else {
          overflowed = true
          break
        }
        customer.days[day] = total
      }
      let key = Key(platform: cell.platform, account: cell.account, currency: cell.currency, customer: cell.customer)
      merge(customer, into: key)
    }
  }

  /// The reason a finished report cannot be made, if any.
  func refusal(_ report: String) -> String? {
    if tooMany {
      return
        "the \(report) report has more than \(bound) customers, the most the coordinator holds in memory (the second reduce stage by key hash is not built; split the job by store)"
    }
    if overflowed {
      return
        "the \(report) report's counts pass 18446744073709551615 (2^64 - 1), a revenue does not add, or a partial's customer does not read"
    }
    return nil
  }

  /// Year, month (1–12) and day of a day since 1970-01-01.
  static func civil(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
    let date = CivilDate.of(day: Int(days))
    return (Int64(date.year), Int64(date.month), Int64(date.day))
  }

  /// Months since year 0 of a day: consecutive months differ by 1.
  static func monthIndex(_ day: Int64) -> Int64 {
    let date = civil(day)
    return date.year * 12 + date.month - 1
  }

  /// "2026-03" for a month index.
  static func monthName(_ index: Int64) -> String {
    let year = index.floorDivided(by: 12)
    return String(format: "%04lld-%02lld", year, index - year * 12 + 1)
  }

  /// "2026-03-01" for a day since 1970-01-01.
  static func dateName(_ day: Int64) -> String {
    let date = civil(day)
    return String(format: "%04lld-%02lld-%02lld", date.year, date.month, date.day)
  }
}
