/// Query parameters and URL parts that carry credentials. The fetcher redacts them from
/// what it logs; the planner refuses specs that put them in a URL (a secret belongs in a
/// credential reference, so it never reaches the store or the wire).
public enum URLSecrets {
  public static let parameterNames: Set<String> = [
    "access_token", "token", "api_key", "apikey", "key", "secret", "client_secret", "password",
    "passwd", "signature", "sig", "auth", "authorization", "code", "refresh_token",
    "x-amz-signature", "x-amz-credential", "x-amz-security-token",
  ]

  /// What in `url` looks like a credential ("user info", or a query parameter's name), or nil.
  public static func find(in url: String) -> String? {
    var rest = Substring(url)
    if let schemeEnd = rest.firstRange(of: "://") {
      rest = rest[schemeEnd.upperBound...]
      let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
      if rest[..<authorityEnd].contains("@") { return "user info (user:password@)" }
    }
    guard let question = rest.firstIndex(of: "?") else { return nil }
    let query = rest[rest.index(after: question)...].prefix { $0 != "#" }
    for pair in query.split(separator: "&") {
      let name = pair.split(separator: "=", maxSplits: 1).first.map { $0.lowercased() } ?? ""
      if parameterNames.contains(name) { return name }
    }
    return nil
  }
}
