import Foundation
import Synchronization

/// LinkedIn's versioned REST API as the fixture server plays it, under `/linkedin/rest/`:
/// `posts?q=author` (`start`/`count` paging, the end a short page) and
/// `organizationalEntityShareStatistics` (`shares=List(…)`, `ugcPosts=List(…)`), each
/// refusing a request without `LinkedIn-Version` and `X-Restli-Protocol-Version: 2.0.0`.
/// Shapes as docs/fixtures.md cites them; posts generated from the organization id; posts
/// with no activity left out of the statistics, some with a negative `likeCount`.
public final class LinkedInFixture: Sendable {
  public struct Settings: Sendable {
    public var postsPerOrganization = 120
    public var tokens: Set<String> = ["fixture-linkedin-token"]
    public init() {}
  }

  public let settings = Mutex(Settings())

  init() {}

  public struct Post: Sendable, Equatable {
    public var urn: String
    public var publishedMs: Int64
    /// image, video, text, article or multiImage.
    public var content: String
    /// nil: no activity (left out of the statistics).
    public var likes: Int64?
    public var comments: UInt64
    public var shares: UInt64
    public var impressions: UInt64
    public var clicks: UInt64
  }

  public static func post(organization: String, index: Int) -> Post {
    let salt = UInt64(organization.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xFFFF })
    let seed = UInt64(index) &* 4_111 &+ salt
    let contents = ["image", "video", "text", "article", "multiImage"]
    let urn = index % 4 == 1 ? "urn:li:ugcPost:70448\(100_000 + index)" : "urn:li:share:70450\(100_000 + index)"
    let quiet = index % 9 == 0
    return Post(
      urn: urn, publishedMs: 1_780_000_000_000 - Int64(index) * 7_200_000, content: contents[index % contents.count],
      likes: quiet ? nil : index % 13 == 4 ? -Int64(1 + seed % 3) : Int64(seed % 200), comments: quiet ? 0 : seed % 30,
      shares: quiet ? 0 : seed % 12, impressions: quiet ? 0 : 300 + seed % 9_000, clicks: quiet ? 0 : seed % 150)
  }

  func answer(path: String, query: [String: String], authorization: String, version: String, restli: String) -> (
    Int, [(String, String)], String
  ) {
    let settings = self.settings.withLock { $0 }
    let json = ("Content-Type", "application/json")
    guard authorization.hasPrefix("Bearer "), settings.tokens.contains(String(authorization.dropFirst(7))) else {
      return (401, [json], #"{"serviceErrorCode":65600,"message":"Invalid access token","status":401}"#)
    }
    guard !version.isEmpty, restli == "2.0.0" else {
      return (
        400, [json],
        #"{"status":400,"message":"A LinkedIn-Version header and X-Restli-Protocol-Version: 2.0.0 are required"}"#
      )
    }
    let organization = (query["organizationalEntity"] ?? query["author"] ?? "")
      .replacingOccurrences(of: "urn:li:organization:", with: "")
    switch path {
    case "/linkedin/rest/posts":
      guard query["q"] == "author" else { return (400, [json], #"{"status":400,"message":"q=author is required"}"#) }
      guard let start = query["start"].map({ pagingCount($0) }) ?? 0 else {
        return (400, [json], #"{"status":400,"message":"start must be a non-negative integer"}"#)
      }
      let count = min(100, max(1, Int(query["count"] ?? "") ?? 10))
      let end = min(settings.postsPerOrganization, start + count)
      let elements = (start..<max(start, end)).map { index -> String in
        let post = Self.post(organization: organization, index: index)
        let content: String
        switch post.content {
        case "image": content = #","content":{"media":{"altText":"Image","id":"urn:li:image:C4E\#(index)"}}"#
        case "video": content = #","content":{"media":{"title":"Clip","id":"urn:li:video:C56\#(index)"}}"#
        case "article": content = #","content":{"article":{"source":"https://example.com/\#(index)","title":"Sale"}}"#
        case "multiImage":
          content = #","content":{"multiImage":{"images":[{"id":"urn:li:image:A"},{"id":"urn:li:image:B"}]}}"#
        default: content = ""
        }
        return
          #"{"id":"\#(post.urn)","author":"urn:li:organization:\#(organization)","lifecycleState":"PUBLISHED","visibility":"PUBLIC","createdAt":\#(post.publishedMs - 500),"publishedAt":\#(post.publishedMs)\#(content)}"#
      }
      return (
        200, [json],
        #"{"paging":{"start":\#(start),"count":\#(count),"links":[]},"elements":[\#(elements.joined(separator: ","))]}"#
      )
    case "/linkedin/rest/organizationalEntityShareStatistics":
      func list(_ name: String) -> [String] {
        guard let text = query[name], text.hasPrefix("List("), text.hasSuffix(")") else { return [] }
        return text.dropFirst(5).dropLast().split(separator: ",").map { $0.removingPercentEncoding ?? String($0) }
      }
      let wanted = Set(list("shares") + list("ugcPosts"))
      let elements = (0..<settings.postsPerOrganization).map { Self.post(organization: organization, index: $0) }
        .filter { wanted.contains($0.urn) && $0.likes != nil }
        .map { post -> String in
          let key = post.urn.hasPrefix("urn:li:ugcPost:") ? "ugcPost" : "share"
          return
            #"{"totalShareStatistics":{"shareCount":\#(post.shares),"clickCount":\#(post.clicks),"engagement":0.02,"likeCount":\#(post.likes ?? 0),"impressionCount":\#(post.impressions),"commentCount":\#(post.comments)},"\#(key)":"\#(post.urn)","organizationalEntity":"urn:li:organization:\#(organization)"}"#
        }
      return (
        200, [json], #"{"elements":[\#(elements.joined(separator: ","))],"paging":{"count":10,"start":0,"links":[]}}"#
      )
    default:
      return (404, [json], #"{"status":404,"message":"Not found"}"#)
    }
  }
}
