import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import Testing

@testable import HaatRecords

@Suite("Ads report")
struct AdsKernelTests {
  static func insight(
    day: Int, campaign: String = "c1", spend: String? = "10.00", impressions: UInt64? = 1_000, clicks: UInt64? = 10,
    conversions: UInt64? = nil, roas: String? = nil, account: String = "1"
  ) -> CanonicalRecord {
    .adInsight(
      AdInsightRecord(
        platform: "facebook", account: account, date: Days.text(day), campaign: campaign, ad: "a",
        spend: spend.flatMap(Values.decimal), impressions: impressions, clicks: clicks, conversions: conversions,
        claimedRoas: roas.flatMap(Values.decimal)))
  }

  /// One task: its records and the days it covers.
  static func task(_ records: [CanonicalRecord], covering days: ClosedRange<Int>? = nil) -> Partial {
    var builder = PartialBuilder(reports: ["ads"])
    for record in records { builder.add(record) }
    if let days { builder.cover(DayCoverage(platform: "facebook", account: "1", days: days)) }
    // Through the wire encoding, as the coordinator gets it.
    return (try? Partial(jsonUTF8Data: builder.partial.jsonUTF8Data())) ?? Partial()
  }

  /// Runs in order, each a list of task partials: merged within a run, laid over across.
  static func report(_ runs: [[Partial]]) throws -> Report {
    var merged = PartialMerger()
    for run in runs {
      var merger = PartialMerger()
      for partial in run { merger.merge(partial) }
      merged.overlay(merger)
    }
    var report = Report()
    try merged.finish(["ads"], into: &report)
    return report
  }

  /// Spend sums and claimed revenue stay exact: one that would pass Decimal's 38 digits is
  /// refused (the row is bad, or the report fails), never rounded.
  @Test func sumsPastThirtyEightDigitsAreRefusedNotRounded() throws {
    var builder = PartialBuilder(reports: ["ads"])
    let first = builder.add(Self.insight(day: 10, spend: "1" + String(repeating: "0", count: 38)))
    // The same cell again: 10^38 + 0.1 needs 40 digits.
    let second = builder.add(Self.insight(day: 10, spend: "0.1"))
    #expect(first && !second, "the second is refused, not rounded into the first")
    // A claimed revenue (ROAS × spend) past 38 digits: refused too.
    var other = PartialBuilder(reports: ["ads"])
    let claimed = other.add(Self.insight(day: 11, spend: "1234567890123456789.123", roas: "1234567890123456789.5"))
    #expect(!claimed)
  }

  @Test("exact decimal sums; CPM, CPC, CTR, CPA and claimed ROAS as ratios of sums; weeks from Monday")
  func figures() throws {
    let monday = Days.number("2026-11-23") ?? 0
    let report = try Self.report([
      [
        Self.task([
          Self.insight(day: monday, spend: "0.10", impressions: 3, clicks: 1, conversions: 1, roas: "2.5"),
          Self.insight(day: monday + 6, spend: "0.20", impressions: 7, clicks: 3, conversions: nil),
          Self.insight(day: monday + 7, spend: "1", impressions: nil, clicks: 1, conversions: 0),
        ])
      ]
    ])
    let total = report.ads.total
    #expect(total.spend == "1.3", "0.1 + 0.2 + 1 exactly")
    #expect(total.rows == 3 && total.rowsIncomplete == 1)
    #expect(total.impressions == 10 && total.clicks == 5 && total.conversions == 1)
    #expect(abs(total.cpm - 1.3 / 10 * 1_000) < 1e-9)
    #expect(abs(total.cpc - 1.3 / 5) < 1e-9)
    #expect(abs(total.ctr - 0.5) < 1e-12)
    // CPA over the spend of the rows that report conversions: 0.10 + 1.
    #expect(abs(total.cpa - 1.1) < 1e-9)
    #expect(abs(total.claimedRoas - 2.5) < 1e-12 && total.claimedRevenue == "0.25")
    #expect(report.ads.weeks.map(\.week) == ["2026-11-23", "2026-11-30"])
    #expect(report.ads.weeks.map(\.spend) == ["0.3", "1"])
    #expect(report.ads.first == "2026-11-23" && report.ads.last == "2026-11-30")
    let table = ReportRendering.table(report)
    #expect(table.contains("claimed ROAS") && table.contains("1.30"))
    #expect(ReportRendering.csv(report, named: "ads").hasPrefix("platform,account,campaign,rows,"))
    // The table shows `rows_incomplete` too: a row of unknown spend adds 0.00 to `spend`.
    let rendered = try #require(AdsKernel.table(of: report))
    let incomplete = try #require(rendered.columns.firstIndex(of: "incompl."))
    #expect(rendered.rows.last?[incomplete] == "1")
  }

  /// CPA pairs spend and conversions row by row: a row that states conversions but not its
  /// spend is in neither (it made CPA 0.00, conversions for free), and through the wire too.
  @Test func cpaLeavesOutConversionsOfUnknownSpend() throws {
    let day = Days.number("2026-11-23") ?? 0
    let unknownSpend = try Self.report([[Self.task([Self.insight(day: day, spend: nil, conversions: 4)])]])
    #expect(unknownSpend.ads.total.conversions == 4 && !unknownSpend.ads.total.hasCpa)
    let mixed = try Self.report([
      [
        Self.task([Self.insight(day: day, spend: nil, conversions: 4)]),
        Self.task([Self.insight(day: day, spend: "9", conversions: 3)]),
      ]
    ])
    #expect(mixed.ads.total.conversions == 7 && abs(mixed.ads.total.cpa - 3) < 1e-12)
  }

  @Test("merging in any order, through the wire, gives the one-pass report")
  func mergeLaw() throws {
    var generator = SystemRandomNumberGenerator()
    var records: [CanonicalRecord] = []
    for index in 0..<200 {
      records.append(
        Self.insight(
          day: 20_000 + index % 17, campaign: "c\(index % 4)", spend: "\(index).\(index % 100)",
          impressions: index % 9 == 0 ? nil : UInt64(index * 31), clicks: UInt64(index % 13),
          conversions: index % 5 == 0 ? nil : UInt64(index % 3), roas: index % 2 == 0 ? "1.\(index)" : nil,
          account: index % 3 == 0 ? "1" : "2"))
    }
    let one = try Self.report([[Self.task(records)]])
    for _ in 0..<5 {
      var parts: [[CanonicalRecord]] = Array(repeating: [], count: 4)
      for record in records { parts[Int.random(in: 0..<4, using: &generator)].append(record) }
      let partials = parts.map { Self.task($0) }.shuffled(using: &generator)
      #expect(try Self.report([partials]) == one)
    }
  }

  @Test("a later run's covered days replace the earlier run's figures for them; the rest add")
  func overlay() throws {
    let base = 20_000
    // Run 1 read days 0–9; run 2 read days 5–12 again, revised (more conversions).
    let run1 = (0...9).map { Self.insight(day: base + $0, conversions: 1) }
    let run2 = (5...12).map { Self.insight(day: base + $0, spend: "11.00", conversions: 2) }
    let laid = try Self.report([
      [Self.task(run1, covering: base...(base + 9))], [Self.task(run2, covering: (base + 5)...(base + 12))],
    ])
    let once = try Self.report([[Self.task(Array(run1.prefix(5)) + run2, covering: base...(base + 12))]])
    #expect(laid.ads == once.ads)
    #expect(laid.ads.total.rows == 13 && laid.ads.total.conversions == 5 + 16)

    // A re-read day that now has no rows at all replaces the day with nothing.
    let emptied = try Self.report([
      [Self.task(run1, covering: base...(base + 9))], [Self.task([], covering: (base + 9)...(base + 9))],
    ])
    #expect(emptied.ads.total.rows == 9)

    // Without coverage (an export file), runs add.
    let added = try Self.report([[Self.task(run1)], [Self.task(run1)]])
    #expect(added.ads.total.rows == 20)
  }

  @Test("laying runs over each other is associative, and merging within a run commutes")
  func overlayLaw() throws {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<20 {
      var runs: [Partial] = []
      for run in 0..<3 {
        let first = Int.random(in: 0..<20, using: &generator)
        let last = first + Int.random(in: 0..<10, using: &generator)
        let records = (first...last).map {
          Self.insight(day: 20_000 + $0, spend: "\(run).5\($0)", clicks: UInt64(run * 100 + $0))
        }
        runs.append(Self.task(records, covering: (20_000 + first)...(20_000 + last)))
      }
      var left = PartialMerger()
      left.merge(runs[0])
      var middle = PartialMerger()
      middle.merge(runs[1])
      left.overlay(middle)
      var last = PartialMerger()
      last.merge(runs[2])
      left.overlay(last)  // (a ◁ b) ◁ c

      var right = PartialMerger()
      right.merge(runs[1])
      right.overlay(last)
      var outer = PartialMerger()
      outer.merge(runs[0])
      outer.overlay(right)  // a ◁ (b ◁ c)

      var one = Report()
      try left.finish(["ads"], into: &one)
      var other = Report()
      try outer.finish(["ads"], into: &other)
      #expect(one == other)
    }
  }

  @Test("a cell whose amount does not read fails the report rather than vanish")
  func unreadableCell() throws {
    var partial = Self.task([Self.insight(day: 20_000)])
    partial.ads.cells[0].spend = "1e5"
    var merger = PartialMerger()
    merger.merge(partial)
    var report = Report()
    #expect(throws: HaatError.self) { try merger.finish(["ads"], into: &report) }
  }
}

@Suite("Day reading")
struct DayReadingTests {
  static func task(window: (String, String), until: String, bookmark: String = "") -> TaskSpec {
    var task = TaskSpec()
    task.source.platform = "facebook"
    task.source.account = "1"
    task.source.until = until
    task.window.start = window.0
    task.window.end = window.1
    task.bookmark = bookmark
    return task
  }

  @Test("without a bookmark the whole window; with one, what is newer plus the lookback")
  func narrowing() {
    let whole = DayReading(task: Self.task(window: ("2026-10-01", "2026-10-30"), until: "2026-11-30"), lookbackDays: 28)
    #expect(whole.days?.start == "2026-10-01" && whole.bookmark == "2026-10-30")
    #expect(whole.coverage?.days.count == 30)

    // Read up to its end, long before the lookback: nothing left.
    let done = DayReading(
      task: Self.task(window: ("2026-10-01", "2026-10-30"), until: "2026-11-30", bookmark: "2026-10-30"),
      lookbackDays: 28)
    #expect(done.days == nil && done.coverage == nil && done.bookmark == "2026-10-30")

    // The window reaches into the 28 days before the run's last day: those again.
    let lookback = DayReading(
      task: Self.task(window: ("2026-10-31", "2026-11-29"), until: "2026-11-30", bookmark: "2026-11-29"),
      lookbackDays: 28)
    #expect(lookback.days?.start == "2026-11-03" && lookback.days?.end == "2026-11-29")

    // Days never read come first, whatever the lookback.
    let newer = DayReading(
      task: Self.task(window: ("2026-10-31", "2026-11-29"), until: "2026-11-30", bookmark: "2026-10-31"),
      lookbackDays: 28)
    #expect(newer.days?.start == "2026-11-01")
  }

  @Test("a Meta ads task with nothing left to read fetches nothing and keeps its bookmark")
  func metaAdsReadsNothing() throws {
    var task = Self.task(window: ("2026-01-01", "2026-01-30"), until: "2026-11-30", bookmark: "2026-01-30")
    task.source.kind = "meta_ads"
    task.source.url = "http://127.0.0.1:1/meta/v21.0"
    var connector = MetaAdsConnector(task: task, limits: ReadLimits())
    let none = try connector.firstRequest()
    #expect(none == nil)
    #expect(connector.bookmark == "2026-01-30" && connector.coverage == nil)

    task.bookmark = "2026-01-10"
    var partial = MetaAdsConnector(task: task, limits: ReadLimits())
    let request = try partial.firstRequest()
    #expect(request?.url.contains(MetaGraph.encode(#"{"since":"2026-01-11","until":"2026-01-30"}"#)) == true)
  }
}
