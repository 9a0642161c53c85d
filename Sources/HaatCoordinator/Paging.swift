import HaatCore
import HaatProtocol
import SwiftProtobuf

/// Lists go a page at a time, each page one line under the session's limit (DESIGN.md §3
/// "Large results, bounded lines"): a page asked for is cut shorter when it would not fit.
enum Paging {
  /// Room kept on every line for the envelope (`reply_to`, the body's key, braces).
  static let envelopeSlack = 512

  /// How many of `items`, from the first, fit in one line of `maxLineBytes` beside the
  /// rest of the reply, `fixed` (encoded without the items).
  static func fitting(_ items: [some Message], beside fixed: some Message, maxLineBytes: Int) -> Int {
    guard let fixedBytes = jsonSize(fixed) else { return 0 }
    var room = maxLineBytes - envelopeSlack - fixedBytes
    for (index, item) in items.enumerated() {
      // Its JSON and the comma before it.
      room -= (jsonSize(item) ?? maxLineBytes) + 1
      if room < 0 { return index }
    }
    return items.count
  }

  /// A page's size: `requested`, or `default` when 0, at most `Defaults.maxListItems`.
  static func limit(_ requested: UInt32, default fallback: Int) -> Int {
    requested == 0 ? fallback : min(Int(requested), Defaults.maxListItems)
  }

  /// A request's `after`: nil when empty, else what `parse` makes of it, else bad_request.
  static func cursor<T>(_ text: String, _ parse: (String) -> T?) throws(HaatError) -> T? {
    guard !text.isEmpty else { return nil }
    guard let cursor = parse(text) else {
      throw HaatError(.badRequest, "\"\(text)\" is not a cursor from `next`", field: "after")
    }
    return cursor
  }

  static func jsonSize(_ message: some Message) -> Int? {
    let bytes: [UInt8]? = try? message.jsonUTF8Bytes(options: WireCodec.encodingOptions)
    return bytes?.count
  }
}
