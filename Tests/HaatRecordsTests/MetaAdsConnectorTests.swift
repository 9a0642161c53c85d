import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatRecords

@Suite("Meta ads connector")
struct MetaAdsConnectorTests {
  func task() throws -> TaskSpec {
    var task = TaskSpec()
    task.source.kind = "meta_ads"
    task.source.account = "act_1010035716096012"
    task.source.since = "2025-03-14"
    task.source.until = "2025-03-15"
    try MetaAdsConnector.check(&task.source, field: "sources[0]")
    return task
  }

  /// Drives the connector through the answers named, in order.
  func run(_ answers: [String], chunk: Int = 5) throws -> ([AdInsightRecord], [PageRequest], MetaAdsConnector) {
    var connector = MetaAdsConnector(task: try task(), limits: ReadLimits())
    var insights: [AdInsightRecord] = []
    var requests: [PageRequest] = []
    func emit(_ record: CanonicalRecord) -> Bool {
      if case .adInsight(let insight) = record { insights.append(insight) }
      return true
    }
    var next = try connector.firstRequest()
    var answers = answers[...]
    while let request = next {
      requests.append(request)
      guard let name = answers.popFirst() else { throw ExportError("no answer for \(request.url)") }
      let body = Array(try fixture("meta-ads/\(name)"))
      next = try answer(&connector, with: body, chunk: chunk, emit: emit)
    }
    return (insights, requests, connector)
  }

  @Test("a run is started with POST, polled until completed at 100 %, then read page by page")
  func asyncRun() throws {
    for chunk in [1, 3, 4096] {
      let (insights, requests, connector) = try run(
        ["start.json", "running.json", "completed-short.json", "completed.json", "insights-1.json", "insights-2.json"],
        chunk: chunk)
      #expect(requests.map(\.post) == [true, false, false, false, false, false])
      #expect(
        requests[0].url.hasPrefix(
          "https://graph.facebook.com/v21.0/act_1010035716096012/insights?level=ad&time_increment=1"))
      #expect(requests[0].url.contains("2025-03-14") && requests[0].url.contains("2025-03-15"))
      #expect(requests[1].url == "https://graph.facebook.com/v21.0/6023920149050" && requests[1].waitMs == 0)
      #expect(requests[2].waitMs == 1_000 && requests[3].waitMs == 2_000, "polls back off")
      #expect(requests[4].url == "https://graph.facebook.com/v21.0/6023920149050/insights?limit=500")
      #expect(requests[5].url.hasSuffix("after=MQZDZD"))
      #expect(insights.count == 3)
      let first = insights[0]
      #expect(first.date == "2025-03-14" && first.ad == "23851000000001" && first.campaign == "23850000000")
      #expect(first.spend == Decimal(string: "5339.5") && first.impressions == 361_324 && first.clicks == 4_211)
      #expect(first.conversions == 42, "omni_purchase, not the sum of overlapping purchase types")
      #expect(first.claimedRoas == Decimal(string: "3.2154") && first.account == "1010035716096012")
      #expect(insights[1].conversions == 0 && insights[1].claimedRoas == nil, "actions without a purchase")
      #expect(insights[2].conversions == nil, "no actions at all: unknown")
      #expect(insights[2].clicks == 2)
      #expect(
        connector.counts.problems == [
          RowProblem(row: 4, column: "impressions", reason: .notADecimal),
          RowProblem(row: 5, column: "ad_id", reason: .missing),
        ])
    }
  }

  @Test("a failed run fails the task, retryable, saying why")
  func failedRun() throws {
    do {
      _ = try run(["start.json", "failed.json"])
      Issue.record("a failed run was read")
    } catch let error as ExportError {
      #expect(error.retryable && error.code == "platform_error")
      #expect(error.message.contains("Job Failed") && error.message.contains("reduce the amount"))
    }
  }

  /// Found by a tester: a run that never completed, or answered a status Meta does not
  /// document, was polled every 10 s for good, holding a slot.
  @Test("a run that never completes, or answers an unknown status, fails the task, retryable")
  func endlessRun() throws {
    for (answers, says) in [
      (["start.json"] + Array(repeating: "running.json", count: 400), "did not complete in 364 polls"),
      (["start.json", "running.json", "unknown-status.json"], "Job Exploded"),
    ] {
      do {
        _ = try run(answers)
        Issue.record("an endless run was read")
      } catch let error as ExportError {
        #expect(error.retryable && error.code == "platform_error")
        #expect(error.message.contains(says), "\(error.message)")
      }
    }
  }

  @Test("an account is digits, with or without act_; the days are windows of 30")
  func checks() throws {
    #expect(try task().source.account == "1010035716096012")
    var bad = try task().source
    bad.account = "act_me"
    #expect(throws: HaatError.self) { try MetaAdsConnector.check(&bad, field: "sources[0]") }
    var long = try task().source
    long.until = "2025-05-01"
    #expect(MetaAdsConnector.taskCount(for: long) == 2)
  }
}
