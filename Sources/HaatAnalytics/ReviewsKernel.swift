import Foundation
import HaatCore
import HaatProtocol
import HaatRecords

/// The `reviews` report: per platform × account, the count of reviews of each star, with
/// media, verified and replied, and the span of their times (docs/reports.md). Exact
/// counts merge by addition (and the span by min/max), so any split of the reviews over
/// tasks gives the same report.
public struct ReviewsKernel: Sendable, Equatable {
  typealias Key = AccountKey

  struct Counts: Equatable {
    var stars: [UInt64] = [0, 0, 0, 0, 0]
    var withMedia: UInt64 = 0
    var verifiedKnown: UInt64 = 0
    var verified: UInt64 = 0
    var replied: UInt64 = 0
    var hidden: UInt64 = 0
    var first: Int64 = .max
    var last: Int64 = .min

    var reviews: UInt64 { stars.reduce(0, &+) }

    /// Adds another's counts; false when a count passes UInt64.max.
    mutating func merge(_ other: Counts) -> Bool {
      var sum = EngagementKernel.Checked()
      for index in 0..<5 { stars[index] = sum.add(stars[index], other.stars[index]) }
      withMedia = sum.add(withMedia, other.withMedia)
      verifiedKnown = sum.add(verifiedKnown, other.verifiedKnown)
      verified = sum.add(verified, other.verified)
      replied = sum.add(replied, other.replied)
      hidden = sum.add(hidden, other.hidden)
      first = min(first, other.first)
      last = max(last, other.last)
      return !sum.overflowed && EngagementKernel.Checked.total(stars[0], stars[1], stars[2], stars[3], stars[4]) != nil
    }
  }

  private var cells: [Key: Counts] = [:]
  private var overflowed = false

  public init() {}

  mutating func add(_ review: ReviewRecord) -> Bool {
    var one = Counts()
    if review.status == "spam" || review.status == "hidden" {
      one.hidden = 1
    } else {
      one.stars[Int(min(max(review.rating, 1), 5)) - 1] = 1
      one.withMedia = review.media > 0 ? 1 : 0
      if let verified = review.verified {
        one.verifiedKnown = 1
        one.verified = verified ? 1 : 0
      }
      one.replied = review.replied ? 1 : 0
      one.first = review.createdAt.epochSeconds
      one.last = review.createdAt.epochSeconds
    }
    let key = Key(platform: review.platform, account: review.account)
    var next = cells[key] ?? Counts()
    guard next.merge(one) else { return false }
    cells[key] = next
    return true
  }

  /// The 95 % Wilson score interval's lower bound of `positive` out of `total`.
  static func wilsonLowerBound(_ positive: UInt64, of total: UInt64) -> Double? {
    guard total > 0 else { return nil }
    let n = Double(total)
    let p = Double(positive) / n
    let z = 1.959_963_984_540_054
    let z2 = z * z
    return (p + z2 / (2 * n) - z * ((p * (1 - p) + z2 / (4 * n)) / n).squareRoot()) / (1 + z2 / n)
  }

  static func row(_ key: Key, _ counts: Counts) -> Haat_V1_ReviewsRow {
    var row = Haat_V1_ReviewsRow()
    row.platform = key.platform
    row.account = key.account
    row.stars = counts.stars
    row.hidden = counts.hidden
    let reviews = counts.reviews
    row.reviews = reviews
    guard reviews > 0 else { return row }
    let n = Double(reviews)
    var weighted = 0.0
    for (index, count) in counts.stars.enumerated() { weighted += Double(index + 1) * Double(count) }
    row.meanRating = weighted / n
    let positive = counts.stars[3] &+ counts.stars[4]
    row.sharePositive = Double(positive) / n
    if let bound = wilsonLowerBound(positive, of: reviews) { row.positiveLowerBound = bound }
    row.shareWithMedia = Double(counts.withMedia) / n
    if counts.verifiedKnown > 0 { row.shareVerified = Double(counts.verified) / Double(counts.verifiedKnown) }
    row.shareReplied = Double(counts.replied) / n
    let firstDay = Int(counts.first.floorDivided(by: 86_400))
    let lastDay = Int(counts.last.floorDivided(by: 86_400))
    row.first = Days.text(firstDay)
    row.last = Days.text(lastDay)
    if reviews > 1 { row.perWeek = n * 7 / Double(max(1, lastDay - firstDay + 1)) }
    return row
  }
}

extension ReviewsKernel: ReportKernel {
  public static let name = "reviews"
  public static let summary =
    "per platform × account: reviews by star, mean rating, share of 4–5★ with its Wilson lower bound, media, verified, replied, reviews per week"
  public static let records: Set<RecordType> = [.review]

  public mutating func add(_ record: CanonicalRecord) -> Bool {
    guard case .review(let review) = record else { return true }
    return add(review)
  }

  public mutating func merge(_ other: ReviewsKernel) {
    if other.overflowed { overflowed = true }
    for (key, counts) in other.cells where !cells[key, default: Counts()].merge(counts) { overflowed = true }
  }

  public func write(to partial: inout Partial) {
    var message = Haat_V1_ReviewsPartial()
    message.cells = cells.keys.sorted().map { key in
      let counts = cells[key] ?? Counts()
      var cell = Haat_V1_ReviewsCell()
      cell.platform = key.platform
      cell.account = key.account
      cell.stars = counts.stars
      cell.withMedia = counts.withMedia
      cell.verifiedKnown = counts.verifiedKnown
      cell.verified = counts.verified
      cell.replied = counts.replied
      cell.hidden = counts.hidden
      if counts.reviews > 0 {
        cell.firstS = counts.first
        cell.lastS = counts.last
      }
      return cell
    }
    partial.reviews = message
  }

  public init?(reading partial: Partial) {
    guard partial.hasReviews else { return nil }
    self.init()
    for cell in partial.reviews.cells {
      var counts = Counts()
      // A cell whose star list is not five counts is read as none of them (and the sums
      // stay checked); a worker writes five.
      if cell.stars.count == 5 { counts.stars = cell.stars }
      counts.withMedia = cell.withMedia
      counts.verifiedKnown = cell.verifiedKnown
      counts.verified = cell.verified
      counts.replied = cell.replied
      counts.hidden = cell.hidden
      if counts.reviews > 0 {
        counts.first = cell.firstS
        counts.last = cell.lastS
      }
      if !cells[Key(platform: cell.platform, account: cell.account), default: Counts()].merge(counts) {
        overflowed = true
      }
    }
  }

  public func finish(into report: inout Report) throws(HaatError) {
    guard !overflowed else {
      throw HaatError(.overflow, "the reviews report's counts pass 18446744073709551615 (2^64 - 1)")
    }
    var total = Counts()
    var rows: [Haat_V1_ReviewsRow] = []
    for key in cells.keys.sorted() {
      let counts = cells[key] ?? Counts()
      guard total.merge(counts) else {
        throw HaatError(.overflow, "the reviews report's counts pass 18446744073709551615 (2^64 - 1)")
      }
      rows.append(Self.row(key, counts))
    }
    var section = Haat_V1_ReviewsReport()
    section.rows = rows
    section.total = Self.row(Key(platform: "all", account: "all"), total)
    report.reviews = section
  }

  public static func table(of report: Report) -> ReportTable? {
    guard report.hasReviews else { return nil }
    let rows = report.reviews.rows + [report.reviews.total]
    let group = ReportRendering.group
    let percent = ReportRendering.percent
    func number(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
    let columns = [
      "platform", "account", "reviews", "mean", "4–5★", "≥ (95%)", "media", "verified", "replied", "per week",
    ]
    return ReportTable(
      columns: columns,
      rows: rows.map { row in
        [
          row.platform, row.account, group(row.reviews),
          row.hasMeanRating ? number(row.meanRating, 2) : "–",
          row.hasSharePositive ? percent(row.sharePositive) : "–",
          row.hasPositiveLowerBound ? percent(row.positiveLowerBound) : "–",
          row.hasShareWithMedia ? percent(row.shareWithMedia) : "–",
          row.hasShareVerified ? percent(row.shareVerified) : "–",
          row.hasShareReplied ? percent(row.shareReplied) : "–",
          row.hasPerWeek ? number(row.perWeek, 1) : "–",
        ]
      },
      numeric: Set(2..<columns.count), totalLast: true,
      csvColumns: [
        "platform", "account", "reviews", "hidden", "stars_1", "stars_2", "stars_3", "stars_4", "stars_5",
        "mean_rating", "share_positive", "positive_lower_bound", "share_with_media", "share_verified",
        "share_replied", "per_week", "first", "last",
      ],
      csvRows: rows.map { row in
        let stars = row.stars.count == 5 ? row.stars : [0, 0, 0, 0, 0]
        return [row.platform, row.account, String(row.reviews), String(row.hidden)] + stars.map { String($0) } + [
          row.hasMeanRating ? String(row.meanRating) : "",
          row.hasSharePositive ? String(row.sharePositive) : "",
          row.hasPositiveLowerBound ? String(row.positiveLowerBound) : "",
          row.hasShareWithMedia ? String(row.shareWithMedia) : "",
          row.hasShareVerified ? String(row.shareVerified) : "",
          row.hasShareReplied ? String(row.shareReplied) : "",
          row.hasPerWeek ? String(row.perWeek) : "", row.first, row.last,
        ]
      },
      csvText: [0, 1])
  }
}
