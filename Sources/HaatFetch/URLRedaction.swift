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
