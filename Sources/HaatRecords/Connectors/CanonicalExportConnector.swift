import Foundation
import HaatCore
import HaatProtocol

extension SourceKind {
  /// Haat's canonical posts export, CSV or NDJSON (docs/formats.md), from one URL.
  public static let posts = SourceKind("posts", CanonicalExportConnector.self)
}

/// Reads one canonical posts export (CSV or NDJSON, docs/formats.md) from one URL: one
/// page, streamed into `PostsReader`. The format comes from the source, else the URL's
/// extension, else the response's Content-Type.
public struct CanonicalExportConnector: Connector {
  public static let kind = SourceKind.posts
  public static let summary = "a canonical posts export (CSV or NDJSON) at a URL"
  public static let records: Set<RecordType> = [.post]

  public static func check(_ source: inout Source, field: String) throws(HaatError) {
    try SourceChecks.url(source.url, field: "\(field).url", kind: kind)
    if !source.format.isEmpty, ExportFormat(rawValue: source.format) == nil {
      throw HaatError(.badSpec, "unknown format \"\(source.format)\"; use csv or ndjson", field: "\(field).format")
    }
  }

  private let source: Source
  private let limits: ReadLimits
  private var format: ExportFormat?
  private var reader: PostsReader?

  public init(task: TaskSpec, limits: ReadLimits) {
    source = task.source
    self.limits = limits
    format = ExportFormat(rawValue: source.format) ?? ExportFormat(path: URL(string: source.url)?.path ?? source.url)
  }

  public mutating func firstRequest() throws(ExportError) -> PageRequest? {
    PageRequest(url: source.url)
  }

  public mutating func pageStarted(status: Int, contentType: String?) throws(ExportError) {
    if format == nil, let contentType { format = ExportFormat(contentType: contentType) }
    try startReader()
  }

  public mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (CanonicalRecord) -> Bool) throws(ExportError) {
    try startReader()
    try reader?.feed(chunk, accepting: { emit(.post($0)) })
  }

  public mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    // An empty body may never have started the page.
    if format == nil, let contentType = response.contentType { format = ExportFormat(contentType: contentType) }
    try startReader()
    try reader?.finish(accepting: { emit(.post($0)) })
    return nil
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

  private mutating func startReader() throws(ExportError) {
    guard reader == nil else { return }
    guard let format else {
      throw ExportError("cannot tell the export's format from its URL or Content-Type; set the source's format")
    }
    reader = PostsReader(
      format: format, defaultPlatform: source.platform, defaultAccount: source.account,
      maxRecordBytes: limits.maxRecordBytes, maxRowProblems: limits.maxProblems)
  }
}
