import Foundation
import HaatCore
import HaatProtocol

extension SourceKind {
  /// A Facebook Page's posts with their reactions, comments, shares and insights, from the
  /// Graph API.
  public static let facebookPosts = SourceKind("facebook_posts", FacebookPostsConnector.self)
}

public typealias FacebookPostsConnector = MetaGraphConnector<FacebookPosts>

/// A Facebook Page's posts (https://developers.facebook.com/docs/graph-api/reference/page/feed/):
///
/// - likes: `reactions.summary.total_count` (all reaction types, as Meta's own "likes" count does);
///   comments: `comments.summary.total_count`; shares: `shares.count` (absent: 0);
/// - impressions: the lifetime `post_media_view` insight — Meta removed `post_impressions*`
///   on 2025-11-15 in its favour; a page still answering `post_impressions` fills the same
///   series; reach: `post_total_media_view_unique` (or the older `post_impressions_unique`);
///   clicks: `post_clicks`;
/// - media type: the first attachment's `media_type` (photo, video, album, link, share);
///   none is text.
public enum FacebookPosts: MetaGraphEdge {
  public static let kind = SourceKind.facebookPosts
  public static let summary = "a Facebook Page's posts and insights from Meta's Graph API (account: the Page id)"
  public static let platform = "facebook"
  public static let edge = "posts"
  public static let fields = [
    "id", "created_time", "attachments{media_type}", "shares", "reactions.summary(total_count).limit(0)",
    "comments.summary(total_count).limit(0)",
  ]
  public static let metrics = ["post_media_view", "post_total_media_view_unique", "post_clicks"]
  public static let accountMeaning = "the Page's id"

  public static func post(from item: JSONValue, source: Source) -> Result<PostRecord, RowProblem.Field> {
    var post: PostRecord
    switch MetaGraph.item(item, source: source, timeField: "created_time", mediaType: mediaType(item)) {
    case .success(let value): post = value
    case .failure(let problem): return .failure(problem)
    }
    switch (Self.summaryCount(item, "reactions"), Self.summaryCount(item, "comments")) {
    case (.success(let likes), .success(let comments)): (post.likes, post.comments) = (likes, comments)
    case (.failure(let problem), _), (_, .failure(let problem)): return .failure(problem)
    }
    if let shares = item["shares"] {
      guard let count = shares["count"]?.count else {
        return .failure(.init("shares", shares["count"]?.countProblem ?? .notAnInteger))
      }
      post.shares = count
    } else {
      // Meta leaves `shares` out of a post nobody shared.
      post.shares = 0
    }
    switch MetaGraph.insights(item) {
    case .success(let insights):
      post.impressions = insights["post_media_view"] ?? insights["post_impressions"]
      post.reach = insights["post_total_media_view_unique"] ?? insights["post_impressions_unique"]
      post.clicks = insights["post_clicks"]
    case .failure(let problem): return .failure(problem)
    }
    return .success(post)
  }

  /// An edge's `summary.total_count`: nil when absent or null (unknown); a value that is no
  /// count is a bad record (a post with `"many"` likes had them quietly left out).
  static func summaryCount(_ item: JSONValue, _ edge: String) -> Result<UInt64?, RowProblem.Field> {
    guard let value = item[edge]?["summary"]?["total_count"], value != .null else { return .success(nil) }
    guard let count = value.count else { return .failure(.init("\(edge).summary.total_count", value.countProblem)) }
    return .success(count)
  }

  static func mediaType(_ item: JSONValue) -> MediaType {
    guard let first = item["attachments"]?["data"]?.array?.first,
      let written = first["media_type"]?.string?.lowercased()
    else { return .text }
    switch written {
    case "photo": return .image
    case "video", "video_inline", "video_autoplay", "animated_image_video": return .video
    case "album": return .carousel
    case "link", "share": return .link
    default: return .other
    }
  }
}
