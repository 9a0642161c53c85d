import Foundation
import HaatCore
import HaatProtocol

extension SourceKind {
  /// Haat's canonical posts export, CSV or NDJSON (docs/formats.md), from one URL.
  public static let posts = SourceKind("posts", CanonicalExportConnector.self)
}

/// Reads one canonical posts export (CSV or NDJSON, docs/formats.md) from one URL, streamed
/// into `PostsReader`: whole, in one page, or split into byte ranges (`split_bytes`, see
/// `RangeSplitting`). The format comes from the source, else the URL's extension, else the
/// response's Content-Type.
public struct CanonicalExportConnector: Connector {
  public static let kind = SourceKind.posts
  public static let summary = "a canonical posts export (CSV or NDJSON) at a URL"
  public static let records: Set<RecordType> = [.post]

  public static func check(_ source: inout Source, field: String) throws(HaatError) {
    try SourceChecks.url(source.url, field: "\(field).url", kind: kind)
    if !source.format.isEmpty, ExportFormat(rawValue: source.format) == nil {
      throw HaatError(.badSpec, "unknown format \"\(source.format)\"; use csv or ndjson", field: "\(field).format")
    }
    if source.splitBytes != 0 {
      guard source.splitBytes >= RangeSplitting.minSplitBytes else {
        throw HaatError(
          .badSpec, "must be at least \(RangeSplitting.minSplitBytes) (1 MiB), or 0 to read the export whole",
          field: "\(field).split_bytes")
      }
      let path = (URL(string: source.url)?.path ?? source.url).lowercased()
      guard !path.hasSuffix(".gz") else {
        throw HaatError(
          .badSpec, "cannot split a compressed export (its byte offsets are not the records'); read it whole",
          field: "\(field).split_bytes")
      }
    }
  }

  public static func plan(_ task: inout TaskSpec, part: Int, of source: Source) {
    // The file's size is learnt on a worker, which may reach it: a plan task first.
    task.splitPlan = source.splitBytes > 0
  }

  /// What this task reads.
  private enum Mode {
    /// The whole export, in one page.
    case whole
    /// The first bytes, for the size and header (a plan task).
    case plan
    /// One range: first a probe of its start, then perhaps a count of the quotes before it.
    case probe
    case scan(next: UInt64, quotes: Int)
    case range(RangeCutter)
  }

  private let source: Source
  private let task: TaskSpec
  private let limits: ReadLimits
  private var format: ExportFormat?
  private var reader: PostsReader?
  private var mode: Mode
  /// A plan's or probe's bytes, held until it can be read.
  private var held: [UInt8] = []
  /// Whether a range's reader has had the file's CSV header.
  private var headerRead = false
  public private(set) var split: Split?

  public init(task: TaskSpec, limits: ReadLimits) {
    source = task.source
    self.task = task
    self.limits = limits
    format = ExportFormat(rawValue: source.format) ?? ExportFormat(path: URL(string: source.url)?.path ?? source.url)
    if task.splitPlan {
      mode = .plan
    } else if task.hasRange {
      mode = .probe
    } else {
      mode = .whole
    }
  }

  private var range: ByteRange { task.range }
  /// The bytes the last range request asked for.
  private var asked: ClosedRange<UInt64>?

  public mutating func firstRequest() throws(ExportError) -> PageRequest? {
    switch mode {
    case .plan:
      return rangeRequest(0...UInt64(RangeSplitting.probeBytes - 1))
    case .probe:
      guard range.start < range.end, range.end <= range.size else {
        throw ExportError(
          "the task's byte range \(range.start)..<\(range.end) is not within the file's \(range.size) bytes")
      }
      if range.start == 0 || format == .ndjson {
        // Nothing to guess: the range starts a record, or JSON strings hold no line break.
        return startRange(inQuotes: false)
      }
      let from = range.start - 1
      return rangeRequest(from...min(range.size - 1, from + UInt64(RangeSplitting.probeBytes) - 1))
    default:
      return PageRequest(url: source.url)
    }
  }

  public mutating func pageStarted(status: Int, contentType: String?) throws(ExportError) {
    if format == nil, let contentType { format = ExportFormat(contentType: contentType) }
    switch mode {
    case .whole:
      try startReader()
    case .plan:
      if status == 200 {
        // The server sends the whole file, not a range: this task reads it whole.
        mode = .whole
        try startReader()
      }
    default:
      guard status == 206 else {
        throw ExportError(
          "the server answered a Range request with HTTP \(status), not 206: it cannot serve this export in ranges; read it whole (split_bytes 0)"
        )
      }
    }
  }

  public mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (CanonicalRecord) -> Bool) throws(ExportError) {
    try feed(chunk, post: { emit(.post($0)) }, emit: emit)
  }

  public mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    try pageEnded(response, post: { emit(.post($0)) }, emit: emit)
  }

  // Every record of this connector is a post: `emit` is never called.
  public mutating func feed(
    _ chunk: UnsafeRawBufferPointer, post emit: (PostRecord) -> Bool, emit _: (CanonicalRecord) -> Bool
  ) throws(ExportError) {
    switch mode {
    case .whole:
      try startReader()
      try reader?.feed(chunk, accepting: emit)
    case .plan, .probe:
      held.append(contentsOf: chunk.prefix(max(0, RangeSplitting.probeBytes - held.count)))
    case .scan(let next, let quotes):
      // Only the bytes asked for: a server may send more (and say so), and a quote past
      // them would flip the state the range starts in.
      let wanted = asked.map { $0.upperBound >= next ? $0.upperBound - next + 1 : 0 } ?? UInt64(chunk.count)
      let counted = UnsafeRawBufferPointer(rebasing: chunk.prefix(Int(min(UInt64(chunk.count), wanted))))
      var count = quotes
      for byte in counted where byte == RangeSplitting.quote { count &+= 1 }
      mode = .scan(next: next + UInt64(counted.count), quotes: count)
    case .range(var cutter):
      try read(chunk, with: &cutter, emit: emit)
      mode = .range(cutter)
    }
  }

  public mutating func pageEnded(
    _ response: PageResponse, post emit: (PostRecord) -> Bool, emit _: (CanonicalRecord) -> Bool
  ) throws(ExportError) -> PageRequest? {
    // An empty body may never have started the page.
    if format == nil, let contentType = response.contentType { format = ExportFormat(contentType: contentType) }
    try checkPartial(response)
    switch mode {
    case .whole:
      try startReader()
      try reader?.finish(accepting: emit)
      return nil
    case .plan:
      if format == .csv, !Self.headerIsFirstLine(held) {
        // The ranges would read their records under a header that is not the file's: the
        // plan task reads the export whole itself, as when a server ignores the Range.
        held = []
        mode = .whole
        return PageRequest(url: source.url)
      }
      try planSplit(response)
      return nil
    case .probe:
      try startReader()
      let guess =
        format == .csv
        ? held.withUnsafeBytes { QuoteStateProbe.guess($0, fields: RangeSplitting.fieldCount(range.header)) } : false
      guard let inQuotes = guess else {
        // The probe cannot tell: count the quotes before the range, which is exact.
        held = []
        mode = .scan(next: 0, quotes: 0)
        return nextScan(from: 0, quotes: 0)
      }
      var cutter = RangeCutter(start: range.start, end: range.end, csv: format == .csv, inQuotes: inQuotes)
      let probe = held
      held = []
      try Self.withBytes(probe) { bytes throws(ExportError) in try read(bytes, with: &cutter, emit: emit) }
      mode = .range(cutter)
      return try continueRange(cutter, emit: emit)
    case .scan(let next, let quotes):
      try checkProgress(at: next)
      return nextScan(from: next, quotes: quotes)
    case .range(let cutter):
      try checkProgress(at: cutter.offset)
      return try continueRange(cutter, emit: emit)
    }
  }

  /// A 206 that added no bytes (an empty body, whatever its Content-Range said) would be
  /// asked again at once, and again: a tester's server got 10,000 identical requests in
  /// seconds. One such answer ends the task.
  private func checkProgress(at offset: UInt64) throws(ExportError) {
    guard let asked, asked.lowerBound == offset else { return }
    throw ExportError(
      "the server answered a Range request for bytes \(asked.lowerBound)-\(asked.upperBound) with none (HTTP 206 with an empty body): the export cannot be read in ranges; read it whole (split_bytes 0)"
    )
  }

  public mutating func pageFailed(_ response: PageResponse, body: [UInt8]) throws(ExportError) -> PageRequest? {
    // A Range request on an empty file is "416 Range Not Satisfiable": an empty export has
    // no rows, split or not, so the plan task reads it whole (as it does a late header).
    if case .plan = mode, response.status == 416 {
      mode = .whole
      asked = nil
      return PageRequest(url: source.url)
    }
    return nil
  }

  public var rangeQuotes: RangeQuotes? {
    guard case .range(let cutter) = mode, format == .csv else { return nil }
    var quotes = RangeQuotes()
    quotes.start = range.start
    quotes.end = range.end
    quotes.startsInQuotes = cutter.startsInQuotes
    quotes.oddQuotes = cutter.oddQuotes
    quotes.endsInQuotes = reader?.endedInsideQuotes ?? false
    return quotes
  }

  public var counts: ReadCounts {
    var counts = ReadCounts()
    if let reader {
      counts.records = reader.posts
      counts.badRecords = reader.badRows
      counts.problems = reader.problems
    }
    return counts
  }

  // MARK: Ranges

  /// A plan task's split, from the Content-Range's size and the first line of the probe.
  /// Whether a CSV's first line is its whole header: not blank (blank lines before the
  /// header are allowed), and with its quotes closed (a quoted line break in a column name
  /// continues the header on the next line).
  static func headerIsFirstLine(_ bytes: [UInt8]) -> Bool {
    var line = bytes.prefix { $0 != RangeSplitting.newline }
    if line.starts(with: [0xEF, 0xBB, 0xBF]) { line = line.dropFirst(3) }
    guard line.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != RangeSplitting.carriageReturn }) else {
      return false
    }
    return line.count { $0 == RangeSplitting.quote } % 2 == 0
  }

  private mutating func planSplit(_ response: PageResponse) throws(ExportError) {
    guard let format else {
      throw ExportError("cannot tell the export's format from its URL or Content-Type; set the source's format")
    }
    guard let contentRange = response.header("content-range"),
      let size = RangeSplitting.size(contentRange: contentRange)
    else {
      throw ExportError("the server's answer to a Range request gives no size (Content-Range); read the export whole")
    }
    var split = Split()
    split.size = size
    split.bounds = RangeSplitting.bounds(size: size, splitBytes: source.splitBytes)
    if format == .csv, size > 0 {
      let line = held.prefix { $0 != RangeSplitting.newline }
      guard line.count < held.count || UInt64(held.count) == size else {
        throw ExportError(
          "the CSV header line is longer than \(RangeSplitting.maxHeaderBytes) bytes; a split needs it shorter")
      }
      var header = Array(line)
      if header.last == RangeSplitting.carriageReturn { header.removeLast() }
      guard header.count <= RangeSplitting.maxHeaderBytes else {
        throw ExportError(
          "the CSV header line is longer than \(RangeSplitting.maxHeaderBytes) bytes; a split needs it shorter")
      }
      split.header = String(decoding: header, as: UTF8.self)
    }
    held = []
    self.split = split
  }

  /// A request for `bytes` of the export, remembered to check the answer's Content-Range.
  private mutating func rangeRequest(_ bytes: ClosedRange<UInt64>) -> PageRequest {
    asked = bytes
    return PageRequest(url: source.url, range: bytes)
  }

  /// A 206 must be the bytes asked for, of the file that was planned: a server that answers
  /// other bytes, or a file that changed size since the plan, would read records twice or
  /// not at all, with every range agreeing.
  private func checkPartial(_ response: PageResponse) throws(ExportError) {
    guard response.status == 206, let asked else { return }
    let contentRange = response.header("content-range") ?? ""
    guard let first = RangeSplitting.firstByte(contentRange: contentRange) else {
      // A plan says so itself (it needs the size).
      guard case .plan = mode else {
        throw ExportError(
          "the server's 206 answer gives no byte range (Content-Range \"\(contentRange.prefix(100))\"): the export cannot be read in ranges; read it whole (split_bytes 0)"
        )
      }
      return
    }
    guard first == asked.lowerBound else {
      throw ExportError(
        "the server answered with bytes from \(first) to a request for bytes \(asked.lowerBound)-\(asked.upperBound): not the bytes asked for; read the export whole (split_bytes 0)"
      )
    }
    if task.hasRange, let size = RangeSplitting.size(contentRange: contentRange), size != range.size {
      throw ExportError(
        "the export changed since the job was planned: it was \(range.size) bytes, the server now says \(size); submit the job again"
      )
    }
  }

  /// Reads the range from its start, in the quote state given.
  private mutating func startRange(inQuotes: Bool) -> PageRequest {
    let cutter = RangeCutter(start: range.start, end: range.end, csv: format == .csv, inQuotes: inQuotes)
    mode = .range(cutter)
    return rangeRequest(cutter.offset...(range.end - 1))
  }

  /// The next page of the count of quotes before the range (the bytes before the one it
  /// starts reading at, `start - 1`), or the range itself once they are counted.
  private mutating func nextScan(from offset: UInt64, quotes: Int) -> PageRequest {
    let before = range.start - 1
    guard offset < before else { return startRange(inQuotes: quotes & 1 == 1) }
    return rangeRequest(offset...min(before - 1, offset + RangeSplitting.scanBytes - 1))
  }

  /// The next page of a range, or nil once its last record has ended (or the file has).
  private mutating func continueRange(_ cutter: RangeCutter, emit: (PostRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    // Seeking past the range's end, any record start found would be the next range's.
    let ended = cutter.phase == .done || (cutter.phase == .seeking && cutter.offset >= range.end)
    guard !ended, cutter.offset < range.size else {
      try reader?.finish(accepting: emit)
      return nil
    }
    // Within the range, read to its end; past it, a little at a time to end the last record.
    let last =
      cutter.offset < range.end ? range.end - 1 : min(range.size - 1, cutter.offset + RangeSplitting.overreadBytes - 1)
    return rangeRequest(cutter.offset...last)
  }

  private mutating func read(
    _ bytes: UnsafeRawBufferPointer, with cutter: inout RangeCutter, emit: (PostRecord) -> Bool
  ) throws(ExportError) {
    try startReader()
    try cutter.feed(bytes) { piece throws(ExportError) in
      if !headerRead, range.start > 0, format == .csv {
        // A range after the first reads its records under the file's header.
        headerRead = true
        try Self.withBytes(Array((range.header + "\n").utf8)) { bytes throws(ExportError) in
          try reader?.feed(bytes, accepting: emit)
        }
      }
      try reader?.feed(piece, accepting: emit)
    }
  }

  /// `withUnsafeBytes`, keeping the error's type.
  private static func withBytes(
    _ array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(ExportError) -> Void
  ) throws(ExportError) {
    var failure: ExportError?
    array.withUnsafeBytes { bytes in
      do throws(ExportError) { try body(bytes) } catch { failure = error }
    }
    if let failure { throw failure }
  }

  private mutating func startReader() throws(ExportError) {
    guard reader == nil else { return }
    guard let format else {
      throw ExportError("cannot tell the export's format from its URL or Content-Type; set the source's format")
    }
    reader = PostsReader(
      format: format, defaultPlatform: source.platform, defaultAccount: source.account,
      maxRecordBytes: limits.maxRecordBytes, maxRowProblems: limits.maxProblems,
      // An NDJSON range after the first starts inside the file: a BOM there is a record's
      // bytes (a bad row, as the whole read finds it), not the file's mark. (A CSV range's
      // reader starts with the file's header line, which keeps the file's BOM.)
      atFileStart: format == .csv || !(task.hasRange && range.start > 0))
  }
}
