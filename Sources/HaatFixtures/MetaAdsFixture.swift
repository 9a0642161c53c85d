import Foundation
import Synchronization

/// Meta's Marketing API insights as asynchronous report runs, as the fixture server plays
/// them under `/meta/vNN.0/`: `POST act_{id}/insights` starts a run
/// (`{"report_run_id": …}`), `GET {run}` reports `async_status` (running for
/// `pollsUntilDone − 1` polls, then `Job Completed` at 100 %), `GET {run}/insights` pages the
/// rows with cursors. Shapes follow Meta's insights and async-jobs pages (docs/fixtures.md):
/// every number a string, `actions` and `purchase_roas` lists of `{action_type, value}`.
public final class MetaAdsFixture: Sendable {
  public struct Settings: Sendable {
    public var adsPerAccount = 3
    public var pollsUntilDone = 3
    /// Runs (counted from 1 over the fixture's life) that end `Job Failed`.
    public var failedRuns: Set<Int> = []
    public var tokens: Set<String> = ["fixture-meta-token"]
    /// Meta revising its recent days: rows of days from `revisedSince` (a day number) on
    /// are served as revision `revision` (more conversions, clicks and spend than first
    /// reported, as late attributions arrive).
    public var revision: UInt64 = 0
    public var revisedSince = Int.max
    public init() {}
  }

  struct Run {
    var account: String
    var first: Int
    var last: Int
    var polls = 0
    var failed: Bool
  }

  public let settings = Mutex(Settings())
  private let runs = Mutex<[String: Run]>([:])
  private let runCount = Atomic<Int>(0)

  init() {}

  /// Report runs started so far.
  public var runsStarted: Int { runCount.load(ordering: .relaxed) }

  /// The days a report run asked for (its `time_range`, as day numbers).
  public struct RunDays: Sendable, Equatable {
    public var account: String
    public var first: Int
    public var last: Int
  }

  /// Every report run's days, in the order the runs were started: the server's log of what
  /// each run read.
  public var runDays: [RunDays] { startedRuns.withLock { $0 } }
  private let startedRuns = Mutex<[RunDays]>([])

  /// Ad `ad` of `account` on day `day` (days since 1970), as generated.
  public struct Row: Sendable, Equatable {
    public var adID: String
    public var campaignID: String
    public var spendCents: UInt64
    public var impressions: UInt64
    public var clicks: UInt64
    /// nil: the ad reports no actions at all.
    public var purchases: UInt64?
    public var roasHundredths: UInt64?
  }

  public static func row(account: String, day: Int, ad: Int, revision: UInt64 = 0) -> Row {
    let salt = UInt64(account.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xFFFF })
    let seed = UInt64(bitPattern: Int64(day)) &* 6_151 &+ UInt64(truncatingIfNeeded: ad) &* 98_317 &+ salt
    let impressions = 2_000 + seed % 50_000 + revision * 101
    let clicks = impressions / 80 + seed % 30 + revision * 3
    let hasActions = ad != 2
    return Row(
      adID: "2385\(ad)00000000\(ad)", campaignID: "2385000000\(ad % 2)",
      spendCents: 1_000 + seed % 90_000 + revision * 250,
      impressions: impressions, clicks: clicks, purchases: hasActions ? clicks / 20 + revision : nil,
      roasHundredths: hasActions ? 80 + seed % 500 : nil)
  }

  /// nil when the path is not the ads API's.
  func answer(method: String, path: String, query: [String: String], token: String, host: String) -> (
    Int, [(String, String)], String
  )? {
    let parts = path.split(separator: "/").map(String.init)  // ["meta", "v21.0", …]
    guard parts.count >= 3 else { return nil }
    let isStart = parts.count == 4 && parts[2].hasPrefix("act_") && parts[3] == "insights"
    let run = runs.withLock { $0[parts[2]] }
    guard isStart || run != nil else { return nil }
    let settings = self.settings.withLock { $0 }
    let json = ("Content-Type", "application/json; charset=UTF-8")
    guard settings.tokens.contains(token) else {
      return (
        400, [json],
        #"{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190,"error_subcode":467,"fbtrace_id":"AbCdEfGhIjK"}}"#
      )
    }
    func bad(_ message: String) -> (Int, [(String, String)], String) {
      (
        400, [json],
        #"{"error":{"message":"(#100) \#(message)","type":"OAuthException","code":100,"fbtrace_id":"AbCdEfGhIjK"}}"#
      )
    }
    if isStart {
      guard method == "POST" else { return bad("Use POST to start an asynchronous report run") }
      guard query["level"] == "ad", query["time_increment"] == "1",
        let range = query["time_range"].flatMap({ try? JSONSerialization.jsonObject(with: Data($0.utf8)) })
          as? [String: String],
        let first = range["since"].flatMap(TikTokFixture.day), let last = range["until"].flatMap(TikTokFixture.day),
        first <= last
      else { return bad("level=ad, time_increment=1 and a time_range {since, until} are required") }
      let number = runCount.add(1, ordering: .relaxed).newValue
      let id = "604477554\(8000 + number)"
      startedRuns.withLock { $0.append(RunDays(account: String(parts[2].dropFirst(4)), first: first, last: last)) }
      runs.withLock {
        $0[id] = Run(
          account: String(parts[2].dropFirst(4)), first: first, last: last, failed: settings.failedRuns.contains(number)
        )
      }
      // Meta's sample writes the id as a number.
      return (200, [json], #"{"report_run_id":\#(id)}"#)
    }
    guard var run else { return nil }
    if parts.count == 3 {
      run.polls += 1
      runs.withLock { $0[parts[2]] = run }
      if run.failed {
        return (
          200, [json],
          #"{"id":"\#(parts[2])","async_status":"Job Failed","async_percent_completion":0,"error_message":"Please reduce the amount of data you're asking for"}"#
        )
      }
      let done = run.polls >= settings.pollsUntilDone
      return (
        200, [json],
        #"{"id":"\#(parts[2])","account_id":"\#(run.account)","time_ref":1459788928,"async_status":"\#(done ? "Job Completed" : "Job Running")","async_percent_completion":\#(done ? 100 : 40)}"#
      )
    }
    guard parts.count == 4, parts[3] == "insights", run.polls >= settings.pollsUntilDone, !run.failed else {
      return bad("The report run is not complete")
    }
    let ads = settings.adsPerAccount
    let total = (run.last - run.first + 1) * ads
    let limit = min(500, max(1, Int(query["limit"] ?? "") ?? 25))
    var offset = 0
    if let after = query["after"] {
      guard let at = pagingCount(Data(base64Encoded: after).flatMap { String(data: $0, encoding: .utf8) }) else {
        return bad("Invalid cursor: after")
      }
      offset = at
    }
    let end = min(total, offset + limit)
    let rows = (offset..<max(offset, end)).map { index -> String in
      let day = TikTokFixture.date(run.first + index / ads)
      let number = run.first + index / ads
      let row = Self.row(
        account: run.account, day: number, ad: index % ads,
        revision: number >= settings.revisedSince ? settings.revision : 0)
      func money(_ cents: UInt64) -> String { "\(cents / 100).\(cents % 100 < 10 ? "0" : "")\(cents % 100)" }
      var text =
        #"{"ad_id":"\#(row.adID)","campaign_id":"\#(row.campaignID)","spend":"\#(money(row.spendCents))","impressions":"\#(row.impressions)","clicks":"\#(row.clicks)""#
      if let purchases = row.purchases, let roas = row.roasHundredths {
        text +=
          #","actions":[{"action_type":"link_click","value":"\#(row.clicks)"},{"action_type":"omni_purchase","value":"\#(purchases)"},{"action_type":"purchase","value":"\#(purchases)"}],"purchase_roas":[{"action_type":"omni_purchase","value":"\#(money(roas))"}]"#
      }
      return text + #","date_start":"\#(day)","date_stop":"\#(day)","account_id":"\#(run.account)"}"#
    }
    let cursor = { (at: Int) in Data(String(at).utf8).base64EncodedString() }
    var paging = #""cursors":{"before":"\#(cursor(offset))","after":"\#(cursor(end))"}"#
    if end < total {
      paging += #","next":"http://\#(host)\#(path)?limit=\#(limit)&after=\#(cursor(end))""#
    }
    return (200, [json], #"{"data":[\#(rows.joined(separator: ","))],"paging":{\#(paging)}}"#)
  }
}
