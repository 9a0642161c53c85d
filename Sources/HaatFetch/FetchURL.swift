import CCurl

/// A URL's parts as libcurl itself reads them, so a check on the host or scheme judges the
/// very host curl will connect to (no second URL parser that could read it differently).
public struct FetchURL: Sendable, Equatable {
  /// "http", "https" or "file", lowercased.
  public var scheme: String
  /// The host, lowercased, IPv6 literals in brackets; empty for file URLs.
  public var host: String
  /// The port: the URL's own, or the scheme's default.
  public var port: Int
  /// The path, still percent-encoded.
  public var path: String

  /// Parses `text`, or nil if libcurl cannot read it as a URL.
  public init?(_ text: String) {
    guard let handle = curl_url() else { return nil }
    defer { curl_url_cleanup(handle) }
    let flags = UInt32(CURLU_NON_SUPPORT_SCHEME)
    guard curl_url_set(handle, CURLUPART_URL, text, flags) == CURLUE_OK else { return nil }
    func part(_ which: CURLUPart, _ flags: Int32 = 0) -> String? {
      var value: UnsafeMutablePointer<CChar>?
      guard curl_url_get(handle, which, &value, UInt32(flags)) == CURLUE_OK, let value else { return nil }
      defer { curl_free(value) }
      return String(cString: value)
    }
    guard let scheme = part(CURLUPART_SCHEME)?.lowercased() else { return nil }
    self.scheme = scheme
    host = part(CURLUPART_HOST)?.lowercased() ?? ""
    port = part(CURLUPART_PORT, CURLU_DEFAULT_PORT).flatMap { Int($0) } ?? 0
    path = part(CURLUPART_PATH) ?? ""
  }

  /// A redirect's `Location` (maybe relative) resolved against the URL it answered, as
  /// libcurl resolves the redirect URL it reports; nil when it cannot be read.
  static func resolve(_ location: String, against base: String) -> String? {
    guard let handle = curl_url() else { return nil }
    defer { curl_url_cleanup(handle) }
    let flags = UInt32(CURLU_NON_SUPPORT_SCHEME | CURLU_ALLOW_SPACE)
    guard curl_url_set(handle, CURLUPART_URL, base, flags) == CURLUE_OK,
      curl_url_set(handle, CURLUPART_URL, location, flags) == CURLUE_OK
    else { return nil }
    var value: UnsafeMutablePointer<CChar>?
    guard curl_url_get(handle, CURLUPART_URL, &value, 0) == CURLUE_OK, let value else { return nil }
    defer { curl_free(value) }
    return String(cString: value)
  }

  /// `host` or `host:port` when the port is not the scheme's default.
  public var authority: String {
    let isDefault = (scheme == "https" && port == 443) || (scheme == "http" && port == 80)
    return isDefault || port == 0 ? host : "\(host):\(port)"
  }
}

/// A platform credential the operator configured on a worker, by name, with the hosts it
/// may be sent to. A spec names it; it never names a file or a variable.
public struct BoundCredential: Sendable {
  /// A host it may go to: `host`, `*.domain` (any subdomain, not the domain itself),
  /// either with `:port`; HTTPS only unless written `http://host`, which allows plain HTTP
  /// to that host (tests on loopback).
  public struct HostRule: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int?
    public var allowsPlainHTTP: Bool

    /// Parses one rule, or nil with nothing usable in it.
    public init?(_ text: String) {
      var rest = Substring(text.lowercased())
      allowsPlainHTTP = false
      if rest.hasPrefix("http://") {
        allowsPlainHTTP = true
        rest = rest.dropFirst(7)
      } else if rest.hasPrefix("https://") {
        rest = rest.dropFirst(8)
      }
      while rest.hasSuffix("/") { rest = rest.dropLast() }
      port = nil
      // The port follows the last ":" of `host:port` or `[v6]:port`.
      let closing = rest.lastIndex(of: "]")
      if let colon = rest.lastIndex(of: ":"), closing.map({ $0 < colon }) ?? (rest.filter { $0 == ":" }.count == 1) {
        guard let number = Int(rest[rest.index(after: colon)...]), (1...65535).contains(number) else { return nil }
        port = number
        rest = rest[..<colon]
      }
      let allowed = rest.unicodeScalars.allSatisfy {
        $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-.*:[]_".unicodeScalars.contains($0))
      }
      guard allowed, !rest.isEmpty, !rest.dropFirst().contains("*"), rest.first != "*" || rest.hasPrefix("*.")
      else { return nil }
      // `*.com` would send a credential to every host in a top-level domain: a wildcard
      // covers a domain of at least two labels, none empty.
      if rest.hasPrefix("*.") {
        let labels = rest.dropFirst(2).split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, !labels.contains(where: \.isEmpty) else { return nil }
      }
      host = String(rest)
    }

    public func matches(_ url: FetchURL) -> Bool {
      guard url.scheme == "https" || (url.scheme == "http" && allowsPlainHTTP) else { return false }
      if let port, port != url.port { return false }
      if host.hasPrefix("*.") {
        let suffix = host.dropFirst(1)  // ".domain"
        return url.host.hasSuffix(suffix) && url.host.count > suffix.count
      }
      return url.host == host
    }

    public var description: String {
      (allowsPlainHTTP ? "http://" : "") + host + (port.map { ":\($0)" } ?? "")
    }
  }

  public var name: String
  /// The header line to send, e.g. "Authorization: Bearer …". Never logged.
  public var header: String
  public var hosts: [HostRule]

  public init(name: String, header: String, hosts: [HostRule]) {
    self.name = name
    self.header = header
    self.hosts = hosts
  }

  /// Whether the credential may be sent with a request to `url`.
  public func allows(_ url: FetchURL) -> Bool {
    hosts.contains { $0.matches(url) }
  }

  /// Where it may go, for messages.
  public var hostList: String { hosts.map(\.description).joined(separator: ", ") }
}
