import HaatAnalytics
import HaatProtocol
import HaatRecords

/// A posts export read whole, and split into byte ranges as the coordinator plans them and
/// workers read them (a plan task, then one task per range, each answered as a server that
/// honours `Range` would): the ranges read every post exactly once, the same posts as the
/// whole read, unless the report names a range whose quote state disagrees with the quotes
/// before it (`ReportReducer.rangeDisagreements`): a misread is said, never silent.
///
/// The first byte picks the format (its high bit: NDJSON) and how many ranges (its low
/// bits); the rest is the export, after a fixed header for CSV.
enum RangeFuzzing {
  static let header = Array("platform,account,id,created_at,media_type,likes,caption\n".utf8)
  static let limits = ReadLimits(maxRecordBytes: 256, maxProblems: 4, maxPages: 1_000)

  static func run(_ data: UnsafeRawBufferPointer, _ invariants: inout Invariants) {
    guard let first = data.first else { return }
    let ndjson = first & 0x80 != 0
    let export = (ndjson ? [] : header) + Array(data.dropFirst())
    var source = Source()
    source.kind = SourceKind.posts.name
    source.url = ndjson ? "https://fixture.test/export.ndjson" : "https://fixture.test/export.csv"
    source.splitBytes = UInt64(max(1, export.count / (2 + Int(first & 0x07))))
    var task = TaskSpec()
    task.source = source

    let whole = read(task, export)
    task.splitPlan = true
    let plan = read(task, export)
    guard let split = plan.split else {
      // The plan read the export itself (its first line is not a whole header).
      invariants.check(
        plan.posts == whole.posts && plan.bad == whole.bad,
        "a plan that read the export whole disagrees with the whole read: \(plan.summary), \(whole.summary)")
      return
    }
    invariants.check(
      RangeSplitting.problem(with: split) == nil,
      "the plan's split is not one: \(RangeSplitting.problem(with: split) ?? "")")
    guard whole.error == nil, plan.error == nil, RangeSplitting.problem(with: split) == nil else { return }

    var posts: [String] = []
    var bad: UInt64 = 0
    var results: [ReportReducer.TaskResult] = []
    for (index, task) in split.rangeTasks(of: task, firstIndex: 0).enumerated() {
      let range = task.range
      let reading = read(task, export)
      invariants.check(
        reading.error == nil,
        "range \(range.start)..<\(range.end) of an export read whole failed: \(reading.error ?? "")")
      posts += reading.posts
      bad += reading.bad
      var stats = TaskStats()
      if let quotes = reading.quotes { stats.rangeQuotes = quotes }
      results.append(
        ReportReducer.TaskResult(
          task: "\(index)", source: "export", done: reading.error == nil, partial: nil, stats: stats, error: nil))
    }
    guard ReportReducer.rangeDisagreements(results).isEmpty else { return }
    invariants.check(
      posts == whole.posts && bad == whole.bad,
      "\(split.bounds.count - 1) ranges read \(posts.count) posts, \(bad) bad; whole: \(whole.summary)")
  }

  struct Reading {
    var posts: [String] = []
    var bad: UInt64 = 0
    var error: String?
    var split: Split?
    var quotes: RangeQuotes?

    var summary: String { "\(posts.count) posts, \(bad) bad, error \(error ?? "none")" }
  }

  /// One task of `CanonicalExportConnector`, its requests answered from `export`.
  static func read(_ task: TaskSpec, _ export: [UInt8]) -> Reading {
    var connector = CanonicalExportConnector(task: task, limits: limits)
    var reading = Reading()
    let post = { (post: PostRecord) -> Bool in
      // The account's index is the reader's own numbering: not part of the post.
      var post = post
      post.accountIndex = -1
      reading.posts.append(String(describing: post))
      return true
    }
    do throws(ExportError) {
      var next = try connector.firstRequest()
      var pages = 0
      while let request = next {
        pages += 1
        guard pages <= limits.maxPages else { throw ExportError("more than \(limits.maxPages) pages") }
        next = try answer(request, from: export, &connector, post: post)
      }
    } catch {
      reading.error = error.message
    }
    reading.bad = connector.counts.badRecords
    reading.split = connector.split
    reading.quotes = connector.rangeQuotes
    return reading
  }

  /// Answers one request as a server that honours `Range`: 206 with the bytes asked for
  /// (cut short at the end), 416 past the end, 200 with everything when no range is asked.
  static func answer(
    _ request: PageRequest, from export: [UInt8], _ connector: inout CanonicalExportConnector,
    post: (PostRecord) -> Bool
  ) throws(ExportError) -> PageRequest? {
    let size = UInt64(export.count)
    var status = 200
    var headers: [(name: String, value: String)] = []
    var body = export[...]
    if let range = request.range {
      guard range.lowerBound < size else {
        let response = PageResponse(status: 416, contentType: nil, headers: [("content-range", "bytes */\(size)")])
        if let instead = try connector.pageFailed(response, body: []) { return instead }
        throw ExportError("HTTP 416")
      }
      let upper = min(range.upperBound, size - 1)
      status = 206
      headers = [("content-range", "bytes \(range.lowerBound)-\(upper)/\(size)")]
      body = export[Int(range.lowerBound)...Int(upper)]
    }
    try connector.pageStarted(status: status, contentType: nil)
    var thrown: ExportError?
    body.withUnsafeBytes { bytes in
      do throws(ExportError) { try connector.feed(bytes, post: post, emit: { _ in true }) } catch { thrown = error }
    }
    if let thrown { throw thrown }
    return try connector.pageEnded(
      PageResponse(status: status, contentType: nil, headers: headers), post: post, emit: { _ in true })
  }
}
