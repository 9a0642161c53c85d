import HaatCore
import HaatProtocol

extension SourceKind {
  /// Tasks that do nothing, for measuring dispatch.
  public static let noop = SourceKind("noop", NoopConnector.self)
}

/// Plans `tasks` tasks (1 to 1,000,000) that fetch nothing and produce an empty result.
public struct NoopConnector: Connector {
  public static let kind = SourceKind.noop
  public static let summary = "tasks that do nothing (source.tasks of them), for measuring dispatch"
  public static let records: Set<RecordType> = []
  public static let maxTasks: UInt32 = 1_000_000

  public static func check(_ source: inout Source, field: String) throws(HaatError) {
    if source.tasks == 0 { source.tasks = 1 }
    guard source.tasks <= maxTasks else {
      throw HaatError(.badSpec, "must be at most \(maxTasks), not \(source.tasks)", field: "\(field).tasks")
    }
  }

  public static func taskCount(for source: Source) -> Int { Int(source.tasks) }

  public init(task: TaskSpec, limits: ReadLimits) {}
  public mutating func firstRequest() throws(ExportError) -> PageRequest? { nil }
  public mutating func pageStarted(status: Int, contentType: String?) throws(ExportError) {}
  public mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (CanonicalRecord) -> Bool) throws(ExportError) {}
  public mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  { nil }
  public var counts: ReadCounts { ReadCounts() }
}
