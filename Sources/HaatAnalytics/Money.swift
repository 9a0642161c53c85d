import Foundation
import HaatRecords

/// Money in partials and reports: exact decimals on the wire, doubles only for ratios.
enum Money {
  /// Exact decimal text: "." as the point, no exponent; zero is "0".
  static func text(_ value: Decimal) -> String { value.isZero ? "0" : value.description }

  /// Decimal text as written by `text`; "" is zero; nil when it is not one.
  static func decimal(_ text: String) -> Decimal? { text.isEmpty ? .zero : Values.decimal(text) }

  /// `lhs + rhs` when it is exact and its text reads back (`decimal`: at most 38
  /// significant digits); nil otherwise. Foundation rounds a sum past its significand
  /// without a word, and one of 39 digits fits it but would not read back from a partial.
  static func exactSum(_ lhs: Decimal, _ rhs: Decimal) -> Decimal? {
    var (left, right, sum) = (lhs, rhs, Decimal())
    guard NSDecimalAdd(&sum, &left, &right, .plain) == .noError else { return nil }
    // A significand below 10^34 has at most 34 digits: no need to count them.
    guard sum.significand.magnitude < fewDigits || significantDigits(sum) <= 38 else { return nil }
    return sum
  }

  private static let fewDigits = Decimal(sign: .plus, exponent: 34, significand: 1)

  /// The exact sum of `values` (`exactSum` at each step); nil when one step is not.
  static func exactTotal(_ values: some Sequence<Decimal>) -> Decimal? {
    var total = Decimal.zero
    for value in values {
      guard let sum = exactSum(total, value) else { return nil }
      total = sum
    }
    return total
  }

  /// `lhs × rhs`, or nil when it might not be exact: a product has at most the digits of
  /// both factors, and past 38 Decimal may round it (NSDecimalMultiply does not say so).
  static func exactProduct(_ lhs: Decimal, _ rhs: Decimal) -> Decimal? {
    guard significantDigits(lhs) + significantDigits(rhs) <= 38 else { return nil }
    var (left, right, product) = (lhs, rhs, Decimal())
    return NSDecimalMultiply(&product, &left, &right, .plain) == .noError ? product : nil
  }

  /// The digits of a value's significand, trailing zeros left out.
  static func significantDigits(_ value: Decimal) -> Int {
    var digits = "\(value.significand.magnitude)".filter(\.isNumber)
    while digits.count > 1, digits.last == "0" { digits.removeLast() }
    return digits == "0" ? 0 : digits.count
  }

  /// For a ratio of amounts (CPM, AOV, ROAS); never for a sum. The double nearest the
  /// exact value, parsed from its text: NSDecimalNumber's `doubleValue` is off by an ulp
  /// now and then (4345.56 came out 4345.5599999999995).
  static func double(_ value: Decimal) -> Double {
    Double(text(value)) ?? NSDecimalNumber(decimal: value).doubleValue
  }

  /// Decimal text for people: rounded to two decimals (half away from zero) in decimal,
  /// never through a double, which showed 12345678901234567.89 as …568.00 (the text itself
  /// when it does not read).
  static func display(_ text: String) -> String {
    guard var value = decimal(text) else { return text }
    var rounded = Decimal()
    NSDecimalRound(&rounded, &value, 2, .plain)
    let digits = Self.text(rounded)
    guard let point = digits.firstIndex(of: ".") else { return digits + ".00" }
    return digits + String(repeating: "0", count: max(0, 3 - digits[point...].count))
  }
}
