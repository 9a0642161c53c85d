import Foundation
import HaatCore

/// Removes credentials from URLs before they are logged or reported.
public enum URLRedaction {
  /// The URL with user info and secret query values replaced by "…".
  public static func redact(_ url: String) -> String {
    var text = Substring(url)
    var out = ""
    // user:password@ in the authority.
    if let schemeEnd = text.range(of: "://") {
      out += text[..<schemeEnd.upperBound]
      text = text[schemeEnd.upperBound...]
      let authorityEnd = text.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? text.endIndex
      let authority = text[..<authorityEnd]
      if let at = authority.lastIndex(of: "@") {
        out += "…@" + authority[authority.index(after: at)...]
      } else {
        out += authority
      }
      text = text[authorityEnd...]
    }
    // The fragment is everything after the first "#", whether or not a "?" follows it
    // (RFC 3986), and can carry tokens (OAuth's implicit flow): it is dropped.
    let hash = text.firstIndex(of: "#") ?? text.endIndex
    let fragment = hash < text.endIndex ? "#…" : ""
    text = text[..<hash]
    guard let question = text.firstIndex(of: "?") else { return out + text + fragment }
    out += text[...question]
    // Rebuilt with the separators as written ("&" or ";"), each secret value replaced.
    let query = text[text.index(after: question)...]
    var start = query.startIndex
    for pair in URLSecrets.parameters(query) {
      if pair.startIndex > start { out += query[start..<pair.startIndex] }
      if let equals = pair.firstIndex(of: "="), URLSecrets.isSecretName(pair[..<equals]) {
        out += "\(pair[..<equals])=…"
      } else {
        out += pair
      }
      start = pair.endIndex
    }
    return out + fragment
  }
}

extension URLRedaction {
  /// `text` (a server's error body, quoted in a message) with its secrets replaced by "…":
  /// each of `values` wherever it appears (the secret values of the URL asked: a server that
  /// echoes the request line, or the signature it refused, as S3's `SignatureProvided`), and
  /// the value after a secret's name, `access_token=…` or `"client_secret": "…"` (found by a
  /// tester: a redirect target's 401 body quoted its `access_token` into logs and reports).
  public static func redactText(_ text: String, values: [String] = []) -> String {
    var bytes = Array(text.utf8)
    for value in values where value.utf8.count >= 4 {
      bytes = replacing(Array(value.utf8), in: bytes)
    }
    return String(decoding: redactNamedValues(bytes), as: UTF8.self)
  }

  /// The values of `url`'s secret query parameters (as written and percent-decoded) and its
  /// user info: what `redactText` hides in a body that came from it.
  public static func secretValues(of url: String) -> [String] {
    var values: [String] = []
    var rest = Substring(url)
    if let schemeEnd = rest.range(of: "://") {
      rest = rest[schemeEnd.upperBound...]
      let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
      if let at = rest[..<authorityEnd].lastIndex(of: "@") { values.append(String(rest[..<at])) }
    }
    guard let question = rest.firstIndex(of: "?") else { return values }
    let query = rest[rest.index(after: question)...].prefix { $0 != "#" }
    for pair in URLSecrets.parameters(query) {
      guard let equals = pair.firstIndex(of: "="), URLSecrets.isSecretName(pair[..<equals]) else { continue }
      let value = String(pair[pair.index(after: equals)...])
      values.append(value)
      if let decoded = value.replacingOccurrences(of: "+", with: " ").removingPercentEncoding, decoded != value {
        values.append(decoded)
      }
    }
    return values
  }

  private static let cut = Array("…".utf8)

  private static func replacing(_ needle: [UInt8], in bytes: [UInt8]) -> [UInt8] {
    guard bytes.count >= needle.count else { return bytes }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var index = 0
    while index < bytes.count {
      if index + needle.count <= bytes.count, bytes[index] == needle[0],
        bytes[index..<index + needle.count].elementsEqual(needle)
      {
        out += cut
        index += needle.count
      } else {
        out.append(bytes[index])
        index += 1
      }
    }
    return out
  }

  /// Bytes a parameter's or a JSON key's name is made of.
  private static func isNameByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."),
      UInt8(ascii: "%"):
      return true
    default: return false
    }
  }

  /// `name=value` (the value quoted or not) and `"name": "value"` (a JSON string only: a
  /// number such as Meta's `"code": 190` is no secret) with a secret's name: the value as "…".
  /// An `Authorization: Bearer x` keeps its scheme word and loses the token after it.
  private static func redactNamedValues(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var index = 0
    while index < bytes.count {
      let byte = bytes[index]
      out.append(byte)
      index += 1
      guard byte == UInt8(ascii: "=") || byte == UInt8(ascii: ":") else { continue }
      // The name just before the separator, after a closing quote if there is one.
      var end = index - 1
      if end > 0, bytes[end - 1] == UInt8(ascii: "\"") || bytes[end - 1] == UInt8(ascii: "'") { end -= 1 }
      var start = end
      while start > 0, isNameByte(bytes[start - 1]) { start -= 1 }
      guard start < end,
        URLSecrets.isSecretName(Substring(String(decoding: bytes[start..<end], as: UTF8.self)))
      else { continue }
      var at = index
      while at < bytes.count, bytes[at] == UInt8(ascii: " ") || bytes[at] == UInt8(ascii: "\t") { at += 1 }
      let quote: UInt8? =
        at < bytes.count && (bytes[at] == UInt8(ascii: "\"") || bytes[at] == UInt8(ascii: "'")) ? bytes[at] : nil
      if byte == UInt8(ascii: ":"), quote != UInt8(ascii: "\"") {
        // `Authorization: Bearer x` (a header echoed as text): the token after the scheme.
        guard
          let scheme = ["bearer ", "basic ", "token "].first(where: { word in
            at + word.utf8.count <= bytes.count
              && String(decoding: bytes[at..<at + word.utf8.count], as: UTF8.self).lowercased() == word
          })
        else { continue }
        at += scheme.utf8.count
      } else if quote != nil {
        at += 1
      }
      var valueEnd = at
      while valueEnd < bytes.count {
        let next = bytes[valueEnd]
        if let quote {
          if next == quote || next == UInt8(ascii: "\\") { break }
        } else if " \t\r\n&;,\"'<>(){}[]\\".utf8.contains(next) {
          break
        }
        valueEnd += 1
      }
      guard valueEnd > at, !bytes[at..<valueEnd].elementsEqual(cut) else { continue }
      out += bytes[index..<at]
      out += cut
      index = valueEnd
    }
    return out
  }
}
