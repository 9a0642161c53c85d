/// The six media types every platform's post kinds are normalised to.
public enum MediaType: String, Sendable, CaseIterable, Comparable {
  case text, image, video, carousel, link, other

  /// Normalises a written media type (docs/formats.md); unknown or empty is `other`.
  public init(normalizing raw: UnsafeRawBufferPointer) {
    let text = Values.trimmed(raw)
    // Compared byte by byte, folding ASCII case, with no String per row.
    for (name, type) in Self.synonymBytes where name.count == text.count {
      if zip(name, text).allSatisfy({ $0 == (($1 >= 0x41 && $1 <= 0x5A) ? $1 + 0x20 : $1) }) {
        self = type
        return
      }
    }
    self = .other
  }

  static let synonyms: [String: MediaType] = [
    "text": .text, "status": .text,
    "image": .image, "photo": .image, "picture": .image,
    "video": .video, "reel": .video, "reels": .video, "short": .video, "shorts": .video,
    "carousel": .carousel, "carousel_album": .carousel, "album": .carousel,
    "link": .link, "article": .link,
    "other": .other,
  ]

  /// The synonyms as bytes, the common names first.
  static let synonymBytes: [([UInt8], MediaType)] = synonyms.sorted { lhs, rhs in
    let common: [String] = ["text", "image", "video", "carousel", "link"]
    let (left, right) = (common.firstIndex(of: lhs.key) ?? 99, common.firstIndex(of: rhs.key) ?? 99)
    return left != right ? left < right : lhs.key < rhs.key
  }.map { (Array($0.key.utf8), $0.value) }

  public static func < (lhs: MediaType, rhs: MediaType) -> Bool { lhs.rawValue < rhs.rawValue }

  /// The type's place in `allCases`, without a search.
  public var index: Int {
    switch self {
    case .text: return 0
    case .image: return 1
    case .video: return 2
    case .carousel: return 3
    case .link: return 4
    case .other: return 5
    }
  }
}

/// The canonical fields of a post, in canonical order (the order problems are looked for).
public enum PostField: Int, CaseIterable, Sendable {
  case platform, account, id, createdAt, mediaType
  case likes, comments, shares, saves, reach, impressions, videoViews, clicks, followersAtPost
  case caption

  /// The canonical (snake_case) name.
  public var name: String {
    switch self {
    case .platform: return "platform"
    case .account: return "account"
    case .id: return "id"
    case .createdAt: return "created_at"
    case .mediaType: return "media_type"
    case .likes: return "likes"
    case .comments: return "comments"
    case .shares: return "shares"
    case .saves: return "saves"
    case .reach: return "reach"
    case .impressions: return "impressions"
    case .videoViews: return "video_views"
    case .clicks: return "clicks"
    case .followersAtPost: return "followers_at_post"
    case .caption: return "caption"
    }
  }

  /// protobuf's lowerCamelCase JSON name, where it differs.
  public var camelName: String? {
    switch self {
    case .createdAt: return "createdAt"
    case .mediaType: return "mediaType"
    case .videoViews: return "videoViews"
    case .followersAtPost: return "followersAtPost"
    default: return nil
    }
  }

  /// Whether the field is a count.
  public var isCount: Bool { rawValue >= PostField.likes.rawValue && self != .caption }

  /// The count fields, in canonical order.
  public static let counts: [PostField] = allCases.filter(\.isCount)

  static let byName: [String: PostField] = Dictionary(
    uniqueKeysWithValues: allCases.map { ($0.name, $0) })
  static let byCamelName: [String: PostField] = Dictionary(
    uniqueKeysWithValues: allCases.compactMap { field in field.camelName.map { ($0, field) } })
}

/// One post in canonical form. Counts are optional: nil means the export does not say.
public struct PostRecord: Sendable, Equatable {
  public var platform: String
  public var account: String
  public var id: String
  /// The instant and the offset it was written with.
  public var createdAt: Values.Timestamp
  public var mediaType: MediaType
  public var likes: UInt64?
  public var comments: UInt64?
  public var shares: UInt64?
  public var saves: UInt64?
  public var reach: UInt64?
  public var impressions: UInt64?
  public var videoViews: UInt64?
  public var clicks: UInt64?
  public var followersAtPost: UInt64?
  /// The reader's index of this post's platform × account (−1: none): records from one
  /// reader with equal indices have equal platforms and accounts. A hint that lets a kernel
  /// find its entry without hashing Strings; it is not part of the post (`==` ignores it).
  public var accountIndex: Int32 = -1

  public static func == (lhs: PostRecord, rhs: PostRecord) -> Bool {
    lhs.platform == rhs.platform && lhs.account == rhs.account && lhs.id == rhs.id && lhs.createdAt == rhs.createdAt
      && lhs.mediaType == rhs.mediaType && lhs.likes == rhs.likes
      && lhs.comments == rhs.comments && lhs.shares == rhs.shares && lhs.saves == rhs.saves && lhs.reach == rhs.reach
      && lhs.impressions == rhs.impressions && lhs.videoViews == rhs.videoViews && lhs.clicks == rhs.clicks
      && lhs.followersAtPost == rhs.followersAtPost
  }

  public init(
    platform: String, account: String, id: String, createdAt: Values.Timestamp,
    mediaType: MediaType
  ) {
    self.platform = platform
    self.account = account
    self.id = id
    self.createdAt = createdAt
    self.mediaType = mediaType
  }

  /// The count of a count field.
  public subscript(count field: PostField) -> UInt64? {
    get {
      switch field {
      case .likes: return likes
      case .comments: return comments
      case .shares: return shares
      case .saves: return saves
      case .reach: return reach
      case .impressions: return impressions
      case .videoViews: return videoViews
      case .clicks: return clicks
      case .followersAtPost: return followersAtPost
      default: return nil
      }
    }
    set {
      switch field {
      case .likes: likes = newValue
      case .comments: comments = newValue
      case .shares: shares = newValue
      case .saves: saves = newValue
      case .reach: reach = newValue
      case .impressions: impressions = newValue
      case .videoViews: videoViews = newValue
      case .clicks: clicks = newValue
      case .followersAtPost: followersAtPost = newValue
      default: break
      }
    }
  }
}
