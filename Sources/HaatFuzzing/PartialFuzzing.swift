import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatRecords

/// What the coordinator does with a worker's partials: read them (protobuf binary, as
/// results are stored), merge them in both orders and with themselves, finish every report
/// and render it as a table and as CSV. A partial comes from another process (a buggy or
/// hostile worker, another language's implementation), so whatever it holds, the coordinator
/// must return: a report, or an error that says why.
///
/// The first byte picks where the input is cut into two partials (`Input.cut`).
enum PartialFuzzing {
  /// An input of this target: every report's partial of the records a `connectors` input
  /// reads (the seeds of Fuzz/Corpus/partials).
  static func seed(fromConnectorsInput data: UnsafeRawBufferPointer) -> [UInt8]? {
    let records = ConnectorFuzzing.records(data)
    guard !records.isEmpty else { return nil }
    var builder = PartialBuilder(reports: Reports.all.map { $0.name })
    for record in records { _ = builder.add(record) }
    builder.settle()
    guard let bytes: [UInt8] = try? builder.partial.serializedBytes() else { return nil }
    return [0] + bytes
  }

  static func run(_ data: UnsafeRawBufferPointer, _ invariants: inout Invariants) {
    guard !data.isEmpty else { return }
    let at = max(1, Input.cut(data))
    let parts = [data[1..<max(1, at)], data[max(1, at)...]].compactMap { bytes in
      try? Partial(serializedBytes: Array(bytes))
    }
    guard !parts.isEmpty else { return }
    let names = Reports.all.map { $0.name }
    for order in [parts, parts.reversed(), parts + parts] {
      var report = Report()
      do throws(HaatError) {
        try PartialMerger.merging(order).finish(names, into: &report)
      } catch {
        invariants.check(!error.message.isEmpty, "a report refused without a reason (\(error.code))")
        continue
      }
      _ = ReportRendering.table(report)
      for name in names { _ = ReportRendering.csv(report, named: name, escapingFormulas: true) }
      // What the coordinator stores and sends: it must encode.
      invariants.check((try? report.serializedBytes() as [UInt8]) != nil, "the report does not encode")
    }
  }
}
