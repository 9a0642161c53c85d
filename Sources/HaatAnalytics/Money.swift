import Foundation
import HaatRecords

/// Money in partials and reports: exact decimals on the wire, doubles only for ratios.
enum Money {
  /// Exact decimal text: "." as the point, no exponent; zero is "0".
  static func text(_ value: Decimal) -> String { value.isZero ? "0" : value.description }

  /// Decimal text as written by `text`; "" is zero; nil when it is not one.
  static func decimal(_ text: String) -> Decimal? { text.isEmpty ? .zero : Values.decimal(text) }

  /// `lhs + rhs` when it is exact; nil when it would need more than a Decimal's 38
  /// significant digits (Foundation rounds such a sum without a word).
  static func exactSum(_ lhs: Decimal, _ rhs: Decimal) -> Decimal? {
    var (left, right, sum) = (lhs, rhs, Decimal())
    return NSDecimalAdd(&sum, &left, &right, .plain) == .noError ? sum : nil
  }

  /// For a ratio of amounts (CPM, AOV, ROAS); never for a sum.
  static func double(_ value: Decimal) -> Double { NSDecimalNumber(decimal: value).doubleValue }

  /// Decimal text for people: two decimals (the text itself when it does not read).
  static func display(_ text: String) -> String {
    guard let value = decimal(text) else { return text }
    return String(format: "%.2f", double(value))
  }
}
