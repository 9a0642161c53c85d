import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatRecords

@Suite("Pinterest pins connector")
struct PinterestPinsConnectorTests {
  func task() throws -> TaskSpec {
    var task = TaskSpec()
    task.source.kind = "pinterest_pins"
    task.source.account = "dhaka_threads"
    try PinterestPinsConnector.check(&task.source, field: "sources[0]")
    return task
  }

  @Test("pages follow the bookmark until it is null; lifetime metrics become the post's counts; bad pins counted")
  func pagesAndMetrics() throws {
    let task = try task()
    let first = "https://api.pinterest.com/v5/pins?page_size=250&pin_metrics=true"
    let second =
      first + "&bookmark=Y2JVSG81MVJQT1BlYlVuOUhiRnlHUT09fDJhOTNlZjk1ZjgzMjQ4YmE3ZjRhMmRiNTU2MjQzYmQ0"
    for chunk in [1, 3, 4096] {
      let (records, requests, connector) = try drive(
        PinterestPinsConnector.self, task,
        pages: [
          first: CannedPage(body: Array(try fixture("pinterest/pins-page-1.json"))),
          second: CannedPage(body: Array(try fixture("pinterest/pins-page-2.json"))),
        ], chunk: chunk)
      #expect(requests.map(\.url) == [first, second])
      let posts = records.compactMap { record -> PostRecord? in
        if case .post(let post) = record { return post }
        return nil
      }
      #expect(posts.map(\.mediaType) == [.image, .video, .carousel])
      #expect(posts[0].impressions == 2 && posts[0].clicks == 7 && posts[0].likes == 10 && posts[0].comments == 2)
      #expect(posts[0].saves == nil, "the spec's example has no save count: unknown")
      #expect(posts[1].saves == 5)
      #expect(posts[2].impressions == nil && posts[2].likes == nil, "no metrics: unknown, not zero")
      #expect(posts[0].createdAt == Values.Timestamp(epochSeconds: 1_577_909_440, offsetMinutes: 0))
      #expect(posts.allSatisfy { $0.platform == "pinterest" && $0.account == "dhaka_threads" })
      #expect(
        connector.counts.problems == [
          RowProblem(row: 4, column: "created_at", reason: .missing),
          RowProblem(row: 5, column: "pin_metrics.lifetime_metrics.impression", reason: .notAnInteger),
        ])
    }
  }

  @Test("401 is a rejected token, with Pinterest's message")
  func rejectedToken() throws {
    var connector = PinterestPinsConnector(task: try task(), limits: ReadLimits())
    _ = try connector.firstRequest()
    #expect(throws: ExportError.self) {
      _ = try connector.pageFailed(
        PageResponse(status: 401, contentType: "application/json"),
        body: Array(try fixture("pinterest/error-401.json")))
    }
    // A 429 is left to the fetcher's throttling error.
    #expect(try connector.pageFailed(PageResponse(status: 429, contentType: nil), body: []) == nil)
  }
}
