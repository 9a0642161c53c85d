import Foundation
import HaatRecords

/// Money in partials and reports: exact decimals on the wire, doubles only for ratios.
enum Money {
  /// Exact decimal text: "." as the point, no exponent; zero is "0".
  static func text(_ value: Decimal) -> String { value.isZero ? "0" : value.description }

  /// Decimal text as written by `text`; "" is zero; nil when it is not one.
  static func decimal(_ text: String) -> Decimal? { text.isEmpty ? .zero : Values.decimal(text) }

  /// For a ratio of amounts (CPM, AOV, ROAS); never for a sum.
  static func double(_ value: Decimal) -> Double { NSDecimalNumber(decimal: value).doubleValue }

  /// Decimal text for people: two decimals (the text itself when it does not read).
  static func display(_ text: String) -> String {
    guard let value = decimal(text) else { return text }
    return String(format: "%.2f", double(value))
  }
}
