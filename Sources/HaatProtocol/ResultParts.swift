import HaatCore
import SwiftProtobuf

/// A result too large for one line, as the parts of DESIGN.md §3 "Large results": each
/// part holds some of the report's rows and missing sources; the last holds everything else
/// (the job, the summary's counts, the totals) and the count. Parts merge back as protobuf
/// messages do: lists concatenate.
public enum ResultParts {
  /// `result` as replies of at most `maxLineBytes` (with `overhead` bytes of envelope each),
  /// or nil when one row or missing source alone cannot fit. One part when it all fits.
  public static func split(_ result: Haat_V1_Result, maxLineBytes: Int, overhead: Int = 512) -> [Haat_V1_Result]? {
    guard let size = jsonSize(result), size + overhead > maxLineBytes else { return [result] }
    var rest = result
    rest.report.engagement.rows = []
    rest.report.summary.missing = []
    rest.part = 1
    rest.parts = 1
    guard let restSize = jsonSize(rest) else { return nil }
    // Every part is kept under the limit with room for the last part's extra fields.
    let budget = maxLineBytes - overhead - restSize
    guard budget > 0 else { return nil }
    // Each part's lists gather in local arrays: appending through nested message
    // accessors copies the list each time (quadratic in rows).
    var groups: [(rows: [Haat_V1_EngagementRow], missing: [Haat_V1_MissingSource])] = [([], [])]
    var used = 0
    func room(_ bytes: Int?) -> Bool {
      guard let bytes, bytes + 1 <= budget else { return false }
      if used + bytes + 1 > budget {
        groups.append(([], []))
        used = 0
      }
      used += bytes + 1
      return true
    }
    for row in result.report.engagement.rows {
      guard room(jsonSize(row)) else { return nil }
      groups[groups.count - 1].rows.append(row)
    }
    for missing in result.report.summary.missing {
      guard room(jsonSize(missing)) else { return nil }
      groups[groups.count - 1].missing.append(missing)
    }
    let count = UInt32(groups.count)
    return groups.enumerated().map { index, group in
      // The last part: what remains of the result, with the last rows.
      var part = index == groups.count - 1 ? rest : Haat_V1_Result()
      part.report.engagement.rows = group.rows
      part.report.summary.missing = group.missing
      part.report.job = result.report.job
      part.part = UInt32(index + 1)
      part.parts = index == groups.count - 1 ? count : 0
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
    let bytes: [UInt8]? = try? message.jsonUTF8Bytes(options: WireCodec.encodingOptions)
    return bytes?.count
  }
}
