import Foundation
import Synchronization

/// Shopify's Admin REST API as the fixture server plays it, under
/// `/shopify/{shop}/admin/api/2024-01/orders.json`. Shapes follow Shopify's reference and
/// its SDKs' fixtures (docs/fixtures.md): `{"orders": […]}` with money as strings and
/// `created_at` in the shop's offset, `Link: <…>; rel="next"` paging with an opaque
/// `page_info`, `X-Shopify-Shop-Api-Call-Limit`, 429 with a fractional `Retry-After`, and
/// `{"errors": …}` bodies. Orders are generated from the shop's name.
public final class ShopifyFixture: Sendable {
  public struct Settings: Sendable {
    public var ordersPerShop = 300
    public var tokens: Set<String> = ["fixture-shopify-token"]
    /// Requests per second a token may make; past it, 429.
    public var requestsPerSecond: Int? = nil
    /// Requests (counted from 1 over the fixture's life) answered 429 whatever the rate:
    /// a throttled page a test can count on, however slowly it runs.
    public var throttledRequests: Set<Int> = []
    public init() {}
  }

  public let settings = Mutex(Settings())
  private let window = Mutex<[String: (second: Int64, count: Int)]>([:])
  private let throttledCount = Atomic<Int>(0)
  private let requestCount = Atomic<Int>(0)
  /// Requests refused with 429 so far.
  public var throttled: Int { throttledCount.load(ordering: .relaxed) }

  init() {}

  public static let newestEpoch: Int64 = 1_790_000_000

  /// Order `index` (0 = newest) of `shop`, as generated.
  public struct Order: Sendable, Equatable {
    public var id: UInt64
    public var createdEpoch: Int64
    /// In cents.
    public var totalCents: UInt64
    /// nil: a guest order.
    public var customer: UInt64?
    public var landingSite: String?
  }

  public static func order(shop: String, index: Int) -> Order {
    let salt = UInt64(shop.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xFFFF })
    let i = UInt64(index)
    let landings: [String?] = [
      "/products/tee?utm_source=facebook&utm_medium=paid_social&utm_campaign=eid%20sale",
      "/?UTM_SOURCE=Instagram&utm_medium=social&fbclid=IwAR0abc", nil, "/collections/all?gclid=Cj0KCQ",
      "/pages/about",
    ]
    return Order(
      id: 450_789_469 + i * 7, createdEpoch: newestEpoch - Int64(index) * 3 * 3600,
      totalCents: 1_000 + (i &* 7_919 &+ salt) % 50_000, customer: index % 6 == 2 ? nil : 207_119_551 + i % 40,
      landingSite: landings[index % landings.count])
  }

  func answer(path: String, query: [String: String], token: String, host: String) -> (Int, [(String, String)], String) {
    let settings = self.settings.withLock { $0 }
    let json = ("Content-Type", "application/json; charset=utf-8")
    guard settings.tokens.contains(token) else {
      return (
        401, [json], #"{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}"#
      )
    }
    let second = Int64(Date().timeIntervalSince1970)
    let count = window.withLock { window -> Int in
      let seen = window[token].flatMap { $0.second == second ? $0.count : nil } ?? 0
      window[token] = (second, seen + 1)
      return seen + 1
    }
    let bucket = 40
    let callLimit = ("X-Shopify-Shop-Api-Call-Limit", "\(min(count, bucket))/\(bucket)")
    let number = requestCount.add(1, ordering: .relaxed).newValue
    if settings.requestsPerSecond.map({ count > $0 }) == true || settings.throttledRequests.contains(number) {
      throttledCount.add(1, ordering: .relaxed)
      return (
        429, [json, callLimit, ("Retry-After", "2.0")],
        #"{"errors":"Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}"#
      )
    }
    // /shopify/{shop}/admin/api/{version}/orders.json
    let parts = path.split(separator: "/").map(String.init)
    guard parts.count == 6, parts[2] == "admin", parts[5] == "orders.json" else {
      return (404, [json, callLimit], #"{"errors":"Not Found"}"#)
    }
    let shop = parts[1]
    // page_info carries the offset and the filter, as Shopify's does; it is used as given.
    var offset = 0
    var since = query["created_at_min"] ?? ""
    if let info = query["page_info"] {
      guard let data = Data(base64Encoded: info), let text = String(data: data, encoding: .utf8),
        let fields = Optional(text.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)),
        let at = pagingCount(fields.first)
      else { return (400, [json, callLimit], #"{"errors":{"page_info":"Invalid value."}}"#) }
      offset = at
      since = fields.count > 1 ? String(fields[1]) : ""
    }
    let sinceEpoch = since.isEmpty ? nil : Self.epoch(since)
    let limit = min(250, max(1, Int(query["limit"] ?? "") ?? 50))
    let total = (0..<settings.ordersPerShop).prefix { index in
      sinceEpoch.map { Self.order(shop: shop, index: index).createdEpoch >= $0 } ?? true
    }.count
    let end = min(total, offset + limit)
    let items = (offset..<max(offset, end)).map { Self.orderJSON(Self.order(shop: shop, index: $0)) }
    var headers = [json, callLimit]
    func link(_ at: Int) -> String {
      let info = Data("\(at)|\(since)".utf8).base64EncodedString()
      return "<http://\(host)\(path)?limit=\(limit)&page_info=\(info)>"
    }
    var links: [String] = []
    if offset > 0 { links.append(link(max(0, offset - limit)) + #"; rel="previous""#) }
    if end < total { links.append(link(end) + #"; rel="next""#) }
    if !links.isEmpty { headers.append(("Link", links.joined(separator: ", "))) }
    return (200, headers, #"{"orders":[\#(items.joined(separator: ","))]}"#)
  }

  /// Shopify's `created_at`: the shop's offset (-05:00 here).
  static func time(_ epoch: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    formatter.timeZone = TimeZone(secondsFromGMT: -5 * 3600)
    return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(epoch)))
  }

  static func epoch(_ text: String) -> Int64? {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.date(from: text).map { Int64($0.timeIntervalSince1970) }
  }

  static func orderJSON(_ order: Order) -> String {
    let cents = order.totalCents % 100
    let total = "\(order.totalCents / 100).\(cents < 10 ? "0" : "")\(cents)"
    let customer =
      order.customer.map { #"{"id":\#($0),"email":"c\#($0)@mail.example.com","currency":"USD"}"# } ?? "null"
    let landing = order.landingSite.map { #""\#($0)""# } ?? "null"
    let name = "#\(order.id % 10_000)"
    return "{\"id\":\(order.id),\"name\":\"\(name)\",\"created_at\":\"\(time(order.createdEpoch))\","
      + "\"financial_status\":\"paid\",\"total_price\":\"\(total)\",\"current_total_price\":\"\(total)\","
      + "\"currency\":\"USD\",\"customer\":\(customer),"
      + "\"landing_site\":\(landing),\"referring_site\":\"https://www.facebook.com/\"}"
  }
}
