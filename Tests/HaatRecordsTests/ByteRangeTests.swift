import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import Testing

@testable import HaatRecords

/// Serves `file` as an HTTP server with byte ranges would: 206 and a Content-Range for a
/// range request, 200 and the whole file otherwise. `extra`: a server that sends that many
/// bytes more than asked, saying so in its Content-Range.
private func serve(
  _ file: [UInt8], _ request: PageRequest, extra: UInt64 = 0
) -> (status: Int, body: ArraySlice<UInt8>, CannedPage) {
  guard let range = request.range else {
    return (200, file[...], CannedPage(body: file, contentType: nil))
  }
  let end = min(UInt64(file.count), range.upperBound + 1 + extra)
  let body = file[Int(range.lowerBound)..<Int(end)]
  return (
    206, body,
    CannedPage(
      body: Array(body), contentType: nil,
      headers: [("content-range", "bytes \(range.lowerBound)-\(end - 1)/\(file.count)")])
  )
}

/// Runs one task of `kind` over `file`, fed in chunks of `chunk` bytes; returns its posts
/// and requests. `unwrapped`: posts taken through `feed(_:post:emit:)`, as the worker does.
private func run(
  _ task: TaskSpec, file: [UInt8], chunk: Int = 4096, unwrapped: Bool = false, extra: UInt64 = 0
) throws -> (posts: [PostRecord], requests: [PageRequest], connector: CanonicalExportConnector) {
  var connector = CanonicalExportConnector(task: task, limits: ReadLimits())
  var posts: [PostRecord] = []
  var requests: [PageRequest] = []
  func emit(_ record: CanonicalRecord) -> Bool {
    if case .post(let post) = record { posts.append(post) }
    return true
  }
  func emit(post: PostRecord) -> Bool {
    posts.append(post)
    return true
  }
  var next = try connector.firstRequest()
  while let request = next {
    requests.append(request)
    guard requests.count < 10_000 else { throw ExportError("too many pages") }
    let (status, body, page) = serve(file, request, extra: extra)
    try connector.pageStarted(status: status, contentType: nil)
    var offset = body.startIndex
    while offset < body.endIndex {
      let end = min(body.endIndex, offset + chunk)
      try file[offset..<end].withUnsafeBytes { bytes in
        if unwrapped {
          try connector.feed(
            bytes, post: emit(post:),
            emit: { _ in
              Issue.record("a post wrapped"); return true
            })
        } else {
          try connector.feed(bytes, emit: emit)
        }
      }
      offset = end
    }
    let response = PageResponse(status: status, contentType: nil, headers: page.headers)
    next =
      unwrapped
      ? try connector.pageEnded(
        response, post: emit(post:),
        emit: { _ in
          Issue.record("a post wrapped"); return true
        })
      : try connector.pageEnded(response, emit: emit)
  }
  return (posts, requests, connector)
}

private func task(url: String) -> TaskSpec {
  var task = TaskSpec()
  task.source.kind = "posts"
  task.source.url = url
  return task
}

/// The range tasks of `bounds` over `file`, as the coordinator makes them from a plan.
private func rangeTasks(url: String, file: [UInt8], bounds: [UInt64], header: String) -> [TaskSpec] {
  var split = Split()
  split.size = UInt64(file.count)
  split.bounds = bounds
  split.header = header
  var plan = task(url: url)
  plan.splitPlan = true
  return split.rangeTasks(of: plan, firstIndex: 0)
}

/// A CSV export whose captions hold commas, escaped quotes and line breaks (LF and CRLF),
/// as real exports' do; deterministic for `seed`.
private func trickyCSV(rows: Int, seed: UInt64) -> [UInt8] {
  var state = seed
  func next() -> UInt64 {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return state >> 33
  }
  let captions = [
    "plain", "with, comma", "two\nlines", "\"quoted\" start", "three\nshort\nlines", "ends with quote \"",
    "crlf\r\ninside", "", "a,b\n\"c\",d\n", "long " + String(repeating: "x", count: 300),
  ]
  var text = "platform,account,id,created_at,media_type,likes,comments,caption\n"
  for row in 0..<rows {
    let caption = captions[Int(next() % UInt64(captions.count))]
    let quoted = "\"" + caption.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    let media = ["text", "image", "video"][Int(next() % 3)]
    text +=
      "facebook,acct_\(next() % 5),p\(row),2026-05-0\(1 + next() % 9)T10:00:00Z,\(media),\(next() % 500),\(next() % 50),\(quoted)"
    text += next() % 4 == 0 ? "\r\n" : "\n"
  }
  return Array(text.utf8)
}

@Suite("Byte ranges")
struct ByteRangeTests {
  @Test("bounds cover the file in ranges of about the size asked, at most 1,000")
  func boundsCoverTheFile() {
    #expect(RangeSplitting.bounds(size: 10, splitBytes: 4) == [0, 4, 8, 10])
    #expect(RangeSplitting.bounds(size: 8, splitBytes: 4) == [0, 4, 8])
    #expect(RangeSplitting.bounds(size: 3, splitBytes: 4) == [0, 3])
    let many = RangeSplitting.bounds(size: 5_000_000_000, splitBytes: 1 << 20)
    #expect(many.count == RangeSplitting.maxRanges + 1)
    #expect(many.first == 0 && many.last == 5_000_000_000)
    var split = Split()
    split.size = 10
    split.bounds = [0, 4, 8, 10]
    #expect(RangeSplitting.problem(with: split) == nil)
    for bad in [[0, 4, 4, 10], [1, 10], [0, 9], [0], [0, 11]] as [[UInt64]] {
      split.bounds = bad
      #expect(RangeSplitting.problem(with: split) != nil, "\(bad)")
    }
  }

  @Test("a plan task reads the first bytes and answers the size, the header and the bounds")
  func planTaskSplits() throws {
    let file = trickyCSV(rows: 3_000, seed: 7)
    var plan = task(url: "http://fixture/big.csv")
    plan.source.splitBytes = 100_000
    plan.splitPlan = true
    let (posts, requests, connector) = try run(plan, file: file)
    #expect(posts.isEmpty)
    #expect(requests == [PageRequest(url: plan.source.url, range: 0...UInt64(RangeSplitting.probeBytes - 1))])
    let split = try #require(connector.split)
    #expect(split.size == UInt64(file.count))
    #expect(split.header == "platform,account,id,created_at,media_type,likes,comments,caption")
    #expect(split.bounds == RangeSplitting.bounds(size: UInt64(file.count), splitBytes: 100_000))
  }

  @Test("a CSV whose header is not its first line (blank lines, a quoted line break) is read whole by its plan task")
  func aLateHeaderIsReadWhole() throws {
    let body = Array(trickyCSV(rows: 400, seed: 11))
    let header = body.prefix { $0 != UInt8(ascii: "\n") }
    let quotedBreak = Array("platform,account,id,created_at,media_type,likes,comments,\"cap\ntion\"".utf8)
    for file in [
      Array("\n \r\n".utf8) + body, [0xEF, 0xBB, 0xBF, 0x0A] + body, quotedBreak + body.dropFirst(header.count),
    ] {
      var plan = task(url: "http://fixture/late.csv")
      plan.source.splitBytes = 1 << 20
      plan.splitPlan = true
      let (posts, requests, connector) = try run(plan, file: file)
      #expect(connector.split == nil, "no split of a header the ranges would not see")
      #expect(requests.count == 2 && requests.last == PageRequest(url: plan.source.url))
      #expect(posts.count == 400)
    }
  }

  @Test("a server that ignores Range makes the plan task read the export whole")
  func planWithoutRangesReadsWhole() throws {
    let file = trickyCSV(rows: 50, seed: 3)
    var plan = task(url: "http://fixture/small.csv")
    plan.source.splitBytes = 1 << 20
    plan.splitPlan = true
    var connector = CanonicalExportConnector(task: plan, limits: ReadLimits())
    _ = try connector.firstRequest()
    try connector.pageStarted(status: 200, contentType: nil)
    var count = 0
    try file.withUnsafeBytes { bytes in
      try connector.feed(bytes) { _ in
        count += 1; return true
      }
    }
    #expect(
      try connector.pageEnded(PageResponse(status: 200, contentType: nil)) { _ in
        count += 1; return true
      } == nil)
    #expect(count == 50)
    #expect(connector.split == nil)
    // A range task, though, cannot make do with the whole file.
    var range = task(url: plan.source.url)
    range.range.start = 10
    range.range.end = 20
    range.range.size = UInt64(file.count)
    var ranged = CanonicalExportConnector(task: range, limits: ReadLimits())
    _ = try ranged.firstRequest()
    #expect(throws: ExportError.self) { try ranged.pageStarted(status: 200, contentType: nil) }
  }

  @Test("quotes are counted eight bytes at a time as one at a time counts them")
  func quotesCountedByTheWord() {
    var random = SeededRandom(seed: 17)
    // Every byte value beside the quote, runs of quotes, and every length and alignment.
    let bytes = (0..<4_096).map { position -> UInt8 in
      switch random.next() % 4 {
      case 0: return UInt8(ascii: "\"")
      case 1: return UInt8(truncatingIfNeeded: position)
      default: return UInt8(truncatingIfNeeded: random.next())
      }
    }
    bytes.withUnsafeBytes { all in
      for _ in 0..<2_000 {
        let start = Int(random.next() % 64)
        let count = Int(random.next() % UInt64(all.count - start))
        let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + count)])
        for byte in [UInt8(ascii: "\""), 0, 0x7F, 0x80, 0xFF] {
          #expect(RangeCutter.count(byte, in: slice) == slice.filter { $0 == byte }.count)
        }
      }
    }
  }

  @Test("posts handed over unwrapped are the posts emitted in records, whole, planned and in ranges")
  func unwrappedPostsAreTheWrappedOnes() throws {
    let file = trickyCSV(rows: 3_000, seed: 23)
    let url = "http://fixture/unwrapped.csv"
    let whole = try run(task(url: url), file: file, chunk: 777)
    let unwrapped = try run(task(url: url), file: file, chunk: 777, unwrapped: true)
    #expect(whole.posts.count == 3_000)
    #expect(unwrapped.posts == whole.posts)
    #expect(unwrapped.connector.counts == whole.connector.counts)
    var plan = task(url: url)
    plan.source.splitBytes = 50_000
    plan.splitPlan = true
    let split = try #require(try run(plan, file: file, unwrapped: true).connector.split)
    let header = "platform,account,id,created_at,media_type,likes,comments,caption"
    var posts: [PostRecord] = []
    for spec in rangeTasks(url: url, file: file, bounds: split.bounds, header: header) {
      posts += try run(spec, file: file, chunk: 1_001, unwrapped: true).posts
    }
    #expect(posts == whole.posts)
  }

  @Test("split at every offset into two ranges, a CSV with multi-line quoted fields reads as it does whole")
  func everyCutOfASmallCSV() throws {
    let file = trickyCSV(rows: 12, seed: 11)
    let url = "http://fixture/small.csv"
    let whole = try run(task(url: url), file: file).posts
    #expect(whole.count == 12)
    let header = "platform,account,id,created_at,media_type,likes,comments,caption"
    for cut in 1..<UInt64(file.count) {
      var posts: [PostRecord] = []
      for spec in rangeTasks(url: url, file: file, bounds: [0, cut, UInt64(file.count)], header: header) {
        posts += try run(spec, file: file, chunk: 5).posts
      }
      let same = posts == whole
      #expect(same, "cut at \(cut): \(posts.count) posts, \(whole.count) whole")
      if !same { break }
    }
  }

  @Test(
    "random splits of a large CSV read as it does whole, mostly without counting quotes from 0, from a server that sends more than asked too",
    arguments: [0, 300_000] as [UInt64])
  func randomSplitsOfALargeCSV(extra: UInt64) throws {
    let file = trickyCSV(rows: 20_000, seed: 5)
    let url = "http://fixture/large.csv"
    let whole = try run(task(url: url), file: file).posts
    #expect(whole.count == 20_000)
    let header = "platform,account,id,created_at,media_type,likes,comments,caption"
    var generator = SystemRandomNumberGenerator()
    var scanned = 0
    var ranges = 0
    for _ in 0..<6 {
      let count = Int.random(in: 2...9, using: &generator)
      let cuts = Set((0..<(count - 1)).map { _ in UInt64.random(in: 1..<UInt64(file.count), using: &generator) })
      let bounds = [0] + cuts.sorted() + [UInt64(file.count)]
      var posts: [PostRecord] = []
      var state = false
      for spec in rangeTasks(url: url, file: file, bounds: bounds, header: header) {
        let (read, requests, connector) = try run(spec, file: file, chunk: 1 << 16, extra: extra)
        posts += read
        ranges += 1
        // Each range's quote state agrees with the quotes before it (what reports check).
        let quotes = try #require(connector.rangeQuotes)
        #expect(quotes.startsInQuotes == state && quotes.start == spec.range.start)
        state = quotes.startsInQuotes != quotes.oddQuotes
        if spec.range.start > 1, requests.contains(where: { $0.range?.lowerBound == 0 }) { scanned += 1 }
        #expect(connector.counts.badRecords == 0)
      }
      let same = posts == whole
      #expect(same, "bounds \(bounds): \(posts.count) posts, \(whole.count) whole")
    }
    // The probe decides nearly every range by itself; counting from 0 is the exception.
    #expect(scanned * 4 < ranges, "\(scanned) of \(ranges) ranges counted quotes from the start")
  }

  /// The common shape, not the tricky one: every row quotes its caption, on one line. The
  /// wrong guess is inside quotes at every line break, so it finds no record start.
  @Test("an export whose every row quotes a one-line caption splits without counting quotes from 0")
  func quotedOneLineCaptions() throws {
    let captions = ["plain", "with, comma", "an \"\"escaped\"\" quote", "", "نیا مجموعہ آ گیا ہے"]
    var text = "platform,account,id,created_at,media_type,likes,comments,caption\n"
    for row in 0..<20_000 {
      text +=
        "x,acct_\(row % 7),p\(row),2026-05-01T10:00:00Z,image,\(row % 500),3,\"\(captions[row % captions.count])\"\n"
    }
    let file = Array(text.utf8)
    let url = "http://fixture/quoted.csv"
    let whole = try run(task(url: url), file: file).posts
    #expect(whole.count == 20_000)
    let header = "platform,account,id,created_at,media_type,likes,comments,caption"
    let bounds = [0] + (1..<8).map { UInt64(file.count) * UInt64($0) / 8 + UInt64($0 * 13) } + [UInt64(file.count)]
    var posts: [PostRecord] = []
    for spec in rangeTasks(url: url, file: file, bounds: bounds, header: header) {
      let (read, requests, connector) = try run(spec, file: file, chunk: 1 << 16)
      posts += read
      #expect(!requests.contains { $0.range?.lowerBound == 0 && spec.range.start > 1 }, "\(spec.range.start)")
      #expect(connector.counts.badRecords == 0)
    }
    #expect(posts == whole)
  }

  /// Found by a tester: a server whose 206 held more bytes than asked (saying so in its
  /// Content-Range) had its extra bytes counted with the quotes before a range, which then
  /// started in the wrong quote state (records misread, the file blamed).
  @Test("the quotes before a range are counted in the bytes asked for, whatever more the server sends")
  func quotesAreCountedInTheBytesAsked() throws {
    let header = "platform,account,id,created_at,media_type,likes,comments,caption"
    // A caption longer than the probe, of lines that read as records: the probe cannot tell.
    let caption = (0..<7_000).map { "x,a,q\($0),2026-05-01T10:00:00Z,image,1,2,c" }.joined(separator: "\n")
    var text = header + "\nx,a,long,2026-05-01T10:00:00Z,text,1,2,\"" + caption + "\"\n"
    for row in 0..<50 { text += "x,a,r\(row),2026-05-01T10:00:00Z,image,\(row),1,\"say \"\"hi\"\"\"\n" }
    let file = Array(text.utf8)
    let url = "http://fixture/long-caption.csv"
    let whole = try run(task(url: url), file: file)
    #expect(whole.posts.count == 51 && whole.connector.counts.badRecords == 0)
    for extra in [0, 1_000, 1 << 20] as [UInt64] {
      var posts: [PostRecord] = []
      var bad: UInt64 = 0
      var scanned = false
      let bounds = [0, UInt64(file.count) / 2, UInt64(file.count)]
      for spec in rangeTasks(url: url, file: file, bounds: bounds, header: header) {
        let range = try run(spec, file: file, chunk: 1 << 16, extra: extra)
        posts += range.posts
        bad += range.connector.counts.badRecords
        if spec.range.start > 1, range.requests.contains(where: { $0.range?.lowerBound == 0 }) { scanned = true }
      }
      #expect(scanned, "the second range counts the quotes before it")
      #expect(posts == whole.posts && bad == 0, "\(extra) bytes more: \(posts.count) posts, \(bad) bad")
    }
  }

  /// Inside a quoted field longer than the probe, the guess that finds no record start may
  /// be the right one: a few record-like lines in the field do not outvote it.
  @Test("a probe inside one long quoted field is undecided unless the other guess reads enough records")
  func longQuotedFieldProbe() {
    let lines = (0..<3).map { "x,a,p\($0),2026-05-01T10:00:00Z,image,1,2,c\n" }.joined()
    let probe = Array((String(repeating: "y", count: 100) + "\n" + lines + String(repeating: "z", count: 300)).utf8)
    probe.withUnsafeBytes { bytes in
      #expect(QuoteStateProbe.wellFormedRecords(bytes, inQuotes: true, fields: 8) == .noRecordStart)
      #expect(QuoteStateProbe.wellFormedRecords(bytes, inQuotes: false, fields: 8) == .records(3))
      #expect(QuoteStateProbe.guess(bytes, fields: 8) == nil)
    }
  }

  @Test("an NDJSON export splits at line breaks, at any cut")
  func ndjsonSplits() throws {
    var text = ""
    for row in 0..<40 {
      text +=
        #"{"platform":"x","account":"a","id":"n\#(row)","created_at":"2026-01-01T00:00:00Z","media_type":"text","likes":\#(row),"caption":"a \"b\" c\n"}"#
        + "\n"
    }
    let file = Array(text.utf8)
    let url = "http://fixture/small.ndjson"
    let whole = try run(task(url: url), file: file).posts
    #expect(whole.count == 40)
    for cut in stride(from: UInt64(1), to: UInt64(file.count), by: 13) {
      var posts: [PostRecord] = []
      for spec in rangeTasks(url: url, file: file, bounds: [0, cut, UInt64(file.count)], header: "") {
        let (read, requests, _) = try run(spec, file: file, chunk: 5)
        posts += read
        #expect(!requests.contains { $0.range?.lowerBound == 0 && spec.range.start > 1 }, "NDJSON never counts quotes")
      }
      let same = posts == whole
      #expect(same, "cut at \(cut): \(posts.count) posts, \(whole.count) whole")
    }
  }

  /// Found by the `ranges` fuzz target: a quote inside an unquoted field is data to the CSV
  /// reader but flips the parity the ranges cut by, so a range can end inside a quoted
  /// field with its quotes balanced, and the next start inside a record, while every range
  /// agrees with the quotes before it.
  @Test(
    "cut anywhere, a CSV with a quote inside an unquoted field reads as it does whole, or the report names the range")
  func strayQuoteIsNamedWhenItMisleadsTheRanges() throws {
    let header = "platform,account,id,created_at,media_type,likes,caption"
    let text = #"""
      \#(header)
      x,a,1,2026-01-01T00:00:00Z,text,3,one
      x,a,2,2026-01-01T00:00:00Z,te"xt,4,"two
      x,a,3,2026-01-01T00:00:00Z,text,5,"three"
      x,a,4,2026-01-01T00:00:00Z,text,6,four

      """#
    let file = Array(text.utf8)
    let url = "http://fixture/stray.csv"
    let whole = try run(task(url: url), file: file)
    // Post 2's caption runs to the quote before "three", and takes "three\"" after it.
    #expect(whole.posts.map(\.id) == ["1", "2", "4"])
    var named = 0
    for cut in 1..<UInt64(file.count) {
      var posts: [PostRecord] = []
      var bad: UInt64 = 0
      var results: [ReportReducer.TaskResult] = []
      for (index, spec) in rangeTasks(url: url, file: file, bounds: [0, cut, UInt64(file.count)], header: header)
        .enumerated()
      {
        let range = try run(spec, file: file, chunk: 3)
        posts += range.posts
        bad += range.connector.counts.badRecords
        var stats = TaskStats()
        if let quotes = range.connector.rangeQuotes { stats.rangeQuotes = quotes }
        results.append(
          ReportReducer.TaskResult(
            task: "\(index)", source: "stray.csv", done: true, partial: nil, stats: stats, error: nil))
      }
      let misread = ReportReducer.rangeDisagreements(results)
      if !misread.isEmpty {
        named += 1
        continue
      }
      let same = posts == whole.posts && bad == whole.connector.counts.badRecords
      #expect(same, "cut at \(cut): \(posts.map(\.id)), \(bad) bad, and nothing named; whole: 1, 2, 4")
      if !same { break }
    }
    // The cuts inside the second record's first line mislead: the first range ends there.
    #expect(named > 0)
  }

  /// Found by a tester with a hostile range server: a 206 of other bytes than asked (said
  /// honestly in its Content-Range), and an export that grew between the plan and its
  /// ranges, were read as if they were the bytes planned.
  @Test("a range task refuses a 206 of other bytes than asked, or of a file whose size changed since the plan")
  func rangeAnswersAreChecked() throws {
    let file = trickyCSV(rows: 200, seed: 3)
    let url = "http://fixture/checked.csv"
    let header = "platform,account,id,created_at,media_type,likes,comments,caption"
    let size = UInt64(file.count)
    let specs = rangeTasks(url: url, file: file, bounds: [0, size / 2, size], header: header)
    func read(_ spec: TaskSpec, shift: UInt64 = 0, claimedSize: UInt64? = nil, empty: Bool = false) -> ExportError? {
      var connector = CanonicalExportConnector(task: spec, limits: ReadLimits())
      do {
        var next = try connector.firstRequest()
        var pages = 0
        while let request = next, let asked = request.range, pages < 100 {
          pages += 1
          let first = min(size - 1, asked.lowerBound + shift)
          let last = min(size - 1, asked.upperBound + shift)
          try connector.pageStarted(status: 206, contentType: nil)
          // `empty`: the Content-Range says the bytes asked for, the body holds none.
          try file[Int(first)...Int(last)].prefix(empty ? 0 : Int.max).withUnsafeBytes { bytes in
            try connector.feed(bytes, emit: { _ in true })
          }
          next = try connector.pageEnded(
            PageResponse(
              status: 206, contentType: nil,
              headers: [("content-range", "bytes \(first)-\(last)/\(claimedSize ?? size)")]),
            emit: { _ in true })
        }
      } catch {
        return error as? ExportError ?? ExportError("\(error)")
      }
      return nil
    }
    #expect(read(specs[1]) == nil)
    #expect(read(specs[1], shift: 100)?.message.contains("not the bytes asked for") == true)
    #expect(read(specs[1], claimedSize: size + 1_000)?.message.contains("changed since the job was planned") == true)
    // Found by a tester: an empty 206 was asked for again, 10,000 times in seconds.
    #expect(read(specs[1], empty: true)?.message.contains("with none (HTTP 206 with an empty body)") == true)
  }

  @Test("a range inside one long record owns nothing, and reads only up to its end")
  func rangeInsideARecord() throws {
    let caption = String(repeating: "y", count: 200_000)
    let text =
      "platform,account,id,created_at,media_type,caption\nx,a,1,2026-01-01T00:00:00Z,text,\"\(caption)\"\nx,a,2,2026-01-01T00:00:00Z,text,\n"
    let file = Array(text.utf8)
    let url = "http://fixture/long.csv"
    let bounds: [UInt64] = [0, 1_000, 2_000, UInt64(file.count)]
    let specs = rangeTasks(
      url: url, file: file, bounds: bounds, header: "platform,account,id,created_at,media_type,caption")
    let middle = try run(specs[1], file: file)
    #expect(middle.posts.isEmpty)
    let all = try specs.flatMap { try run($0, file: file).posts }
    #expect(all.map(\.id) == ["1", "2"])
  }

  @Test("a split of a compressed export or one under 1 MiB is refused at submit")
  func splitChecks() {
    var source = Source()
    source.url = "http://fixture/export.csv.gz"
    source.splitBytes = 64 << 20
    #expect(throws: HaatError.self) { try CanonicalExportConnector.check(&source, field: "sources[0]") }
    source.url = "http://fixture/export.csv"
    source.splitBytes = 1000
    #expect(throws: HaatError.self) { try CanonicalExportConnector.check(&source, field: "sources[0]") }
    source.splitBytes = 1 << 20
    #expect(throws: Never.self) { try CanonicalExportConnector.check(&source, field: "sources[0]") }
  }
}

@Suite("Byte ranges: an empty export")
struct EmptyExportSplitTests {
  @Test("a plan task on an empty export (a 416) reads it whole: no rows, as read unsplit")
  func emptyExport() throws {
    var plan = TaskSpec()
    plan.source.url = "http://fixture/empty.csv"
    plan.source.splitBytes = 1 << 20
    plan.splitPlan = true
    var connector = CanonicalExportConnector(task: plan, limits: ReadLimits())
    _ = try connector.firstRequest()
    // An empty export has no rows, split or not (a tester found the split read failing).
    let instead = try connector.pageFailed(PageResponse(status: 416, contentType: nil), body: [])
    #expect(instead == PageRequest(url: plan.source.url))
    try connector.pageStarted(status: 200, contentType: nil)
    #expect(try connector.pageEnded(PageResponse(status: 200, contentType: nil), emit: { _ in true }) == nil)
    #expect(connector.split == nil && connector.counts.records == 0 && connector.counts.badRecords == 0)
  }
}
