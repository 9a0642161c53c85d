import Foundation
import HaatCore
import HaatProtocol

extension SourceKind {
  /// An Instagram professional account's media with their insights, from the Graph API.
  public static let instagramMedia = SourceKind("instagram_media", InstagramMediaConnector.self)
}

public typealias InstagramMediaConnector = MetaGraphConnector<InstagramMedia>

/// An Instagram professional account's media
/// (https://developers.facebook.com/docs/instagram-api/reference/ig-user/media,
/// …/ig-media, …/ig-media/insights):
///
/// - likes: `like_count` — left out when the owner hides like counts, so unknown, not zero;
///   comments: `comments_count`;
/// - saves: `saved`; reach: `reach`; shares: `shares` (lifetime insights);
/// - impressions: `views`. Meta deprecated `impressions`, `plays` and `video_views` for all
///   versions on 2025-04-21 in favour of `views`; an older answer's `impressions` fills
///   the same series. Video and reels also count `views` (or the older `plays`,
///   `video_views`) as video views;
/// - media type: IMAGE → image, VIDEO (reels too) → video, CAROUSEL_ALBUM → carousel.
///
/// Meta returns an empty insights list, not zeros, where it has no data: those fields stay
/// unknown.
public enum InstagramMedia: MetaGraphEdge {
  public static let kind = SourceKind.instagramMedia
  public static let summary =
    "an Instagram professional account's media and insights from Meta's Graph API (account: the IG user id)"
  public static let platform = "instagram"
  public static let edge = "media"
  public static let fields = [
    "id", "timestamp", "media_type", "media_product_type", "like_count", "comments_count",
  ]
  public static let metrics = ["views", "reach", "saved", "shares"]
  public static let accountMeaning = "the Instagram user's id"

  public static func post(from item: JSONValue, source: Source) -> Result<PostRecord, RowProblem.Field> {
    let written = item["media_type"]?.string ?? ""
    let media: MediaType
    switch written {
    case "IMAGE": media = .image
    case "VIDEO", "REELS": media = .video
    case "CAROUSEL_ALBUM": media = .carousel
    default: media = .other
    }
    var post: PostRecord
    switch MetaGraph.item(item, source: source, timeField: "timestamp", mediaType: media) {
    case .success(let value): post = value
    case .failure(let problem): return .failure(problem)
    }
    for (field, keyPath) in [("like_count", \PostRecord.likes), ("comments_count", \PostRecord.comments)] {
      guard let value = item[field] else { continue }
      guard let count = value.count else { return .failure(.init(field, value.countProblem)) }
      post[keyPath: keyPath] = count
    }
    switch MetaGraph.insights(item) {
    case .success(let insights):
      post.reach = insights["reach"]
      post.saves = insights["saved"]
      post.shares = insights["shares"]
      post.impressions = insights["views"] ?? insights["impressions"]
      if media == .video {
        post.videoViews = insights["views"] ?? insights["plays"] ?? insights["video_views"]
      }
    case .failure(let problem): return .failure(problem)
    }
    return .success(post)
  }
}
