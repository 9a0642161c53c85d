import Foundation
import HaatCore
import HaatProtocol

extension SourceKind {
  /// A Shopify store's orders, from the Admin REST API.
  public static let shopifyOrders = SourceKind("shopify_orders", ShopifyOrdersConnector.self)
}

/// A Shopify store's orders: `GET {url}/orders.json?status=any&limit=250&fields=…`
/// (https://shopify.dev/api/admin-rest/2024-01/resources/order), where `url` is the shop's
/// Admin API base, e.g. `https://dhaka-threads.myshopify.com/admin/api/2024-01`, and
/// `account` names the store. The token goes in `X-Shopify-Access-Token`. Pages follow the
/// `Link: <…>; rel="next"` header (its `page_info` URL as given) until there is none.
///
/// Revenue is net: an order's `current_total_price` (after its refunds and returns) where
/// Shopify gives one, else its `total_price`, and a `voided` order is no order.
/// Money is a decimal string (`"598.94"`) and stays one; `created_at` carries the shop's
/// offset; a guest order has no `customer`. Throttling is HTTP 429 with a fractional
/// `Retry-After`; an error body is `{"errors": …}`. The bookmark is the newest order's
/// time; a task given one asks only for orders created since (`created_at_min`).
public struct ShopifyOrdersConnector: JSONPageConnector {
  public static let kind = SourceKind.shopifyOrders
  public static let summary = "a Shopify store's orders from the Admin REST API (url: the shop's /admin/api/VERSION)"
  public static let records: Set<RecordType> = [.order]
  public static let auth = AuthScheme(header: "X-Shopify-Access-Token")
  /// Shopify's standard plan: 2 requests a second per store and app.
  public static let defaultRequestsPerSecond: Double? = 2
  public static let hosts = ["*.myshopify.com"]
  public static let resumable = true
  static let fields =
    "id,name,created_at,financial_status,total_price,current_total_price,currency,customer,landing_site,referring_site"

  public static func check(_ source: inout Source, field: String) throws(HaatError) {
    try SourceChecks.url(source.url, field: "\(field).url", kind: kind)
    guard !source.account.isEmpty else {
      throw HaatError(.badSpec, "names the store (e.g. its shop name)", field: "\(field).account")
    }
    if source.platform.isEmpty { source.platform = "web" }
  }

  private let source: Source
  private let limits: ReadLimits
  /// From the bookmark: orders created from this `created_at` on are asked for, and those
  /// at exactly it that the last run read (`seen`; nil in a bookmark of the time alone, as
  /// an older Haat wrote it: every one at that time) are skipped.
  private let since: String
  private let seen: Set<String>?
  private let given: String
  public var pageBuffer: PageBuffer
  private var index: UInt64 = 0
  /// The newest order's second and the ids at it, for the next run, and its `created_at` as
  /// written.
  private var newest = SecondBoundary(separators: [",", " "])
  private var newestWritten = ""
  // An order a later page hands again (orders created while paging) is counted once: it was
  // counted twice, revenue and all (a tester).
  public private(set) var counts = ReadCounts(distinct: true)

  public init(task: TaskSpec, limits: ReadLimits) {
    source = task.source
    self.limits = limits
    given = task.bookmark
    (since, seen) = Self.parse(bookmark: task.bookmark)
    pageBuffer = PageBuffer(limit: limits.maxPageBytes)
  }

  /// `CREATED_AT` or `CREATED_AT ID,ID,…` (the orders at that time, so that one created at
  /// the same second after the last run is read, not skipped with the ones it read).
  static func parse(bookmark: String) -> (String, Set<String>?) {
    let parts = bookmark.split(separator: " ", maxSplits: 1)
    guard parts.count == 2 else { return (bookmark, nil) }
    return (String(parts[0]), Set(parts[1].split(separator: ",").map(String.init)))
  }

  /// The newest order's `created_at`, as Shopify wrote it, and the ids of the orders at it;
  /// an empty run keeps the bookmark it was given.
  public var bookmark: String {
    guard let seconds = newest.seconds else { return given }
    // Past the second when it overflowed (SecondBoundary): the next one, in UTC.
    if newest.overflowed { return Date(timeIntervalSince1970: TimeInterval(seconds + 1)).formatted(.iso8601) }
    return newest.ids.isEmpty ? newestWritten : "\(newestWritten) \(newest.ids.joined(separator: ","))"
  }

  /// Takes `order` into the boundary the next run starts from.
  private mutating func bound(_ order: OrderRecord, written: String) {
    if newest.take(seconds: order.createdAt.epochSeconds, id: order.id) { newestWritten = written }
  }

  public mutating func firstRequest() throws(ExportError) -> PageRequest? {
    var url = source.url
    while url.hasSuffix("/") { url.removeLast() }
    url += "/orders.json?status=any&limit=250&fields=" + Self.fields
    if !since.isEmpty {
      url += "&created_at_min=" + (since.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? since)
    }
    return PageRequest(url: url)
  }

  public mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    let body = pageBuffer.take()
    guard let orders = JSONValue.parse(body)?["orders"]?.array else {
      throw ExportError("a Shopify page has no \"orders\" list (\(body.count) bytes, HTTP \(response.status))")
    }
    for item in orders {
      index += 1
      // A voided order's payment was never taken: no sale, so not an order of any report.
      if item["financial_status"]?.string?.lowercased() == "voided" { continue }
      let read = order(from: item)
      // The bookmark is `created_at` as Shopify wrote it: `created_at_min` includes its own
      // second, so what the last run read there is skipped, and stays in the boundary.
      let written = item["created_at"]?.string ?? ""
      if case .success(let order) = read, written == since, seen?.contains(order.id) ?? true {
        bound(order, written: written)
        continue
      }
      if counts.take(read.map { .order($0) }, row: index, keep: limits.maxProblems, emit: emit),
        case .success(let order) = read
      {
        bound(order, written: written)
      }
    }
    return Self.nextLink(response.combinedHeader("link")).map { PageRequest(url: $0) }
  }

  public mutating func pageFailed(_ response: PageResponse, body: [UInt8]) throws(ExportError) -> PageRequest? {
    let said = JSONValue.parse(body)?["errors"].map(Self.describe) ?? ""
    switch response.status {
    case 401, 403:
      throw ExportError(
        "Shopify refused the access token (HTTP \(response.status)): \(said); renew the credential on the workers",
        code: "token_rejected")
    default:
      return nil  // the fetcher's error (429 with its Retry-After, 5xx) stands
    }
  }

  /// The `rel="next"` URL of a Link header, if any (`<url>; rel="next", <url>; rel="previous"`,
  /// RFC 8288): a `rel` is a list of types (`rel="next previous"`), and a parameter's quoted
  /// value may hold a comma or a semicolon.
  public static func nextLink(_ header: String?) -> String? {
    guard let header else { return nil }
    var rest = Substring(header)
    while let open = rest.firstIndex(of: "<"), let close = rest[open...].firstIndex(of: ">") {
      let target = rest[rest.index(after: open)..<close]
      // The link's parameters run to the next link's `<` outside quotes.
      var (index, quoted) = (rest.index(after: close), false)
      var parameters: [Substring] = []
      var start = index
      while index < rest.endIndex, quoted || rest[index] != "<" {
        let character = rest[index]
        if character == "\"" { quoted.toggle() }
        if !quoted, character == ";" || character == "," {
          parameters.append(rest[start..<index])
          start = rest.index(after: index)
        }
        index = rest.index(after: index)
      }
      parameters.append(rest[start..<index])
      let isNext = parameters.contains { parameter in
        let pair = parameter.split(separator: "=", maxSplits: 1)
        guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "rel" else { return false }
        let types = pair[1].trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\"", with: "")
        return types.lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" }).contains("next")
      }
      if isNext { return String(target) }
      rest = rest[index...]
    }
    return nil
  }

  static func describe(_ errors: JSONValue) -> String {
    switch errors {
    case .string(let text): return text
    case .object(let fields):
      return fields.sorted { $0.key < $1.key }.map { "\($0.key): \(describe($0.value))" }.joined(separator: "; ")
    case .array(let items): return items.map(describe).joined(separator: ", ")
    default: return "\(errors)"
    }
  }

  private func order(from item: JSONValue) -> Result<OrderRecord, RowProblem.Field> {
    guard item.object != nil else { return .failure(.init("", .notAnObject)) }
    let id: String
    switch item["id"] {
    case .count(let number)?: id = String(number)
    case .string(let text)? where !text.isEmpty: id = text
    default: return .failure(.init("id", .missing))
    }
    guard let written = item["created_at"]?.string else { return .failure(.init("created_at", .missing)) }
    guard let createdAt = Array(written.utf8).withUnsafeBytes({ Values.timestamp($0) }) else {
      return .failure(.init("created_at", .invalidTimestamp))
    }
    guard let totalText = item["total_price"]?.string, let total = Values.decimal(totalText) else {
      return .failure(.init("total_price", item["total_price"]?.string.map(Values.decimalProblem) ?? .notADecimal))
    }
    // What the order is worth now: `current_total_price` reflects its edits, returns and
    // refunds; `total_price` stays what was first charged.
    var net = (total, totalText)
    if let current = item["current_total_price"], current != .null {
      guard let text = current.string, let value = Values.decimal(text) else {
        return .failure(.init("current_total_price", current.string.map(Values.decimalProblem) ?? .notADecimal))
      }
      net = (value, text)
    }
    var customer = ""
    switch item["customer"]?["id"] {
    case .count(let number)?: customer = String(number)
    case .string(let text)?: customer = text
    default: break  // a guest order
    }
    return .success(
      OrderRecord(
        platform: source.platform.isEmpty ? "web" : source.platform, account: source.account, id: id,
        createdAt: createdAt, customer: customer, total: net.0, totalText: net.1,
        currency: item["currency"]?.string ?? "", landingSite: item["landing_site"]?.string ?? "",
        referringSite: item["referring_site"]?.string ?? ""))
  }
}
