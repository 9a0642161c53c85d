import Foundation
import Synchronization

/// TikTok's Business API integrated report as the fixture server plays it, under
/// `/tiktok/open_api/v1.3/report/integrated/get/`. Shapes follow TikTok's SDK declaration
/// and the response examples public clients carry (docs/fixtures.md): HTTP 200 with
/// `{"code", "message", "request_id", "data": {"page_info", "list"}}`, every metric a string,
/// `"-"` where there is none, errors as HTTP 200 with a non-zero `code` and `data: {}`.
/// Results are generated from the advertiser, the day and the ad.
public final class TikTokFixture: Sendable {
  public struct Settings: Sendable {
    public var adsPerAdvertiser = 3
    public var tokens: Set<String> = ["fixture-tiktok-token"]
    /// Requests (counted from 1 over the fixture's life) answered with code 40100.
    public var throttledRequests: Set<Int> = []
    public init() {}
  }

  public let settings = Mutex(Settings())
  private let requestCount = Atomic<Int>(0)

  init() {}

  /// Ad `ad` of `advertiser` on day `day` (days since 1970), as generated.
  public struct Result: Sendable, Equatable {
    public var adID: UInt64
    public var campaignID: String
    /// In cents.
    public var spendCents: UInt64
    public var impressions: UInt64
    public var clicks: UInt64
    public var conversions: UInt64
    /// nil: TikTok writes "-".
    public var roasHundredths: UInt64?
  }

  public static func result(advertiser: String, day: Int, ad: Int) -> Result {
    let salt = UInt64(advertiser.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xFFFF })
    let seed = UInt64(bitPattern: Int64(day)) &* 7_919 &+ UInt64(truncatingIfNeeded: ad) &* 104_729 &+ salt
    let impressions = 1_000 + seed % 20_000
    let clicks = impressions / 100 + seed % 50
    return Result(
      adID: 1_678_604_629_756_978 + UInt64(ad), campaignID: "17000\(ad % 2)", spendCents: 500 + seed % 30_000,
      impressions: impressions, clicks: clicks, conversions: clicks / 10,
      roasHundredths: ad == 2 ? nil : 50 + seed % 400)
  }

  func answer(path: String, query: [String: String], token: String) -> (Int, [(String, String)], String) {
    let settings = self.settings.withLock { $0 }
    let json = ("Content-Type", "application/json")
    let number = requestCount.add(1, ordering: .relaxed).newValue
    let requestID = "2026113014\(number)"
    func failure(_ code: Int, _ message: String) -> (Int, [(String, String)], String) {
      (200, [json], #"{"code":\#(code),"message":"\#(message)","request_id":"\#(requestID)","data":{}}"#)
    }
    guard path == "/tiktok/open_api/v1.3/report/integrated/get/" else {
      return (404, [json], #"{"code":40400,"message":"Not found","data":{}}"#)
    }
    guard settings.tokens.contains(token) else {
      return failure(40105, "Access token is incorrect or has been revoked.")
    }
    if settings.throttledRequests.contains(number) {
      return failure(40100, "Requests made too frequently, please try again later.")
    }
    guard let advertiser = query["advertiser_id"], !advertiser.isEmpty else {
      return failure(40002, "advertiser_id: Missing data for required field.")
    }
    guard let start = query["start_date"].flatMap(Self.day), let end = query["end_date"].flatMap(Self.day),
      start <= end
    else { return failure(40002, "start_date, end_date: Invalid date.") }
    guard end - start < 30 else {
      return failure(40002, "The time span between start_date and end_date cannot exceed 30 days.")
    }
    guard let page = query["page"].map({ pagingCount($0) }) ?? 1, page >= 1 else {
      return failure(40002, "page: Must be greater than or equal to 1 and less than or equal to 100000000.")
    }
    let pageSize = min(1_000, max(1, Int(query["page_size"] ?? "") ?? 10))
    let ads = settings.adsPerAdvertiser
    let total = (end - start + 1) * ads
    let pages = max(1, (total + pageSize - 1) / pageSize)
    let first = (page - 1) * pageSize
    // Past the last page: an empty list, as TikTok answers.
    let items = (first..<max(first, min(total, first + pageSize))).map { index -> String in
      let day = start + index / ads
      let ad = index % ads
      let result = Self.result(advertiser: advertiser, day: day, ad: ad)
      func money(_ cents: UInt64) -> String { "\(cents / 100).\(cents % 100 < 10 ? "0" : "")\(cents % 100)" }
      let roas = result.roasHundredths.map(money) ?? "-"
      // Ids as TikTok writes them: a number, or (for the last ad) a string.
      let adID = ad == ads - 1 ? "\"\(result.adID)\"" : "\(result.adID)"
      return #"{"metrics":{"campaign_id":"\#(result.campaignID)","spend":"\#(money(result.spendCents))","#
        + #""impressions":"\#(result.impressions).0","clicks":"\#(result.clicks)","conversion":"\#(result.conversions)","#
        + #""complete_payment_roas":"\#(roas)"},"dimensions":{"stat_time_day":"\#(Self.date(day)) 00:00:00","ad_id":\#(adID)}}"#
    }
    let body =
      #"{"message":"OK","code":0,"data":{"page_info":{"total_number":\#(total),"page":\#(page),"page_size":\#(pageSize),"total_page":\#(pages)},"#
      + #""list":[\#(items.joined(separator: ","))]},"request_id":"\#(requestID)"}"#
    return (200, [json], body)
  }

  /// "YYYY-MM-DD" → days since 1970 (UTC), by Foundation's calendar.
  public static func day(_ text: String) -> Int? {
    guard text.count == 10 else { return nil }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd"
    formatter.isLenient = false
    guard let date = formatter.date(from: text) else { return nil }
    return Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
  }

  /// Days since 1970 → "YYYY-MM-DD".
  public static func date(_ day: Int) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd"
    return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(day) * 86_400))
  }
}
