import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import Testing

@testable import HaatRecords

@Suite("Quantile sketch")
struct QuantileSketchTests {
  /// The exact value at rank ⌊q (n − 1)⌋, the definition the sketch answers to.
  static func exact(_ sorted: [Double], _ q: Double) -> Double {
    sorted[Int((q * Double(sorted.count - 1)).rounded(.down))]
  }

  @Test("every quantile is within 1 % of the exact value at its rank", arguments: [1, 2, 7, 100, 5_000])
  func errorBound(count: Int) {
    var generator = SystemRandomNumberGenerator()
    for shape in 0..<3 {
      var values: [Double] = []
      for _ in 0..<count {
        switch shape {
        case 0: values.append(exp(Double.random(in: -12...12, using: &generator)))  // log-uniform
        case 1: values.append(Double(Int.random(in: 0...40, using: &generator)))  // counts, with zeros
        default: values.append(Double.random(in: 0...1, using: &generator) < 0.3 ? 0 : Double.random(in: 0...0.2))
        }
      }
      var sketch = QuantileSketch()
      for value in values { sketch.add(value) }
      let sorted = values.sorted()
      for q in [0, 0.01, 0.25, 0.5, 0.9, 0.99, 1] {
        let truth = Self.exact(sorted, q)
        let answer = sketch.quantile(q) ?? .nan
        if truth <= QuantileSketch.smallest {
          #expect(answer == 0, "q \(q) of \(count)")
        } else {
          #expect(abs(answer - truth) <= QuantileSketch.accuracy * truth + 1e-15, "q \(q): \(answer) vs \(truth)")
        }
      }
    }
  }

  @Test("merging any split, in any order, through the wire, gives the very same sketch")
  func mergeLaw() throws {
    var generator = SystemRandomNumberGenerator()
    let values = (0..<2_000).map { _ in exp(Double.random(in: -5...8, using: &generator)) } + [0, 0, 1e-12]
    var whole = QuantileSketch()
    for value in values { whole.add(value) }
    for _ in 0..<5 {
      var parts = [QuantileSketch](repeating: QuantileSketch(), count: 4)
      for value in values { parts[Int.random(in: 0..<4, using: &generator)].add(value) }
      var merged = QuantileSketch()
      for part in parts.shuffled(using: &generator) {
        merged.merge(try #require(QuantileSketch(part.message)))
      }
      #expect(merged == whole)
    }
  }

  @Test("a whole number takes the bucket the documented formula gives, as any other value")
  func wholeNumbersTakeTheFormulasBucket() {
    // The sketch looks whole numbers below 4,096 up in a table: each must land where
    // ceil(ln v / ln γ) puts it (docs/protocol.md), and near-whole values must not.
    let gamma = (1 + QuantileSketch.accuracy) / (1 - QuantileSketch.accuracy)
    for value in (1..<4_200).map(Double.init) + [4_095.5, 1.000_000_1, 2.5, 0.5] {
      var sketch = QuantileSketch()
      sketch.add(value)
      let expected = Int32((log(value) / log(gamma)).rounded(.up))
      #expect(sketch.buckets == [expected: 1], "\(value)")
    }
  }

  @Test("hostile values stay bounded; a malformed wire sketch is refused")
  func hostile() {
    var sketch = QuantileSketch()
    #expect(!sketch.add(-1) && !sketch.add(.nan))
    #expect(sketch.add(.infinity) && sketch.add(1e300) && sketch.add(1e-300))
    #expect(sketch.count == 3 && sketch.zeros == 1)
    #expect(sketch.buckets.keys.allSatisfy { abs($0) <= 4_096 })
    var message = Haat_V1_QuantileSketch()
    message.buckets = [1, 2]
    message.counts = [1]
    #expect(QuantileSketch(message) == nil)
    message.buckets = [5_000]
    message.counts = [1]
    #expect(QuantileSketch(message) == nil)
    #expect(QuantileSketch().quantile(0.5) == nil)
  }
}

@Suite("Best time report")
struct BestTimeKernelTests {
  static func post(_ iso: String, likes: UInt64, reach: UInt64? = nil, account: String = "a") -> CanonicalRecord {
    timedPost(iso, account: account, likes: likes, reach: reach)
  }

  static func report(_ posts: [CanonicalRecord], timezone: String = "", parts: Int = 1) throws -> Report {
    try finishedReport("best_time", of: posts, timezone: timezone, parts: parts)
  }

  @Test("hours of the week in the account's zone, across a daylight-saving change")
  func zones() throws {
    // 09:00 on two Mondays in New York: EST (UTC−5) before 2026-03-08, EDT (UTC−4) after.
    let posts = [Self.post("2026-03-02T14:00:00Z", likes: 1), Self.post("2026-03-09T13:00:00Z", likes: 3)]
    let local = try Self.report(posts, timezone: "America/New_York").bestTime.accounts
    #expect(local.count == 1 && local[0].zone == "America/New_York")
    // The zone's name as written (found by a tester: Foundation calls UTC "GMT").
    #expect(try Self.report(posts, timezone: "UTC").bestTime.accounts.map(\.zone) == ["UTC"])
    #expect(local[0].slots.map(\.label) == ["Mon 09:00"])
    #expect(local[0].slots.first?.posts == 2)
    // Without a zone, the written offset (here UTC): two different hours.
    let written = try Self.report(posts).bestTime.accounts
    #expect(written[0].zone == "offset" && written[0].slots.map(\.label) == ["Mon 13:00", "Mon 14:00"])
    // A written local offset is used as written: 2026-03-01 (a Sunday) 23:30 at +05:30.
    let offset = try Self.report([Self.post("2026-03-01T23:30:00+05:30", likes: 0)]).bestTime.accounts
    #expect(offset[0].slots.map(\.hour) == [6 * 24 + 23])
  }

  /// Older transitions are not on quarter hours of UTC: Detroit went to EDT at 00:01 EST
  /// on 1967-06-14 (05:01 UTC) and to Central time at 1905-01-01 00:00 local (05:32:11
  /// UTC). A post a few minutes after either is read in the new offset, not in the one the
  /// quarter hour started with.
  @Test("a transition inside a quarter hour of UTC is read exactly")
  func transitionsOffTheQuarterHour() throws {
    let summer = try Self.report([Self.post("1967-06-14T05:05:00Z", likes: 1)], timezone: "America/Detroit")
    #expect(summer.bestTime.accounts.first?.slots.map(\.label) == ["Wed 01:00"])
    let posts = [Self.post("1905-01-01T05:40:00Z", likes: 1), Self.post("1905-01-01T05:31:00Z", likes: 1)]
    let central = try Self.report(posts, timezone: "America/Detroit")
    #expect(central.bestTime.accounts.first?.slots.map(\.label) == ["Sat 23:00"])
  }

  @Test("recommends only slots with enough posts, by median engagement rate; splits merge to the same report")
  func recommendation() throws {
    var posts: [CanonicalRecord] = []
    // Tuesdays 18:00 UTC: 6 posts at rate 10 %; Wednesdays 09:00: 6 at 5 %; Friday 12:00:
    // 2 posts at 90 % (too few to recommend). 2026-01-06 is a Tuesday.
    for week in 0..<6 {
      for (iso, likes) in [("2026-01-06T18:00:00Z", UInt64(10)), ("2026-01-07T09:00:00Z", 5)] {
        guard case .post(var post) = Self.post(iso, likes: likes, reach: 100) else { continue }
        post.createdAt.epochSeconds += Int64(week * 7 * 86_400)
        posts.append(.post(post))
      }
    }
    posts.append(Self.post("2026-01-09T12:00:00Z", likes: 90, reach: 100))
    posts.append(Self.post("2026-01-16T12:00:00Z", likes: 90, reach: 100))
    let report = try Self.report(posts)
    let account = try #require(report.bestTime.accounts.first)
    #expect(account.rankedBy == "median_rate")
    #expect(account.recommended.map(\.label) == ["Tue 18:00", "Wed 09:00"])
    #expect(abs(account.recommended[0].medianRate - 0.1) <= 0.001)
    #expect(account.slots.count == 3)
    #expect(try Self.report(posts, parts: 3) == report)
    let table = ReportRendering.table(report)
    #expect(table.contains("Tue 18:00") && table.contains("Mon  ·"))
    #expect(ReportRendering.csv(report, named: "best_time").contains(",Fri 12:00,2,2,"))
  }

  @Test("an account with too few posts gets no recommendation, and says so")
  func tooFew() throws {
    let report = try Self.report([Self.post("2026-01-06T18:00:00Z", likes: 4)])
    let account = try #require(report.bestTime.accounts.first)
    #expect(account.recommended.isEmpty && account.rankedBy == "median_engagements")
    #expect(ReportRendering.table(report).contains("no slot has 5 posts"))
  }

  @Test("a record two kernels read is in both or neither; a cell past 2^64 - 1 fails the report, through the wire")
  func allOrNoneAndOverflow() throws {
    var builder = PartialBuilder(reports: ["engagement", "best_time"])
    let first = builder.add(Self.post("2026-01-06T18:00:00Z", likes: 7, reach: 70))
    #expect(first)
    guard case .post(var wrapping) = Self.post("2026-01-06T18:00:00Z", likes: .max) else { return }
    wrapping.comments = 1
    let refused = !builder.add(.post(wrapping))
    #expect(refused, "its own engagements pass the limit: in neither report")
    var report = Report()
    var merger = PartialMerger()
    merger.merge(builder.partial)
    try merger.finish(["engagement", "best_time"], into: &report)
    #expect(report.engagement.total.posts == 1 && report.bestTime.accounts.first?.slots.first?.posts == 1)

    // One kernel refuses, the other would take it: engagement's cell (account × media)
    // passes the limit, best_time's cells (hours apart) do not. In neither report.
    var split = PartialBuilder(reports: ["engagement", "best_time"])
    let big = split.add(Self.post("2026-01-06T18:00:00Z", likes: .max - 1))
    let over = !split.add(Self.post("2026-01-07T09:00:00Z", likes: 5))
    #expect(big && over)
    var splitReport = Report()
    var splitMerger = PartialMerger()
    splitMerger.merge(split.partial)
    try splitMerger.finish(["engagement", "best_time"], into: &splitReport)
    #expect(splitReport.engagement.total.posts == 1)
    #expect(splitReport.bestTime.accounts.first?.slots.reduce(0) { $0 + $1.posts } == 1)

    // Two posts whose sum passes the limit in one cell: the worker's partial says so.
    var cell = PartialBuilder(reports: ["best_time"])
    cell.add(Self.post("2026-01-06T18:00:00Z", likes: .max - 1))
    cell.add(Self.post("2026-01-13T18:00:00Z", likes: 5))
    let partial = try Partial(jsonUTF8Data: cell.partial.jsonUTF8Data())
    #expect(partial.bestTime.overflowed)
    var overflowing = PartialMerger()
    overflowing.merge(partial)
    var failed = Report()
    #expect(throws: HaatError.self) { try overflowing.finish(["best_time"], into: &failed) }
  }

  /// A partial merges into the kernel in place (no kernel built for it): sums that pass the
  /// limit only together, and a sketch that does not read, still fail the report.
  @Test("partials merged in place: a sum past 2^64 - 1 or a sketch that does not read fails the report")
  func mergedInPlace() throws {
    let partials = (0..<2).map { _ in
      var builder = PartialBuilder(reports: ["best_time"])
      builder.add(Self.post("2026-01-06T18:00:00Z", likes: UInt64.max / 2 + 1))
      return builder.partial
    }
    var summed = PartialMerger()
    for partial in partials { summed.merge(partial) }
    var report = Report()
    #expect(throws: HaatError.self) { try summed.finish(["best_time"], into: &report) }

    // A cell whose sketch does not read, in the cells' form.
    var bad = partials[0]
    var cells = try Self.cells(of: bad.bestTime.groups[0])
    cells[0].perPost.packed = Data([0xFF])
    bad.bestTime.groups = []
    bad.bestTime.cells = cells
    var broken = PartialMerger()
    broken.merge(Self.partial([Self.post("2026-01-06T18:00:00Z", likes: 1)]))
    broken.merge(bad)
    #expect(throws: HaatError.self) { try broken.finish(["best_time"], into: &report) }
    var fine = PartialMerger()
    fine.merge(Self.partial([Self.post("2026-01-06T18:00:00Z", likes: 1)]))
    fine.merge(Self.partial([Self.post("2026-01-13T18:00:00Z", likes: 3)]))
    try fine.finish(["best_time"], into: &report)
    #expect(report.bestTime.accounts.first?.slots.map(\.posts) == [2])
  }

  /// A group's cells as docs/protocol.md lays them out, read by a parser of its own (so the
  /// layout is checked apart from the kernel's reader): hour, posts, engagements, then each
  /// sketch's zeros, length and packed bytes.
  static func cells(of group: Haat_V1_BestTimeGroup) throws -> [Haat_V1_BestTimeCell] {
    var bytes = ArraySlice(group.cells)
    func varint() throws -> UInt64 {
      var (value, shift): (UInt64, UInt64) = (0, 0)
      while let byte = bytes.popFirst() {
        value |= UInt64(byte & 0x7F) << shift
        if byte < 0x80 { return value }
        shift += 7
      }
      throw HaatError(.badRequest, "cut short")
    }
    func sketch() throws -> Haat_V1_QuantileSketch {
      var sketch = Haat_V1_QuantileSketch()
      sketch.zeros = try varint()
      let length = Int(try varint())
      guard length <= bytes.count else { throw HaatError(.badRequest, "cut short") }
      sketch.packed = Data(bytes.prefix(length))
      bytes = bytes.dropFirst(length)
      return sketch
    }
    var cells: [Haat_V1_BestTimeCell] = []
    while !bytes.isEmpty {
      var cell = Haat_V1_BestTimeCell()
      (cell.platform, cell.account, cell.zone) = (group.platform, group.account, group.zone)
      cell.hour = UInt32(try varint())
      cell.posts = try varint()
      cell.engagements = try varint()
      cell.rates = try sketch()
      cell.perPost = try sketch()
      cells.append(cell)
    }
    return cells
  }

  /// Equal partials encode to equal bytes: groups by platform, account and zone (UTF-8 byte
  /// order), cells by hour, whatever order the posts came in.
  @Test func aPartialsCellsAreInKeyOrder() throws {
    var generator = SystemRandomNumberGenerator()
    var builder = PartialBuilder(reports: ["best_time"])
    for _ in 0..<500 {
      let (day, hour) = (Int.random(in: 5...11, using: &generator), Int.random(in: 0..<24, using: &generator))
      let account = ["b", "a", "ab", "B", "é", "a b"].randomElement(using: &generator) ?? "a"
      builder.add(Self.post(String(format: "2026-01-%02dT%02d:00:00Z", day, hour), likes: 1, account: account))
    }
    let partial = builder.partial
    #expect(partial.bestTime.cells.isEmpty && partial.bestTime.groups.count == 6)
    let cells = try partial.bestTime.groups.flatMap(Self.cells(of:))
    #expect(cells.count > 100 && cells.reduce(0) { $0 + $1.posts } == 500)
    for (earlier, later) in zip(cells, cells.dropFirst()) {
      let (first, second) = (
        [earlier.platform, earlier.account, earlier.zone], [later.platform, later.account, later.zone]
      )
      if first == second {
        #expect(earlier.hour < later.hour)
      } else {
        #expect(first.lexicographicallyPrecedes(second) { $0.utf8.lexicographicallyPrecedes($1.utf8) })
      }
    }
    // Read back as the cells they hold, the groups give the same report.
    var asCells = partial
    asCells.bestTime.groups = []
    asCells.bestTime.cells = cells
    var (fromGroups, fromCells) = (PartialMerger(), PartialMerger())
    fromGroups.merge(partial)
    fromCells.merge(asCells)
    var (one, other) = (Report(), Report())
    try fromGroups.finish(["best_time"], into: &one)
    try fromCells.finish(["best_time"], into: &other)
    #expect(one == other && one.bestTime.accounts.count == 6)
  }

  /// docs/protocol.md's example, byte for byte: three posts in one Dhaka hour as a group.
  @Test func theDocumentedGroup() throws {
    var builder = PartialBuilder(reports: ["best_time"], context: ReportContext(timezone: "Asia/Dhaka"))
    for (likes, reach) in [(10, 100), (0, 250), (25, nil)] as [(UInt64, UInt64?)] {
      builder.add(timedPost("2026-01-06T12:00:00Z", account: "dhaka_threads", likes: likes, reach: reach))
    }
    let section = builder.partial.bestTime
    #expect(section.groups.count == 1 && section.cells.isEmpty)
    let json = try Partial.with { $0.bestTime = section }.jsonString(options: WireCodec.encodingOptions)
    #expect(
      json
        == #"{"best_time":{"groups":[{"platform":"instagram","account":"dhaka_threads","zone":"Asia/Dhaka","cells":"KgMjAQPlAQEBBegBAVoB"}]}}"#
    )
    // The same cell written as a cell reads the same.
    var cell = Haat_V1_BestTimeCell()
    (cell.platform, cell.account, cell.zone, cell.hour, cell.posts, cell.engagements) = (
      "instagram", "dhaka_threads", "Asia/Dhaka", 42, 3, 35
    )
    cell.rates.zeros = 1
    cell.rates.packed = Data([0xE5, 0x01, 0x01])
    cell.perPost.zeros = 1
    cell.perPost.packed = Data([0xE8, 0x01, 0x01, 0x5A, 0x01])
    #expect(try Self.cells(of: section.groups[0]) == [cell])
  }

  /// A group past `groupBytes` goes on in another of the same key: each stays far under the
  /// smallest line, and the report is the same.
  @Test func wideSketchesTakeSeveralGroups() throws {
    var posts: [CanonicalRecord] = []
    for hour in 0..<24 {
      for likes in 0..<300 {
        // Rates and engagements over hundreds of buckets: wide sketches in every cell.
        posts.append(
          Self.post(
            String(format: "2026-01-06T%02d:00:00Z", hour), likes: UInt64(likes * likes), reach: UInt64(1 + likes)))
      }
    }
    let partial = Self.partial(posts)
    let groups = partial.bestTime.groups
    #expect(groups.count > 1 && Set(groups.map { [$0.platform, $0.account, $0.zone] }).count == 1)
    #expect(groups.allSatisfy { $0.cells.count < BestTimeKernel.groupBytes + 8_192 })
    #expect(try groups.flatMap(Self.cells(of:)).map(\.hour) == Array(24..<48))  // Tuesday's hours
    var merged = PartialMerger()
    merged.merge(partial)
    var report = Report()
    try merged.finish(["best_time"], into: &report)
    #expect(report.bestTime.accounts.first?.slots.count == 24)
    #expect(report.bestTime.accounts.first?.slots.allSatisfy { $0.posts == 300 } == true)
  }

  /// A group cut short anywhere reads only when cut between two cells (then as the cells
  /// before the cut), and random bytes either read or fail the report: never a crash, never
  /// a cell half read.
  @Test func groupsCutAnywhereOrRandom() throws {
    var posts: [CanonicalRecord] = []
    for hour in 0..<6 {
      for likes in 0..<5 {
        posts.append(Self.post(String(format: "2026-01-06T%02d:00:00Z", hour), likes: UInt64(likes * 7), reach: 100))
      }
    }
    let whole = try #require(Self.partial(posts).bestTime.groups.first)
    let cells = try Self.cells(of: whole)
    #expect(cells.count == 6)
    func read(_ bytes: Data) -> Report? {
      var partial = Partial()
      var group = whole
      group.cells = bytes
      partial.bestTime.groups = [group]
      var merger = PartialMerger()
      merger.merge(partial)
      var report = Report()
      return (try? merger.finish(["best_time"], into: &report)).map { report }
    }
    var boundaries = 0
    for cut in 0...whole.cells.count {
      guard let report = read(whole.cells.prefix(cut)) else { continue }
      // A prefix that reads holds whole cells: the first ones, as they were.
      let slots = report.bestTime.accounts.first?.slots ?? []
      #expect(slots.map(\.hour) == cells.prefix(slots.count).map(\.hour), "cut at \(cut)")
      #expect(slots.map(\.posts) == cells.prefix(slots.count).map(\.posts), "cut at \(cut)")
      boundaries += 1
    }
    #expect(boundaries == cells.count + 1)
    var random = SeededRandom(seed: 31)
    for _ in 0..<3_000 {
      let bytes = Data(
        (0..<Int(random.next() % 40)).map { _ in
          UInt8(truncatingIfNeeded: random.next() % 4 == 0 ? random.next() : random.next() % 8)
        })
      _ = read(bytes)
    }
  }

  /// A group's bytes that do not read (cut inside a varint or a sketch, an hour past 167,
  /// a varint longer than 10 bytes, buckets that do not read) fail the report, as a cell
  /// that does not read does: never a cell left out unseen.
  @Test(
    arguments: [
      [0x2A], [0x2A, 0x03, 0x23, 0x01, 0x03, 0xE5, 0x01], [0xA8, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00],
      [0x2A, 0x01, 0x01, 0x00, 0x00, 0x00, 0x02, 0xFF], [0x2A, 0x01, 0x01, 0x00, 0x09, 0x00, 0x00],
      [0x2A] + [UInt8](repeating: 0xFF, count: 10) + [0x01, 0x01, 0x00, 0x00, 0x00, 0x00],
      [0x2A, 0x01, 0x01, 0x00, 0x02, 0x81, 0x40, 0x00, 0x00],
    ] as [[UInt8]])
  func groupsThatDoNotRead(bytes: [UInt8]) throws {
    var partial = Self.partial([Self.post("2026-01-06T18:00:00Z", likes: 1)])
    var bad = Haat_V1_BestTimeGroup()
    (bad.platform, bad.account, bad.zone, bad.cells) = ("instagram", "a", "offset", Data(bytes))
    partial.bestTime.groups.append(bad)
    var merger = PartialMerger()
    merger.merge(partial)
    var report = Report()
    #expect(throws: HaatError.self) { try merger.finish(["best_time"], into: &report) }
  }

  /// Settling adds the posts held back: the partial is the same before and after, and
  /// settling again changes nothing.
  @Test func settlingChangesNoPartial() throws {
    var builder = PartialBuilder(reports: ["best_time", "engagement"])
    for index in 0..<2_000 {
      let (day, hour) = (5 + index % 7, index * 7 % 24)
      builder.add(
        Self.post(
          String(format: "2026-01-%02dT%02d:00:00Z", day, hour), likes: UInt64(index % 97),
          reach: index % 3 == 0 ? nil : UInt64(100 + index), account: ["a", "b", "c"][index % 3]))
    }
    let held: [UInt8] = try builder.partial.serializedBytes()
    builder.settle()
    let settled: [UInt8] = try builder.partial.serializedBytes()
    builder.settle()
    let again: [UInt8] = try builder.partial.serializedBytes()
    #expect(held == settled && settled == again)
    #expect(held.count > 1_000)
  }

  static func partial(_ posts: [CanonicalRecord]) -> Partial {
    var builder = PartialBuilder(reports: ["best_time"])
    for post in posts { builder.add(post) }
    return builder.partial
  }

  @Test("the SVG heatmap has a cell per hour of the week per account, names escaped")
  func svg() throws {
    var posts: [CanonicalRecord] = []
    for account in ["a<&>\"b", "plain"] {
      posts.append(Self.post("2026-01-06T18:00:00Z", likes: 10, reach: 100, account: account))
    }
    let report = try Self.report(posts)
    let svg = try #require(BestTimeKernel.svg(of: report))
    #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
    #expect(svg.components(separatedBy: "<rect ").count - 1 == 2 * 168)
    #expect(svg.contains("a&lt;&amp;&gt;&quot;b") && !svg.contains("a<&>"))
    #expect(svg.contains("<title>Tue 18:00: 1 posts, median"))
    // A slot with posts but no rate (no reach) is unshaded, with a tooltip that says so.
    var withoutReach = posts
    withoutReach.append(Self.post("2026-01-07T09:00:00Z", likes: 3, account: "plain"))
    let unshaded = try #require(BestTimeKernel.svg(of: try Self.report(withoutReach)))
    #expect(unshaded.contains(#"fill="rgb(238,238,238)"><title>Wed 09:00: 1 posts, no rate</title></rect>"#))
    #expect(EngagementKernel.svg(of: report) == nil, "engagement draws no chart")
    // A limit draws the busiest accounts only, and says how many it left out (a job page
    // polled every second drew every account's week: 794 MB for 50,000 accounts).
    var many: [CanonicalRecord] = []
    for index in 0..<30 {
      for _ in 0...(index == 7 ? 3 : 0) {
        many.append(Self.post("2026-01-06T18:00:00Z", likes: 1, reach: 10, account: "acct-\(index)"))
      }
    }
    let limited = try #require(BestTimeKernel.svg(of: try Self.report(many), limit: 20))
    #expect(limited.components(separatedBy: "<rect ").count - 1 == 20 * 168)
    #expect(limited.contains("10 more left out") && limited.contains("acct-7 "))
    let only = ReportRendering.table(report, only: "best_time")
    #expect(only.contains("median rate") && !only.contains("ER reach"))
  }

  /// Four heatmaps at most; the last line says how many accounts were left out.
  @Test func heatmapsLeftOutAreCounted() throws {
    let posts = (0..<6).map { Self.post("2026-01-06T18:00:00Z", likes: 10, reach: 100, account: "acct\($0)") }
    let text = ReportRendering.table(try Self.report(posts), only: "best_time")
    #expect(text.components(separatedBy: "\n     0     6     12    18\n").count - 1 == 4, "\(text)")
    #expect(text.contains("with the most posts; 2 more left out; every slot of all 6 is in"), "\(text)")
  }
}
