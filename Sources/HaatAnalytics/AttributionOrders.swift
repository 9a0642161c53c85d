import Foundation
import HaatRecords

extension AttributionKernel {
  /// One channel × currency's orders: counts by how the channel was read, and the revenue.
  struct Orders: Equatable {
    var orders: UInt64 = 0
    var byUTM: UInt64 = 0
    var byClickID: UInt64 = 0
    var byReferrer: UInt64 = 0
    /// The revenue is `exact` plus `units` ten-thousandths: totals of at most four decimals
    /// add as integers, since Foundation's Decimal allocates on every addition (a sixth of
    /// reading an orders export went there). Exact either way.
    private var exact = Decimal.zero
    private var units: Int64 = 0
    static let scale: Int16 = 4

    init(orders: UInt64 = 0, revenue: Decimal = .zero, byUTM: UInt64 = 0, byClickID: UInt64 = 0, byReferrer: UInt64 = 0)
    {
      (self.orders, exact, self.byUTM, self.byClickID, self.byReferrer) = (
        orders, revenue, byUTM, byClickID, byReferrer
      )
    }

    var revenue: Decimal { units == 0 ? exact : exact + Self.decimal(units) }

    static func == (lhs: Orders, rhs: Orders) -> Bool {
      (lhs.orders, lhs.byUTM, lhs.byClickID, lhs.byReferrer) == (rhs.orders, rhs.byUTM, rhs.byClickID, rhs.byReferrer)
        && lhs.revenue == rhs.revenue
    }

    static func decimal(_ units: Int64) -> Decimal {
      Decimal(sign: units < 0 ? .minus : .plus, exponent: -Int(scale), significand: Decimal(units.magnitude))
    }

    /// Its total in ten-thousandths, when its text (the one `total` was read from) is a plain
    /// decimal of at most four decimals that fits.
    static func units(_ text: String) -> Int64? {
      guard case .value(let magnitude, let fraction, let negative)? = Values.fixedPoint(text), fraction <= scale else {
        return nil
      }
      var scaled = magnitude
      for _ in fraction..<scale {
        let (next, overflow) = scaled.multipliedReportingOverflow(by: 10)
        guard !overflow else { return nil }
        scaled = next
      }
      guard scaled <= UInt64(Int64.max) else { return nil }
      return negative ? -Int64(scaled) : Int64(scaled)
    }

    /// Adds one order; false, and nothing changed, when a count or the revenue leaves its
    /// range.
    mutating func add(_ order: OrderRecord, _ evidence: Channels.Evidence) -> Bool {
      var next = self
      guard next.count(evidence) else { return false }
      if let units = Self.units(order.totalText), case let (sum, false) = next.units.addingReportingOverflow(units) {
        next.units = sum
      } else if let sum = Money.exactSum(next.exact, order.total) {
        next.exact = sum
      } else {
        // The decimal part alone may be too long where the whole revenue is not
        // (123456789012345.00001 and −123456789012345 leave 0.00001): judge the sum, not
        // how it is kept, so a split over tasks refuses what one task does.
        guard let whole = Money.exactSum(next.exact, Self.decimal(next.units)),
          let sum = Money.exactSum(whole, order.total)
        else { return false }
        next.exact = sum
        next.units = 0
      }
      guard next.exact.isZero || Money.exactSum(next.exact, Self.decimal(next.units)) != nil else { return false }
      self = next
      return true
    }

    /// Counts one order with its evidence; false when a count passes UInt64.max.
    private mutating func count(_ evidence: Channels.Evidence) -> Bool {
      var sum = EngagementKernel.Checked()
      orders = sum.add(orders, 1)
      switch evidence {
      case .utm: byUTM = sum.add(byUTM, 1)
      case .clickID: byClickID = sum.add(byClickID, 1)
      case .referrer: byReferrer = sum.add(byReferrer, 1)
      case .none: break
      }
      return !sum.overflowed
    }

    /// Adds another's counts; false when one passes UInt64.max.
    private mutating func addCounts(_ other: Orders) -> Bool {
      var sum = EngagementKernel.Checked()
      orders = sum.add(orders, other.orders)
      byUTM = sum.add(byUTM, other.byUTM)
      byClickID = sum.add(byClickID, other.byClickID)
      byReferrer = sum.add(byReferrer, other.byReferrer)
      return !sum.overflowed
    }

    mutating func merge(_ other: Orders) -> Bool {
      let counted = addCounts(other)
      let (total, overflow) = units.addingReportingOverflow(other.units)
      var exact = self.exact
      if overflow {
        guard let both = Money.exactSum(Self.decimal(units), Self.decimal(other.units)),
          let sum = Money.exactSum(exact, both)
        else { return false }
        exact = sum
        units = 0
      } else {
        units = total
      }
      if !other.exact.isZero {
        if let sum = Money.exactSum(exact, other.exact) {
          exact = sum
        } else {
          // As in `add`: the whole revenue decides, not its decimal part alone.
          guard let whole = Money.exactSum(exact, Self.decimal(units)), let sum = Money.exactSum(whole, other.exact)
          else { return false }
          exact = sum
          units = 0
        }
      }
      // The revenue, exact plus units, must be exact too.
      guard exact.isZero || Money.exactSum(exact, Self.decimal(units)) != nil else { return false }
      self.exact = exact
      return counted
    }
  }
}
