import Foundation
import HaatAnalytics
import HaatProtocol
import HaatRecords
import Testing

func post(_ id: Int, platform: String = "instagram", account: String = "dhaka_threads", media: MediaType = .video)
  -> PostRecord
{
  PostRecord(
    platform: platform, account: account, id: String(id),
    createdAt: Values.Timestamp(epochSeconds: 1_772_368_200, offsetMinutes: 360),
    mediaType: media)
}

@Suite struct EngagementTests {
  /// The worked example of docs/formats.md.
  @Test func workedExample() throws {
    var a = post(1)
    (a.likes, a.comments, a.shares, a.reach, a.impressions, a.clicks) = (100, 10, 5, 2000, 3000, 30)
    var b = post(2)
    (b.likes, b.comments, b.saves, b.impressions) = (50, 5, 5, 1000)
    var c = post(3)
    (c.likes, c.comments, c.shares, c.saves, c.reach, c.clicks) = (20, 0, 0, 0, 500, 4)
    var kernel = EngagementKernel()
    for p in [a, b, c] { kernel.add(p) }
    let row = try #require(kernel.finish().rows.first)
    #expect(row.posts == 3)
    #expect(row.likes == 170)
    #expect(row.engagements == 195)
    #expect(row.reach == 2500)
    #expect(row.impressions == 4000)
    #expect(row.clicks == 34)
    #expect(abs(row.engagementRateReach - 0.054) < 1e-12)
    #expect(abs(row.engagementRateImpressions - 0.04375) < 1e-12)
    #expect(abs(row.ctr - 0.01) < 1e-12)
    #expect(row.hasEngagementRateReach)
    // Medians of per-post rates: by reach a's 0.0575 and c's 0.04 (the lower median of
    // two is the smaller); by impressions a's 0.03833… and b's 0.06.
    #expect(abs(row.medianRateReach - 0.04) <= 0.01 * 0.04)
    #expect(abs(row.medianRateImpressions - 115.0 / 3_000) <= 0.01 * 115.0 / 3_000)
  }

  /// A count no post of a row states is named as such (and shown `–`, not 0); a post
  /// stating it as 0 states it. Stated in either of two merged partials is stated; a partial
  /// without the field (an older worker) states every count.
  @Test func countsNoPostStatesAreNamed() throws {
    var a = post(1)
    (a.likes, a.comments, a.reach) = (10, 0, 100)
    var b = post(2)
    (b.likes, b.saves) = (5, 3)
    var kernel = EngagementKernel()
    kernel.add(a)
    #expect(kernel.finish().rows.first?.unstated == ["shares", "saves", "impressions", "clicks", "video_views"])
    var other = EngagementKernel()
    other.add(b)
    // Through the wire form, as a worker's partial reaches the coordinator.
    kernel.merge(EngagementKernel(partial: other.partial))
    let report = kernel.finish()
    #expect(report.rows.first?.unstated == ["shares", "impressions", "clicks", "video_views"])
    #expect(report.total.unstated == ["shares", "impressions", "clicks", "video_views"])
    var partialReport = Report()
    partialReport.engagement = report
    let table = try #require(EngagementKernel.table(of: partialReport))
    // likes, comments, shares, saves, reach, impressions, clicks.
    #expect(Array(table.rows[0][4...10]) == ["15", "0", "–", "3", "100", "–", "–"])
    #expect(Array(table.csvRows[0][4...11]) == ["15", "0", "", "3", "100", "", "", ""])
    var older = other.partial
    for index in older.cells.indices { older.cells[index].unstated = 0 }
    #expect(EngagementKernel(partial: older).finish().rows.first?.unstated == [])
    // Every set of counts a post may state: the others, and only they, are named.
    let names = ["likes", "comments", "shares", "saves", "reach", "impressions", "clicks", "video_views"]
    for mask in 0..<256 {
      var stating = post(3)
      let values: [UInt64?] = (0..<8).map { mask & (1 << $0) != 0 ? 0 : nil }
      (stating.likes, stating.comments, stating.shares, stating.saves) = (values[0], values[1], values[2], values[3])
      (stating.reach, stating.impressions, stating.clicks, stating.videoViews) = (
        values[4], values[5], values[6], values[7]
      )
      var alone = EngagementKernel()
      alone.add(stating)
      let unnamed = names.indices.filter { mask & (1 << $0) == 0 }.map { names[$0] }
      #expect(alone.finish().rows.first?.unstated == unnamed, "\(mask)")
    }
  }

  /// The median of per-post rates is within the sketch's 1 % of the exact lower median,
  /// and differs from the ratio of sums when one large post dominates.
  @Test func medianOfPerPostRates() throws {
    var kernel = EngagementKernel()
    var rates: [Double] = []
    for index in 0..<501 {
      var p = post(index)
      p.likes = UInt64(10 + index % 97)
      p.reach = index == 0 ? 10_000_000 : UInt64(1_000 + index * 3)
      rates.append(Double(p.likes ?? 0) / Double(p.reach ?? 1))
      kernel.add(p)
    }
    let row = try #require(kernel.finish().rows.first)
    let exact = rates.sorted()[250]
    #expect(abs(row.medianRateReach - exact) <= 0.01 * exact)
    #expect(!row.hasMedianRateImpressions, "no post states impressions")
    #expect(abs(row.engagementRateReach - row.medianRateReach) > 0.001, "one huge reach pulls the ratio of sums down")
    #expect(ReportRendering.csv(Report.with { $0.engagement = kernel.finish() }).contains("median_rate_reach"))
  }

  @Test func unknownDenominatorsGiveNoRate() {
    var p = post(1)
    p.likes = 5
    var kernel = EngagementKernel()
    kernel.add(p)
    let row = kernel.finish().total
    #expect(!row.hasEngagementRateReach)
    #expect(!row.hasEngagementRateImpressions)
    #expect(!row.hasCtr)
  }

  /// The merge law: any split of the posts into partials, merged in any order and grouping,
  /// through the wire form, gives the single-pass result.
  @Test(arguments: 0..<40)
  func mergeLaw(seed: UInt64) throws {
    var random = SeededRandom(seed: seed)
    let posts = (0..<Int.random(in: 0...300, using: &random)).map { id -> PostRecord in
      var p = post(
        id, platform: ["facebook", "x", "tiktok"].randomElement(using: &random) ?? "x",
        account: ["a", "b", "আমি"].randomElement(using: &random) ?? "a",
        media: MediaType.allCases.randomElement(using: &random) ?? .text)
      func maybe() -> UInt64? { Bool.random(using: &random) ? UInt64.random(in: 0...10_000, using: &random) : nil }
      (p.likes, p.comments, p.shares, p.saves) = (maybe(), maybe(), maybe(), maybe())
      (p.reach, p.impressions, p.clicks, p.videoViews) = (maybe(), maybe(), maybe(), maybe())
      return p
    }
    var single = EngagementKernel()
    for p in posts { single.add(p) }

    // Split into 1...8 contiguous-or-not pieces.
    let pieces = Int.random(in: 1...8, using: &random)
    var partials = [EngagementKernel](repeating: EngagementKernel(), count: pieces)
    for p in posts { partials[Int.random(in: 0..<pieces, using: &random)].add(p) }
    // Through the wire form, as workers send them.
    let decoded = try partials.map { kernel -> EngagementKernel in
      var partial = Partial()
      partial.engagement = kernel.partial
      let bytes: [UInt8] = try partial.jsonUTF8Bytes()
      return EngagementKernel(partial: try Partial(jsonUTF8Bytes: bytes).engagement)
    }
    // Merge in a random order and a random tree shape.
    var pool = decoded.shuffled(using: &random)
    while pool.count > 1 {
      let i = Int.random(in: 0..<pool.count, using: &random)
      var left = pool.remove(at: i)
      let j = Int.random(in: 0..<pool.count, using: &random)
      left.merge(pool.remove(at: j))
      pool.append(left)
    }
    let merged = pool.first ?? EngagementKernel()
    #expect(merged == single)
    #expect(merged.finish() == single.finish())
    // Added to a kernel that has merged (its bound on every sum gone), each post takes the
    // checked path: the same sums and counts unstated as the unchecked one's.
    var checked = EngagementKernel()
    checked.merge(EngagementKernel())
    for p in posts { checked.add(p) }
    #expect(checked == single && checked.finish() == single.finish())
  }
}

/// A small deterministic generator for property tests (splitmix64).
struct SeededRandom: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1 }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
