import Foundation
import HaatCore
import HaatProtocol
import HaatRecords
import Testing

@testable import HaatAnalytics

/// An order of a customer on a day (UTC midnight plus `hour`), for the customer reports.
func dayOrder(
  _ id: String, customer: String, day: Int64, total: String, hour: Int64 = 12, utmSource: String = "",
  account: String = "shop", currency: String = "usd"
) -> CanonicalRecord {
  let time = Values.Timestamp(epochSeconds: day * 86_400 + hour * 3_600, offsetMinutes: 0)
  let order = OrderRecord(
    platform: "shopify", account: account, id: id, createdAt: time, customer: customer,
    total: Decimal(string: total) ?? .zero, totalText: total, currency: currency,
    landingSite: utmSource.isEmpty ? "" : "/?utm_source=" + utmSource, referringSite: "")
  return .order(order)
}

/// Day number of a calendar date (UTC).
func dayNumber(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
  var calendar = Calendar(identifier: .gregorian)
  calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
  let date = calendar.date(from: DateComponents(year: year, month: month, day: day)) ?? Date(timeIntervalSince1970: 0)
  return Int64(date.timeIntervalSince1970 / 86_400)
}

@Suite("Customers keyed map")
struct CustomersTests {
  @Test("civil dates from day numbers, across leap years and before 1970")
  func civil() {
    for (year, month, day) in [
      (1970, 1, 1), (2024, 2, 29), (2000, 3, 1), (1969, 12, 31), (2026, 11, 30), (1600, 2, 29),
    ] {
      let number = dayNumber(year, month, day)
      let date = Customers.civil(number)
      #expect(date.year == Int64(year) && date.month == Int64(month) && date.day == Int64(day))
    }
    #expect(Customers.dateName(dayNumber(1997, 9, 30)) == "1997-09-30")
    #expect(Customers.monthName(Customers.monthIndex(dayNumber(2026, 1, 15)) - 1) == "2025-12")
  }

  @Test("any split, merged in any order through the wire, gives the same map; guests are in none")
  func mergeLaw() throws {
    var random = SplitMix64(seed: 21)
    var orders: [CanonicalRecord] = []
    for index in 0..<3_000 {
      let customer = index % 17 == 0 ? "" : "c\(random.next() % 400)"
      let cents = random.next() % 20_000
      orders.append(
        dayOrder(
          "o\(index)", customer: customer, day: 20_000 + Int64(random.next() % 300),
          total: "\(cents / 100).\(String(format: "%02d", cents % 100))", hour: Int64(random.next() % 24),
          utmSource: ["", "facebook", "google", "Instagram"][Int(random.next() % 4)]))
    }
    let whole = try finishedReport("clv", of: orders).clv
    for parts in [2, 5] {
      let split = try finishedReport("clv", of: orders.shuffled(using: &random), parts: parts).clv
      #expect(split.rows.map(\.revenue) == whole.rows.map(\.revenue))
      #expect(split.rows.map(\.customers) == whole.rows.map(\.customers))
      #expect(split.fits.map(\.r) == whole.fits.map(\.r))
      #expect(split == whole)
      let cohorts = try finishedReport("cohorts", of: orders.shuffled(using: &random), parts: parts)
      #expect(cohorts == (try finishedReport("cohorts", of: orders)))
    }
    // Guests: no customer, in no row; every other order is.
    let all = try #require(whole.rows.first { $0.channel == "all" })
    #expect(all.orders == UInt64(orders.count - (0..<3_000).filter { $0 % 17 == 0 }.count))
  }

  @Test("past the bound the map stops growing and the report says so")
  func bound() throws {
    var customers = Customers()
    customers.bound = 100
    for index in 0..<150 {
      if case .order(let order) = dayOrder("o\(index)", customer: "c\(index)", day: 20_000, total: "1") {
        customers.add(order)
      }
    }
    #expect(customers.customers.count == 100 && customers.tooMany)
    #expect(customers.refusal("clv")?.contains("more than 100 customers") == true)
    // It travels: a coordinator merging the partial refuses too, saying why (it said the
    // counts passed 2^64 − 1).
    let read = Customers(customers.message, bound: 100)
    #expect(read.refusal("clv")?.contains("more than 100 customers") == true, "\(read.refusal("clv") ?? "")")
  }

  /// The coordinator's memory at the bound: 1,000,000 customers with three purchase days
  /// each, arriving as 20 task partials of 50,000 and merged as the coordinator merges
  /// them. `make accept` runs it (it takes a minute in a debug build) and prints the RSS.
  @Test(.enabled(if: ProcessInfo.processInfo.environment["HAAT_ACCEPT"] != nil, "make accept runs it"))
  func memoryAtTheBound() throws {
    func rss(_ field: String) -> Int {
      let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
      let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
      return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
    let before = rss("VmRSS")
    var merger = PartialMerger()
    let perTask = 50_000
    for task in 0..<(Customers.maxCustomers / perTask) {
      var partial = Partial()
      partial.clv.customers = (0..<perTask).map { index in
        var cell = Haat_V1_CustomerCell()
        cell.platform = "shopify"
        cell.account = "store"
        cell.currency = "USD"
        cell.customer = "customer-\(task * perTask + index)"
        cell.firstAt = 1_700_000_000 + Int64(index)
        cell.firstChannel = "direct"
        cell.orders = 3
        cell.days = [19_700, 19_740, 19_790]
        cell.dayRevenue = ["59.90", "12.50", "104.00"]
        return cell
      }
      merger.merge(partial)
    }
    let after = rss("VmRSS")
    print(
      "keyed map at the bound: \(Customers.maxCustomers) customers merged; RSS grew \((after - before) / 1024) MiB (peak \(rss("VmHWM") / 1024) MiB)"
    )
    var report = Report()
    try merger.finish(["clv"], into: &report)
    #expect(report.clv.rows.first?.customers == UInt64(Customers.maxCustomers))
  }

  @Test("a malformed customer cell fails the report rather than vanish")
  func malformed() throws {
    var partial = Partial()
    var cell = Haat_V1_CustomerCell()
    cell.customer = "x"
    cell.days = [1, 2]
    cell.dayRevenue = ["1.00"]
    partial.clv.customers = [cell]
    var merger = PartialMerger()
    merger.merge(partial)
    var report = Report()
    #expect(throws: HaatError.self) { try merger.finish(["clv"], into: &report) }
  }

  /// Two customers of 38 nines each: a channel's revenue would need 39 digits, which no
  /// partial or report reads back; so would one customer's two days. No report, not a
  /// 39-digit figure.
  @Test("revenue past 38 digits fails the clv report")
  func revenuePastThirtyEightDigits() throws {
    let nines = String(repeating: "9", count: 38)
    for orders in [
      [dayOrder("1", customer: "a", day: 1, total: nines), dayOrder("2", customer: "b", day: 1, total: nines)],
      [dayOrder("1", customer: "a", day: 1, total: nines), dayOrder("2", customer: "a", day: 2, total: nines)],
    ] {
      var builder = PartialBuilder(reports: ["clv"])
      for order in orders { builder.add(order) }
      var merger = PartialMerger()
      merger.merge(builder.partial)
      var report = Report()
      let error = #expect(throws: HaatError.self) { try merger.finish(["clv"], into: &report) }
      #expect(error?.message.contains("38 significant digits") == true, "\(String(describing: error))")
    }
  }
}

@Suite("Cohorts report")
struct CohortsKernelTests {
  @Test("customers by first month and channel; the share ordering in each later month, as far as the data reaches")
  func cohorts() throws {
    let orders = [
      // January: a from facebook (again in February and April), b direct (again in March).
      dayOrder("1", customer: "a", day: dayNumber(2026, 1, 5), total: "10", utmSource: "facebook"),
      dayOrder("2", customer: "a", day: dayNumber(2026, 2, 1), total: "10"),
      dayOrder("3", customer: "a", day: dayNumber(2026, 4, 9), total: "10"),
      dayOrder("4", customer: "b", day: dayNumber(2026, 1, 31), total: "5"),
      dayOrder("5", customer: "b", day: dayNumber(2026, 3, 2), total: "5"),
      // March: c direct, once. The data ends in April.
      dayOrder("6", customer: "c", day: dayNumber(2026, 3, 20), total: "7"),
    ]
    let rows = try finishedReport("cohorts", of: orders, parts: 2).cohorts.rows
    #expect(
      rows.map { "\($0.cohort) \($0.channel) \($0.customers)" } == [
        "2026-01 direct 1", "2026-01 facebook 1", "2026-01 all 2", "2026-03 direct 1", "2026-03 all 1",
      ])
    // January's cohort is followed to April (3 months), March's to April (1).
    #expect(rows[2].active == [1, 1, 1])
    #expect(rows[2].share == [0.5, 0.5, 0.5])
    #expect(rows[1].active == [1, 0, 1])
    #expect(rows[4].active == [0])
  }
}

@Suite("CLV report")
struct ClvKernelTests {
  /// The CDNOW data shipped in the `lifetimes` wheel (scripts/analysis/cdnow.sh fetches it;
  /// scripts/run-tests runs that first).
  static func cdnow(_ file: String) throws -> String {
    let directory =
      ProcessInfo.processInfo.environment["HAAT_CDNOW_DIR"]
      ?? FileManager.default.currentDirectoryPath + "/.build/cdnow"
    let path = directory + "/" + file
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
      throw CDNOWMissing(path: path)
    }
    return text
  }

  struct CDNOWMissing: Error, CustomStringConvertible {
    var path: String
    var description: String { "\(path) is missing: run scripts/analysis/cdnow.sh (needs PyPI)" }
  }

  static func within(_ value: Double, _ target: Double, _ relative: Double) -> Bool {
    abs(value - target) <= relative * abs(target)
  }

  /// Repeat customers who all pay one price give Gamma-Gamma no maximum: the search ran on
  /// (for hours at a store's size, a pass over every customer per step) and now stops at
  /// its budget; customers alike are one term, so the attempt costs no more for 100,000 of
  /// them than for one.
  @Test func aLikelihoodWithNoMaximumEndsWithinItsBudget() {
    let fit = GammaGamma.fit(Array(repeating: (x: 1.0, mean: 20.0), count: 100_000))
    #expect(fit.map { $0.model.q > 1_000 } ?? true, "q runs off, or there is no fit")
    #expect(NelderMead.minimize({ point in -point[0] }, from: [0], budget: 10_000) == nil, "unbounded: out of budget")
    #expect(
      NelderMead.minimize({ point in (point[0] - 3) * (point[0] - 3) }, from: [0], budget: 10_000).map {
        abs($0.point[0] - 3) < 1e-4
      } == true)
    #expect(NelderMead.budget(terms: 1_000_000) == 1_000 && NelderMead.budget(terms: 0) == NelderMead.termBudget)
  }

  @Test("BG/NBD and Gamma-Gamma on the CDNOW summaries: Fader, Hardie & Lee's parameters, lifetimes' fit")
  func cdnowSummaries() throws {
    var histories: [CustomerHistory: Double] = [:]
    var spenders: [(x: Double, mean: Double)] = []
    for line in try Self.cdnow("cdnow_customers_summary_with_transactions.csv").split(whereSeparator: \.isNewline)
      .dropFirst()
    {
      let fields = line.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
      guard fields.count == 5 else { continue }
      histories[CustomerHistory(x: fields[1], recency: fields[2], age: fields[3]), default: 0] += 1
      if fields[1] > 0 { spenders.append((fields[1], fields[4])) }
    }
    #expect(histories.values.reduce(0, +) == 2_357 && spenders.count == 946)
    let (bgnbd, logLikelihood) = try #require(BGNBD.fit(Array(histories)))
    // The paper's r = 0.243, α = 4.414, a = 0.793, b = 2.426, within 1 %; lifetimes'
    // maximum (0.242593, 4.41353, 0.792886, 2.42575, ll −9582.4256) within 0.1 %.
    for (value, paper, lifetimes) in [
      (bgnbd.r, 0.243, 0.242593), (bgnbd.alpha, 4.414, 4.41353), (bgnbd.a, 0.793, 0.792886),
      (bgnbd.b, 2.426, 2.42575),
    ] {
      #expect(Self.within(value, paper, 0.01), "\(value) against the paper's \(paper)")
      #expect(Self.within(value, lifetimes, 0.001), "\(value) against lifetimes' \(lifetimes)")
    }
    #expect(logLikelihood >= -9_582.4256 - 1e-4)
    // Conditional expectations at lifetimes' parameters, as lifetimes computes them.
    let reference = BGNBD(
      r: 0.24259292827982148, alpha: 4.413532265271809, a: 0.7928859664406578, b: 2.4257523826257374)
    for (history, expected) in [
      (CustomerHistory(x: 2, recency: 30.43, age: 38.86), 1.22591042417441),
      (CustomerHistory(x: 0, recency: 0, age: 38.86), 0.194780857939478),
      (CustomerHistory(x: 29, recency: 38.43, age: 38.86), 19.6780741661534),
    ] {
      #expect(Self.within(reference.expectedPurchases(history, horizon: 39), expected, 1e-9), "\(history)")
    }

    let (spend, _) = try #require(GammaGamma.fit(spenders))
    // The paper's p = 6.25, q = 3.74, γ = 15.44, within 1 % (the file's zbar is rounded to
    // cents, so γ lands at 15.448; lifetimes: 6.24880, 3.74459, 15.4477).
    for (value, paper, lifetimes) in [
      (spend.p, 6.25, 6.24880), (spend.q, 3.74, 3.74459), (spend.gamma, 15.44, 15.4477),
    ] {
      #expect(Self.within(value, paper, 0.01), "\(value) against the paper's \(paper)")
      #expect(Self.within(value, lifetimes, 0.001), "\(value) against lifetimes' \(lifetimes)")
    }
    let lifetimesSpend = GammaGamma(p: 6.24880249607099, q: 3.7445884609237634, gamma: 15.447748064943575)
    #expect(Self.within(lifetimesSpend.expectedSpend(x: 2, mean: 22.35), 24.6586161892383, 1e-9))
  }

  @Test("the CDNOW transactions through the clv report, split over four tasks: the paper's fits in weeks")
  func cdnowTransactions() throws {
    var orders: [CanonicalRecord] = []
    let end = dayNumber(1997, 9, 30)
    for (index, line) in try Self.cdnow("CDNOW_sample.txt").split(whereSeparator: \.isNewline).enumerated() {
      let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
      guard fields.count == 5, let date = Int(fields[2]) else { continue }
      let day = dayNumber(date / 10_000, date / 100 % 100, date % 100)
      guard day <= end else { continue }
      orders.append(dayOrder("\(index)", customer: String(fields[1]), day: day, total: String(fields[4])))
    }
    var random = SplitMix64(seed: 4)
    let report = try finishedReport("clv", of: orders.shuffled(using: &random), parts: 4).clv
    let fit = try #require(report.fits.first)
    #expect(report.unit == "weeks" && fit.observedUntil == "1997-09-30")
    #expect(fit.customers == 2_357 && fit.repeatCustomers == 946)
    for (value, paper) in [(fit.r, 0.243), (fit.alpha, 4.414), (fit.a, 0.793), (fit.b, 2.426)] {
      #expect(Self.within(value, paper, 0.01), "\(value) against the paper's \(paper)")
    }
    // From the transactions themselves, γ is the paper's 15.44 (lifetimes: 6.249572,
    // 3.744225, 15.443521).
    for (value, paper) in [(fit.p, 6.25), (fit.q, 3.74), (fit.gamma, 15.44)] {
      #expect(Self.within(value, paper, 0.01), "\(value) against the paper's \(paper)")
    }
    #expect(fit.note.isEmpty, "\(fit.note)")
    let all = try #require(report.rows.first { $0.channel == "all" })
    #expect(all.customers == 2_357 && all.predictedPurchases > 0 && all.predictedClv > 0)
    // Historic value is exact: the revenue of every order to the end, over the customers.
    let revenue = orders.reduce(Decimal.zero) { sum, record in
      if case .order(let order) = record { return sum + order.total }
      return sum
    }
    #expect(all.revenue == Money.text(revenue))
  }

  @Test("too few customers: historic value only, and a note that says why")
  func tooFew() throws {
    let orders = (0..<30).map { dayOrder("o\($0)", customer: "c\($0 % 12)", day: 20_000 + Int64($0), total: "3.50") }
    let report = try finishedReport("clv", of: orders).clv
    #expect(report.fits.first?.note == "too few customers to fit: 12 customers, 12 repeat; 50 and 10 are needed")
    let row = try #require(report.rows.first)
    #expect(row.revenue == "105" && row.historicClv == 105.0 / 12)
    #expect(!row.hasPredictedClv && !row.hasPredictedPurchases)
  }

  /// Orders that state no currency show `–` in the table, as attribution's do.
  @Test func noCurrencyIsADash() throws {
    let orders = (0..<3).map { dayOrder("o\($0)", customer: "c\($0)", day: 20_000, total: "2", currency: "") }
    let text = ReportRendering.table(try finishedReport("clv", of: orders), only: "clv")
    #expect(text.contains("shopify   shop     –    "), "\(text)")
    #expect(text.contains("shopify shop –, 3 customers"), "\(text)")
  }
}
