import Foundation
import HaatProtocol

extension SourceKind {
  /// Shopify's admin "Export orders" CSV.
  public static let shopifyOrdersCSV = SourceKind("shopify_orders_csv", TableExportConnector<ShopifyOrdersExport>.self)
}

/// Shopify's admin "Export orders" CSV into `Order` records: one row per line item, the
/// order's own columns (Created at, Total, …) only on its first row, so later rows of an
/// order are skipped. Columns are matched by name, in any case, across the export's
/// versions (`Cancelled at`/`Canceled at`, `Lineitem sku`/`Lineitem SKU`); dates are
/// `2012-01-01 11:13:25 -0500`. The customer is a one-way key of the order's email
/// (`PrivateKey`), never the address. Landing and referring sites are read where the file
/// has them (the exports seen have not). Revenue is net: a `voided` order is no order, and
/// `Refunded Amount` comes off `Total`.
public enum ShopifyOrdersExport: TableExportKind {
  public static let kind = SourceKind.shopifyOrdersCSV
  public static let summary = "a Shopify admin orders export (CSV, one row per line item) at a URL"
  public static let record = RecordType.order

  public static let columns: [(field: String, names: [String])] = [
    ("name", ["name"]),
    ("id", ["id"]),
    ("email", ["email"]),
    ("created_at", ["created at"]),
    ("financial_status", ["financial status"]),
    ("total", ["total"]),
    ("refunded", ["refunded amount"]),
    ("currency", ["currency"]),
    ("landing_site", ["landing site"]),
    ("referring_site", ["referring site"]),
  ]
  public static let required = ["name", "created_at", "total"]
  /// Shopify writes an order's line items on consecutive rows under its Name: a row with the
  /// Name of the row before is one of them, whichever of the order's columns it repeats.
  public static let groupedBy: String? = "name"
  private static let orderFields = OrdersExport.OrderFields(Self.self)
  private static let refunded = Self.field("refunded")

  /// A voided order, skipped with its later line items whatever columns they repeat.
  public static func startsSkippedRecord(_ row: TableRow) -> Bool {
    row["financial_status"]?.lowercased() == "voided"
  }

  public static func record(_ row: TableRow, platform: String, account: String) -> Result<CanonicalRecord?, RowProblem>
  {
    guard let name = row["name"] else { return row.problem("name", .missing) }
    // A later line item of an order: the order's own columns are empty.
    if row["created_at"] == nil, row["total"] == nil, row["financial_status"] == nil { return .success(nil) }
    // A voided order's payment was never taken: no sale, so not an order of any report.
    if startsSkippedRecord(row) { return .success(nil) }
    return OrdersExport.order(
      row, orderFields, id: row["id"] ?? name, customer: row["email"].map { "email:" + PrivateKey.of($0) } ?? "",
      platform: platform, account: account, refunded: refunded)
  }
}
