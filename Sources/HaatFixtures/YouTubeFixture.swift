import Foundation
import Synchronization

/// YouTube's Data API v3 (`/youtube/v3/channels`, `/youtube/v3/playlistItems`) and
/// Analytics API v2 (`/youtubeanalytics/v2/reports`) as the fixture server plays them, from
/// Google's discovery documents (docs/fixtures.md): the uploads playlist, pages of 50 with
/// `nextPageToken`, a report table of `columnHeaders` and `rows` (some views as integral
/// floats, videos without views left out), and Google's error envelope.
public final class YouTubeFixture: Sendable {
  public struct Settings: Sendable {
    public var videosPerChannel = 120
    public var tokens: Set<String> = ["fixture-youtube-token"]
    /// Requests (counted from 1 over the fixture's life) answered 403 quotaExceeded.
    public var quotaExceededRequests: Set<Int> = []
    public init() {}
  }

  public let settings = Mutex(Settings())
  private let requestCount = Atomic<Int>(0)

  init() {}

  public struct Video: Sendable, Equatable {
    public var id: String
    public var publishedEpoch: Int64
    /// nil: no views yet (no row in the report).
    public var views: UInt64?
    public var likes: UInt64
    public var comments: UInt64
    public var shares: UInt64
  }

  public static func video(channel: String, index: Int) -> Video {
    let salt = UInt64(channel.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xFFFF })
    let seed = UInt64(index) &* 2_203 &+ salt
    let views = 50 + seed % 90_000
    return Video(
      id: "vid\(String(100_000_000 + index))", publishedEpoch: 1_780_000_000 - Int64(index) * 86_400,
      views: index % 11 == 3 ? nil : views, likes: views / 30, comments: views / 400, shares: views / 900)
  }

  func answer(path: String, query: [String: String], authorization: String) -> (Int, [(String, String)], String) {
    let settings = self.settings.withLock { $0 }
    let json = ("Content-Type", "application/json; charset=UTF-8")
    func error(_ status: Int, _ reason: String, _ message: String) -> (Int, [(String, String)], String) {
      (
        status, [json],
        #"{"error":{"code":\#(status),"message":"\#(message)","errors":[{"message":"\#(message)","domain":"youtube.quota","reason":"\#(reason)"}]}}"#
      )
    }
    let number = requestCount.add(1, ordering: .relaxed).newValue
    guard authorization.hasPrefix("Bearer "), settings.tokens.contains(String(authorization.dropFirst(7))) else {
      return error(401, "authError", "Invalid Credentials")
    }
    if settings.quotaExceededRequests.contains(number) {
      return error(403, "quotaExceeded", "The request cannot be completed because you have exceeded your quota.")
    }
    switch path {
    case "/youtube/v3/channels":
      guard let channel = query["id"], channel.hasPrefix("UC") else {
        return (
          200, [json],
          #"{"kind":"youtube#channelListResponse","pageInfo":{"totalResults":0,"resultsPerPage":5},"items":[]}"#
        )
      }
      let uploads = "UU" + channel.dropFirst(2)
      return (
        200, [json],
        #"{"kind":"youtube#channelListResponse","items":[{"kind":"youtube#channel","id":"\#(channel)","contentDetails":{"relatedPlaylists":{"likes":"","uploads":"\#(uploads)"}}}]}"#
      )
    case "/youtube/v3/playlistItems":
      guard let playlist = query["playlistId"], playlist.hasPrefix("UU") else {
        return error(
          404, "playlistNotFound", "The playlist identified with the request's playlistId parameter cannot be found.")
      }
      let channel = "UC" + playlist.dropFirst(2)
      let size = min(50, max(0, Int(query["maxResults"] ?? "") ?? 5))
      var offset = 0
      if let token = query["pageToken"] {
        guard let at = pagingCount(Data(base64Encoded: token).flatMap { String(data: $0, encoding: .utf8) }) else {
          return error(400, "invalidPageToken", "The request specifies an invalid page token.")
        }
        offset = at
      }
      let end = min(settings.videosPerChannel, offset + size)
      let formatter = ISO8601DateFormatter()
      formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
      let items = (offset..<max(offset, end)).map { index -> String in
        let video = Self.video(channel: channel, index: index)
        let published = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(video.publishedEpoch)))
        return
          #"{"kind":"youtube#playlistItem","id":"UEx\#(index)","contentDetails":{"videoId":"\#(video.id)","videoPublishedAt":"\#(published)"}}"#
      }
      let next =
        end < settings.videosPerChannel && end > offset
        ? #""nextPageToken":"\#(Data(String(end).utf8).base64EncodedString())","# : ""
      return (
        200, [json],
        #"{"kind":"youtube#playlistItemListResponse",\#(next)"items":[\#(items.joined(separator: ","))],"pageInfo":{"totalResults":\#(settings.videosPerChannel),"resultsPerPage":\#(size)}}"#
      )
    case "/youtubeanalytics/v2/reports":
      guard let ids = query["ids"], ids.hasPrefix("channel=="), query["dimensions"] == "video",
        let filter = query["filters"], filter.hasPrefix("video=="), query["startDate"] != nil, query["endDate"] != nil
      else { return error(400, "badRequest", "Required parameters are missing or invalid.") }
      let channel = String(ids.dropFirst("channel==".count))
      let wanted = Set(filter.dropFirst("video==".count).split(separator: ",").map(String.init))
      let metrics = (query["metrics"] ?? "").split(separator: ",").map(String.init)
      let headers =
        [#"{"name":"video","columnType":"DIMENSION","dataType":"STRING"}"#]
        + metrics.map { #"{"name":"\#($0)","columnType":"METRIC","dataType":"INTEGER"}"# }
      let rows = (0..<settings.videosPerChannel).map { Self.video(channel: channel, index: $0) }
        .filter { wanted.contains($0.id) && $0.views != nil }
        .enumerated().map { offset, video -> String in
          let cells = metrics.map { metric -> String in
            let value: UInt64
            switch metric {
            case "views": value = video.views ?? 0
            case "likes": value = video.likes
            case "comments": value = video.comments
            case "shares": value = video.shares
            default: value = 0
            }
            // Some cells as integral floats: the schema allows either.
            return offset % 3 == 0 ? "\(value).0" : "\(value)"
          }
          return #"["\#(video.id)",\#(cells.joined(separator: ","))]"#
        }
      let rowsField = rows.isEmpty ? "" : #","rows":[\#(rows.joined(separator: ","))]"#
      return (
        200, [json],
        #"{"kind":"youtubeAnalytics#resultTable","columnHeaders":[\#(headers.joined(separator: ","))]\#(rowsField)}"#
      )
    default:
      return error(404, "notFound", "Not Found")
    }
  }
}
