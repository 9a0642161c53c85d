import Foundation
import HaatCore
import HaatProtocol

/// What a table export kind reads: its kind, its schema, and the default platform.
public protocol TableExportKind: TableSchema {
  static var kind: SourceKind { get }
  static var summary: String { get }
  static var record: RecordType { get }
}

/// Reads one export of a `TableExportKind` (CSV or NDJSON, docs/formats.md) from one URL,
/// in one page, streamed into a `TableReader`. The format comes from the source, else the
/// URL's extension, else the response's Content-Type.
public struct TableExportConnector<Kind: TableExportKind>: Connector {
  public static var kind: SourceKind { Kind.kind }
  public static var summary: String { Kind.summary }
  public static var records: Set<RecordType> { [Kind.record] }

  public static func check(_ source: inout Source, field: String) throws(HaatError) {
    try SourceChecks.url(source.url, field: "\(field).url", kind: kind)
    if !source.format.isEmpty, ExportFormat(rawValue: source.format) == nil {
      throw HaatError(.badSpec, "unknown format \"\(source.format)\"; use csv or ndjson", field: "\(field).format")
    }
  }

  private let source: Source
  private let limits: ReadLimits
  private var format: ExportFormat?
  private var reader: TableReader<Kind>?

  public init(task: TaskSpec, limits: ReadLimits) {
    source = task.source
    self.limits = limits
    format = ExportFormat(rawValue: source.format) ?? ExportFormat(path: URL(string: source.url)?.path ?? source.url)
  }

  public mutating func firstRequest() throws(ExportError) -> PageRequest? { PageRequest(url: source.url) }

  public mutating func pageStarted(status: Int, contentType: String?) throws(ExportError) {
    if format == nil, let contentType { format = ExportFormat(contentType: contentType) }
    try startReader()
  }

  public mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (CanonicalRecord) -> Bool) throws(ExportError) {
    try startReader()
    try reader?.feed(chunk, emit: emit)
  }

  public mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    if format == nil, let contentType = response.contentType { format = ExportFormat(contentType: contentType) }
    try startReader()
    try reader?.finish(emit: emit)
    return nil
  }

  public var counts: ReadCounts { reader?.counts ?? ReadCounts() }

  private mutating func startReader() throws(ExportError) {
    guard reader == nil else { return }
    guard let format else {
      throw ExportError("cannot tell the export's format from its URL or Content-Type; set the source's format")
    }
    reader = TableReader(format: format, platform: source.platform, account: source.account, limits: limits)
  }
}
