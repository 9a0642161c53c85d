import Foundation
import HaatCore

extension URLRedaction {
  /// `text` (a server's error body, or a platform's message quoted from one) with its
  /// secrets replaced by "…": each of `values` wherever it appears (the secret values of the
  /// URLs asked, or a credential: a page that echoes its request line, S3's
  /// `SignatureProvided`), and the value after a secret's name (`access_token=…`,
  /// `"client_secret" : "…"`, `X-Api-Key: …`, the token of an echoed `Authorization: Bearer …`).
  /// Both are looked for in the text as decoded (percent-encoding up to three times, in
  /// either case, JSON's `\/` and `\u00XX`, HTML's `&#47;`), with case ignored, and hidden
  /// where they were written (found by testers: a redirect target's 401 page quoted its
  /// `access_token`, and `%252F`, `\/` or a space before the colon let others through).
  /// `credentials`: secrets hidden as `[credential NAME]`, saying whose they were.
  public static func redactText(
    _ text: String, values: [String] = [], credentials: [(secret: String, name: String)] = []
  ) -> String {
    let source = Array(text.utf8)
    guard !source.isEmpty else { return text }
    let view = DecodedText(source)
    var spans = SecretNames.values(in: view.bytes).map { ($0, cut) }
    for (value, shown) in Set(values).map({ ($0, cut) })
      + credentials.map({ ($0.secret, Array("[credential \($0.name)]".utf8)) })
    {
      let needle = DecodedText(Array(value.utf8)).bytes
      guard needle.count >= 4 else { continue }
      spans += view.occurrences(of: needle).map { ($0, shown) }
    }
    guard !spans.isEmpty else { return text }
    let written = spans.map { (view.starts[$0.0.lowerBound]..<view.ends[$0.0.upperBound - 1], $0.1) }
      .sorted { $0.0.lowerBound < $1.0.lowerBound }
    var out: [UInt8] = []
    out.reserveCapacity(source.count)
    var at = 0
    for (span, shown) in written where span.upperBound > at {
      // Overlapping spans are one cut.
      if span.lowerBound >= at {
        out += source[at..<span.lowerBound]
        out += shown
      }
      at = span.upperBound
    }
    out += source[at...]
    return String(decoding: out, as: UTF8.self)
  }

  /// The values of `url`'s secret query parameters and its user info: what `redactText`
  /// hides in a body that came from it.
  public static func secretValues(of url: String) -> [String] {
    var values: [String] = []
    var rest = Substring(url)
    if let schemeEnd = rest.range(of: "://") {
      rest = rest[schemeEnd.upperBound...]
      let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
      if let at = rest[..<authorityEnd].lastIndex(of: "@") { values.append(String(rest[..<at])) }
    }
    guard let question = rest.firstIndex(of: "?") else { return values }
    for pair in URLSecrets.parameters(rest[rest.index(after: question)...].prefix { $0 != "#" }) {
      guard let equals = pair.firstIndex(of: "="), URLSecrets.isSecretName(pair[..<equals]) else { continue }
      values.append(String(pair[pair.index(after: equals)...]))
    }
    return values
  }

  static let cut = Array("…".utf8)
}

/// Text decoded for finding secrets in: lowercased ASCII, with percent-escapes, JSON's `\/`
/// and `\u00XX`, and HTML's numeric references decoded, each decoded byte keeping the span
/// of the written bytes it came from.
struct DecodedText {
  var bytes: [UInt8]
  /// For each decoded byte, where its written bytes start and end.
  var starts: [Int]
  var ends: [Int]

  init(_ source: [UInt8]) {
    // NULs left out: a UTF-16 body is its ASCII letters with a NUL between each (a tester's).
    let kept = source.indices.filter { source[$0] != 0 }
    bytes = kept.map { Self.lowered(source[$0]) }
    starts = kept
    ends = kept.map { $0 + 1 }
    // Three times: a value percent-encoded twice inside a JSON string is still found.
    for _ in 0..<3 {
      guard let next = decodedOnce() else { break }
      self = next
    }
  }

  private init(bytes: [UInt8], starts: [Int], ends: [Int]) {
    self.bytes = bytes
    self.starts = starts
    self.ends = ends
  }

  static func lowered(_ byte: UInt8) -> UInt8 {
    (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
  }

  private static func hex(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    default: return nil
    }
  }

  /// One byte an escape at `index` stands for, and how many bytes the escape takes.
  private func escape(at index: Int) -> (byte: UInt8, length: Int)? {
    let rest = bytes.count - index
    switch bytes[index] {
    case UInt8(ascii: "%") where rest >= 3:
      guard let high = Self.hex(bytes[index + 1]), let low = Self.hex(bytes[index + 2]) else { return nil }
      return (high << 4 | low, 3)
    case UInt8(ascii: "\\") where rest >= 2 && bytes[index + 1] == UInt8(ascii: "/"):
      return (UInt8(ascii: "/"), 2)
    case UInt8(ascii: "\\") where rest >= 6 && bytes[index + 1] == UInt8(ascii: "u"):
      guard bytes[index + 2] == UInt8(ascii: "0"), bytes[index + 3] == UInt8(ascii: "0"),
        let high = Self.hex(bytes[index + 4]), let low = Self.hex(bytes[index + 5]), high < 8
      else { return nil }
      return (high << 4 | low, 6)
    case UInt8(ascii: "&") where rest >= 4 && bytes[index + 1] == UInt8(ascii: "#"):
      // &#47; or &#x2f;: ASCII only.
      var at = index + 2
      let hexadecimal = bytes[at] == UInt8(ascii: "x")
      if hexadecimal { at += 1 }
      var value = 0
      let digitsStart = at
      // Leading zeros are HTML too (`&#00069;`): up to seven digits.
      while at < bytes.count, at - digitsStart < 7 {
        let byte = bytes[at]
        if hexadecimal, let digit = Self.hex(byte) {
          value = value * 16 + Int(digit)
        } else if !hexadecimal, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
          value = value * 10 + Int(byte - UInt8(ascii: "0"))
        } else {
          break
        }
        at += 1
      }
      guard at > digitsStart, at < bytes.count, bytes[at] == UInt8(ascii: ";"), value < 0x80 else { return nil }
      return (UInt8(value), at + 1 - index)
    default:
      return nil
    }
  }

  /// The text decoded once more, or nil when nothing in it was an escape.
  private func decodedOnce() -> DecodedText? {
    var next = DecodedText(bytes: [], starts: [], ends: [])
    next.bytes.reserveCapacity(bytes.count)
    var changed = false
    var index = 0
    while index < bytes.count {
      if let (byte, length) = escape(at: index) {
        next.bytes.append(Self.lowered(byte))
        next.starts.append(starts[index])
        next.ends.append(ends[index + length - 1])
        index += length
        changed = true
      } else {
        next.bytes.append(bytes[index])
        next.starts.append(starts[index])
        next.ends.append(ends[index])
        index += 1
      }
    }
    return changed ? next : nil
  }

  /// Where `needle` (decoded) occurs.
  func occurrences(of needle: [UInt8]) -> [Range<Int>] {
    guard let first = needle.first, bytes.count >= needle.count else { return [] }
    var found: [Range<Int>] = []
    var index = 0
    while index + needle.count <= bytes.count {
      if bytes[index] == first, bytes[index..<index + needle.count].elementsEqual(needle) {
        found.append(index..<index + needle.count)
        index += needle.count
      } else {
        index += 1
      }
    }
    return found
  }
}

/// The values written after a secret's name in decoded text.
enum SecretNames {
  private static func isNameByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"),
      UInt8(ascii: "-"), UInt8(ascii: "."):
      return true
    default: return false
    }
  }

  private static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

  private static let schemes = ["bearer", "basic", "token", "digest"].map { Array($0.utf8) }
  private static let unquotedEnd = Set(" \t\r\n&;,\"'<>(){}[]\\".utf8)

  /// The spans of the values after a secret's name: `name=value` (quoted or not, blanks
  /// around `=` allowed), `"name": "value"` or `'name': 'value'` (a string: a number such as
  /// Meta's `"code": 190` is no secret), `Name-Like-A-Header: value` (a name with `-` or `_`,
  /// and a value that is not all digits), and `Authorization: Bearer value`. An ordinary
  /// sentence (`access token: Session has expired`) keeps its words.
  static func values(in bytes: [UInt8]) -> [Range<Int>] {
    var spans: [Range<Int>] = []
    for separator in bytes.indices where bytes[separator] == UInt8(ascii: "=") || bytes[separator] == UInt8(ascii: ":")
    {
      var end = separator
      while end > 0, isBlank(bytes[end - 1]) { end -= 1 }
      var quotedName = false
      if end > 0, bytes[end - 1] == UInt8(ascii: "\"") || bytes[end - 1] == UInt8(ascii: "'") {
        end -= 1
        quotedName = true
      }
      var start = end
      while start > 0, isNameByte(bytes[start - 1]) { start -= 1 }
      guard start < end else { continue }
      let name = bytes[start..<end]
      guard URLSecrets.isSecretName(Substring(String(decoding: name, as: UTF8.self))) else { continue }
      var at = separator + 1
      while at < bytes.count, isBlank(bytes[at]) { at += 1 }
      guard at < bytes.count else { continue }
      if bytes[at] == UInt8(ascii: "\"") || bytes[at] == UInt8(ascii: "'") {
        let quote = bytes[at]
        var close = at + 1
        while close < bytes.count, bytes[close] != quote {
          close += bytes[close] == UInt8(ascii: "\\") ? 2 : 1
        }
        close = min(close, bytes.count)
        if close > at + 1 { spans.append(at + 1..<close) }
        continue
      }
      if bytes[separator] == UInt8(ascii: ":") {
        if let scheme = schemes.first(where: { word in
          at + word.count < bytes.count && bytes[at..<at + word.count].elementsEqual(word)
            && isBlank(bytes[at + word.count])
        }) {
          at += scheme.count
          while at < bytes.count, isBlank(bytes[at]) { at += 1 }
        } else {
          // A header or a key (`X-Api-Key: …`, `api_key: …`), not a sentence's word.
          guard quotedName || name.contains(UInt8(ascii: "-")) || name.contains(UInt8(ascii: "_")) else { continue }
        }
      }
      var valueEnd = at
      while valueEnd < bytes.count, !unquotedEnd.contains(bytes[valueEnd]) { valueEnd += 1 }
      guard valueEnd > at else { continue }
      if bytes[separator] == UInt8(ascii: ":"), bytes[at..<valueEnd].allSatisfy({ (48...57).contains($0) }) { continue }
      spans.append(at..<valueEnd)
    }
    return spans
  }
}
