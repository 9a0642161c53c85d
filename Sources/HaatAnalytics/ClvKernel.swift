import Foundation
import HaatCore
import HaatProtocol
import HaatRecords

/// The `clv` report: customer lifetime value by acquisition channel (the channel of the
/// customer's first order). Historic: each channel's exact revenue per customer. Predicted:
/// per store and currency, BG/NBD (repeat purchases) and Gamma-Gamma (spend per purchase)
/// fitted by maximum likelihood on every customer's history in weeks, and each customer's
/// expected purchases and spend over the next 52 weeks (docs/reports.md). Built on the
/// `Customers` keyed map, which merges exactly, so any split of the orders over tasks gives
/// the same report.
public struct ClvKernel: Sendable {
  /// Days per unit of the models' time: weeks, as Fader, Hardie & Lee's CDNOW study.
  static let unitDays = 7.0
  static let unitName = "weeks"
  /// The prediction horizon, in units.
  static let horizon = 52.0
  /// A store is fitted with at least this many customers, this many of them repeat buyers.
  static let minCustomers = 50
  static let minRepeatCustomers = 10

  private var customers = Customers()

  public init() {}

  public init(context: ReportContext) {
    customers = Customers(timezone: context.timezone)
  }

  /// One customer as the models see it.
  struct Summary {
    var channel: String
    var history: CustomerHistory
    var orders: UInt64
    var revenue: Decimal
    /// The mean revenue of the days after the first (0 without any).
    var repeatMean: Double
  }

  /// nil for a customer without a day; `overflow` thrown for one whose revenue is not exact.
  static func summary(_ customer: Customers.Customer, end: Int64, overflow: HaatError) throws(HaatError)
    -> Summary?
  {
    let days = customer.days.keys.sorted()
    guard let first = days.first, let last = days.last else { return nil }
    guard let revenue = customer.revenue else { throw overflow }
    let repeats = days.dropFirst().map { Money.double(customer.days[$0] ?? .zero) }
    let history = CustomerHistory(
      x: Double(days.count - 1), recency: Double(last - first) / unitDays, age: Double(end - first) / unitDays)
    return Summary(
      channel: customer.firstChannel, history: history, orders: customer.orders, revenue: revenue,
      repeatMean: repeats.isEmpty ? 0 : repeats.reduce(0, +) / Double(repeats.count))
  }

  /// Fits both models on one store's customers; a note says what was not fitted and why.
  static func fit(_ summaries: [Summary]) -> (bgnbd: (BGNBD, Double)?, gammaGamma: (GammaGamma, Double)?, note: String)
  {
    let repeaters = summaries.filter { $0.history.x > 0 }
    guard summaries.count >= minCustomers, repeaters.count >= minRepeatCustomers else {
      return (
        nil, nil,
        "too few customers to fit: \(summaries.count) customers, \(repeaters.count) repeat; \(minCustomers) and \(minRepeatCustomers) are needed"
      )
    }
    var notes: [String] = []
    var counts: [CustomerHistory: Double] = [:]
    for summary in summaries { counts[summary.history, default: 0] += 1 }
    let histories = counts.sorted { lhs, rhs in
      (lhs.key.x, lhs.key.recency, lhs.key.age) < (rhs.key.x, rhs.key.recency, rhs.key.age)
    }
    let bgnbd = BGNBD.fit(histories.map { ($0.key, $0.value) })
    if bgnbd == nil { notes.append("BG/NBD did not converge (within its budget of evaluations)") }
    // A fit that ran to an edge (a tester's b of 1.2e-06 beside r 5e6): said, so its
    // predictions are not read as if the data had pinned the model down.
    if let (model, _) = bgnbd, [model.r, model.alpha, model.a, model.b].contains(where: { $0 < 1e-4 || $0 > 1e6 }) {
      let shown = [model.r, model.alpha, model.a, model.b].map { String(format: "%.3g", $0) }
      notes.append(
        "BG/NBD ended at extreme parameters (r \(shown[0]), α \(shown[1]), a \(shown[2]), b \(shown[3])): the data do not pin the model down, so its predictions are not to be read"
      )
    }
    // Gamma-Gamma needs a positive mean spend; a repeat buyer whose repeat days sum to 0 or
    // less (refunds) is left out of its fit.
    let spenders = repeaters.filter { $0.repeatMean > 0 }
    if spenders.count < repeaters.count {
      notes.append(
        "\(repeaters.count - spenders.count) repeat customers with no positive spend left out of Gamma-Gamma")
    }
    var gammaGamma: (GammaGamma, Double)?
    if spenders.count >= minRepeatCustomers {
      gammaGamma = GammaGamma.fit(spenders.map { (x: $0.history.x, mean: $0.repeatMean) })
      if gammaGamma == nil {
        notes.append(
          "Gamma-Gamma did not converge (within its budget of evaluations: repeat customers who all spend alike give it no maximum)"
        )
      }
      if let (model, _) = gammaGamma, model.q <= 1 {
        notes.append("Gamma-Gamma's q ≤ 1: the expected spend is not finite, so no prediction")
      }
    } else {
      notes.append("too few repeat customers with spend to fit Gamma-Gamma")
    }
    return (bgnbd, gammaGamma, notes.joined(separator: "; "))
  }

  struct Group: Hashable, Comparable {
    var store: Customers.Store
    var channel: String

    static func < (lhs: Group, rhs: Group) -> Bool {
      if lhs.store != rhs.store { return lhs.store < rhs.store }
      if (lhs.channel == "all") != (rhs.channel == "all") { return rhs.channel == "all" }
      return lhs.channel.utf8.lexicographicallyPrecedes(rhs.channel.utf8)
    }
  }

  struct Totals {
    var customers: UInt64 = 0
    var repeatCustomers: UInt64 = 0
    var orders: UInt64 = 0
    var revenue = Decimal.zero
    var purchases = 0.0
    var spend = 0.0
    var value = 0.0
  }
}

extension ClvKernel: ReportKernel {
  public static let name = "clv"
  public static let summary =
    "by acquisition channel: revenue per customer so far, and predicted purchases, spend and value over 52 weeks from BG/NBD and Gamma-Gamma fits"
  public static let records: Set<RecordType> = [.order]
  /// A map with a cell per customer and two model fits: a job gets it when it names it.
  public static let defaultFor: Set<RecordType> = []

  public mutating func add(_ record: CanonicalRecord) -> Bool {
    if case .order(let order) = record { customers.add(order) }
    return true
  }

  public mutating func merge(_ other: ClvKernel) { customers.merge(other.customers) }

  public func write(to partial: inout Partial) { partial.clv = customers.message }

  public init?(reading partial: Partial) {
    guard partial.hasClv else { return nil }
    customers = Customers(partial.clv)
  }

  public func finish(into report: inout Report) throws(HaatError) {
    if let refusal = customers.refusal(Self.name) {
      throw HaatError(customers.tooMany ? .tooLarge : .overflow, refusal)
    }
    var byStore: [Customers.Store: [Customers.Customer]] = [:]
    // In key order, and the fit's histories sorted: floating-point sums in one order, so
    // the report is the same however the orders were split.
    for key in customers.customers.keys.sorted() {
      if let customer = customers.customers[key] { byStore[key.store, default: []].append(customer) }
    }
    var section = Haat_V1_ClvReport()
    section.unit = Self.unitName
    section.horizon = Self.horizon
    let amounts = HaatError(
      .overflow, "the clv report's revenue passes 38 significant digits: a sum that cannot be exact")
    var totals: [Group: Totals] = [:]
    var checked = EngagementKernel.Checked()
    for store in byStore.keys.sorted() {
      let members = byStore[store] ?? []
      let end = members.compactMap { $0.days.keys.max() }.max() ?? 0
      var summaries: [Summary] = []
      for member in members {
        if let summary = try Self.summary(member, end: end, overflow: amounts) { summaries.append(summary) }
      }
      let (bgnbd, gammaGamma, note) = Self.fit(summaries)
      var fit = Haat_V1_ClvFit()
      fit.platform = store.platform
      fit.account = store.account
      fit.currency = store.currency
      fit.customers = UInt64(summaries.count)
      fit.repeatCustomers = UInt64(summaries.filter { $0.history.x > 0 }.count)
      fit.observedUntil = Customers.dateName(end)
      if let (model, logLikelihood) = bgnbd {
        (fit.r, fit.alpha, fit.a, fit.b) = (model.r, model.alpha, model.a, model.b)
        fit.bgnbdLogLikelihood = logLikelihood
      }
      if let (model, logLikelihood) = gammaGamma {
        (fit.p, fit.q, fit.gamma) = (model.p, model.q, model.gamma)
        fit.gammaGammaLogLikelihood = logLikelihood
      }
      fit.note = note
      section.fits.append(fit)
      let spendModel = gammaGamma.flatMap { $0.0.q > 1 ? $0.0 : nil }
      for summary in summaries {
        let purchases = bgnbd?.0.expectedPurchases(summary.history, horizon: Self.horizon)
        let spend = spendModel?.expectedSpend(x: summary.history.x, mean: summary.repeatMean)
        for channel in [summary.channel, "all"] {
          var total = totals[Group(store: store, channel: channel)] ?? Totals()
          total.customers += 1
          total.repeatCustomers += summary.history.x > 0 ? 1 : 0
          total.orders = checked.add(total.orders, summary.orders)
          guard let revenue = Money.exactSum(total.revenue, summary.revenue) else { throw amounts }
          total.revenue = revenue
          total.purchases += purchases ?? 0
          total.spend += spend ?? 0
          total.value += (purchases ?? 0) * (spend ?? 0)
          totals[Group(store: store, channel: channel)] = total
        }
      }
      let predicted = (bgnbd != nil, spendModel != nil)
      for group in totals.keys.sorted() where group.store == store {
        let total = totals[group] ?? Totals()
        var row = Haat_V1_ClvRow()
        row.platform = store.platform
        row.account = store.account
        row.currency = store.currency
        row.channel = group.channel
        row.customers = total.customers
        row.repeatCustomers = total.repeatCustomers
        row.orders = total.orders
        row.revenue = Money.text(total.revenue)
        let count = Double(total.customers)
        row.historicClv = Money.double(total.revenue) / count
        if predicted.0 { row.predictedPurchases = total.purchases / count }
        if predicted.1 { row.predictedSpend = total.spend / count }
        if predicted.0 && predicted.1 { row.predictedClv = total.value / count }
        section.rows.append(row)
      }
    }
    guard !checked.overflowed else {
      throw HaatError(.overflow, "the clv report's order counts pass 18446744073709551615 (2^64 - 1)")
    }
    report.clv = section
  }

  public static func table(of report: Report) -> ReportTable? {
    guard report.hasClv else { return nil }
    let group = ReportRendering.group
    let money = { (value: Double) in String(format: "%.2f", value) }
    let rows = report.clv.rows.map { row in
      [
        row.platform, row.account, row.currency.isEmpty ? "–" : row.currency, row.channel, group(row.customers),
        group(row.repeatCustomers),
        money(row.historicClv), row.hasPredictedPurchases ? String(format: "%.2f", row.predictedPurchases) : "–",
        row.hasPredictedClv ? money(row.predictedClv) : "–",
      ]
    }
    let optional = { (has: Bool, value: Double) in has ? String(value) : "" }
    let csvRows = report.clv.rows.map { row in
      [
        row.platform, row.account, row.currency, row.channel, String(row.customers), String(row.repeatCustomers),
        String(row.orders), row.revenue, String(row.historicClv),
        optional(row.hasPredictedPurchases, row.predictedPurchases),
        optional(row.hasPredictedSpend, row.predictedSpend),
        optional(row.hasPredictedClv, row.predictedClv),
      ]
    }
    var notes: [String] = []
    for fit in report.clv.fits {
      var line =
        "\(fit.platform) \(fit.account) \(fit.currency.isEmpty ? "–" : fit.currency), \(fit.customers) customers to \(fit.observedUntil):"
      if fit.hasR {
        line += String(format: " BG/NBD r %.4g α %.4g a %.4g b %.4g;", fit.r, fit.alpha, fit.a, fit.b)
      }
      if fit.hasP { line += String(format: " Gamma-Gamma p %.4g q %.4g γ %.4g;", fit.p, fit.q, fit.gamma) }
      if !fit.note.isEmpty { line += " \(fit.note)" }
      notes.append(line)
    }
    if !notes.isEmpty {
      notes =
        [
          "",
          "predicted: per customer over the next \(Int(report.clv.horizon)) \(report.clv.unit), from each store's fits (time in \(report.clv.unit)):",
        ] + notes
    }
    return ReportTable(
      columns: ["platform", "account", "cur.", "channel", "customers", "repeat", "historic", "purchases", "predicted"],
      rows: rows, numeric: [4, 5, 6, 7, 8], totalLast: false,
      csvColumns: [
        "platform", "account", "currency", "channel", "customers", "repeat_customers", "orders", "revenue",
        "historic_clv", "predicted_purchases", "predicted_spend", "predicted_clv",
      ],
      csvRows: csvRows, csvText: [0, 1, 2, 3], notes: notes)
  }
}
