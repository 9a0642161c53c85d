import HaatCore
import HaatFetch

/// The URL checks: `URLSecrets.find` (the planner's refusal), `URLRedaction.redact` (what
/// the fetcher logs), the address guard and the file root (GuardFuzzing). Redaction is idempotent, never shows the secret filter a secret it did
/// not see, and keeps no user info, no fragment and no value of a secret parameter.
enum URLFuzzing {
  static func run(_ data: UnsafeRawBufferPointer, _ invariants: inout Invariants) {
    // URLs arrive in specs, which are UTF-8 text.
    guard let url = String(validating: data, as: UTF8.self) else { return }
    let found = URLSecrets.find(in: url)
    let redacted = URLRedaction.redact(url)
    invariants.check(
      URLRedaction.redact(redacted) == redacted,
      "redaction is not idempotent: \(redacted.debugDescription) becomes \(URLRedaction.redact(redacted).debugDescription)"
    )
    // Redaction may hide what the filter saw (a dropped fragment), never show it something new.
    let foundAfter = URLSecrets.find(in: redacted)
    invariants.check(
      foundAfter == nil || foundAfter == found,
      "redaction changed the verdict from \(found ?? "nil") to \(foundAfter ?? "nil")")
    if hasScheme(url) { leaks(redacted, &invariants) }
    GuardFuzzing.addresses(url, &invariants)
    GuardFuzzing.fileRoot(url, &invariants)
  }

  /// Whether `url` starts with a scheme (RFC 3986: a letter, then letters, digits, + - .)
  /// and "://": only those are fetched, so only those need their secrets hidden.
  static func hasScheme(_ url: String) -> Bool {
    guard let end = url.utf8.firstIndex(of: UInt8(ascii: ":")) else { return false }
    let scheme = url.utf8[..<end]
    guard let first = scheme.first, isLetter(first) else { return false }
    return scheme.allSatisfy { isLetter($0) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2B || $0 == 0x2D || $0 == 0x2E }
      && url.utf8[end...].starts(with: "://".utf8)
  }

  private static func isLetter(_ byte: UInt8) -> Bool {
    (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
  }

  /// A redacted URL keeps no user info, no fragment and no value of a secret parameter, read
  /// the way the secret filter reads URLs (user info before the authority's last "@";
  /// parameters split by `URLSecrets.parameters`, names judged by `isSecretName`).
  static func leaks(_ redacted: String, _ invariants: inout Invariants) {
    var rest = Substring(redacted)
    if let schemeEnd = rest.firstRange(of: "://") {
      rest = rest[schemeEnd.upperBound...]
      let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
      let authority = rest[..<authorityEnd]
      if let at = authority.lastIndex(of: "@") {
        invariants.check(authority[..<at] == "…", "user info left in \(redacted.debugDescription)")
      }
      rest = rest[authorityEnd...]
    }
    // The fragment is everything after the first "#", "?" or not (RFC 3986); it can carry
    // tokens (OAuth's implicit flow), so none of it may stay.
    if let hash = rest.firstIndex(of: "#") {
      invariants.check(rest[hash...] == "#…", "a fragment left in \(redacted.debugDescription)")
      rest = rest[..<hash]
    }
    guard let question = rest.firstIndex(of: "?") else { return }
    for pair in URLSecrets.parameters(rest[rest.index(after: question)...]) {
      guard let equals = pair.firstIndex(of: "="), URLSecrets.isSecretName(pair[..<equals]) else { continue }
      invariants.check(
        pair[pair.index(after: equals)...] == "…",
        "the value of \(pair[..<equals]) left in \(redacted.debugDescription)")
    }
  }
}
