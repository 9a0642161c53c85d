import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatRecords

/// Drives the TikTok connector over canned pages chosen by their `page=` number.
private func run(_ task: TaskSpec, pages: [Int: String], chunk: Int = 7) throws -> (
  [AdInsightRecord], [String], TikTokAdsConnector
) {
  var connector = TikTokAdsConnector(task: task, limits: ReadLimits())
  var insights: [AdInsightRecord] = []
  var urls: [String] = []
  func emit(_ record: CanonicalRecord) -> Bool {
    if case .adInsight(let insight) = record { insights.append(insight) }
    return true
  }
  var next = try connector.firstRequest()
  while let request = next {
    urls.append(request.url)
    let number = Int(request.url.components(separatedBy: "&page=")[1].prefix { $0.isNumber }) ?? 0
    guard let name = pages[number] else { throw ExportError("no canned page \(number)") }
    let body = Array(try fixture("tiktok/\(name)"))
    next = try answer(&connector, with: body, chunk: chunk, emit: emit)
  }
  return (insights, urls, connector)
}

private func source(since: String = "2020-10-01", until: String = "2020-10-30") -> Source {
  var source = Source()
  source.kind = "tiktok_ads"
  source.account = "6912345678901"
  source.since = since
  source.until = until
  return source
}

@Suite("TikTok ads connector")
struct TikTokAdsConnectorTests {
  @Test("pages by number to total_page; string metrics, \"-\" unknown, ids as numbers or strings; bad items counted")
  func readsEveryPage() throws {
    var task = TaskSpec()
    task.source = source()
    try TikTokAdsConnector.check(&task.source, field: "sources[0]")
    for chunk in [1, 3, 4096] {
      let (insights, urls, connector) = try run(
        task, pages: [1: "report-page-1.json", 2: "report-page-2.json", 3: "report-page-3.json"], chunk: chunk)
      #expect(urls.count == 3)
      #expect(
        urls[0].hasPrefix(
          "https://business-api.tiktok.com/open_api/v1.3/report/integrated/get/?advertiser_id=6912345678901"))
      #expect(urls[0].contains("start_date=2020-10-01&end_date=2020-10-30&page=1&page_size=1000"))
      #expect(insights.count == 3)
      let first = insights[0]
      #expect(first.date == "2020-10-17" && first.ad == "1678604629756978" && first.campaign == "1700001")
      #expect(first.spend == Decimal(string: "76.73") && first.impressions == 10_505 && first.clicks == 116)
      #expect(first.conversions == 12 && first.claimedRoas == Decimal(string: "2.35"))
      #expect(first.platform == "tiktok" && first.account == "6912345678901")
      let dashed = insights[2]
      #expect(dashed.ad == "1678604629756979" && dashed.spend == 0)
      #expect(
        dashed.impressions == nil && dashed.clicks == nil && dashed.conversions == nil && dashed.claimedRoas == nil)
      #expect(connector.counts.records == 3 && connector.counts.badRecords == 2)
      #expect(
        connector.counts.problems == [
          RowProblem(row: 4, column: "metrics.impressions", reason: .notAnInteger),
          RowProblem(row: 5, column: "dimensions.stat_time_day", reason: .invalidTimestamp),
        ])
    }
  }

  /// Found by a tester: a row handed twice in one read (numbered pages over data that moved)
  /// was summed twice, a row for a day not asked for was counted (and never replaced by a
  /// later run's read of its days), and a negative spend was subtracted, all without a word.
  @Test("a row repeated in one read, for a day not asked for, or with a negative spend is bad")
  func repeatsStrayDaysAndNegativeSpendAreBad() throws {
    var task = TaskSpec()
    task.source = source(since: "2020-10-01", until: "2020-10-01")
    try TikTokAdsConnector.check(&task.source, field: "sources[0]")
    func row(_ ad: String, _ day: String, spend: String = "5.00") -> String {
      #"{"dimensions":{"ad_id":"\#(ad)","stat_time_day":"\#(day) 00:00:00"},"metrics":{"campaign_id":"c","spend":"\#(spend)","impressions":"10","clicks":"1","conversion":"0","complete_payment_roas":"0"}}"#
    }
    func page(_ rows: [String]) -> [UInt8] {
      Array(
        #"{"code":0,"message":"OK","data":{"page_info":{"total_page":2},"list":[\#(rows.joined(separator: ","))]}}"#
          .utf8)
    }
    let pages = [
      page([
        row("a", "2020-10-01"), row("a", "2020-10-01"), row("b", "2099-01-01"), row("c", "2020-10-01", spend: "-5.00"),
      ]),
      page([row("a", "2020-10-01"), row("d", "2020-10-01")]),
    ]
    var connector = TikTokAdsConnector(task: task, limits: ReadLimits())
    var ads: [String] = []
    func emit(_ record: CanonicalRecord) -> Bool {
      if case .adInsight(let insight) = record { ads.append(insight.ad) }
      return true
    }
    var next = try connector.firstRequest()
    for body in pages {
      #expect(next != nil)
      next = try answer(&connector, with: body, chunk: 5, emit: emit)
    }
    #expect(next == nil)
    #expect(ads == ["a", "d"])
    #expect(connector.counts.records == 2 && connector.counts.badRecords == 4)
    #expect(connector.counts.problems.map(\.reason) == [.duplicate, .outsideWindow, .negative, .duplicate])
  }

  @Test("an error is HTTP 200 with a code: classified, the token's not retried, throttling retried")
  func errorsAreClassified() throws {
    var task = TaskSpec()
    task.source = source()
    for (name, code, retryable) in [
      ("error-40105.json", "token_rejected", false), ("error-40100.json", "throttled", true),
      ("error-40002.json", "platform_error", false),
    ] {
      do {
        _ = try run(task, pages: [1: name])
        Issue.record("\(name) was read as a page")
      } catch let error as ExportError {
        #expect(
          error.code == code && error.retryable == retryable && error.message.hasPrefix("TikTok error"), "\(name)")
      }
    }
  }

  @Test("a long window is planned as tasks of at most 30 days, covering every day once")
  func windowsOfThirtyDays() throws {
    var long = source(since: "2026-01-01", until: "2026-03-15")
    try TikTokAdsConnector.check(&long, field: "sources[0]")
    #expect(TikTokAdsConnector.taskCount(for: long) == 3)
    let windows = (0..<3).map { part -> DateWindow in
      var task = TaskSpec()
      TikTokAdsConnector.plan(&task, part: part, of: long)
      return task.window
    }
    #expect(windows.map(\.start) == ["2026-01-01", "2026-01-31", "2026-03-02"])
    #expect(windows.map(\.end) == ["2026-01-30", "2026-03-01", "2026-03-15"])
    var one = source(since: "2024-02-29", until: "2024-02-29")
    try TikTokAdsConnector.check(&one, field: "sources[0]")
    #expect(TikTokAdsConnector.taskCount(for: one) == 1)
    for (since, until) in [
      ("2026-02-30", "2026-03-01"), ("2026-03-02", "2026-03-01"), ("", "2026-03-01"),
      ("2020-01-01", "2026-01-01"),
    ] {
      var bad = source(since: since, until: until)
      #expect(throws: HaatError.self, "\(since)..\(until)") { try TikTokAdsConnector.check(&bad, field: "sources[0]") }
    }
    var noAccount = source()
    noAccount.account = "acme"
    #expect(throws: HaatError.self) { try TikTokAdsConnector.check(&noAccount, field: "sources[0]") }
  }

  @Test("day numbers and dates round-trip across leap years and centuries")
  func days() {
    for text in ["1970-01-01", "2000-02-29", "2024-02-29", "2026-12-31", "2100-03-01"] {
      #expect(Days.number(text).map(Days.text) == text)
    }
    #expect(Days.number("2100-02-29") == nil && Days.number("2026-1-01") == nil)
    #expect(Days.number("1970-01-02") == 1)
  }
}

/// The same check for posts: an API connector's counts take a post id once per task; an
/// export's (no deduplication, docs/connectors.md) and a post without an id, every time.
@Suite struct DistinctRecordsTests {
  @Test func aPostIdIsReadOncePerTaskFromAnAPI() {
    func post(_ id: String, account: String = "p") -> CanonicalRecord {
      .post(
        PostRecord(
          platform: "facebook", account: account, id: id,
          createdAt: Values.Timestamp(epochSeconds: 0, offsetMinutes: 0),
          mediaType: .image))
    }
    let records = [post("1"), post("2"), post("1"), post(""), post(""), post("1", account: "q")]
    var api = ReadCounts(distinct: true)
    var export = ReadCounts()
    for (row, record) in records.enumerated() {
      api.take(record, row: UInt64(row + 1), keep: 10) { _ in true }
      export.take(record, row: UInt64(row + 1), keep: 10) { _ in true }
    }
    #expect(api.records == 5 && api.badRecords == 1)
    #expect(api.problems.first?.row == 3 && api.problems.first?.reason == .duplicate)
    #expect(export.records == 6 && export.badRecords == 0)
  }
}
