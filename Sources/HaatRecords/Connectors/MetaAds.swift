import Foundation
import HaatCore
import HaatProtocol

extension SourceKind {
  /// A Meta ad account's results per ad and day, from the Marketing API's insights, as an
  /// asynchronous report run.
  public static let metaAds = SourceKind("meta_ads", MetaAdsConnector.self)
}

/// A Meta ad account's results per ad and day, through an asynchronous report run
/// (https://developers.facebook.com/docs/marketing-api/insights/best-practices/, "Insights
/// API Asynchronous Jobs"):
///
/// 1. `POST {url}/act_{account}/insights?level=ad&time_increment=1&time_range=…&fields=…`
///    starts a run and answers `{"report_run_id": …}`;
/// 2. `GET {url}/{run}` is polled (1 s, doubling to 10 s) until `async_status` is
///    `Job Completed` with `async_percent_completion` 100; `Job Failed` or `Job Skipped`
///    fails the task, retryable (the next attempt starts a new run);
/// 3. `GET {url}/{run}/insights` is read page by page (`paging.next`).
///
/// Every number is a string (`"5339.5"`, `"361324"`), `actions` and `purchase_roas` are
/// lists of `{action_type, value}`: conversions are the purchases (`omni_purchase`, else
/// `purchase`, else `offsite_conversion.fb_pixel_purchase`: they overlap, so one is taken,
/// never their sum), and `purchase_roas` is Meta's claimed ROAS. `account` is the ad account
/// id (digits; `act_` is added), `since`/`until` the days (`until` left out: through
/// today), planned as windows of 30 days. A recurring source reads what is newer than its
/// bookmark (the last day it read) and again the last 28 days, which Meta revises
/// (`DayReading`); the `ads` report lays the re-read days over the earlier run's.
/// Graph errors are classified as for the other Meta kinds.
public struct MetaAdsConnector: JSONPageConnector {
  public static let kind = SourceKind.metaAds
  public static let summary =
    "a Meta ad account's results per ad and day, from the Marketing API's insights (account: the ad account id; since/until)"
  public static let records: Set<RecordType> = [.adInsight]
  public static let hosts = ["graph.facebook.com"]
  public static let reportsByDay = true
  /// The Ads Insights business use case allows hundreds of calls an hour per account; a run
  /// costs a few. One request a second keeps a cluster well inside it.
  public static let defaultRequestsPerSecond: Double? = 1
  public static let maxWindowDays = 30
  /// Meta's insights for the last 28 days change after the fact (conversions are
  /// attributed back to the day of the view or click, up to its 28-day attribution window),
  /// so a later run reads them again.
  public static let lookbackDays = 28
  public static let resumable = true
  static let fields = ["ad_id", "campaign_id", "spend", "impressions", "clicks", "actions", "purchase_roas"]
  static let purchases = ["omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase"]

  public static func check(_ source: inout Source, field: String) throws(HaatError) {
    if source.url.isEmpty { source.url = MetaGraph.defaultBaseURL }
    try SourceChecks.url(source.url, field: "\(field).url", kind: kind)
    var account = source.account
    if account.hasPrefix("act_") { account.removeFirst(4) }
    guard !account.isEmpty, account.allSatisfy({ $0.isASCII && $0.isNumber }) else {
      throw HaatError(
        .badSpec, "must be the ad account id (digits), not \"\(source.account)\"", field: "\(field).account")
    }
    source.account = account
    try Days.check(source, field: field)
    if source.platform.isEmpty { source.platform = "facebook" }
  }

  public static func taskCount(for source: Source) -> Int { Days.windowCount(source, days: maxWindowDays) }

  public static func plan(_ task: inout TaskSpec, part: Int, of source: Source) {
    Days.plan(&task, part: part, of: source, days: maxWindowDays)
  }

  private enum Phase {
    case start
    case poll(run: String, polls: Int)
    case read
  }

  private let source: Source
  private let reading: DayReading
  private let limits: ReadLimits
  private var phase = Phase.start
  private var index: UInt64 = 0
  public var pageBuffer: PageBuffer
  public private(set) var counts = ReadCounts(distinct: true)

  public init(task: TaskSpec, limits: ReadLimits) {
    source = task.source
    reading = DayReading(task: task, lookbackDays: Self.lookbackDays)
    self.limits = limits
    pageBuffer = PageBuffer(limit: limits.maxPageBytes)
  }

  private var base: String {
    var url = source.url
    while url.hasSuffix("/") { url.removeLast() }
    return url
  }

  public var bookmark: String { reading.bookmark }
  public var coverage: DayCoverage? { reading.coverage }

  public mutating func firstRequest() throws(ExportError) -> PageRequest? {
    // An earlier run read these days, and Meta no longer revises them.
    guard let window = reading.days else { return nil }
    let range = #"{"since":"\#(window.start)","until":"\#(window.end)"}"#
    return PageRequest(
      url: "\(base)/act_\(source.account)/insights?level=ad&time_increment=1&time_range=\(MetaGraph.encode(range))"
        + "&fields=\(MetaGraph.encode(Self.fields.joined(separator: ",")))",
      post: true)
  }

  /// The statuses of a run still on its way (Meta's AdReportRun reference); "Job Completed"
  /// short of 100 % is polled again too.
  static let waitingStatuses: Set<String> = ["Job Not Started", "Job Started", "Job Running", "Job Completed"]
  /// Polls of one run before the task gives up on it: 1, 2, 4, 8 s, then every 10 s, so
  /// about an hour.
  static let maxPolls = 364

  public mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    let body = pageBuffer.take()
    if let error = MetaGraph.classify(response, body: body) { throw error }
    guard let page = JSONValue.parse(body) else {
      throw ExportError("a Marketing API answer is not JSON (\(body.count) bytes, HTTP \(response.status))")
    }
    switch phase {
    case .start:
      let run: String
      switch page["report_run_id"] {
      case .count(let number)?: run = String(number)
      case .string(let text)? where MetaGraph.isNodeID(text): run = text
      default: throw ExportError("Meta did not start a report run: no report_run_id (\(body.count) bytes)")
      }
      phase = .poll(run: run, polls: 0)
      return PageRequest(url: "\(base)/\(run)")
    case .poll(let run, let polls):
      let status = page["async_status"]?.string ?? ""
      let percent = page["async_percent_completion"]?.count ?? 0
      switch status {
      case "Job Completed" where percent == 100:
        phase = .read
        return PageRequest(url: "\(base)/\(run)/insights?limit=500")
      case "Job Failed", "Job Skipped":
        let said = page["error_message"]?.string.map { ": \($0)" } ?? ""
        throw ExportError(
          "Meta's report run \(run) ended \"\(status)\"\(said); a new run is started on the next attempt",
          code: "platform_error", retryable: true)
      case _ where !Self.waitingStatuses.contains(status):
        // Waited for, it would be polled forever (a tester's "Job Exploded").
        throw ExportError(
          "Meta's report run \(run) answered async_status \"\(DisplayText.escape(String(status.prefix(64))))\", which is none Meta documents; a new run is started on the next attempt",
          code: "platform_error", retryable: true)
      case _ where polls + 1 >= Self.maxPolls:
        // A run that never completes held a slot for good, polled every 10 s (a tester).
        throw ExportError(
          "Meta's report run \(run) did not complete in \(Self.maxPolls) polls (about an hour; last \"\(status)\" at \(percent) %); a new run is started on the next attempt",
          code: "platform_error", retryable: true)
      default:
        // Not started, started, running, or completed short of 100 %: ask again later.
        phase = .poll(run: run, polls: polls + 1)
        return PageRequest(url: "\(base)/\(run)", waitMs: min(10_000, 1_000 << UInt64(min(polls, 4))))
      }
    case .read:
      guard let rows = page["data"]?.array else { throw ExportError("a Marketing API page has no \"data\" list") }
      for row in rows {
        index += 1
        counts.take(insight(from: row).map { .adInsight($0) }, row: index, keep: limits.maxProblems, emit: emit)
      }
      return MetaGraph.next(page).map { PageRequest(url: $0) }
    }
  }

  public mutating func pageFailed(_ response: PageResponse, body: [UInt8]) throws(ExportError) -> PageRequest? {
    if let error = MetaGraph.classify(response, body: body) { throw error }
    return nil
  }

  private func insight(from row: JSONValue) -> Result<AdInsightRecord, RowProblem.Field> {
    guard row.object != nil else { return .failure(.init("", .notAnObject)) }
    guard let day = row["date_start"]?.string, Days.number(day) != nil else {
      return .failure(.init("date_start", .invalidTimestamp))
    }
    guard reading.asked(day) else { return .failure(.init("date_start", .outsideWindow)) }
    guard let ad = APIValues.id(row["ad_id"]) else { return .failure(.init("ad_id", .missing)) }
    var insight = AdInsightRecord(
      platform: source.platform.isEmpty ? "facebook" : source.platform, account: source.account, date: day,
      campaign: APIValues.id(row["campaign_id"]) ?? "", ad: ad)
    for (name, keyPath) in [("impressions", \AdInsightRecord.impressions), ("clicks", \.clicks)] {
      switch APIValues.count(row[name]) {
      case .success(let value): insight[keyPath: keyPath] = value
      case .failure(let reason): return .failure(.init(name, reason))
      }
    }
    switch APIValues.decimal(row["spend"]) {
    case .success(let value?) where value < 0: return .failure(.init("spend", .negative))
    case .success(let value): insight.spend = value
    case .failure(let reason): return .failure(.init("spend", reason))
    }
    // One purchase type, the first Meta reports of those that overlap: never their sum.
    let actions = row["actions"]?.array ?? []
    if let purchase = Self.purchases.lazy.compactMap({ type in
      actions.first { $0["action_type"]?.string == type }
    }).first {
      switch APIValues.count(purchase["value"]) {
      case .success(let value): insight.conversions = value
      case .failure(let reason): return .failure(.init("actions.value", reason))
      }
    } else if row["actions"] != nil {
      insight.conversions = 0  // actions reported, none of them a purchase
    }
    if let roas = row["purchase_roas"]?.array?.first {
      switch APIValues.decimal(roas["value"]) {
      case .success(let value?) where value < 0: return .failure(.init("purchase_roas.value", .negative))
      case .success(let value): insight.claimedRoas = value
      case .failure(let reason): return .failure(.init("purchase_roas.value", reason))
      }
    }
    return .success(insight)
  }
}
