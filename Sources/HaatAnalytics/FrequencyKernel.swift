import Foundation
import HaatCore
import HaatProtocol
import HaatRecords

/// The `frequency` report: does posting more often lift or dilute engagement? Per platform
/// × account, each account-local week (Monday to Sunday, in the source's `timezone`, else
/// each post's written offset) keeps its posts and engagements; finished, the weeks are
/// grouped by how many posts they had, and each band shows its weeks, posts, engagements per
/// post and engagement rate, all ratios of exact sums (docs/reports.md). Counts add, so any
/// split of the posts over tasks gives the same report.
public struct FrequencyKernel: Sendable {
  /// Bands of posts per week: 1, 2, 3, 4, 5, 6, 7, 8–10, 11–14, 15–20, 21+.
  static let bands: [(min: UInt64, max: UInt64)] = [
    (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7), (8, 10), (11, 14), (15, 20), (21, 0),
  ]

  struct Key: Hashable, Comparable {
    var platform: String
    var account: String
    var zone: String
    var week: Int64

    var group: Group { Group(platform: platform, account: account, zone: zone) }

    static func < (lhs: Key, rhs: Key) -> Bool {
      if lhs.group != rhs.group { return lhs.group < rhs.group }
      return lhs.week < rhs.week
    }
  }

  typealias Group = BestTimeKernel.Group

  struct Week: Equatable {
    var posts: UInt64 = 0
    var engagements: UInt64 = 0
    var engagementsWithReach: UInt64 = 0
    var reach: UInt64 = 0

    /// Adds another's; false when a sum passes UInt64.max.
    mutating func merge(_ other: Week) -> Bool {
      var sum = EngagementKernel.Checked()
      posts = sum.add(posts, other.posts)
      engagements = sum.add(engagements, other.engagements)
      engagementsWithReach = sum.add(engagementsWithReach, other.engagementsWithReach)
      reach = sum.add(reach, other.reach)
      return !sum.overflowed
    }
  }

  private var weeks: [Key: Week] = [:]
  private var overflowed = false
  private var clock = LocalClock(timezone: "")

  public init() {}

  public init(context: ReportContext) {
    self.init()
    clock = LocalClock(timezone: context.timezone)
  }

  /// The Monday of a local time's week, as days since 1970-01-01 (a Thursday).
  static func monday(local seconds: Int64) -> Int64 {
    let day = seconds.floorDivided(by: 86_400)
    return day - ((day + 3) % 7 + 7) % 7
  }

  mutating func add(_ post: PostRecord) -> Bool {
    guard let engagements = BestTimeKernel.engagements(post) else { return false }
    let key = Key(
      platform: post.platform, account: post.account, zone: clock.name,
      week: Self.monday(local: clock.local(post.createdAt)))
    var one = Week(posts: 1, engagements: engagements)
    if let reach = post.reach {
      one.engagementsWithReach = engagements
      one.reach = reach
    }
    if !weeks[key, default: Week()].merge(one) { overflowed = true }
    return true
  }

  static func bandName(_ band: (min: UInt64, max: UInt64)) -> String {
    band.max == 0 ? "\(band.min)+" : band.min == band.max ? "\(band.min)" : "\(band.min)–\(band.max)"
  }
}

extension FrequencyKernel: ReportKernel {
  public static let name = "frequency"
  public static let summary =
    "per platform × account: weeks grouped by posts per week, with engagements per post and engagement rate in each band"
  public static let records: Set<RecordType> = [.post]
  /// Asked for by name: engagement answers most jobs, and this one's keys grow with weeks.
  public static let defaultFor: Set<RecordType> = []

  public mutating func add(_ record: CanonicalRecord) -> Bool {
    guard case .post(let post) = record else { return true }
    return add(post)
  }

  public func accepts(_ record: CanonicalRecord) -> Bool {
    guard case .post(let post) = record else { return true }
    return accepts(post: post)
  }

  public mutating func add(post: PostRecord) -> Bool { add(post) }
  public func accepts(post: PostRecord) -> Bool { BestTimeKernel.engagements(post) != nil }

  public mutating func merge(_ other: FrequencyKernel) {
    if other.overflowed { overflowed = true }
    for (key, week) in other.weeks where !weeks[key, default: Week()].merge(week) { overflowed = true }
  }

  public func write(to partial: inout Partial) {
    var message = Haat_V1_FrequencyPartial()
    message.cells = weeks.keys.sorted().map { key in
      let week = weeks[key] ?? Week()
      var cell = Haat_V1_FrequencyCell()
      cell.platform = key.platform
      cell.account = key.account
      cell.zone = key.zone
      cell.week = key.week
      cell.posts = week.posts
      cell.engagements = week.engagements
      cell.engagementsWithReach = week.engagementsWithReach
      cell.reach = week.reach
      return cell
    }
    message.overflowed = overflowed
    partial.frequency = message
  }

  public init?(reading partial: Partial) {
    guard partial.hasFrequency else { return nil }
    self.init()
    overflowed = partial.frequency.overflowed
    for cell in partial.frequency.cells {
      let key = Key(platform: cell.platform, account: cell.account, zone: cell.zone, week: cell.week)
      let week = Week(
        posts: cell.posts, engagements: cell.engagements, engagementsWithReach: cell.engagementsWithReach,
        reach: cell.reach)
      if !weeks[key, default: Week()].merge(week) { overflowed = true }
    }
  }

  public func finish(into report: inout Report) throws(HaatError) {
    guard !overflowed else {
      throw HaatError(.overflow, "the frequency report's sums pass 18446744073709551615 (2^64 - 1)")
    }
    // Per account and band: the weeks' sums added up (a week with no posts is not known).
    var sums: [Group: [Int: (weeks: UInt64, week: Week)]] = [:]
    var sum = EngagementKernel.Checked()
    for (key, week) in weeks where week.posts > 0 {
      guard let band = Self.bands.firstIndex(where: { week.posts >= $0.min && ($0.max == 0 || week.posts <= $0.max) })
      else { continue }
      var entry = sums[key.group, default: [:]][band] ?? (0, Week())
      entry.weeks = sum.add(entry.weeks, 1)
      if !entry.week.merge(week) { sum.overflowed = true }
      sums[key.group, default: [:]][band] = entry
    }
    guard !sum.overflowed else {
      throw HaatError(.overflow, "the frequency report's sums pass 18446744073709551615 (2^64 - 1)")
    }
    var section = Haat_V1_FrequencyReport()
    for group in sums.keys.sorted() {
      for (band, entry) in (sums[group] ?? [:]).sorted(by: { $0.key < $1.key }) {
        var row = Haat_V1_FrequencyRow()
        row.platform = group.platform
        row.account = group.account
        row.zone = group.zone
        row.minPosts = UInt32(Self.bands[band].min)
        row.maxPosts = UInt32(Self.bands[band].max)
        row.band = Self.bandName(Self.bands[band])
        row.weeks = entry.weeks
        row.posts = entry.week.posts
        row.engagements = entry.week.engagements
        row.engagementsPerPost = Double(entry.week.engagements) / Double(entry.week.posts)
        row.engagementsWithReach = entry.week.engagementsWithReach
        row.reach = entry.week.reach
        if entry.week.reach > 0 {
          row.engagementRate = Double(entry.week.engagementsWithReach) / Double(entry.week.reach)
        }
        section.rows.append(row)
      }
    }
    report.frequency = section
  }

  public static func table(of report: Report) -> ReportTable? {
    guard report.hasFrequency else { return nil }
    let group = ReportRendering.group
    let rows = report.frequency.rows.map { row in
      [
        row.platform, row.account, row.zone, row.band, group(row.weeks), group(row.posts),
        String(format: "%.1f", row.engagementsPerPost),
        row.hasEngagementRate ? ReportRendering.percent(row.engagementRate) : "–",
      ]
    }
    let csvRows = report.frequency.rows.map { row in
      [
        row.platform, row.account, row.zone, String(row.minPosts), row.maxPosts == 0 ? "" : String(row.maxPosts),
        String(row.weeks), String(row.posts), String(row.engagements), String(row.engagementsPerPost),
        String(row.engagementsWithReach), String(row.reach), row.hasEngagementRate ? String(row.engagementRate) : "",
      ]
    }
    return ReportTable(
      columns: ["platform", "account", "zone", "posts/week", "weeks", "posts", "eng./post", "eng. rate"],
      rows: rows, numeric: [3, 4, 5, 6, 7], totalLast: false,
      csvColumns: [
        "platform", "account", "zone", "min_posts_per_week", "max_posts_per_week", "weeks", "posts", "engagements",
        "engagements_per_post", "engagements_with_reach", "reach", "engagement_rate",
      ],
      csvRows: csvRows, csvText: [0, 1, 2])
  }
}
