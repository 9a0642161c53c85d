/// Query parameters and URL parts that carry credentials. The fetcher redacts them from
/// what it logs and the planner refuses specs that put them in a URL (a secret belongs in a
/// named credential on the workers, so it never reaches the store or the wire). Both use
/// `isSecretName`, so what is refused and what is redacted cannot drift apart.
public enum URLSecrets {
  /// Names that are secrets whole.
  static let exactNames: Set<String> = [
    "key", "sig", "auth", "code", "pass", "pwd", "session", "sid", "jwt", "hash", "hmac", "otp",
  ]
  /// Words that make a name a secret wherever they appear in it (after normalising "-" and
  /// "." to "_" and lowercasing): access_token, oauth_token, x_goog_signature, client_secret….
  static let secretWords = [
    "token", "secret", "password", "passwd", "signature", "credential", "apikey", "api_key", "auth", "private",
    "session", "cookie", "bearer", "passphrase", "assertion",
  ]

  /// Whether a query parameter's name (as written, percent-encoded or not) names a secret.
  public static func isSecretName(_ raw: Substring) -> Bool {
    let name = normalised(raw)
    if exactNames.contains(name) { return true }
    if name.hasSuffix("_key") || name.hasSuffix("_sig") || name.hasPrefix("sig_") { return true }
    return secretWords.contains { name.contains($0) }
  }

  /// What in `url` looks like a credential ("user info", or the name of a query parameter or
  /// of a fragment's `name=value` part), or nil.
  public static func find(in url: String) -> String? {
    if hasUserInfo(url) { return "user info (user:password@)" }
    var rest = Substring(url)
    if let schemeEnd = rest.firstRange(of: "://") { rest = rest[schemeEnd.upperBound...] }
    let hash = rest.firstIndex(of: "#") ?? rest.endIndex
    if let question = rest[..<hash].firstIndex(of: "?") {
      for pair in parameters(rest[rest.index(after: question)..<hash]) {
        let name = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        if isSecretName(name) { return label(name) }
      }
    }
    // A fragment is never sent, but it is stored with the spec: OAuth's implicit grant puts
    // `#access_token=…` there, and an app's route its own `#/path?token=…`. Only `name=value`
    // parts count, so an anchor (`#auth`) is not taken for one.
    guard hash < rest.endIndex else { return nil }
    for part in rest[rest.index(after: hash)...].split(whereSeparator: { "&;?/".contains($0) }) {
      guard let equals = part.firstIndex(of: "=") else { continue }
      if isSecretName(part[..<equals]) { return label(part[..<equals]) }
    }
    return nil
  }

  /// Whether `url` may carry user info, read as the most lenient parser would: libcurl
  /// takes all before the authority's last `@` as user info, a backslash included
  /// (`http://evil\u:pw@host/` sent `pw` as Basic auth: a tester), and browsers skip extra
  /// slashes (`https:///user:pw@host`). A file URL's third slash starts its path.
  public static func hasUserInfo(_ url: String) -> Bool {
    guard let schemeEnd = url.firstRange(of: "://") else {
      return hasUserInfoWithoutAuthority(Substring(url))
    }
    let scheme = url[..<schemeEnd.lowerBound].lowercased()
    let rest = url[schemeEnd.upperBound...]
    let authority = scheme == "file" ? rest : rest.drop { $0 == "/" || $0 == "\\" }
    let authorityEnd = authority.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? authority.endIndex
    // `%40` is an `@` to a parser that decodes first (a tester's `user:pw%40host`).
    return hasAt(authority[..<authorityEnd])
  }

  /// User info in a URL that lacks "://" (`http:/user:pw@host`, `http;//user:pw@host`,
  /// `//user:pw@host`): no URL at all, so an `@` (or `%40`) anywhere before its query may
  /// end a password, and an error that quoted it would show it (a tester's one-slash typo
  /// did); such a text is refused either way.
  static func hasUserInfoWithoutAuthority(_ text: Substring) -> Bool {
    let end = text.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? text.endIndex
    return hasAt(text[..<end])
  }

  /// Whether `text` holds an `@`, written or percent-encoded (`%40`).
  static func hasAt(_ text: Substring) -> Bool {
    text.contains("@") || text.firstRange(of: "%40") != nil
  }

  /// The refusal of a source URL that carries a credential, said without echoing the URL;
  /// nil when it carries none. The CLI says it before sending the spec, the coordinator
  /// again for any other client.
  public static func refusal(of url: String, field: String) -> HaatError? {
    guard let secret = find(in: url) else { return nil }
    return HaatError(
      .badSpec,
      "carries a credential (\(secret)); name a credential configured on the workers in the source's credential instead, so the secret never reaches the coordinator",
      field: field)
  }

  /// A secret parameter's name as an error names it: never its value, which an encoded
  /// `=` (`access_token%3Dabc`) would otherwise bring along (found by a tester).
  static func label(_ raw: Substring) -> String {
    // The name's own characters only: `?auth:PW` (no `=`) quoted the value too (a tester).
    // Past anything before the name (a zero-width space left it blank: a tester).
    func isNameCharacter(_ character: Character) -> Bool {
      character.isASCII && (character.isLetter || character.isNumber || "_[]".contains(character))
    }
    return String(normalised(raw).drop { !isNameCharacter($0) }.prefix(while: isNameCharacter))
  }

  /// A query's parameters, split at "&" and ";" (both separate parameters for many servers).
  public static func parameters(_ query: Substring) -> [Substring] {
    query.split(omittingEmptySubsequences: false) { $0 == "&" || $0 == ";" }
  }

  /// Percent-decoded (repeatedly, so %255F is caught too), lowercased, "-" and "." as "_".
  static func normalised(_ raw: Substring) -> String {
    var bytes = Array(raw.utf8)
    for _ in 0..<3 {
      guard bytes.contains(UInt8(ascii: "%")) || bytes.contains(UInt8(ascii: "+")) else { break }
      bytes = decode(bytes)
    }
    return String(
      decoding: bytes.map { byte -> UInt8 in
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte + 32
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: " "): return UInt8(ascii: "_")
        default: return byte
        }
      }, as: UTF8.self)
  }

  static func decode(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var index = 0
    func hex(_ byte: UInt8) -> UInt8? {
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - 48
      case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - 87
      case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - 55
      default: return nil
      }
    }
    while index < bytes.count {
      let byte = bytes[index]
      if byte == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hex(bytes[index + 1]),
        let low = hex(bytes[index + 2])
      {
        out.append(high << 4 | low)
        index += 3
      } else {
        out.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
        index += 1
      }
    }
    return out
  }
}

/// The names of platform credentials, as specs write them and workers configure them.
public enum CredentialName {
  /// 1 to 64 ASCII letters, digits, "_", "-" or ".": a name, never a path or a variable.
  public static func isValid(_ name: String) -> Bool {
    let count = name.utf8.count
    guard count >= 1, count <= 64 else { return false }
    return name.utf8.allSatisfy {
      ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z"))
        || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_")
        || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".")
    }
  }
}
