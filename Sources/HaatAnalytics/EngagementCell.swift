import HaatCore
import HaatProtocol
import HaatRecords

/// The engagement kernel's cell, the counts a post states, and checked sums.
extension EngagementKernel {
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
    /// The counts no post of the cell stated (`Counts`): all of them until a post states one.
    public var unstated = Counts.all

    public init() {}

    /// likes + comments + shares + saves; nil past UInt64.max.
    var engagements: UInt64? { Checked.total(likes, comments, shares, saves) }

    /// Adds one post; false, and nothing changed, when a sum would pass UInt64.max.
    mutating func add(_ post: PostRecord) -> Bool {
      var sum = Checked()
      var next = self
      let engagements = Checked.total(post.likes ?? 0, post.comments ?? 0, post.shares ?? 0, post.saves ?? 0)
      next.posts = sum.add(posts, 1)
      next.likes = sum.add(likes, post.likes ?? 0)
      next.comments = sum.add(comments, post.comments ?? 0)
      next.shares = sum.add(shares, post.shares ?? 0)
      next.saves = sum.add(saves, post.saves ?? 0)
      next.clicks = sum.add(clicks, post.clicks ?? 0)
      next.videoViews = sum.add(videoViews, post.videoViews ?? 0)
      if let reach = post.reach {
        next.reach = sum.add(self.reach, reach)
        next.engagementsWithReach = sum.add(engagementsWithReach, engagements ?? 0)
        next.postsWithReach = sum.add(postsWithReach, 1)
      }
      if let impressions = post.impressions {
        next.impressions = sum.add(self.impressions, impressions)
        next.engagementsWithImpressions = sum.add(engagementsWithImpressions, engagements ?? 0)
        next.postsWithImpressions = sum.add(postsWithImpressions, 1)
        if let clicks = post.clicks {
          next.ctrClicks = sum.add(ctrClicks, clicks)
          next.ctrImpressions = sum.add(ctrImpressions, impressions)
        }
      }
      guard !sum.overflowed, engagements != nil, next.engagements != nil else { return false }
      next.unstated = unstated.subtracting(Counts(statedBy: post))
      self = next
      return true
    }

    /// `add` of a post whose counts, with every sum's, stay under UInt64.max (the kernel's
    /// `bound` says so): no check per sum, no copy of the cell.
    @inline(__always)
    mutating func addInRange(_ post: PostRecord) {
      let engagements = (post.likes ?? 0) &+ (post.comments ?? 0) &+ (post.shares ?? 0) &+ (post.saves ?? 0)
      posts &+= 1
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
      unstated = unstated.subtracting(Counts(statedBy: post))
    }

    /// Merges another cell; false when a sum passed UInt64.max (the sums then wrap).
    mutating func merge(_ other: Cell) -> Bool {
      var sum = Checked()
      posts = sum.add(posts, other.posts)
      likes = sum.add(likes, other.likes)
      comments = sum.add(comments, other.comments)
      shares = sum.add(shares, other.shares)
      saves = sum.add(saves, other.saves)
      reach = sum.add(reach, other.reach)
      impressions = sum.add(impressions, other.impressions)
      clicks = sum.add(clicks, other.clicks)
      videoViews = sum.add(videoViews, other.videoViews)
      engagementsWithReach = sum.add(engagementsWithReach, other.engagementsWithReach)
      engagementsWithImpressions = sum.add(engagementsWithImpressions, other.engagementsWithImpressions)
      ctrClicks = sum.add(ctrClicks, other.ctrClicks)
      ctrImpressions = sum.add(ctrImpressions, other.ctrImpressions)
      postsWithReach = sum.add(postsWithReach, other.postsWithReach)
      postsWithImpressions = sum.add(postsWithImpressions, other.postsWithImpressions)
      unstated.formIntersection(other.unstated)
      return !sum.overflowed && engagements != nil
    }
  }

  /// A post's counts, one bit each, in the wire's order (analytics.proto `unstated`).
  public struct Counts: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let likes = Counts(rawValue: 1)
    public static let comments = Counts(rawValue: 2)
    public static let shares = Counts(rawValue: 4)
    public static let saves = Counts(rawValue: 8)
    public static let reach = Counts(rawValue: 16)
    public static let impressions = Counts(rawValue: 32)
    public static let clicks = Counts(rawValue: 64)
    public static let videoViews = Counts(rawValue: 128)
    public static let all = Counts(rawValue: 0xFF)
    /// Each count with its name in reports, in the wire's order.
    static let named: [(Counts, String)] = [
      (.likes, "likes"), (.comments, "comments"), (.shares, "shares"), (.saves, "saves"), (.reach, "reach"),
      (.impressions, "impressions"), (.clicks, "clicks"), (.videoViews, "video_views"),
    ]

    /// The counts the post states (present, 0 included).
    @inline(__always)
    init(statedBy post: PostRecord) {
      // The record's mask has likes … impressions in the same bits, then video views
      // before clicks.
      let stated = post.stated
      self.init(rawValue: UInt8(truncatingIfNeeded: stated & 0x3F | (stated & 0x40) << 1 | (stated & 0x80) >> 1))
    }
  }

  /// Additions that remember whether any of them passed UInt64.max.
  struct Checked {
    var overflowed = false

    mutating func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
      let (sum, overflow) = a.addingReportingOverflow(b)
      if overflow { overflowed = true }
      return sum
    }

    /// The sum of all, or nil past UInt64.max.
    static func total(_ values: UInt64...) -> UInt64? {
      var sum: UInt64 = 0
      for value in values {
        let (next, overflow) = sum.addingReportingOverflow(value)
        if overflow { return nil }
        sum = next
      }
      return sum
    }

    /// The sum of four, or nil past UInt64.max: per post, with no array of arguments.
    @inline(__always)
    static func total(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64) -> UInt64? {
      let (ab, o1) = a.addingReportingOverflow(b)
      let (abc, o2) = ab.addingReportingOverflow(c)
      let (sum, o3) = abc.addingReportingOverflow(d)
      return o1 || o2 || o3 ? nil : sum
    }
  }
}
