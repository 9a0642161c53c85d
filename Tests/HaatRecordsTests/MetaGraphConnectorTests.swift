import Foundation
import HaatProtocol
import HaatRecords
import Testing

/// The Facebook Page posts connector on Meta-shaped fixtures (Fixtures/meta/README.md cites
/// where each shape comes from), one quirk per case.
@Suite("Facebook posts connector")
struct FacebookPostsConnectorTests {
  static let base = "https://graph.facebook.com/v21.0"

  func task(bookmark: String = "") -> TaskSpec {
    var task = TaskSpec()
    task.source.kind = "facebook_posts"
    task.source.account = "111"
    task.source.url = Self.base
    task.bookmark = bookmark
    return task
  }

  func page(_ name: String) throws -> CannedPage {
    CannedPage(body: Array(try fixture("meta/\(name)")), contentType: "application/json; charset=UTF-8")
  }

  func run(chunk: Int = 7) throws -> (posts: [PostRecord], requests: [PageRequest], FacebookPostsConnector) {
    var connector = FacebookPostsConnector(task: task(), limits: ReadLimits())
    let first = try #require(try connector.firstRequest())
    let pages = [
      first.url: try page("posts-1.json"),
      "\(Self.base)/111/posts?limit=100&after=QVFIUmFmdGVyMQ": try page("posts-2-empty.json"),
      "\(Self.base)/111/posts?limit=100&after=QVFIUmFmdGVyMg": try page("posts-3-last.json"),
    ]
    let (records, requests, driven) = try drive(FacebookPostsConnector.self, task(), pages: pages, chunk: chunk)
    let posts = records.compactMap { record -> PostRecord? in
      if case .post(let post) = record { return post }
      return nil
    }
    return (posts, requests, driven)
  }

  @Test("pages are followed through an empty page that carries next, and stop where next is absent")
  func pagingFollowsNextOnly() throws {
    let (posts, requests, _) = try run()
    #expect(requests.count == 3)
    #expect(posts.map(\.id) == ["111_201", "111_202", "111_207"])
    let first = try #require(requests.first?.url)
    #expect(first.hasPrefix("\(Self.base)/111/posts?fields="))
    #expect(first.contains("insights.metric(post_media_view,post_total_media_view_unique,post_clicks)"))
    #expect(first.contains("limit=100"))
    #expect(!first.contains("access_token"), "the token goes in a header, never the URL")
  }

  @Test("counts, media types, insights and the +0000 offset become the canonical post")
  func fieldsMapToTheCanonicalPost() throws {
    let (posts, _, _) = try run(chunk: 4096)
    let first = try #require(posts.first)
    #expect(first.platform == "facebook" && first.account == "111")
    let written = Array("2026-03-01T18:31:28+00:00".utf8).withUnsafeBytes { Values.timestamp($0) }
    #expect(first.createdAt == written && first.createdAt.offsetMinutes == 0)
    #expect(first.mediaType == .image)
    #expect(first.likes == 28 && first.comments == 7 && first.shares == 3)
    #expect(first.impressions == 1200 && first.reach == 800 && first.clicks == 12)
    let second = posts[1]
    #expect(second.mediaType == .text, "no attachment is a text post")
    #expect(second.shares == 0, "Meta leaves shares out when nobody shared")
    #expect(second.impressions == nil, "an empty insights list is unknown, not zero")
    #expect(second.createdAt.offsetMinutes == 360)
    #expect(posts[2].mediaType == .carousel)
  }

  @Test("a broken object is counted with its position and reason; the rest of the page is read")
  func brokenObjectsAreReported() throws {
    let (_, _, connector) = try run()
    let counts = connector.counts
    #expect(counts.records == 3)
    #expect(counts.badRecords == 4)
    #expect(
      counts.problems == [
        RowProblem(row: 3, column: "created_time", reason: .missing),
        RowProblem(row: 4, column: "created_time", reason: .invalidTimestamp),
        RowProblem(row: 5, column: "", reason: .notAnObject),
        RowProblem(row: 6, column: "shares", reason: .notAnInteger),
      ])
    #expect(connector.bookmark == "1772389888:111_201", "the newest post's time, and its id")
  }

  @Test("a bookmark asks only for posts since then, and skips those the last run read at its second")
  func bookmarkAsksSince() throws {
    var connector = FacebookPostsConnector(task: task(bookmark: "1772389888:111_201"), limits: ReadLimits())
    let first = try #require(try connector.firstRequest())
    #expect(first.url.hasSuffix("&since=1772389888"))
    #expect(connector.bookmark == "1772389888:111_201", "nothing newer keeps the old bookmark")
    // The same pages again: everything is older than the bookmark or was read at its second.
    let pages = [
      first.url: try page("posts-1.json"),
      "\(Self.base)/111/posts?limit=100&after=QVFIUmFmdGVyMQ": try page("posts-2-empty.json"),
      "\(Self.base)/111/posts?limit=100&after=QVFIUmFmdGVyMg": try page("posts-3-last.json"),
    ]
    let (records, _, driven) = try drive(
      FacebookPostsConnector.self, task(bookmark: "1772389888:111_201"), pages: pages)
    #expect(records.isEmpty)
    #expect(driven.bookmark == "1772389888:111_201")
    // A bookmark that is not one reads the whole edge.
    var fresh = FacebookPostsConnector(task: task(bookmark: "not a bookmark"), limits: ReadLimits())
    #expect(try fresh.firstRequest()?.url.contains("since=") == false)
  }

  /// A post newer than the last run at the bookmark's own second is read, and the next
  /// bookmark keeps both ids: it kept only the new one's, and the run after counted the
  /// old post a second time.
  @Test func aNewPostAtTheBookmarksSecondKeepsTheOldOneInTheBoundary() throws {
    func post(_ id: String) -> String {
      #"{"id":"\#(id)","created_time":"2026-03-01T18:31:28+0000","reactions":{"summary":{"total_count":5}}}"#
    }
    let body = #"{"data":[\#(post("111_201")),\#(post("111_999"))]}"#
    func run(_ bookmark: String) throws -> (ids: [String], bookmark: String) {
      var connector = FacebookPostsConnector(task: task(bookmark: bookmark), limits: ReadLimits())
      let first = try #require(try connector.firstRequest())
      let pages = [first.url: CannedPage(body: Array(body.utf8), contentType: "application/json")]
      let (records, _, driven) = try drive(FacebookPostsConnector.self, task(bookmark: bookmark), pages: pages)
      let ids = records.compactMap { record -> String? in
        if case .post(let post) = record { return post.id }
        return nil
      }
      return (ids, driven.bookmark)
    }
    let second = try run("1772389888:111_201")
    #expect(second.ids == ["111_999"])
    #expect(second.bookmark == "1772389888:111_201,111_999")
    let third = try run(second.bookmark)
    #expect(third.ids.isEmpty, "read again: \(third.ids)")
    #expect(third.bookmark == second.bookmark)
  }

  /// Found by a tester: 150 posts at one second overflowed the boundary's 100 ids, and every
  /// later run counted the other 50 again. Past the boundary, the next run starts after it.
  @Test func moreAtOneSecondThanTheBoundaryHoldsAreNotCountedAgain() throws {
    let posts = (0..<150).map { index in
      #"{"id":"111_\#(index)","created_time":"2026-03-01T18:31:28+0000","reactions":{"summary":{"total_count":1}}}"#
    }
    let body = #"{"data":[\#(posts.joined(separator: ","))]}"#
    func run(_ bookmark: String) throws -> (count: Int, bookmark: String) {
      var connector = FacebookPostsConnector(task: task(bookmark: bookmark), limits: ReadLimits())
      let first = try #require(try connector.firstRequest())
      let pages = [first.url: CannedPage(body: Array(body.utf8), contentType: "application/json")]
      let (records, _, driven) = try drive(FacebookPostsConnector.self, task(bookmark: bookmark), pages: pages)
      return (records.count, driven.bookmark)
    }
    let first = try run("")
    #expect(first.count == 150)
    #expect(first.bookmark == "1772389889", "the second after the newest")
    let again = try run(first.bookmark)
    #expect(again.count == 0 && again.bookmark == first.bookmark)
  }

  /// A summary count that is not one makes the post a bad record naming it; absent or null
  /// is unknown. "many" likes were read as a post with its likes quietly left out.
  @Test func aSummaryCountThatIsNoCountIsABadRecord() throws {
    func post(_ id: String, _ reactions: String) -> String {
      #"{"id":"\#(id)","created_time":"2026-03-01T18:31:28+0000","reactions":{"summary":{"total_count":\#(reactions)}},"comments":{"summary":{"total_count":2}}}"#
    }
    let body =
      #"{"data":[\#(post("1_1", #""many""#)),\#(post("1_2", "null")),\#(post("1_3", "-4")),\#(post("1_4", #""12""#)),\#(post("1_5", "18446744073709551616")),\#(post("1_6", #""-7""#))]}"#
    var connector = FacebookPostsConnector(task: task(), limits: ReadLimits())
    let first = try #require(try connector.firstRequest())
    let pages = [first.url: CannedPage(body: Array(body.utf8), contentType: "application/json")]
    let (records, _, driven) = try drive(FacebookPostsConnector.self, task(), pages: pages)
    let posts = records.compactMap { record -> PostRecord? in
      if case .post(let post) = record { return post }
      return nil
    }
    #expect(posts.map(\.id) == ["1_2", "1_4"])
    #expect(posts[0].likes == nil && posts[0].comments == 2 && posts[1].likes == 12)
    #expect(
      driven.counts.problems == [
        RowProblem(row: 1, column: "reactions.summary.total_count", reason: .notAnInteger),
        // Found by a tester: a negative count and one past 64 bits said "not an integer".
        RowProblem(row: 3, column: "reactions.summary.total_count", reason: .negative),
        RowProblem(row: 5, column: "reactions.summary.total_count", reason: .outOfRange),
        RowProblem(row: 6, column: "reactions.summary.total_count", reason: .negative),
      ])
  }

  /// The error a fresh connector's first page failing with `response` and the fixture's
  /// body raises.
  func failure(_ response: PageResponse, _ body: String) throws -> ExportError {
    var connector = FacebookPostsConnector(task: task(), limits: ReadLimits())
    _ = try connector.firstRequest()
    return try #require(
      throws: ExportError.self, performing: { try connector.pageFailed(response, body: Array(try fixture(body))) })
  }

  @Test("an expired token is a non-retryable token_expired error that quotes Meta's message")
  func expiredToken() throws {
    let error = try failure(PageResponse(status: 400, contentType: nil), "meta/error-190.json")
    #expect(error.code == "token_expired" && !error.retryable)
    #expect(error.message.contains("190 (subcode 463)"))
  }

  @Test("throttling is retryable after the time Meta estimates")
  func throttling() throws {
    let usage =
      #"{"111":[{"type":"pages","call_count":100,"total_cputime":25,"total_time":25,"estimated_time_to_regain_access":3}]}"#
    func wait(_ status: Int, _ headers: [(String, String)]) throws -> ExportError {
      try failure(PageResponse(status: status, contentType: nil, headers: headers), "meta/error-80001.json")
    }
    let error = try wait(400, [("x-business-use-case-usage", usage)])
    #expect(error.code == "throttled" && error.retryable)
    #expect(error.retryAfterMs == 180_000)
    // A Retry-After is the platform's word too: the longer of the two holds, and the
    // minute only when neither says (it waited a minute with `Retry-After: 1.5`).
    #expect(try wait(429, [("retry-after", "1.5")]).retryAfterMs == 1_500)
    #expect(try wait(429, [("retry-after", "2"), ("x-business-use-case-usage", usage)]).retryAfterMs == 180_000)
    #expect(try wait(429, []).retryAfterMs == 60_000)
  }

  @Test("a refused metric is dropped and the page asked again without it, then the insights altogether")
  func refusedMetricIsDropped() throws {
    var connector = FacebookPostsConnector(task: task(), limits: ReadLimits())
    _ = try connector.firstRequest()
    let refusal = Array(try fixture("meta/error-100-metric.json"))
    var urls: [String] = []
    for _ in 0..<3 {
      let retry = try #require(try connector.pageFailed(PageResponse(status: 400, contentType: nil), body: refusal))
      urls.append(retry.url)
    }
    #expect(urls[0].contains("insights.metric(post_total_media_view_unique,post_clicks)"))
    #expect(urls[1].contains("insights.metric(post_clicks)"))
    #expect(!urls[2].contains("insights"))
    #expect(connector.counts.problems.first?.column == "insights.metric(post_media_view)")
    #expect(connector.counts.badRecords == 0, "a refused metric is not a bad record")
    // With nothing left to drop, the refusal stands.
    #expect(throws: ExportError.self) {
      try connector.pageFailed(PageResponse(status: 400, contentType: nil), body: refusal)
    }
  }

  @Test("a spec's account must be a Page id; the Graph base URL is the default")
  func checkFillsDefaults() throws {
    var source = Source()
    source.kind = "facebook_posts"
    source.account = "1234567890"
    try FacebookPostsConnector.check(&source, field: "sources[0]")
    #expect(source.url == "https://graph.facebook.com/v21.0" && source.platform == "facebook")
    source.account = "../../me/accounts"
    #expect(throws: Error.self) { try FacebookPostsConnector.check(&source, field: "sources[0]") }
  }
}

@Suite("Instagram media connector")
struct InstagramMediaConnectorTests {
  @Test("media types, hidden likes, missing insights and the views/impressions break map to posts")
  func mediaMapToPosts() throws {
    var task = TaskSpec()
    task.source.kind = "instagram_media"
    task.source.account = "17841405309211844"
    task.source.url = "https://graph.facebook.com/v21.0"
    var connector = InstagramMediaConnector(task: task, limits: ReadLimits())
    let first = try #require(try connector.firstRequest())
    #expect(first.url.contains("/17841405309211844/media?fields="))
    #expect(first.url.contains("insights.metric(views,reach,saved,shares)"))
    let page = CannedPage(body: Array(try fixture("meta/ig-media-1.json")), contentType: "application/json")
    let (records, requests, driven) = try drive(InstagramMediaConnector.self, task, pages: [first.url: page])
    #expect(requests.count == 1)
    let posts = records.compactMap { record -> PostRecord? in
      if case .post(let post) = record { return post }
      return nil
    }
    #expect(posts.map(\.mediaType) == [.image, .video, .carousel])
    #expect(posts.allSatisfy { $0.platform == "instagram" })
    #expect(posts[0].likes == 177 && posts[0].comments == 84)
    #expect(posts[0].impressions == 264 && posts[0].reach == 103 && posts[0].saves == 9)
    #expect(posts[0].videoViews == nil, "views are video views only for video")
    #expect(posts[1].impressions == 500 && posts[1].videoViews == 450, "the older metrics fill the same series")
    #expect(posts[2].likes == nil, "hidden likes are unknown, not zero")
    #expect(posts[2].comments == 0)
    #expect(posts[2].impressions == nil && posts[2].reach == nil, "no insights yet: unknown, not zero")
    #expect(driven.counts.badRecords == 0)
  }

  @Test("Instagram's refusal names the metric: exactly that one is dropped")
  func namedRefusal() throws {
    var task = TaskSpec()
    task.source.account = "1"
    task.source.url = "https://graph.facebook.com/v21.0"
    var connector = InstagramMediaConnector(task: task, limits: ReadLimits())
    _ = try connector.firstRequest()
    let body = Array(
      #"{"error":{"message":"(#100) The Media Insights API does not support the saved metric for this media product type.","type":"OAuthException","code":100,"fbtrace_id":"ADSOqI5npz6eOm0GUznSclt"}}"#
        .utf8)
    let retry = try #require(try connector.pageFailed(PageResponse(status: 400, contentType: nil), body: body))
    #expect(retry.url.contains("insights.metric(views,reach,shares)"))
  }
}
