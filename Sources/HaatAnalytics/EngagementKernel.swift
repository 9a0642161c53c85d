import HaatProtocol
import HaatRecords

/// The `engagement` report's mergeable aggregate: exact sums per platform × account ×
/// media type. `add` is one pass over posts; `merge` is associative and commutative with
/// `EngagementKernel()` as identity, so partials can be combined in any order and grouping.
public struct EngagementKernel: Sendable, Equatable {
  public struct Key: Hashable, Sendable, Comparable {
    public var platform: String
    public var account: String
    public var mediaType: String

    public static func < (lhs: Key, rhs: Key) -> Bool {
      // Unicode scalar order, which is UTF-8 byte order (docs/formats.md).
      if lhs.platform != rhs.platform { return lhs.platform.utf8.lexicographicallyPrecedes(rhs.platform.utf8) }
      if lhs.account != rhs.account { return lhs.account.utf8.lexicographicallyPrecedes(rhs.account.utf8) }
      return lhs.mediaType.utf8.lexicographicallyPrecedes(rhs.mediaType.utf8)
    }
  }

  /// The sums for one key.
  public struct Cell: Sendable, Equatable {
    public var posts: UInt64 = 0
    public var likes: UInt64 = 0
    public var comments: UInt64 = 0
    public var shares: UInt64 = 0
    public var saves: UInt64 = 0
    public var reach: UInt64 = 0
    public var impressions: UInt64 = 0
    public var clicks: UInt64 = 0
    public var videoViews: UInt64 = 0
    public var engagementsWithReach: UInt64 = 0
    public var engagementsWithImpressions: UInt64 = 0
    public var ctrClicks: UInt64 = 0
    public var ctrImpressions: UInt64 = 0
    public var postsWithReach: UInt64 = 0
    public var postsWithImpressions: UInt64 = 0

    public init() {}

    var engagements: UInt64 { likes &+ comments &+ shares &+ saves }

    mutating func add(_ post: PostRecord) {
      posts &+= 1
      let engagements =
        (post.likes ?? 0) &+ (post.comments ?? 0) &+ (post.shares ?? 0) &+ (post.saves ?? 0)
      likes &+= post.likes ?? 0
      comments &+= post.comments ?? 0
      shares &+= post.shares ?? 0
      saves &+= post.saves ?? 0
      clicks &+= post.clicks ?? 0
      videoViews &+= post.videoViews ?? 0
      if let reach = post.reach {
        self.reach &+= reach
        engagementsWithReach &+= engagements
        postsWithReach &+= 1
      }
      if let impressions = post.impressions {
        self.impressions &+= impressions
        engagementsWithImpressions &+= engagements
        postsWithImpressions &+= 1
        if let clicks = post.clicks {
          ctrClicks &+= clicks
          ctrImpressions &+= impressions
        }
      }
    }

    mutating func merge(_ other: Cell) {
      posts &+= other.posts
      likes &+= other.likes
      comments &+= other.comments
      shares &+= other.shares
      saves &+= other.saves
      reach &+= other.reach
      impressions &+= other.impressions
      clicks &+= other.clicks
      videoViews &+= other.videoViews
      engagementsWithReach &+= other.engagementsWithReach
      engagementsWithImpressions &+= other.engagementsWithImpressions
      ctrClicks &+= other.ctrClicks
      ctrImpressions &+= other.ctrImpressions
      postsWithReach &+= other.postsWithReach
      postsWithImpressions &+= other.postsWithImpressions
    }
  }

  public private(set) var cells: [Key: Cell] = [:]

  public init() {}

  /// Adds one post.
  public mutating func add(_ post: PostRecord) {
    let key = Key(platform: post.platform, account: post.account, mediaType: post.mediaType.rawValue)
    cells[key, default: Cell()].add(post)
  }

  /// Merges another partial into this one.
  public mutating func merge(_ other: EngagementKernel) {
    for (key, cell) in other.cells { cells[key, default: Cell()].merge(cell) }
  }

  // MARK: Wire form

  /// The partial as its protocol message, cells in key order (so equal partials encode
  /// to equal bytes).
  public var partial: Haat_V1_EngagementPartial {
    var message = Haat_V1_EngagementPartial()
    message.cells = cells.keys.sorted().map { key in
      let cell = cells[key] ?? Cell()
      var out = Haat_V1_EngagementCell()
      out.platform = key.platform
      out.account = key.account
      out.mediaType = key.mediaType
      out.posts = cell.posts
      out.likes = cell.likes
      out.comments = cell.comments
      out.shares = cell.shares
      out.saves = cell.saves
      out.reach = cell.reach
      out.impressions = cell.impressions
      out.clicks = cell.clicks
      out.videoViews = cell.videoViews
      out.engagementsWithReach = cell.engagementsWithReach
      out.engagementsWithImpressions = cell.engagementsWithImpressions
      out.ctrClicks = cell.ctrClicks
      out.ctrImpressions = cell.ctrImpressions
      out.postsWithReach = cell.postsWithReach
      out.postsWithImpressions = cell.postsWithImpressions
      return out
    }
    return message
  }

  /// The kernel a partial message describes (repeated keys are merged).
  public init(partial message: Haat_V1_EngagementPartial) {
    for cell in message.cells {
      var sums = Cell()
      sums.posts = cell.posts
      sums.likes = cell.likes
      sums.comments = cell.comments
      sums.shares = cell.shares
      sums.saves = cell.saves
      sums.reach = cell.reach
      sums.impressions = cell.impressions
      sums.clicks = cell.clicks
      sums.videoViews = cell.videoViews
      sums.engagementsWithReach = cell.engagementsWithReach
      sums.engagementsWithImpressions = cell.engagementsWithImpressions
      sums.ctrClicks = cell.ctrClicks
      sums.ctrImpressions = cell.ctrImpressions
      sums.postsWithReach = cell.postsWithReach
      sums.postsWithImpressions = cell.postsWithImpressions
      let key = Key(platform: cell.platform, account: cell.account, mediaType: cell.mediaType)
      cells[key, default: Cell()].merge(sums)
    }
  }

  // MARK: Finish

  /// The report: a row per key in key order, and a total over everything.
  public func finish() -> Haat_V1_EngagementReport {
    var report = Haat_V1_EngagementReport()
    var total = Cell()
    for key in cells.keys.sorted() {
      let cell = cells[key] ?? Cell()
      total.merge(cell)
      report.rows.append(Self.row(key, cell))
    }
    report.total = Self.row(Key(platform: "all", account: "all", mediaType: "all"), total)
    return report
  }

  static func row(_ key: Key, _ cell: Cell) -> Haat_V1_EngagementRow {
    var row = Haat_V1_EngagementRow()
    row.platform = key.platform
    row.account = key.account
    row.mediaType = key.mediaType
    row.posts = cell.posts
    row.likes = cell.likes
    row.comments = cell.comments
    row.shares = cell.shares
    row.saves = cell.saves
    row.reach = cell.reach
    row.impressions = cell.impressions
    row.clicks = cell.clicks
    row.videoViews = cell.videoViews
    row.engagements = cell.engagements
    // Ratios of sums; absent (not 0) when the denominator is unknown everywhere.
    if cell.reach > 0 { row.engagementRateReach = Double(cell.engagementsWithReach) / Double(cell.reach) }
    if cell.impressions > 0 {
      row.engagementRateImpressions = Double(cell.engagementsWithImpressions) / Double(cell.impressions)
    }
    if cell.ctrImpressions > 0 { row.ctr = Double(cell.ctrClicks) / Double(cell.ctrImpressions) }
    return row
  }
}
