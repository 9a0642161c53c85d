import Foundation

/// The text of an error body as a task's error quotes it: an HTML page's words, not its
/// markup (a tester's 404 from a plain web server quoted `<!DOCTYPE HTML> <html lang=…`,
/// and its "File not found" was cut off by the 200 characters kept).
enum ErrorBodyText {
  /// `body`'s text: for HTML, the words outside tags, scripts and styles, with the common
  /// entities read; anything else as it is.
  static func readable(_ body: String) -> String {
    guard looksLikeHTML(body) else { return body }
    var out = ""
    var rest = Substring(body)
    while let open = rest.firstIndex(of: "<") {
      out += rest[..<open]
      var tail = rest[open...]
      let lowered = tail.prefix(8).lowercased()
      // A script's or style's content is no text to show.
      if let skipped = ["script", "style"].first(where: { lowered.hasPrefix("<" + $0) }) {
        guard let end = tail.range(of: "</" + skipped, options: .caseInsensitive) else {
          rest = ""
          break
        }
        tail = tail[end.upperBound...]
      }
      // A tag left open to the end: nothing after it is text.
      guard let close = tail.firstIndex(of: ">") else {
        rest = ""
        break
      }
      out += " "
      rest = tail[tail.index(after: close)...]
    }
    out += rest
    for (entity, character) in [
      ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&nbsp;", " "), ("&amp;", "&"),
    ] {
      out = out.replacingOccurrences(of: entity, with: character)
    }
    return out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
  }

  static func looksLikeHTML(_ body: String) -> Bool {
    let start = body.drop { $0.isWhitespace }.prefix(64).lowercased()
    return start.hasPrefix("<!doctype html") || start.hasPrefix("<html") || start.hasPrefix("<head")
      || start.hasPrefix("<body")
  }
}
