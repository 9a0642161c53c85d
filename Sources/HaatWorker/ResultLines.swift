import Foundation
import HaatCore
import HaatProtocol

/// A task's result as the lines a session with a given line limit will take (DESIGN.md §3
/// "Large results"): one `complete` or `fail` when it fits; otherwise a `complete` in parts,
/// each a partial over cells no other part has, the last carrying the part count, the
/// bookmark and the stats. A result that cannot be cut to fit is a non-retryable
/// `too_large` failure of the task, never a line the coordinator must refuse.
enum ResultLines {
  /// Room left on every part for the envelope, the ids and the part numbers.
  static let envelopeSlack = 512

  /// The envelopes for `result` on a session whose lines may be `maxLineBytes` long (the
  /// newline not counted). `id` names each envelope. `encodedPartial` is a `complete`'s
  /// partial in protobuf's binary encoding, when the caller has it: the partial is then not
  /// encoded again to measure or to cut it. `binary`: the session takes partials in that
  /// encoding (`welcome.partial_binary`), which is what a `complete` then carries.
  static func envelopes(
    for result: Envelope.OneOf_Body, encodedPartial: [UInt8]? = nil, binary: Bool = false, maxLineBytes: Int,
    id: () -> String
  ) -> [Envelope] {
    let whole = Envelope(id: id(), result)
    // A result with no cells and no row errors is a few hundred bytes, far under the
    // smallest line limit (64 KiB): no need to encode it once more just to measure it.
    if case .complete(let complete) = result, isSmall(complete) { return [whole] }
    if binary, case .complete(let complete) = result {
      do {
        return try binaryParts(of: complete, encodedPartial: encodedPartial, maxLineBytes: maxLineBytes).map {
          Envelope(id: id(), .complete($0))
        }
      } catch {
        return [Envelope(id: id(), .fail(tooLarge(complete.task, complete.attempt, stats: complete.stats, error)))]
      }
    }
    // Protobuf's JSON is never shorter than its binary encoding (every field's name and
    // punctuation outweigh its tag and length): a result whose binary encoding alone is over
    // the limit is cut with no JSON pass over the whole of it.
    guard (encodedPartial?.count ?? binarySize(whole)) > maxLineBytes || (encodedSize(whole) ?? .max) > maxLineBytes
    else { return [whole] }
    switch result {
    case .complete(let complete):
      do {
        return try parts(of: complete, encodedPartial: encodedPartial, maxLineBytes: maxLineBytes).map {
          Envelope(id: id(), .complete($0))
        }
      } catch {
        return [Envelope(id: id(), .fail(tooLarge(complete.task, complete.attempt, stats: complete.stats, error)))]
      }
    case .fail(var fail):
      // Only the row errors and the message can make a failure long; cut them.
      fail.stats.rowErrors = []
      fail.error.message = String(fail.error.message.prefix(1024))
      return [Envelope(id: id(), .fail(fail))]
    default:
      return [whole]
    }
  }

  /// Whether a `complete` certainly fits any session's line without measuring it: no
  /// cells, no row errors, a short bookmark and few HTTP status counts (every other field
  /// is a number or an id of at most 64 bytes).
  static func isSmall(_ complete: Haat_V1_Complete) -> Bool {
    guard
      complete.partial.engagement.cells.isEmpty && complete.stats.rowErrors.isEmpty
        && complete.bookmark.utf8.count <= 4_096 && complete.stats.httpStatuses.count <= 100
        && complete.task.utf8.count <= 64 && !complete.hasSplit
    else { return false }
    // An empty partial (a no-op task's) shares protobuf's default storage: no copy needed.
    if complete.partial == Partial() { return true }
    // Any part of the partial other than engagement (a report added later) is measured.
    var rest = complete.partial
    rest.clearEngagement()
    return rest == Partial()
  }

  /// Cuts a complete into parts under the limit: the partial's fields are packed in order,
  /// greedily.
  static func parts(
    of complete: Haat_V1_Complete, encodedPartial: [UInt8]? = nil, maxLineBytes: Int
  ) throws(HaatError) -> [Haat_V1_Complete] {
    let budget = try room(for: complete, maxLineBytes: maxLineBytes)
    // The cells of every report's section, and an ads partial's coverage, in parts over
    // disjoint fields (a partial is a monoid: the coordinator merges the parts back).
    let cut: (parts: [Partial]?, largest: Int)
    do {
      cut = try MessageCutter.cut(complete.partial, encoded: encodedPartial, budget: budget)
    } catch {
      throw HaatError(.internal, "the result's partial cannot be cut: \(error)")
    }
    guard let partials = cut.parts else {
      throw HaatError(
        .tooLarge, "one result cell is \(cut.largest) bytes, over the session's line limit of \(maxLineBytes)")
    }
    return partials.enumerated().map { index, partial in
      part(index, of: partials.count, complete) { $0.partial = partial }
    }
  }

  /// A `complete` whose partial travels as `partial_binary`: one line when it fits, else
  /// parts over disjoint fields as `parts` cuts them, each part's bytes exact (base64 makes 4
  /// bytes of every 3), with no JSON encoding of the partial at all.
  static func binaryParts(
    of complete: Haat_V1_Complete, encodedPartial: [UInt8]?, maxLineBytes: Int
  ) throws(HaatError) -> [Haat_V1_Complete] {
    let maxBytes = try room(for: complete, maxLineBytes: maxLineBytes) / 4 * 3
    let encoded: [UInt8]
    do {
      encoded = try encodedPartial ?? complete.partial.serializedBytes()
    } catch {
      throw HaatError(.internal, "the result's partial cannot be encoded: \(error)")
    }
    if encoded.count <= maxBytes {
      var whole = complete
      whole.clearPartial()
      whole.partialBinary = Data(encoded)
      return [whole]
    }
    let cut: (parts: [[UInt8]]?, largest: Int)
    do {
      cut = try MessageCutter.cutEncoded(complete.partial, encoded: encoded, maxBytes: maxBytes)
    } catch {
      throw HaatError(.internal, "the result's partial cannot be cut: \(error)")
    }
    guard let parts = cut.parts else {
      throw HaatError(
        .tooLarge,
        "one result cell is \((cut.largest + 2) / 3 * 4) bytes in base64, over the session's line limit of \(maxLineBytes)"
      )
    }
    return parts.enumerated().map { index, bytes in
      part(index, of: parts.count, complete) { $0.partialBinary = Data(bytes) }
    }
  }

  /// What a part's share of the partial may take of a line: the limit less the last part
  /// without its partial (the stats, bookmark and split it carries, the longest id) and some
  /// slack.
  static func room(for complete: Haat_V1_Complete, maxLineBytes: Int) throws(HaatError) -> Int {
    var last = complete
    last.clearPartial()
    last.part = 1
    last.parts = 1
    guard let overhead = encodedSize(Envelope(id: "w18446744073709551615", .complete(last))) else {
      throw HaatError(.internal, "the result cannot be encoded")
    }
    let room = maxLineBytes - overhead - envelopeSlack
    guard room > 0 else {
      throw HaatError(
        .tooLarge, "the result's stats alone are \(overhead) bytes, over the session's line limit of \(maxLineBytes)")
    }
    return room
  }

  /// Part `index` (from 0) of `count` of `complete`, its share of the partial set by
  /// `share`; only the last carries the count, the bookmark, the stats and a plan's split.
  static func part(
    _ index: Int, of count: Int, _ complete: Haat_V1_Complete, share: (inout Haat_V1_Complete) -> Void
  ) -> Haat_V1_Complete {
    var part = Haat_V1_Complete()
    part.task = complete.task
    part.attempt = complete.attempt
    part.part = UInt32(index + 1)
    share(&part)
    if index == count - 1 {
      part.parts = UInt32(count)
      part.bookmark = complete.bookmark
      part.stats = complete.stats
      if complete.hasSplit { part.split = complete.split }
    }
    return part
  }

  static func tooLarge(_ task: String, _ attempt: UInt32, stats: TaskStats, _ error: HaatError) -> Haat_V1_Fail {
    var fail = Haat_V1_Fail()
    fail.task = task
    fail.attempt = attempt
    fail.error = ErrorInfo(code: ErrorCode.tooLarge.rawValue, message: error.message)
    fail.retryable = false
    fail.stats = stats
    fail.stats.rowErrors = []
    return fail
  }

  static func binarySize(_ envelope: Envelope) -> Int {
    let bytes: [UInt8]? = try? envelope.serializedBytes()
    return bytes?.count ?? .max
  }

  static func encodedSize(_ envelope: Envelope) -> Int? {
    let bytes: [UInt8]? = try? envelope.jsonUTF8Bytes(options: WireCodec.encodingOptions)
    return bytes?.count
  }
}

extension Haat_V1_Complete {
  /// The result of an assignment, in one message (before any cutting into parts).
  init(_ assign: Haat_V1_Assign, _ partial: Partial, _ stats: TaskStats, bookmark: String = "", split: Split? = nil) {
    self.init()
    task = assign.task
    attempt = assign.attempt
    self.partial = partial
    self.stats = stats
    self.bookmark = bookmark
    if let split { self.split = split }
  }
}
