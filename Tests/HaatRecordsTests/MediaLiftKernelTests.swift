import Foundation
import HaatProtocol
import HaatRecords
import Testing

@testable import HaatAnalytics

@Suite("Moments")
struct MomentsTests {
  /// Mean and sample variance the two-pass way, the definition the moments answer to.
  static func exact(_ values: [Double]) -> (mean: Double, variance: Double) {
    let mean = values.reduce(0, +) / Double(values.count)
    let squares = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
    return (mean, squares / Double(values.count - 1))
  }

  @Test("any split merged in any order, through the wire, equals one pass and the two-pass figures")
  func mergeLaw() throws {
    var random = SplitMix64(seed: 7)
    for shape in 0..<3 {
      let values: [Double] = (0..<5_000).map { _ in
        switch shape {
        case 0: return random.uniform() * 10
        case 1: return 1e9 + random.uniform()  // a large offset: naive sums of squares cancel
        default: return log1p(Double(random.poisson(40)))
        }
      }
      var whole = Moments()
      for value in values { whole.add(value) }
      let truth = Self.exact(values)
      #expect(whole.count == 5_000)
      #expect(abs(whole.mean - truth.mean) <= 1e-12 * abs(truth.mean))
      #expect(abs((whole.variance ?? 0) - truth.variance) <= 1e-6 * truth.variance)
      for _ in 0..<5 {
        var parts = [Moments](repeating: Moments(), count: 5)
        for value in values { parts[Int(random.next() % 5)].add(value) }
        var merged = Moments()
        // The identity on either side, then the parts in a random order.
        merged.merge(Moments())
        for part in parts.shuffled(using: &random) { merged.merge(try #require(Moments(part.message))) }
        #expect(merged.count == whole.count)
        #expect(abs(merged.mean - whole.mean) <= 1e-12 * abs(whole.mean))
        #expect(abs(merged.m2 - whole.m2) <= 1e-6 * whole.m2)
      }
    }
  }

  @Test("a malformed wire form is refused")
  func refusesMalformed() {
    var message = Haat_V1_Moments()
    message.count = 3
    message.m2 = -1
    #expect(Moments(message) == nil)
    message.m2 = .nan
    #expect(Moments(message) == nil)
    message = Haat_V1_Moments()
    message.mean = 2
    #expect(Moments(message) == nil)
  }
}

@Suite("Quantile sketch layout")
struct QuantileSketchLayoutTests {
  @Test("buckets far apart stay sparse: a hostile partial cannot make a sketch of 8,193 counters")
  func farBucketsStaySparse() throws {
    var message = Haat_V1_QuantileSketch()
    message.buckets = [-4_096, 4_096]
    message.counts = [1, 1]
    let sketch = try #require(QuantileSketch(message))
    #expect(sketch.denseCounters <= 72)
    #expect(sketch.sortedBuckets.map(\.index) == [-4_096, 4_096])
    // Values of one kind fill a dense window, and anything merged agrees with the buckets.
    var dense = QuantileSketch()
    for value in 1...5_000 { dense.add(Double(value)) }
    #expect(dense.denseCounters < 500)
    var merged = sketch
    merged.merge(dense)
    #expect(merged.count == 5_002)
    #expect(merged.buckets.count == dense.buckets.count + 2)
    #expect(try #require(QuantileSketch(merged.message)) == merged)
  }

  /// A sketch keeps a few buckets as a sorted list, many as a window, and far ones beside
  /// the window: whatever the layouts of the sketches merged, in whatever order, and through
  /// the wire, the buckets are exactly the counts of the values' indexes.
  @Test("short lists, windows and far buckets hold exactly the counts added, merged in any order")
  func layoutsHoldThePlainCounts() throws {
    var generator = SystemRandomNumberGenerator()
    for round in 0..<140 {
      let size = [1, 5, 20, 33, 64, 300, 3_000][round % 7]
      let values: [Double] = (0..<size).map { _ in
        switch Int.random(in: 0..<10, using: &generator) {
        case 0: exp(Double.random(in: -20...20, using: &generator))  // far from the rest
        case 1: 0
        default: exp(Double.random(in: 0...3, using: &generator))
        }
      }
      var truth: [Int32: UInt64] = [:]
      for value in values where value > QuantileSketch.smallest {
        truth[QuantileSketch.index(of: value), default: 0] += 1
      }
      let zeros = UInt64(values.filter { $0 <= QuantileSketch.smallest }.count)
      var whole = QuantileSketch()
      for value in values { whole.add(value) }
      let partCount = Int.random(in: 1...6, using: &generator)
      var parts = [QuantileSketch](repeating: QuantileSketch(), count: partCount)
      for value in values { parts[Int.random(in: 0..<partCount, using: &generator)].add(value) }
      var merged = QuantileSketch()
      for part in parts.shuffled(using: &generator) {
        switch Int.random(in: 0..<3, using: &generator) {
        case 0: merged.merge(part)
        case 1: merged.merge(try #require(QuantileSketch(part.message)))
        default:
          let read = merged.merge(part.message)  // the wire form, with no sketch built
          #expect(read)
        }
      }
      for sketch in [whole, merged] {
        #expect(sketch.buckets == truth && sketch.zeros == zeros && sketch.count == UInt64(size))
        #expect(sketch.sortedBuckets.map(\.index) == truth.keys.sorted())
        #expect(sketch.denseCounters <= 64 + 8 * truth.count)
        // Each quantile is the bucket that holds its rank among the plain counts, whichever
        // layout (window, list, both interleaved) holds them.
        for q in [0, 0.01, 0.3, 0.5, 0.77, 0.99, 1] {
          let rank = UInt64((q * Double(size - 1)).rounded(.down))
          var seen = zeros
          let bucket = truth.keys.sorted().first { index in
            seen += truth[index] ?? 0
            return rank < seen
          }
          let expected = rank < zeros ? 0 : bucket.map(QuantileSketch.value(of:))
          #expect(sketch.quantile(q) == expected, "q \(q) of \(size)")
        }
      }
      #expect(merged == whole)
    }
  }

  /// The packed form, byte for byte as docs/protocol.md gives it, read alone or beside the
  /// lists; a packed field that is cut short, runs on or leaves ±4096 is refused.
  @Test("packed buckets: the documented bytes, added to the lists, and refused when malformed")
  func packed() throws {
    var sketch = QuantileSketch()
    sketch.add(0)
    sketch.add(QuantileSketch.value(of: 116))
    sketch.add(QuantileSketch.value(of: 161))
    let message = sketch.message
    #expect(message.buckets.isEmpty && message.counts.isEmpty)
    #expect(message.packed.base64EncodedString() == "6AEBWgE=")
    #expect(try #require(QuantileSketch(message)) == sketch)
    var both = Haat_V1_QuantileSketch()
    both.buckets = [116, 3]
    both.counts = [2, 1]
    both.packed = Data(base64Encoded: "6AEBWgE=") ?? Data()
    #expect(try #require(QuantileSketch(both)).buckets == [116: 3, 161: 1, 3: 1])
    // The widest buckets: indices at both ends of ±4096 and a count of 2⁶⁴ − 1, whose
    // varints take the most bytes each.
    var widest = Haat_V1_QuantileSketch()
    widest.buckets = [-4096, 4096, 0]
    widest.counts = [UInt64.max, UInt64.max - 1, 1]
    let read = try #require(QuantileSketch(widest))
    #expect(read.buckets == [-4096: UInt64.max, 4096: UInt64.max - 1, 0: 1])
    #expect(try #require(QuantileSketch(read.message)) == read)
    // Read onto a short list: buckets with no count (left out) and out of order (added one
    // by one), as a sketch read from the same wire form and merged would hold them.
    for bytes: [UInt8] in [[0x04, 0x01, 0x04, 0x00, 0x06, 0x03], [0x0A, 0x00, 0x03, 0x02, 0x0C, 0x01]] {
      var wire = Haat_V1_QuantileSketch()
      wire.packed = Data(bytes)
      var list = QuantileSketch()
      list.add(QuantileSketch.value(of: 3))
      list.add(QuantileSketch.value(of: 4))
      var expected = list
      expected.merge(try #require(QuantileSketch(wire)))
      let read = list.merge(wire)
      #expect(read)
      #expect(list == expected && !list.buckets.values.contains(0), "\(bytes)")
    }
    for hostile in ["6A==", "6AE=", "/////////////wE=", "gkAB", "gUAB"] {
      var bad = Haat_V1_QuantileSketch()
      bad.packed = Data(base64Encoded: hostile) ?? Data([0xFF])
      #expect(QuantileSketch(bad) == nil, "\(hostile)")
      var into = sketch
      let read = into.merge(bad)
      #expect(!read, "\(hostile)")
    }
  }
}

@Suite("Statistics")
struct StatisticsTests {
  @Test("Student's t two-sided p-values match published tables")
  func studentT() {
    // 2 P(T > |t|), by numerical integration of the t density (R's 2 * pt(-|t|, df)).
    for (t, df, p) in [
      (2.0, 10.0, 0.073_388_03), (1.96, 1e6, 0.049_996_07), (3.0, 3.0, 0.057_668_89), (0.5, 40, 0.619_814_7),
    ] {
      #expect(abs(Statistics.studentTwoSided(t: t, df: df) - p) < 1e-6, "t \(t) df \(df)")
    }
    #expect(Statistics.studentTwoSided(t: 0, df: 5) == 1)
  }

  @Test("Welch's test: t from the two-pass figures, df by Welch–Satterthwaite")
  func welch() throws {
    var a = Moments()
    var b = Moments()
    for value in [19.1, 20.2, 18.7, 20.9, 19.5] { a.add(value) }
    for value in [21.8, 22.1, 19.9, 23.5, 22.0] { b.add(value) }
    let result = try #require(Statistics.welch(a, b))
    let exact = (
      a: MomentsTests.exact([19.1, 20.2, 18.7, 20.9, 19.5]), b: MomentsTests.exact([21.8, 22.1, 19.9, 23.5, 22.0])
    )
    let se = (exact.a.variance / 5 + exact.b.variance / 5).squareRoot()
    #expect(abs(result.t - (exact.a.mean - exact.b.mean) / se) < 1e-9)
    let (sa, sb) = (exact.a.variance / 5, exact.b.variance / 5)
    #expect(abs(result.df - (sa + sb) * (sa + sb) / (sa * sa / 4 + sb * sb / 4)) < 1e-9)
    #expect(abs(result.p - Statistics.studentTwoSided(t: result.t, df: result.df)) < 1e-12)
    #expect(result.p > 0.001 && result.p < 0.05)
  }

  @Test("Poisson draws have the mean and variance of their λ, below and above the method switch")
  func poisson() {
    var random = SplitMix64(seed: 11)
    for lambda in [0.5, 3.0, 9.9, 10.0, 37.0, 2_500.0] {
      let draws = (0..<60_000).map { _ in Double(random.poisson(lambda)) }
      let mean = draws.reduce(0, +) / Double(draws.count)
      let variance = draws.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(draws.count - 1)
      // Five standard errors of the mean; the variance within 5 %.
      #expect(abs(mean - lambda) < 5 * (lambda / Double(draws.count)).squareRoot(), "λ \(lambda): mean \(mean)")
      #expect(abs(variance - lambda) < 0.05 * lambda, "λ \(lambda): variance \(variance)")
    }
  }
}

@Suite("Media lift report")
struct MediaLiftKernelTests {
  static func post(_ id: Int, _ media: MediaType, likes: UInt64?, account: String = "a") -> CanonicalRecord {
    var post = PostRecord(
      platform: "instagram", account: account, id: String(id),
      createdAt: Values.Timestamp(epochSeconds: 1_772_368_200, offsetMinutes: 0),
      mediaType: media)
    post.likes = likes
    return .post(post)
  }

  /// Likes drawn from a log-normal with median `median` and log-sd 1, rounded to whole likes.
  static func likes(_ count: Int, median: Double, _ random: inout SplitMix64) -> [UInt64] {
    (0..<count).map { _ in
      let z = (-2 * log(1 - random.uniform())).squareRoot() * cos(2 * Double.pi * random.uniform())
      return UInt64((median * exp(z)).rounded())
    }
  }

  static func report(_ posts: [CanonicalRecord], parts: Int = 1) throws -> Haat_V1_MediaLiftReport {
    try finishedReport("media_lift", of: posts, parts: parts).mediaLift
  }

  /// A run of `posts` text and `posts` image posts where images truly get 50 % more likes.
  static func liftedRun(seed: UInt64, posts: Int) throws -> Haat_V1_MediaLiftRow {
    var random = SplitMix64(seed: seed)
    var records: [CanonicalRecord] = []
    for (index, count) in likes(posts, median: 100, &random).enumerated() {
      records.append(post(index, .text, likes: count))
    }
    for (index, count) in likes(posts, median: 150, &random).enumerated() {
      records.append(post(posts + index, .image, likes: count))
    }
    return try #require(try report(records).rows.first)
  }

  @Test("a true +50 % lift: the 95 % intervals cover 1.5 in about 95 % of seeded runs")
  func calibration() throws {
    // `make accept` runs issue 12's 1,000 runs; `make test` 200, where 95 % coverage falls
    // under 180 by chance about once in 1,500 and an uncalibrated interval fails at once.
    let runs = ProcessInfo.processInfo.environment["HAAT_ACCEPT"] != nil ? 1_000 : 200
    // The ratio of medians is truly 1.5; the ratio of geometric means of 1 + likes a
    // little less ((1 + 150x) / (1 + 100x) < 1.5): its true value from a million of each.
    var population = SplitMix64(seed: 0xC0FFEE)
    let text = Self.likes(1_000_000, median: 100, &population).reduce(0.0) { $0 + log1p(Double($1)) }
    let image = Self.likes(1_000_000, median: 150, &population).reduce(0.0) { $0 + log1p(Double($1)) }
    let trueGeomean = exp((image - text) / 1_000_000)
    var covered = (median: 0, geomean: 0)
    for seed in 0..<runs {
      let row = try Self.liftedRun(seed: UInt64(seed) + 1, posts: 120)
      if row.medianRatioLow <= 1.5 && 1.5 <= row.medianRatioHigh { covered.median += 1 }
      if row.geomeanRatioLow <= trueGeomean && trueGeomean <= row.geomeanRatioHigh { covered.geomean += 1 }
    }
    print(
      "media_lift calibration: the 95 % CI covered the true ratio of medians (1.5) in \(covered.median) of \(runs) runs, of geometric means (\(String(format: "%.4f", trueGeomean))) in \(covered.geomean)"
    )
    #expect(covered.median >= runs * 9 / 10 + runs * 3 / 100, "\(covered.median) of \(runs)")
    // The percentile interval of a mean covers a little under 95 % at 120 posts a side (940
    // of 1,000 measured): it is held to 92 %.
    #expect(covered.geomean >= runs * 92 / 100, "\(covered.geomean) of \(runs)")
  }

  @Test("a clear lift is called, with its test and the detectable lift")
  func aClearLiftIsCalled() throws {
    let row = try Self.liftedRun(seed: 99, posts: 400)
    #expect(row.verdict.hasPrefix("more likes"), "\(row.verdict)")
    #expect(row.medianRatioLow > 1 && row.medianRatioLow <= 1.5 && 1.5 <= row.medianRatioHigh)
    #expect(row.welchP < 0.001 && row.welchT > 0)
    #expect(row.detectableRatio > 1 && row.detectableRatio < 1.5)
    #expect(row.postsWithLikes == 400 && row.textPostsWithLikes == 400)
  }

  @Test("it says when the data cannot say: no lift, too few posts, no text")
  func saysWhenItCannotSay() throws {
    var random = SplitMix64(seed: 5)
    var records: [CanonicalRecord] = []
    // Account a: the same distribution for both (no lift), 30 posts each.
    for (index, count) in Self.likes(30, median: 100, &random).enumerated() {
      records.append(Self.post(index, .text, likes: count))
    }
    for (index, count) in Self.likes(30, median: 100, &random).enumerated() {
      records.append(Self.post(100 + index, .video, likes: count))
    }
    // Account b: 9 images with likes (one more without), 40 text posts.
    for index in 0..<40 { records.append(Self.post(200 + index, .text, likes: 50, account: "b")) }
    for index in 0..<9 { records.append(Self.post(300 + index, .image, likes: 500, account: "b")) }
    records.append(Self.post(400, .image, likes: nil, account: "b"))
    // Account c: no text posts at all.
    for index in 0..<20 { records.append(Self.post(500 + index, .carousel, likes: 10, account: "c")) }
    let rows = try Self.report(records).rows
    #expect(rows.map { "\($0.account) \($0.mediaType)" } == ["a video", "b image", "c carousel"])
    #expect(rows[0].verdict.hasPrefix("cannot say"), "\(rows[0].verdict)")
    #expect(rows[0].verdict.contains("would show a lift of ×"))
    #expect(rows[0].medianRatioLow < 1 && rows[0].medianRatioHigh > 1)
    #expect(rows[1].verdict.hasPrefix("too few posts to say: 9 image and 40 text"), "\(rows[1].verdict)")
    #expect(rows[1].posts == 10 && rows[1].postsWithLikes == 9)
    #expect(!rows[1].hasMedianRatio && !rows[1].hasWelchP)
    #expect(rows[2].verdict == "no text posts to compare with")
  }

  @Test("a text median of 0 likes: no ratio of medians, the verdict rests on geometric means")
  func zeroTextMedian() throws {
    var records: [CanonicalRecord] = []
    for index in 0..<40 { records.append(Self.post(index, .text, likes: index < 25 ? 0 : 3)) }
    for index in 0..<40 { records.append(Self.post(100 + index, .video, likes: 20 + UInt64(index % 7))) }
    let row = try #require(try Self.report(records).rows.first)
    #expect(!row.hasMedianRatio && !row.hasMedianRatioLow)
    #expect(row.geomeanRatioLow > 1)
    #expect(row.verdict.hasPrefix("more likes: geometric mean of 1 + likes"), "\(row.verdict)")
  }

  /// Found by a tester: 12 text posts of 0 likes and 12 images of 10 read "geometric mean
  /// ×11.0 text's (95 % CI 11.1–11.1)": the interval came from the sketch's bucket values.
  /// And (a second tester) 30 texts of 100 likes against 30 videos of none: the moved
  /// interval missed the estimate by one rounding step.
  @Test func anEstimateIsInsideItsOwnInterval() throws {
    // `count` text posts of `text` likes against as many of `media` with `likes`.
    func row(_ count: Int, text: UInt64, _ media: MediaType, likes: UInt64) throws -> Haat_V1_MediaLiftRow {
      let records = (0..<count).flatMap { index in
        [Self.post(index, .text, likes: text), Self.post(1_000 + index, media, likes: likes)]
      }
      return try #require(try Self.report(records).rows.first)
    }
    for row in [try row(12, text: 0, .image, likes: 10), try row(30, text: 100, .video, likes: 0)] {
      #expect(row.geomeanRatioLow <= row.geomeanRatio && row.geomeanRatio <= row.geomeanRatioHigh, "\(row)")
    }
    let up = try row(12, text: 0, .image, likes: 10)
    #expect(up.verdict.contains("×11.0") && up.verdict.contains("11.0–11.0"), "\(up.verdict)")
  }

  @Test("any split over tasks gives the same report")
  func splitsAgree() throws {
    var random = SplitMix64(seed: 3)
    var records: [CanonicalRecord] = []
    for account in ["a", "b"] {
      for (index, count) in Self.likes(80, median: 40, &random).enumerated() {
        records.append(Self.post(index, .text, likes: count, account: account))
      }
      for (index, count) in Self.likes(60, median: 70, &random).enumerated() {
        records.append(Self.post(1_000 + index, .video, likes: count, account: account))
      }
    }
    let whole = try Self.report(records)
    let split = try Self.report(records.shuffled(using: &random), parts: 4)
    #expect(whole.rows.count == 2)
    for (one, other) in zip(whole.rows, split.rows) {
      // Sketches merge exactly, so medians and the bootstrap are identical; moments agree
      // up to rounding, and the geometric means' interval, moved by the estimate, with them.
      #expect(one.medianRatio == other.medianRatio)
      #expect(one.medianRatioLow == other.medianRatioLow && one.medianRatioHigh == other.medianRatioHigh)
      #expect(abs(one.geomeanRatioLow - other.geomeanRatioLow) < 1e-9)
      #expect(abs(one.geomeanRatioHigh - other.geomeanRatioHigh) < 1e-9)
      #expect(abs(one.geomeanRatio - other.geomeanRatio) < 1e-9)
      #expect(abs(one.welchP - other.welchP) < 1e-9)
      #expect(one.meanLikes == other.meanLikes)
      #expect(one.verdict == other.verdict)
    }
  }
}

@Suite("Frequency report")
struct FrequencyKernelTests {
  static func post(_ iso: String, likes: UInt64, reach: UInt64? = nil, account: String = "a") -> CanonicalRecord {
    timedPost(iso, platform: "facebook", account: account, likes: likes, reach: reach)
  }

  static func report(_ posts: [CanonicalRecord], timezone: String = "", parts: Int = 1) throws -> Report {
    try finishedReport("frequency", of: posts, timezone: timezone, parts: parts)
  }

  @Test("weeks run Monday to Sunday in the account's zone and are grouped by their posts")
  func weeksAndBands() throws {
    let posts = [
      // Week of Mon 2026-03-02 (Dhaka, UTC+6): three posts; the last is Sunday 23:30 local.
      Self.post("2026-03-02T04:00:00Z", likes: 10, reach: 100),
      Self.post("2026-03-04T04:00:00Z", likes: 20, reach: 100),
      Self.post("2026-03-08T17:30:00Z", likes: 30),
      // Monday 2026-03-09 00:30 local (Sunday 18:30 UTC): the next week, alone.
      Self.post("2026-03-08T18:30:00Z", likes: 7, reach: 70),
      // Two more one-post weeks.
      Self.post("2026-03-17T04:00:00Z", likes: 5, reach: 50),
      Self.post("2026-03-25T04:00:00Z", likes: 9, reach: 30),
    ]
    let rows = try Self.report(posts, timezone: "Asia/Dhaka").frequency.rows
    #expect(rows.map(\.band) == ["1", "3"])
    #expect(rows[0].weeks == 3 && rows[0].posts == 3 && rows[0].engagements == 21)
    #expect(rows[0].engagementsPerPost == 7)
    #expect(rows[0].engagementRate == 21.0 / 150.0)
    #expect(rows[1].weeks == 1 && rows[1].posts == 3 && rows[1].engagements == 60)
    // The rate counts only the posts that state reach: 30 / 200.
    #expect(rows[1].engagementsWithReach == 30 && rows[1].reach == 200)
    #expect(rows.allSatisfy { $0.zone == "Asia/Dhaka" })
    // In UTC the Sunday-evening post falls in the first week: bands 1 (×2) and 4.
    let utc = try Self.report(posts, timezone: "UTC").frequency.rows
    #expect(utc.map(\.band) == ["1", "4"])
    #expect(utc.map(\.weeks) == [2, 1])
  }

  @Test("wide bands, and any split over tasks gives the same report")
  func bandsAndSplits() throws {
    var posts: [CanonicalRecord] = []
    // 12 posts in one week (band 11–14) and 25 in another (21+), two accounts.
    for account in ["a", "b"] {
      for index in 0..<12 {
        posts.append(Self.post("2026-05-0\(4 + index % 5)T10:\(10 + index):00Z", likes: 2, account: account))
      }
      for index in 0..<25 {
        posts.append(Self.post("2026-05-1\(1 + index % 6)T11:\(10 + index):00Z", likes: 1, account: account))
      }
    }
    let whole = try Self.report(posts)
    #expect(whole.frequency.rows.map(\.band) == ["11–14", "21+", "11–14", "21+"])
    #expect(whole.frequency.rows[1].maxPosts == 0 && whole.frequency.rows[1].minPosts == 21)
    #expect(try Self.report(posts.reversed(), parts: 3) == whole)
    let table = try #require(FrequencyKernel.table(of: whole))
    #expect(table.rows.first == ["facebook", "a", "offset", "11–14", "1", "12", "2.0", "–"])
  }
}
