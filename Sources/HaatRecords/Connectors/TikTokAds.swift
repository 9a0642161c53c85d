import Foundation
import HaatCore
import HaatProtocol

extension SourceKind {
  /// A TikTok advertiser's daily ad results, from the Business API's integrated report.
  public static let tiktokAds = SourceKind("tiktok_ads", TikTokAdsConnector.self)
}

/// A TikTok advertiser's results per ad and day: `GET {url}/report/integrated/get/` with
/// `report_type=BASIC`, `data_level=AUCTION_AD`, dimensions `ad_id` and `stat_time_day`
/// (https://business-api.tiktok.com/portal/docs?id=1740302848100353; the parameters as
/// TikTok's own SDK declares them, `tiktok/tiktok-business-api-sdk`
/// `report_integrated_get.yml`). `url` is the API base (default
/// `https://business-api.tiktok.com/open_api/v1.3`), `account` the advertiser id, and
/// `since`/`until` the days, which are planned as tasks of at most 30 days (the longest
/// window a daily report takes); `until` left out reads through today. A recurring source
/// reads what is newer than its bookmark and again the last 28 days (`DayReading`). The
/// token goes in `Access-Token`.
///
/// TikTok's quirks: an error is HTTP 200 with a non-zero `code` (40100 too many requests,
/// 40105 a revoked token, 40002 a bad parameter); pages are numbered (`page` up to
/// `page_info.total_page`); every metric is a string (`"10505.0"`, `"76.73"`) and `"-"`
/// where the platform has none; an id may be a number or a string.
public struct TikTokAdsConnector: JSONPageConnector {
  public static let kind = SourceKind.tiktokAds
  public static let summary =
    "a TikTok advertiser's results per ad and day, from the Business API (account: the advertiser id; since/until)"
  public static let records: Set<RecordType> = [.adInsight]
  public static let auth = AuthScheme(header: "Access-Token")
  public static let hosts = ["business-api.tiktok.com"]
  public static let reportsByDay = true
  /// TikTok's default for the reporting endpoints is 10 requests a second per app.
  public static let defaultRequestsPerSecond: Double? = 10
  public static let defaultBaseURL = "https://business-api.tiktok.com/open_api/v1.3"
  /// The longest window of days one daily report may ask for.
  public static let maxWindowDays = 30
  /// TikTok attributes a conversion to the day of the click up to 28 days later (its
  /// longest click-through window), so a later run reads the last 28 days again.
  public static let lookbackDays = 28
  public static let resumable = true
  static let pageSize = 1_000
  static let metrics = ["campaign_id", "spend", "impressions", "clicks", "conversion", "complete_payment_roas"]

  public static func check(_ source: inout Source, field: String) throws(HaatError) {
    if source.url.isEmpty { source.url = defaultBaseURL }
    try SourceChecks.url(source.url, field: "\(field).url", kind: kind)
    guard !source.account.isEmpty, source.account.allSatisfy({ $0.isASCII && $0.isNumber }) else {
      throw HaatError(
        .badSpec, "must be the advertiser id (digits), not \"\(source.account)\"", field: "\(field).account")
    }
    try Days.check(source, field: field)
    if source.platform.isEmpty { source.platform = "tiktok" }
  }

  public static func taskCount(for source: Source) -> Int { Days.windowCount(source, days: maxWindowDays) }

  public static func plan(_ task: inout TaskSpec, part: Int, of source: Source) {
    Days.plan(&task, part: part, of: source, days: maxWindowDays)
  }

  private let source: Source
  private let reading: DayReading
  private let limits: ReadLimits
  public var pageBuffer: PageBuffer
  private var page = 1
  private var index: UInt64 = 0
  public private(set) var counts = ReadCounts(distinct: true)

  public init(task: TaskSpec, limits: ReadLimits) {
    source = task.source
    reading = DayReading(task: task, lookbackDays: Self.lookbackDays)
    self.limits = limits
    pageBuffer = PageBuffer(limit: limits.maxPageBytes)
  }

  public var bookmark: String { reading.bookmark }
  public var coverage: DayCoverage? { reading.coverage }

  public mutating func firstRequest() throws(ExportError) -> PageRequest? {
    // nil: an earlier run read these days, and TikTok no longer revises them.
    reading.days.map { request(page: 1, window: $0) }
  }

  private func request(page: Int, window: DateWindow) -> PageRequest {
    var url = source.url
    while url.hasSuffix("/") { url.removeLast() }
    func list(_ items: [String]) -> String {
      ("[" + items.map { "\"\($0)\"" }.joined(separator: ",") + "]")
        .addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
    }
    url +=
      "/report/integrated/get/?advertiser_id=\(source.account)&report_type=BASIC&data_level=AUCTION_AD"
      + "&dimensions=\(list(["ad_id", "stat_time_day"]))&metrics=\(list(Self.metrics))"
      + "&start_date=\(window.start)&end_date=\(window.end)&page=\(page)&page_size=\(Self.pageSize)"
    return PageRequest(url: url)
  }

  public mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    let body = pageBuffer.take()
    guard let answer = JSONValue.parse(body), let code = answer["code"]?.count else {
      throw ExportError("a TikTok page is not TikTok's JSON envelope (\(body.count) bytes, HTTP \(response.status))")
    }
    // Errors come as HTTP 200 with a non-zero code.
    guard code == 0 else { throw Self.error(code: code, answer) }
    guard let data = answer["data"], let items = data["list"]?.array else {
      throw ExportError("a TikTok page has no data.list (\(body.count) bytes)")
    }
    for item in items {
      index += 1
      counts.take(insight(from: item).map { .adInsight($0) }, row: index, keep: limits.maxProblems, emit: emit)
    }
    let pages = data["page_info"]?["total_page"]?.count ?? 1
    guard UInt64(page) < pages else { return nil }
    page += 1
    return reading.days.map { request(page: page, window: $0) }
  }

  public mutating func pageFailed(_ response: PageResponse, body: [UInt8]) throws(ExportError) -> PageRequest? {
    // A transport-level status can still carry TikTok's envelope.
    if let answer = JSONValue.parse(body), let code = answer["code"]?.count, code != 0 {
      throw Self.error(code: code, answer)
    }
    return nil
  }

  /// TikTok's error code, classified (its codes: https://business-api.tiktok.com/portal/docs?id=1737172488964097).
  static func error(code: UInt64, _ answer: JSONValue) -> ExportError {
    let message = answer["message"]?.string ?? ""
    let said = "TikTok error \(code): \(message)"
    switch code {
    case 40100:
      return ExportError(said, code: "throttled", retryable: true, retryAfterMs: 1_000)
    case 40102, 40104, 40105:
      return ExportError("\(said); renew the credential on the workers", code: "token_rejected")
    case 40001:
      return ExportError("\(said); the token has no access to this advertiser", code: "forbidden")
    case 50000...59999:
      return ExportError(said, code: "platform_error", retryable: true)
    default:
      return ExportError(said, code: "platform_error")
    }
  }

  private func insight(from item: JSONValue) -> Result<AdInsightRecord, RowProblem.Field> {
    guard item.object != nil else { return .failure(.init("", .notAnObject)) }
    guard let day = item["dimensions"]?["stat_time_day"]?.string, Days.number(String(day.prefix(10))) != nil else {
      return .failure(.init("dimensions.stat_time_day", .invalidTimestamp))
    }
    // A row for a day outside the task's window would never be replaced by a later run's
    // read of its days (found by a tester: 2099-01-01 in a task for one day of 2026).
    guard reading.asked(String(day.prefix(10))) else {
      return .failure(.init("dimensions.stat_time_day", .outsideWindow))
    }
    guard let ad = APIValues.id(item["dimensions"]?["ad_id"]) else {
      return .failure(.init("dimensions.ad_id", .missing))
    }
    let metrics = item["metrics"]
    var insight = AdInsightRecord(
      platform: source.platform.isEmpty ? "tiktok" : source.platform, account: source.account,
      date: String(day.prefix(10)), campaign: APIValues.id(metrics?["campaign_id"]) ?? "", ad: ad)
    for (name, keyPath) in [
      ("impressions", \AdInsightRecord.impressions), ("clicks", \.clicks), ("conversion", \.conversions),
    ] {
      switch APIValues.count(metrics?[name]) {
      case .success(let value): insight[keyPath: keyPath] = value
      case .failure(let reason): return .failure(.init("metrics.\(name)", reason))
      }
    }
    for (name, keyPath) in [("spend", \AdInsightRecord.spend), ("complete_payment_roas", \.claimedRoas)] {
      switch APIValues.decimal(metrics?[name]) {
      case .success(let value?) where value < 0: return .failure(.init("metrics.\(name)", .negative))
      case .success(let value): insight[keyPath: keyPath] = value
      case .failure(let reason): return .failure(.init("metrics.\(name)", reason))
      }
    }
    return .success(insight)
  }
}
