import Foundation
import HaatCore
import HaatProtocol
import HaatRecords

/// The `media_lift` report: within each platform × account, whether posts of each media
/// type get more likes than the account's text posts. Each platform × account × media type
/// keeps a quantile sketch of its likes and the moments of ln(1 + likes); finished, each
/// type is compared with text by the ratio of medians and the ratio of geometric means of
/// (1 + likes), each with a bootstrap 95 % interval, by Welch's t-test on ln(1 + likes),
/// and by the smallest lift its numbers of posts could detect (docs/reports.md). The
/// sketches merge exactly and the moments up to rounding, so any split of the posts over
/// tasks gives the same report.
public struct MediaLiftKernel: Sendable {
  /// A comparison needs this many posts with likes on each side: fewer say nothing.
  public static let minPosts: UInt32 = 10
  /// Bootstrap resamples per interval.
  public static let resamples = 2_000
  /// The media type every other is compared with.
  static let baseline = MediaType.text.rawValue

  struct Key: Hashable, Comparable {
    var platform: String
    var account: String
    var mediaType: String

    static func < (lhs: Key, rhs: Key) -> Bool {
      for (left, right) in [(lhs.platform, rhs.platform), (lhs.account, rhs.account), (lhs.mediaType, rhs.mediaType)]
      where left != right {
        return left.utf8.lexicographicallyPrecedes(right.utf8)
      }
      return false
    }
  }

  struct Cell: Equatable {
    var posts: UInt64 = 0
    var likes = QuantileSketch()
    var logLikes = Moments()
    var likesSum: UInt64 = 0

    /// Adds another's; false when a count passes UInt64.max.
    mutating func merge(_ other: Cell) -> Bool {
      var sum = EngagementKernel.Checked()
      posts = sum.add(posts, other.posts)
      likesSum = sum.add(likesSum, other.likesSum)
      likes.merge(other.likes)
      logLikes.merge(other.logLikes)
      return !sum.overflowed && !likes.overflowed && !logLikes.overflowed
    }
  }

  private var cells: [Key: Cell] = [:]
  private var overflowed = false

  public init() {}

  mutating func add(_ post: PostRecord) {
    let key = Key(platform: post.platform, account: post.account, mediaType: post.mediaType.rawValue)
    // In place: no cell or sketch is built per post.
    let fits = Self.update(&cells[key, default: Cell()], with: post)
    if !fits { overflowed = true }
  }

  private static func update(_ cell: inout Cell, with post: PostRecord) -> Bool {
    var sum = EngagementKernel.Checked()
    cell.posts = sum.add(cell.posts, 1)
    if let likes = post.likes {
      cell.likesSum = sum.add(cell.likesSum, likes)
      cell.likes.add(Double(likes))
      cell.logLikes.add(log1p(Double(likes)))
    }
    return !sum.overflowed && !cell.likes.overflowed && !cell.logLikes.overflowed
  }

  /// A sketch laid out for resampling: its bucket values ascending (zero first), their
  /// counts, and ln(1 + value) of each.
  struct Sample {
    var values: [Double] = []
    var counts: [Double] = []
    var logs: [Double] = []

    init(_ sketch: QuantileSketch) {
      if sketch.zeros > 0 {
        values.append(0)
        counts.append(Double(sketch.zeros))
      }
      for (bucket, count) in sketch.sortedBuckets {
        values.append(QuantileSketch.value(of: bucket))
        counts.append(Double(count))
      }
      logs = values.map { log1p($0) }
    }

    /// Mean ln(1 + likes) of the whole sample, as the sketch holds it (bucket values).
    var meanLog: Double {
      let total = counts.reduce(0, +)
      return total > 0 ? zip(counts, logs).reduce(0) { $0 + $1.0 * $1.1 } / total : 0
    }

    /// One Poisson bootstrap resample (each bucket's count drawn as Poisson(count), which
    /// resamples every post independently): its median, at rank ⌊(n − 1)/2⌋ as the
    /// sketch's, and its mean ln(1 + likes); nil when the resample is empty.
    func resample(_ random: inout SplitMix64, into drawn: inout [UInt64]) -> (median: Double, meanLog: Double)? {
      var total: UInt64 = 0
      var logSum = 0.0
      for index in counts.indices {
        let count = random.poisson(counts[index])
        drawn[index] = count
        total += count
        logSum += Double(count) * logs[index]
      }
      guard total > 0 else { return nil }
      let rank = (total - 1) / 2
      var seen: UInt64 = 0
      var median = values[values.count - 1]
      for index in drawn.indices {
        seen += drawn[index]
        if rank < seen {
          median = values[index]
          break
        }
      }
      return (median, logSum / Double(total))
    }
  }

  /// Bootstrap 95 % percentile intervals of the ratio of medians and of geometric means of
  /// (1 + likes), `resamples` times over both sides independently, from a fixed seed.
  static func bootstrap(_ other: QuantileSketch, against text: QuantileSketch, seed: String) -> (
    median: (Double, Double)?, geomean: (Double, Double), sketchedGeomean: Double
  ) {
    var random = SplitMix64(seeding: seed)
    let (media, base) = (Sample(other), Sample(text))
    var drawnMedia = [UInt64](repeating: 0, count: media.counts.count)
    var drawnBase = [UInt64](repeating: 0, count: base.counts.count)
    var medianRatios: [Double] = []
    var geomeanRatios: [Double] = []
    medianRatios.reserveCapacity(resamples)
    geomeanRatios.reserveCapacity(resamples)
    for _ in 0..<resamples {
      guard let one = media.resample(&random, into: &drawnMedia),
        let two = base.resample(&random, into: &drawnBase)
      else { continue }
      // A resample whose text median is 0 has no ratio: infinitely more (or 0 / 0, none).
      medianRatios.append(two.median > 0 ? one.median / two.median : (one.median > 0 ? .infinity : 1))
      geomeanRatios.append(exp(one.meanLog - two.meanLog))
    }
    medianRatios.sort()
    geomeanRatios.sort()
    let interval = { (sorted: [Double]) -> (Double, Double) in
      (Statistics.quantile(sorted: sorted, 0.025) ?? .nan, Statistics.quantile(sorted: sorted, 0.975) ?? .nan)
    }
    let textMedian = text.quantile(0.5) ?? 0
    return (textMedian > 0 ? interval(medianRatios) : nil, interval(geomeanRatios), exp(media.meanLog - base.meanLog))
  }

  static func ratio(_ value: Double) -> String {
    value.isFinite ? "×" + String(format: value < 10 ? "%.2f" : "%.1f", value) : "×∞"
  }

  static func interval(_ low: Double, _ high: Double) -> String {
    "\(String(ratio(low).dropFirst()))–\(String(ratio(high).dropFirst()))"
  }

  /// One media type against the account's text posts.
  static func compare(_ key: Key, _ cell: Cell, text: Cell?) -> Haat_V1_MediaLiftRow {
    var row = Haat_V1_MediaLiftRow()
    row.platform = key.platform
    row.account = key.account
    row.mediaType = key.mediaType
    row.posts = cell.posts
    row.postsWithLikes = cell.likes.count
    if let median = cell.likes.quantile(0.5) { row.medianLikes = median }
    if row.postsWithLikes > 0 { row.meanLikes = Double(cell.likesSum) / Double(row.postsWithLikes) }
    guard let text else {
      row.verdict = "no text posts to compare with"
      return row
    }
    row.textPosts = text.posts
    row.textPostsWithLikes = text.likes.count
    if let median = text.likes.quantile(0.5) { row.textMedianLikes = median }
    if row.textPostsWithLikes > 0 { row.textMeanLikes = Double(text.likesSum) / Double(row.textPostsWithLikes) }
    guard row.postsWithLikes >= minPosts, row.textPostsWithLikes >= minPosts else {
      row.verdict =
        "too few posts to say: \(row.postsWithLikes) \(key.mediaType) and \(row.textPostsWithLikes) text posts with likes; \(minPosts) of each are needed"
      return row
    }
    if row.textMedianLikes > 0 { row.medianRatio = row.medianLikes / row.textMedianLikes }
    row.geomeanRatio = exp(cell.logLikes.mean - text.logLikes.mean)
    let intervals = bootstrap(
      cell.likes, against: text.likes, seed: "\(key.platform)\u{0}\(key.account)\u{0}\(key.mediaType)")
    if let (low, high) = intervals.median {
      row.medianRatioLow = low
      row.medianRatioHigh = high
    }
    // The resamples are of the sketch's bucket values, the estimate of the exact moments:
    // the interval is moved by their ratio, so the bucketing (under 1 %) does not leave an
    // estimate outside its own interval (a tester's ×11.0 with "95 % CI 11.1–11.1").
    let shift = row.geomeanRatio / intervals.sketchedGeomean
    let scale = shift.isFinite && shift > 0 ? shift : 1
    // And held around the estimate against the last rounding step of the move.
    (row.geomeanRatioLow, row.geomeanRatioHigh) = (
      min(intervals.geomean.0 * scale, row.geomeanRatio), max(intervals.geomean.1 * scale, row.geomeanRatio)
    )
    if let welch = Statistics.welch(cell.logLikes, text.logLikes) {
      row.welchT = welch.t
      row.welchDf = welch.df
      row.welchP = welch.p
      row.detectableRatio = exp(Statistics.detectableEffectSEs * welch.se)
    }
    row.verdict = verdict(row)
    return row
  }

  /// The row in words, from the interval of the ratio of medians (of geometric means where
  /// the text median is 0 likes and a ratio of medians says nothing).
  static func verdict(_ row: Haat_V1_MediaLiftRow) -> String {
    let byMedian = row.hasMedianRatioLow
    let (estimate, low, high) =
      byMedian
      ? (row.medianRatio, row.medianRatioLow, row.medianRatioHigh)
      : (row.geomeanRatio, row.geomeanRatioLow, row.geomeanRatioHigh)
    let measure = byMedian ? "median likes" : "geometric mean of 1 + likes"
    let range = "95 % CI \(interval(low, high))"
    if low > 1 { return "more likes: \(measure) \(ratio(estimate)) text's (\(range))" }
    if high < 1 { return "fewer likes: \(measure) \(ratio(estimate)) text's (\(range))" }
    let detectable =
      row.hasDetectableRatio ? "; these posts would show a lift of \(ratio(row.detectableRatio)) or more" : ""
    return "cannot say: the \(range) of \(measure) includes no difference\(detectable)"
  }
}

extension MediaLiftKernel: ReportKernel {
  public static let name = "media_lift"
  public static let summary =
    "per platform × account: each media type's likes per post against text posts, as ratios of medians and geometric means with bootstrap 95 % intervals, Welch's test and the smallest detectable lift"
  public static let records: Set<RecordType> = [.post]
  /// Thousands of bootstrap resamples per comparison: a job gets it when it names it.
  public static let defaultFor: Set<RecordType> = []

  public mutating func add(_ record: CanonicalRecord) -> Bool {
    guard case .post(let post) = record else { return true }
    return add(post: post)
  }

  public mutating func add(post: PostRecord) -> Bool {
    add(post)
    return true
  }

  public mutating func merge(_ other: MediaLiftKernel) {
    if other.overflowed { overflowed = true }
    for (key, cell) in other.cells where !cells[key, default: Cell()].merge(cell) { overflowed = true }
  }

  public func write(to partial: inout Partial) {
    var message = Haat_V1_MediaLiftPartial()
    message.cells = cells.keys.sorted().map { key in
      let cell = cells[key] ?? Cell()
      var out = Haat_V1_MediaLiftCell()
      out.platform = key.platform
      out.account = key.account
      out.mediaType = key.mediaType
      out.posts = cell.posts
      out.likes = cell.likes.message
      out.logLikes = cell.logLikes.message
      out.likesSum = cell.likesSum
      return out
    }
    message.overflowed = overflowed
    partial.mediaLift = message
  }

  public init?(reading partial: Partial) {
    guard partial.hasMediaLift else { return nil }
    self.init()
    overflowed = partial.mediaLift.overflowed
    for cell in partial.mediaLift.cells {
      // A cell that does not read makes the report unknowable: said, never dropped.
      guard let likes = QuantileSketch(cell.likes), let logLikes = Moments(cell.logLikes),
        logLikes.count == likes.count
      else {
        overflowed = true
        continue
      }
      let key = Key(platform: cell.platform, account: cell.account, mediaType: cell.mediaType)
      let read = Cell(posts: cell.posts, likes: likes, logLikes: logLikes, likesSum: cell.likesSum)
      if !cells[key, default: Cell()].merge(read) { overflowed = true }
    }
  }

  public func finish(into report: inout Report) throws(HaatError) {
    guard !overflowed else {
      throw HaatError(
        .overflow,
        "the media_lift report's counts pass 18446744073709551615 (2^64 - 1) or a partial's cell does not read")
    }
    var section = Haat_V1_MediaLiftReport()
    section.minPosts = Self.minPosts
    section.resamples = UInt32(Self.resamples)
    section.rows = cells.keys.sorted().compactMap { key in
      guard key.mediaType != Self.baseline, let cell = cells[key] else { return nil }
      let text = cells[Key(platform: key.platform, account: key.account, mediaType: Self.baseline)]
      return Self.compare(key, cell, text: text)
    }
    report.mediaLift = section
  }

  public static func table(of report: Report) -> ReportTable? {
    guard report.hasMediaLift else { return nil }
    let group = ReportRendering.group
    var rows: [[String]] = []
    var csvRows: [[String]] = []
    var notes: [String] = [""]
    for row in report.mediaLift.rows {
      rows.append([
        row.platform, row.account, row.mediaType, group(row.postsWithLikes), group(row.textPostsWithLikes),
        row.hasMedianRatio ? ratio(row.medianRatio) : "–",
        row.hasMedianRatioLow ? interval(row.medianRatioLow, row.medianRatioHigh) : "–",
        row.hasGeomeanRatio ? ratio(row.geomeanRatio) : "–",
        row.hasWelchP ? String(format: "%.3g", row.welchP) : "–",
        row.hasDetectableRatio ? ratio(row.detectableRatio) : "–",
      ])
      notes.append("\(row.platform) \(row.account) \(row.mediaType): \(row.verdict)")
      let optional = { (has: Bool, value: Double) in has ? String(value) : "" }
      csvRows.append([
        row.platform, row.account, row.mediaType, String(row.posts), String(row.postsWithLikes),
        String(row.textPosts), String(row.textPostsWithLikes),
        optional(row.hasMedianLikes, row.medianLikes), optional(row.hasTextMedianLikes, row.textMedianLikes),
        optional(row.hasMeanLikes, row.meanLikes), optional(row.hasTextMeanLikes, row.textMeanLikes),
        optional(row.hasMedianRatio, row.medianRatio), optional(row.hasMedianRatioLow, row.medianRatioLow),
        optional(row.hasMedianRatioHigh, row.medianRatioHigh), optional(row.hasGeomeanRatio, row.geomeanRatio),
        optional(row.hasGeomeanRatioLow, row.geomeanRatioLow),
        optional(row.hasGeomeanRatioHigh, row.geomeanRatioHigh), optional(row.hasWelchT, row.welchT),
        optional(row.hasWelchDf, row.welchDf), optional(row.hasWelchP, row.welchP),
        optional(row.hasDetectableRatio, row.detectableRatio), row.verdict,
      ])
    }
    if report.mediaLift.rows.isEmpty { notes = [] }
    return ReportTable(
      columns: ["platform", "account", "media", "posts", "text", "median ×", "95 % CI", "geo ×", "p", "detectable"],
      rows: rows, numeric: [3, 4, 5, 6, 7, 8, 9], totalLast: false,
      csvColumns: [
        "platform", "account", "media_type", "posts", "posts_with_likes", "text_posts", "text_posts_with_likes",
        "median_likes", "text_median_likes", "mean_likes", "text_mean_likes", "median_ratio", "median_ratio_low",
        "median_ratio_high", "geomean_ratio", "geomean_ratio_low", "geomean_ratio_high", "welch_t", "welch_df",
        "welch_p", "detectable_ratio", "verdict",
      ],
      csvRows: csvRows, csvText: [0, 1, 2, 21], notes: notes)
  }
}
