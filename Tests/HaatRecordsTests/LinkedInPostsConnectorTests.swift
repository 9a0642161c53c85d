import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatRecords

@Suite("LinkedIn posts connector")
struct LinkedInPostsConnectorTests {
  func task() throws -> TaskSpec {
    var task = TaskSpec()
    task.source.kind = "linkedin_posts"
    task.source.account = "urn:li:organization:2414183"
    try LinkedInPostsConnector.check(&task.source, field: "sources[0]")
    return task
  }

  /// Answers by the request's path: posts pages in order, statistics from the fixture.
  func run(posts: [[UInt8]], statistics: [UInt8], chunk: Int = 7) throws -> (
    [PostRecord], [PageRequest], LinkedInPostsConnector
  ) {
    var connector = LinkedInPostsConnector(task: try task(), limits: ReadLimits())
    var records: [PostRecord] = []
    var requests: [PageRequest] = []
    func emit(_ record: CanonicalRecord) -> Bool {
      if case .post(let post) = record { records.append(post) }
      return true
    }
    var pages = posts[...]
    var next = try connector.firstRequest()
    while let request = next {
      requests.append(request)
      let body: [UInt8]
      if request.url.contains("/posts?") {
        guard let page = pages.popFirst() else { throw ExportError("no posts page left") }
        body = page
      } else {
        body = statistics
      }
      next = try answer(&connector, with: body, chunk: chunk, emit: emit)
    }
    return (records, requests, connector)
  }

  @Test("posts, then their statistics matched by URN; left out is zero; a negative like count is unknown and noted")
  func postsWithStatistics() throws {
    for chunk in [1, 3, 4096] {
      let (posts, requests, connector) = try run(
        posts: [Array(try fixture("linkedin/posts.json"))], statistics: Array(try fixture("linkedin/statistics.json")),
        chunk: chunk)
      #expect(requests.count == 2)
      #expect(
        requests[0].url
          == "https://api.linkedin.com/rest/posts?q=author&author=urn%3Ali%3Aorganization%3A2414183&count=50&start=0")
      #expect(requests.allSatisfy { $0.headers.contains("X-Restli-Protocol-Version: 2.0.0") })
      #expect(requests.allSatisfy { $0.headers.contains { $0.hasPrefix("LinkedIn-Version: ") } })
      #expect(requests[1].url.contains("&shares=List(urn%3Ali%3Ashare%3A1000000,urn%3Ali%3Ashare%3A1000001,"))
      #expect(requests[1].url.hasSuffix("&ugcPosts=List(urn%3Ali%3AugcPost%3A7044823133844885504)"))
      #expect(posts.map(\.mediaType) == [.image, .video, .text, .link, .carousel])
      let first = posts[0]
      #expect(first.likes == 14 && first.comments == 24 && first.shares == 5 && first.impressions == 5_287)
      #expect(first.reach == 10 && first.clicks == 78)
      #expect(first.createdAt.epochSeconds == 1_679_663_764)
      #expect(posts[1].likes == nil && posts[1].impressions == 900, "a negative like count is not a count")
      #expect(posts[2].reach == nil && posts[2].impressions == 5)
      #expect(posts[3].likes == 0 && posts[3].impressions == 0, "left out: no activity")
      #expect(connector.counts.records == 5 && connector.counts.badRecords == 1)
      #expect(
        connector.counts.problems == [
          RowProblem(row: 6, column: "publishedAt", reason: .invalidTimestamp),
          RowProblem(row: 2, column: "totalShareStatistics.likeCount", reason: .negative, note: true),
        ])
    }
  }

  @Test("a full page asks for the next; the end is a short page")
  func paging() throws {
    func page(from: Int, count: Int) -> [UInt8] {
      let elements = (from..<(from + count)).map {
        #"{"id":"urn:li:share:\#(2_000_000 + $0)","lifecycleState":"PUBLISHED","publishedAt":\#(1_679_000_000_000 + $0)}"#
      }
      return Array(#"{"elements":[\#(elements.joined(separator: ","))],"paging":{"start":\#(from),"count":50}}"#.utf8)
    }
    let (posts, requests, _) = try run(
      posts: [page(from: 0, count: 50), page(from: 50, count: 7)], statistics: Array(#"{"elements":[]}"#.utf8),
      chunk: 4096)
    #expect(posts.count == 57 && posts.allSatisfy { $0.likes == 0 })
    #expect(requests.map { $0.url.contains("/posts?") } == [true, false, true, false])
    #expect(requests[2].url.hasSuffix("&start=50"))
  }

  @Test("401 is a rejected token with LinkedIn's message")
  func rejected() throws {
    var connector = LinkedInPostsConnector(task: try task(), limits: ReadLimits())
    do {
      _ = try connector.pageFailed(
        PageResponse(status: 401, contentType: nil), body: Array(try fixture("linkedin/error-401.json")))
      Issue.record("a 401 was not an error")
    } catch let error as ExportError {
      #expect(error.code == "token_rejected" && error.message.contains("65601") && error.message.contains("revoked"))
    }
  }
}
