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
///
/// The counts are kept in one inline array with a mask of the known ones, not as nine
/// `UInt64?` (16 bytes each): a post is copied into its record, and half the bytes is half
/// the copying.
public struct PostRecord: Sendable, Equatable {
  public var platform: String
  public var account: String
  public var id: String
  /// The instant and the offset it was written with.
  public var createdAt: Values.Timestamp
  public var mediaType: MediaType
  /// The reader's index of this post's platform × account (−1: none): records from one
  /// reader with equal indices have equal platforms and accounts. A hint that lets a kernel
  /// find its entry without hashing Strings; it is not part of the post (`==` ignores it).
  public var accountIndex: Int32 = -1
  /// The counts in `PostField.counts` order; 0 where `known` has no bit.
  @usableFromInline var counts = InlineArray<9, UInt64>(repeating: 0)
  /// Bit i set: count i is known.
  @usableFromInline var known: UInt16 = 0

  @inlinable public var likes: UInt64? {
    get { self[countAt: 0] }
    set { self[countAt: 0] = newValue }
  }
  @inlinable public var comments: UInt64? {
    get { self[countAt: 1] }
    set { self[countAt: 1] = newValue }
  }
  @inlinable public var shares: UInt64? {
    get { self[countAt: 2] }
    set { self[countAt: 2] = newValue }
  }
  @inlinable public var saves: UInt64? {
    get { self[countAt: 3] }
    set { self[countAt: 3] = newValue }
  }
  @inlinable public var reach: UInt64? {
    get { self[countAt: 4] }
    set { self[countAt: 4] = newValue }
  }
  @inlinable public var impressions: UInt64? {
    get { self[countAt: 5] }
    set { self[countAt: 5] = newValue }
  }
  @inlinable public var videoViews: UInt64? {
    get { self[countAt: 6] }
    set { self[countAt: 6] = newValue }
  }
  @inlinable public var clicks: UInt64? {
    get { self[countAt: 7] }
    set { self[countAt: 7] = newValue }
  }
  @inlinable public var followersAtPost: UInt64? {
    get { self[countAt: 8] }
    set { self[countAt: 8] = newValue }
  }

  public static func == (lhs: PostRecord, rhs: PostRecord) -> Bool {
    guard
      lhs.platform == rhs.platform && lhs.account == rhs.account && lhs.id == rhs.id
        && lhs.createdAt == rhs.createdAt && lhs.mediaType == rhs.mediaType && lhs.known == rhs.known
    else { return false }
    for index in lhs.counts.indices where lhs.counts[index] != rhs.counts[index] { return false }
    return true
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

  /// Which counts the post states, one bit each in `PostField.counts` order (likes 1 …
  /// followers_at_post 256): a kernel's test of them all at once.
  @inlinable public var stated: UInt16 { known }

  /// Count `index` of `PostField.counts`.
  @inlinable @inline(__always)
  subscript(countAt index: Int) -> UInt64? {
    get { known & (1 << index) != 0 ? counts[index] : nil }
    set {
      counts[index] = newValue ?? 0
      known = newValue == nil ? known & ~(1 << index) : known | (1 << index)
    }
  }

  /// The count of a count field; nil for a field that is not a count.
  public subscript(count field: PostField) -> UInt64? {
    get { field.isCount ? self[countAt: field.rawValue - PostField.likes.rawValue] : nil }
    set {
      guard field.isCount else { return }
      self[countAt: field.rawValue - PostField.likes.rawValue] = newValue
    }
  }
}
