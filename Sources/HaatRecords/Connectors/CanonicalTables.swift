import Foundation

extension SourceKind {
  /// Haat's canonical orders export (docs/formats.md "Orders").
  public static let orders = SourceKind("orders", TableExportConnector<OrdersExport>.self)
  /// Haat's canonical ad insights export (docs/formats.md "Ad insights").
  public static let adInsights = SourceKind("ad_insights", TableExportConnector<AdInsightsExport>.self)
}

/// Haat's canonical orders export, CSV or NDJSON, one order per row, under records.proto's
/// `Order` names (a store's own export, or another tool's, renamed to them).
public enum OrdersExport: TableExportKind {
  public static let kind = SourceKind.orders
  public static let summary = "a canonical orders export (CSV or NDJSON) at a URL"
  public static let record = RecordType.order

  public static let columns: [(field: String, names: [String])] = [
    "platform", "account", "id", "created_at", "customer", "total", "currency", "landing_site", "referring_site",
  ].map { ($0, [$0]) }
  public static let required = ["id", "created_at", "total"]

  public static func record(_ row: TableRow, platform: String, account: String) -> Result<CanonicalRecord?, RowProblem>
  {
    guard let id = row[fields.id] else { return row.problem(fields.id, .missing) }
    return order(
      row, fields.order, id: id, customer: row[fields.customer] ?? "", platform: row[fields.platform] ?? platform,
      account: row[fields.account] ?? account)
  }

  private static let fields = (
    id: field("id"), customer: field("customer"), platform: field("platform"), account: field("account"),
    order: OrderFields(Self.self)
  )

  /// Where a schema keeps the fields every order export has.
  struct OrderFields: Sendable {
    let createdAt: TableField
    let total: TableField
    let currency: TableField
    let landingSite: TableField
    let referringSite: TableField

    init<Schema: TableSchema>(_ schema: Schema.Type) {
      createdAt = Schema.field("created_at")
      total = Schema.field("total")
      currency = Schema.field("currency")
      landingSite = Schema.field("landing_site")
      referringSite = Schema.field("referring_site")
    }
  }

  /// An order from a row's `created_at`, `total`, `currency`, `landing_site` and
  /// `referring_site` (the canonical names, or those a schema maps to them), its total less
  /// the amount in `refunded` where the row has one. Inlined: the order is built where the
  /// caller's result lies, not copied into it (a copy retains each of its strings).
  @inline(__always)
  static func order(
    _ row: TableRow, _ fields: OrderFields, id: String, customer: String, platform: String, account: String,
    refunded: TableField? = nil
  ) -> Result<CanonicalRecord?, RowProblem> {
    guard let created = row.timestamp(fields.createdAt) else { return row.problem(fields.createdAt, .missing) }
    guard let at = created else { return row.problem(fields.createdAt, .invalidTimestamp) }
    guard var totalText = row[fields.total] else { return row.problem(fields.total, .missing) }
    guard var total = Values.decimal(totalText) else {
      return row.problem(fields.total, Values.decimalProblem(totalText))
    }
    if let refunded, let refundText = row[refunded] {
      guard let refund = Values.decimal(refundText) else {
        return row.problem(refunded, Values.decimalProblem(refundText))
      }
      // Exact or refused: Foundation rounds a difference past 38 digits without a word.
      guard let net = Values.exactDifference(total, totalText, refund, refundText) else {
        return row.problem(refunded, .outOfRange)
      }
      if !refund.isZero {
        total = net
        totalText = net.isZero ? "0" : net.description
      }
    }
    return .success(
      .order(
        OrderRecord(
          platform: platform.isEmpty ? "web" : platform, account: account, id: id, createdAt: at,
          customer: customer, total: total, totalText: totalText,
          currency: row[fields.currency] ?? "", landingSite: row[fields.landingSite] ?? "",
          referringSite: row[fields.referringSite] ?? "")))
  }
}

/// Haat's canonical ad insights export, CSV or NDJSON, one ad and day per row, under
/// records.proto's `AdInsight` names.
public enum AdInsightsExport: TableExportKind {
  public static let kind = SourceKind.adInsights
  public static let summary = "a canonical ad insights export (CSV or NDJSON) at a URL"
  public static let record = RecordType.adInsight

  public static let columns: [(field: String, names: [String])] = [
    "platform", "account", "date", "campaign", "ad", "spend", "impressions", "clicks", "conversions", "claimed_roas",
  ].map { ($0, [$0]) }
  public static let required = ["date", "ad"]

  public static func record(_ row: TableRow, platform: String, account: String) -> Result<CanonicalRecord?, RowProblem>
  {
    guard let date = row["date"] else { return row.problem("date", .missing) }
    guard Days.number(date) != nil else { return row.problem("date", .invalidTimestamp) }
    guard let ad = row["ad"] else { return row.problem("ad", .missing) }
    var insight = AdInsightRecord(
      platform: row["platform"] ?? platform, account: row["account"] ?? account, date: date,
      campaign: row["campaign"] ?? "", ad: ad)
    for (name, keyPath) in [
      ("impressions", \AdInsightRecord.impressions), ("clicks", \.clicks), ("conversions", \.conversions),
    ] {
      guard let text = row[name] else { continue }
      switch Array(text.utf8).withUnsafeBytes({ Values.count($0) }) {
      case .success(let value): insight[keyPath: keyPath] = value
      case .failure(let reason): return row.problem(name, reason)
      }
    }
    for (name, keyPath) in [("spend", \AdInsightRecord.spend), ("claimed_roas", \.claimedRoas)] {
      guard let text = row[name] else { continue }
      guard let value = Values.decimal(text) else { return row.problem(name, .notADecimal) }
      insight[keyPath: keyPath] = value
    }
    return .success(.adInsight(insight))
  }
}

extension Values {
  /// A plain decimal's digits, when it has at most 18 significant digits and 18 after the
  /// point: "598.94" is 59894 with 2 fraction digits; nil when it is not a plain decimal
  /// (digits, one point, an optional leading minus), `.long` when it has more digits.
  public enum FixedPoint: Sendable, Equatable {
    case value(magnitude: UInt64, fraction: Int16, negative: Bool)
    case long
  }

  public static func fixedPoint(_ text: String) -> FixedPoint? {
    var text = text
    // Over the string's own bytes (a native String's are contiguous): no UTF-8 view per byte.
    return text.withUTF8 { fixedPoint(UnsafeRawBufferPointer($0)) }
  }

  /// `fixedPoint(_:)` of text as bytes.
  public static func fixedPoint(_ text: UnsafeRawBufferPointer) -> FixedPoint? {
    let negative = text.first == UInt8(ascii: "-")
    let digits = UnsafeRawBufferPointer(rebasing: text[(negative ? 1 : 0)...])
    guard !digits.isEmpty, digits.first != UInt8(ascii: "-") else { return nil }
    var sawPoint = false
    var sawDigit = false
    var mantissa: UInt64 = 0
    var significant = 0
    var fraction: Int16 = 0
    for byte in digits {
      if byte == UInt8(ascii: ".") {
        guard !sawPoint else { return nil }
        sawPoint = true
      } else if byte < UInt8(ascii: "0") || byte > UInt8(ascii: "9") {
        return nil
      } else {
        sawDigit = true
        if mantissa > 0 || byte != UInt8(ascii: "0") { significant += 1 }
        mantissa = mantissa &* 10 &+ UInt64(byte - UInt8(ascii: "0"))
        if sawPoint { fraction += 1 }
      }
    }
    // "." and "-." hold no digit: no amount, not 0.
    guard sawDigit else { return nil }
    guard significant <= 18, fraction <= 18 else { return .long }
    return .value(magnitude: mantissa, fraction: fraction, negative: negative)
  }

  /// A number written in decimal (an optional sign, digits with an optional point, an
  /// optional exponent: `5`, `05`, `+5`, `5.0`, `5e0`, `0.5E1`), judged exactly: `.whole`
  /// with its value when it is a whole number whose magnitude fits 64 bits, `.notWhole` for
  /// one with a fraction or a larger one (`4.9999999999999999999` is not 5, as a Double would
  /// make it), nil for text that is no such number (`0x5`, `inf`, `5 stars`).
  public enum WholeNumber: Sendable, Equatable {
    case whole(negative: Bool, magnitude: UInt64)
    case notWhole
  }

  public static func wholeNumber(_ text: String) -> WholeNumber? {
    var bytes = Array(text.utf8)[...]
    var negative = false
    if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
      negative = sign == UInt8(ascii: "-")
      bytes = bytes.dropFirst()
    }
    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    let integer = bytes.prefix(while: isDigit)
    bytes = bytes.dropFirst(integer.count)
    var fraction = bytes.prefix(0)
    if bytes.first == UInt8(ascii: ".") {
      fraction = bytes.dropFirst().prefix(while: isDigit)
      bytes = bytes.dropFirst(1 + fraction.count)
    }
    guard !integer.isEmpty || !fraction.isEmpty else { return nil }
    var exponent = 0
    if let e = bytes.first, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
      bytes = bytes.dropFirst()
      var exponentNegative = false
      if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
        exponentNegative = sign == UInt8(ascii: "-")
        bytes = bytes.dropFirst()
      }
      let digits = bytes.prefix(while: isDigit)
      guard !digits.isEmpty else { return nil }
      bytes = bytes.dropFirst(digits.count)
      // Past a thousand, any digit other than 0 is far from a 64-bit whole number.
      for digit in digits { exponent = min(exponent * 10 + Int(digit - UInt8(ascii: "0")), 100_000) }
      if exponentNegative { exponent = -exponent }
    }
    guard bytes.isEmpty else { return nil }
    // The digits with the point moved `exponent` places: whole when none after it is 0.
    let digits = Array(integer) + Array(fraction)
    guard let first = digits.firstIndex(where: { $0 != UInt8(ascii: "0") }) else {
      return .whole(negative: false, magnitude: 0)
    }
    let point = integer.count + exponent
    if let last = digits.lastIndex(where: { $0 != UInt8(ascii: "0") }), last >= point { return .notWhole }
    // Digits from the first significant one to the point (zeros past the written ones).
    guard point - first <= 20 else { return .notWhole }
    var magnitude: UInt64 = 0
    for position in first..<point {
      let digit = position < digits.count ? UInt64(digits[position] - UInt8(ascii: "0")) : 0
      let (times, o1) = magnitude.multipliedReportingOverflow(by: 10)
      let (plus, o2) = times.addingReportingOverflow(digit)
      guard !o1, !o2 else { return .notWhole }
      magnitude = plus
    }
    return .whole(negative: negative, magnitude: magnitude)
  }

  /// Whether a plain decimal's significant digits (first to last non-zero) fit the 38 a
  /// Decimal holds exactly; a longer amount is `out of range`, never rounded.
  public static func isExactDecimal(_ text: String) -> Bool {
    let digits = text.utf8.filter { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    guard let first = digits.firstIndex(where: { $0 != UInt8(ascii: "0") }),
      let last = digits.lastIndex(where: { $0 != UInt8(ascii: "0") })
    else { return true }
    return last - first + 1 <= 38
  }

  /// `left − right` (their values, and the plain decimal texts they were read from) when
  /// the difference is exact in 38 significant digits, else nil. Foundation rounds away the digits of an operand it cannot align
  /// without a word (100 − 10^−37 came out 100), so exactness is judged from the texts:
  /// the difference needs at most the longer integer part plus one digit, and the longer
  /// fraction.
  public static func exactDifference(_ left: Decimal, _ lhs: String, _ right: Decimal, _ rhs: String) -> Decimal? {
    let (a, b) = (digitSpan(lhs), digitSpan(rhs))
    guard max(a.integer, b.integer) + 1 + max(a.fraction, b.fraction) <= 38 else { return nil }
    return left - right
  }

  /// A plain decimal's integer digits without leading zeros, and fraction digits without
  /// trailing zeros.
  static func digitSpan(_ text: String) -> (integer: Int, fraction: Int) {
    let unsigned = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
    let parts = unsigned.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    let integer = parts.first.map { $0.drop { $0 == "0" }.count } ?? 0
    let fraction = parts.count > 1 ? String(parts[1].reversed().drop { $0 == "0" }).count : 0
    return (integer, fraction)
  }

  /// Why a total does not read: `out of range` for a plain decimal too long to hold
  /// exactly, else `not a decimal amount`.
  public static func decimalProblem(_ text: String) -> Problem {
    fixedPoint(text) == .long && !isExactDecimal(text) ? .outOfRange : .notADecimal
  }

  /// A plain decimal ("598.94", "-3", "12"): digits, one point, an optional leading minus;
  /// never a locale format ("12,50") or an exponent.
  public static func decimal(_ text: String) -> Decimal? {
    // Up to 18 digits fit a UInt64 exactly: built directly, without Foundation's parser
    // (an order's total is read per row); longer ones go through it.
    switch fixedPoint(text) {
    case nil:
      return nil
    case .long:
      // Foundation keeps 38 significant digits and rounds the rest away without a word:
      // an amount it cannot hold exactly is none (`isExactDecimal` says which).
      guard isExactDecimal(text),
        let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")), !value.isNaN
      else { return nil }
      return value
    case .value(var mantissa, var fraction, let negative):
      guard mantissa > 0 else { return .zero }
      // Trailing zeros of the fraction go, as Foundation's parser drops them.
      while fraction > 0, mantissa % 10 == 0 {
        mantissa /= 10
        fraction -= 1
      }
      return Decimal(sign: negative ? .minus : .plus, exponent: -Int(fraction), significand: Decimal(mantissa))
    }
  }
}
