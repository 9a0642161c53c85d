import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatRecords

@Suite("YouTube videos connector")
struct YouTubeVideosConnectorTests {
  func task() throws -> TaskSpec {
    var task = TaskSpec()
    task.source.kind = "youtube_videos"
    task.source.account = "UC_x5XG1OV2P6uZZ5FSM9Ttw"
    try YouTubeVideosConnector.check(&task.source, field: "sources[0]")
    return task
  }

  @Test("the uploads playlist, pages by token, one report per page by column name; no row is no views")
  func uploadsWithMetrics() throws {
    for chunk in [1, 3, 4096] {
      var connector = YouTubeVideosConnector(task: try task(), limits: ReadLimits())
      var posts: [PostRecord] = []
      var urls: [String] = []
      func emit(_ record: CanonicalRecord) -> Bool {
        if case .post(let post) = record { posts.append(post) }
        return true
      }
      var answers = ["channels.json", "playlist-1.json", "report-1.json", "playlist-2.json", "report-2.json"][...]
      var next = try connector.firstRequest()
      while let request = next {
        urls.append(request.url)
        let body = Array(try fixture("youtube/\(answers.removeFirst())"))
        next = try answer(&connector, with: body, chunk: chunk, emit: emit)
      }
      #expect(answers.isEmpty)
      #expect(
        urls[0] == "https://www.googleapis.com/youtube/v3/channels?part=contentDetails&id=UC_x5XG1OV2P6uZZ5FSM9Ttw")
      #expect(urls[1].hasSuffix("playlistItems?part=contentDetails&playlistId=UU_x5XG1OV2P6uZZ5FSM9Ttw&maxResults=50"))
      #expect(
        urls[2].hasPrefix("https://youtubeanalytics.googleapis.com/v2/reports?ids=channel==UC_x5XG1OV2P6uZZ5FSM9Ttw"))
      #expect(urls[2].contains("&filters=video==1zagQpB_c0M,dMH0bHeiRNg&startDate=2005-04-23"))
      #expect(urls[3].hasSuffix("&pageToken=CAUQAA"))
      #expect(posts.map(\.id) == ["1zagQpB_c0M", "dMH0bHeiRNg", "quietVid001"])
      #expect(posts[0].videoViews == 41_203 && posts[0].likes == 2_104 && posts[0].shares == 140)
      #expect(posts[1].videoViews == 18_552, "an integral float is a count")
      #expect(posts[2].videoViews == 0 && posts[2].likes == 0, "no row: no views")
      #expect(posts[0].createdAt.epochSeconds == 1_253_704_065 && posts.allSatisfy { $0.mediaType == .video })
      #expect(
        connector.counts.problems == [
          RowProblem(row: 3, column: "contentDetails.videoPublishedAt", reason: .missing)
        ])
    }
  }

  /// Found by a tester: a metric without a column read as 0 for a video without a row,
  /// and a row short of its cells was taken for no row (zeros).
  @Test("a missing column is unknown; a row short of its cells is a bad row")
  func missingColumnAndShortRow() throws {
    var connector = YouTubeVideosConnector(task: try task(), limits: ReadLimits())
    var posts: [PostRecord] = []
    func emit(_ record: CanonicalRecord) -> Bool {
      if case .post(let post) = record { posts.append(post) }
      return true
    }
    var answers = ["channels.json", "playlist-1.json", "report-short.json", "playlist-2.json", "report-2.json"][...]
    var next = try connector.firstRequest()
    while let request = next {
      _ = request
      next = try answer(
        &connector, with: Array(try fixture("youtube/\(answers.removeFirst())")), chunk: 4096, emit: emit)
    }
    #expect(posts.map(\.id) == ["dMH0bHeiRNg", "quietVid001"])
    #expect(posts[0].videoViews == 18_552 && posts[0].likes == nil && posts[0].comments == 42)
    #expect(connector.counts.problems.contains(RowProblem(row: 1, column: "rows", reason: .wrongFieldCount)))
  }

  @Test("the daily quota is retried after its reset; a rejected token is not")
  func errors() throws {
    var connector = YouTubeVideosConnector(task: try task(), limits: ReadLimits())
    do {
      _ = try connector.pageFailed(
        PageResponse(status: 403, contentType: nil), body: Array(try fixture("youtube/error-quota.json")))
      Issue.record("the quota error was not an error")
    } catch let error as ExportError {
      #expect(error.code == "quota_exceeded" && error.retryable)
      #expect((error.retryAfterMs ?? 0) >= 60_000 && (error.retryAfterMs ?? 0) <= 86_400_000)
    }
    let unauthorized = Array(
      #"{"error":{"code":401,"message":"Invalid Credentials","errors":[{"reason":"authError"}]}}"#.utf8)
    #expect(throws: ExportError.self) {
      _ = try connector.pageFailed(PageResponse(status: 401, contentType: nil), body: unauthorized)
    }
  }

  @Test("an account must be a channel id")
  func check() {
    var source = Source()
    source.account = "my channel"
    #expect(throws: HaatError.self) { try YouTubeVideosConnector.check(&source, field: "sources[0]") }
  }
}
