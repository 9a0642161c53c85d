import HaatCore
import SwiftProtobuf

/// A result too large for one line, as the parts of DESIGN.md §3 "Large results": the
/// report is cut by `MessageCutter` (each row, total or count of a section in exactly one
/// part); the last part also holds the job and the count. Parts merge back as protobuf
/// messages do: lists concatenate.
public enum ResultParts {
  /// `result` as replies of at most `maxLineBytes` (with `overhead` bytes of envelope each),
  /// or nil when one row alone cannot fit. One part when it all fits.
  public static func split(_ result: Haat_V1_Result, maxLineBytes: Int, overhead: Int = 512) -> [Haat_V1_Result]? {
    guard let size = jsonSize(result), size + overhead > maxLineBytes else { return [result] }
    var rest = result
    rest.clearReport()
    rest.part = .max
    rest.parts = .max
    // Every part is kept under the limit with room for the last part's job and count.
    guard let restSize = jsonSize(rest) else { return nil }
    let budget = maxLineBytes - overhead - restSize - #","report":{}"#.utf8.count
    guard budget > 0, let cut = try? MessageCutter.cut(result.report, budget: budget), let reports = cut.parts
    else { return nil }
    return reports.enumerated().map { index, report in
      let last = index == reports.count - 1
      var part = last ? result : Haat_V1_Result()
      part.report = report
      part.part = UInt32(index + 1)
      part.parts = last ? UInt32(reports.count) : 0
      return part
    }
  }

  /// Whether `result` is the last (or only) reply of a `get_result`.
  public static func isLast(_ result: Haat_V1_Result) -> Bool {
    result.part == 0 || result.parts != 0
  }

  /// The parts, in order, as one result.
  public static func join(_ parts: [Haat_V1_Result]) throws -> Haat_V1_Result {
    guard parts.count > 1 else { return parts.first ?? Haat_V1_Result() }
    for (index, part) in parts.enumerated() where part.part != UInt32(index + 1) {
      throw HaatError(.badFrame, "result part \(part.part) came where part \(index + 1) belongs")
    }
    guard let last = parts.last, last.parts == UInt32(parts.count) else {
      throw HaatError(.badFrame, "the last result part says \(parts.last?.parts ?? 0) parts, not \(parts.count)")
    }
    var whole = Haat_V1_Result()
    for part in parts { try whole.merge(serializedBytes: try part.serializedBytes() as [UInt8]) }
    whole.part = 0
    whole.parts = 0
    return whole
  }

  static func jsonSize(_ message: some SwiftProtobuf.Message) -> Int? {
    try? MessageCutter.jsonSize(message)
  }
}
