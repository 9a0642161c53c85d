extension SourceKind {
  /// A store's product reviews export (Judge.me, Yotpo or Haat's canonical columns).
  public static let reviews = SourceKind("reviews", TableExportConnector<ReviewsExport>.self)
}

/// Product reviews exports, CSV or NDJSON, into `Review` records. Columns are matched by
/// name across the review apps' exports (docs/formats.md "Reviews"): Judge.me's
/// (`rating`, `review_date`, `curated`, `picture_urls`, `reply`, …), Yotpo's (`Review
/// Score`, `Date`, `Product ID`, …) and Haat's canonical ones. The reviewer's name, email
/// and text are not read.
public enum ReviewsExport: TableExportKind {
  public static let kind = SourceKind.reviews
  public static let summary = "a store's product reviews export (Judge.me, Yotpo or canonical; CSV or NDJSON) at a URL"
  public static let record = RecordType.review

  public static let columns: [(field: String, names: [String])] = [
    ("platform", ["platform"]),
    ("account", ["account", "store"]),
    ("id", ["id", "review_id", "review id"]),
    ("created_at", ["created_at", "review_date", "date", "review creation date", "created at", "review date"]),
    ("rating", ["rating", "review score", "review_score", "score", "stars"]),
    ("product", ["product", "product_id", "product id", "product_handle", "product handle", "product sku"]),
    ("verified", ["verified", "verified_buyer", "verified buyer"]),
    ("media", ["media", "media_count", "picture_urls", "pictures", "images"]),
    ("replied", ["replied", "reply", "store reply", "comment"]),
    ("status", ["status", "curated", "published"]),
  ]
  public static let required = ["created_at", "rating"]

  /// The store's reply is read only as "replied": its text may hold line breaks.
  public static let freeText: Set<String> = ["replied"]

  public static func record(_ row: TableRow, platform: String, account: String) -> Result<CanonicalRecord?, RowProblem>
  {
    guard let created = row["created_at"] else { return row.problem("created_at", .missing) }
    guard let at = Values.looseTimestamp(created) else { return row.problem("created_at", .invalidTimestamp) }
    guard let stars = row["rating"] else { return row.problem("rating", .missing) }
    // "5", "5.0" (some apps write a decimal), never 0 or 6, read exactly: 4.9999999999999999999
    // is not 5.
    guard case .whole(false, let value)? = Values.wholeNumber(stars), (1...5).contains(value) else {
      return row.problem("rating", .outOfRange)
    }
    var media: UInt32 = 0
    if let text = row["media"] {
      if let number = Values.wholeNumber(text) {
        // "2.0" is a count; "-1" or "1.5" is none.
        guard case .whole(let negative, let count) = number, !negative || count == 0, count <= UInt32.max else {
          return row.problem("media", .outOfRange)
        }
        media = UInt32(count)
      } else {
        // The apps' comma-separated picture URLs: an item with a "/" and a "." is one;
        // "none", "N/A", "null", "[]" are none.
        media = UInt32(text.split(separator: ",").count { $0.contains("/") && $0.contains(".") })
      }
    }
    let replied = row["replied"].map { Values.flag($0) ?? true } ?? false
    var status = row["status"]?.lowercased() ?? ""
    if status == "ok" { status = "published" }  // Judge.me's `curated`
    if let flag = Values.flag(status) { status = flag ? "published" : "hidden" }
    return .success(
      .review(
        ReviewRecord(
          platform: row["platform"] ?? (platform.isEmpty ? "web" : platform), account: row["account"] ?? account,
          id: row["id"] ?? "", createdAt: at, rating: UInt8(value), product: row["product"] ?? "",
          verified: row["verified"].flatMap(Values.flag), media: media, replied: replied, status: status)))
  }
}
