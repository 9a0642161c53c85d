import Foundation
import HaatCore
import HaatFixtures
import Synchronization
import Testing

@testable import HaatFetch

#if canImport(Glibc)
  import Glibc
#endif

/// What a hostile spec, server or file system must not get out of the fetcher.
@Suite("Fetch security", .serialized)
struct FetchSecurityTests {
  typealias Fixture = FetcherTests.Fixture

  /// A root with a sub-directory, and a secret beside the root that no URL may reach.
  final class Roots: Sendable {
    let base: String
    var root: String { base + "/root" }
    var secret: String { base + "/outside/secret.csv" }

    init() throws {
      base = NSTemporaryDirectory() + "haat-roots-\(UUID().uuidString)"
      let manager = FileManager.default
      try manager.createDirectory(atPath: base + "/root/sub", withIntermediateDirectories: true)
      try manager.createDirectory(atPath: base + "/outside", withIntermediateDirectories: true)
      try Data("id,created_at\nSECRET,2026-01-01T00:00:00Z\n".utf8).write(to: URL(fileURLWithPath: secret))
      try Data("id\n1\n".utf8).write(to: URL(fileURLWithPath: base + "/root/sub/ok.csv"))
      try manager.createSymbolicLink(atPath: base + "/root/link.csv", withDestinationPath: secret)
      try manager.createSymbolicLink(atPath: base + "/root/outdir", withDestinationPath: base + "/outside")
      try manager.createSymbolicLink(atPath: base + "/root/zero", withDestinationPath: "/dev/zero")
      mkfifo(base + "/root/fifo", 0o600)
    }

    deinit { try? FileManager.default.removeItem(atPath: base) }
  }

  /// Every spelling of a way out of the root is refused, and none reads a byte of the secret.
  @Test(arguments: [
    "/sub/..%2f..%2foutside/secret.csv",
    "/sub/%2e%2e/%2e%2e/outside/secret.csv",
    "/sub/..%2F..%2Foutside%2Fsecret.csv",
    "/%2e%2e%2foutside%2fsecret.csv",
    "/sub/../../outside/secret.csv",
    "/link.csv",
    "/outdir/secret.csv",
    "/sub/..%252f..%252foutside/secret.csv",
  ])
  func fileURLsCannotLeaveTheirRoot(path: String) throws {
    let roots = try Roots()
    let fetcher = Fetcher(policy: FetcherTests.policy { $0.fileRoots = [roots.root] })
    defer { fetcher.shutdown() }
    var body = Data()
    let error = FetcherTests.error {
      _ = try fetcher.fetch(FetchRequest(url: "file://" + roots.root + path)) { body.append(contentsOf: $0) }
    }
    #expect(error != nil)
    #expect(error?.kind == .forbidden || error?.kind == .notFound)
    #expect(!String(decoding: body, as: UTF8.self).contains("SECRET"))
  }

  /// Found by a tester: a missing path outside the roots written through one
  /// (`root/../../x`) was judged as written, opened, and its `not_found` told that it did
  /// not exist; a path too long to open was `other` and retried.
  @Test func whetherAPathExistsShowsInsideTheRootsOnly() throws {
    let roots = try Roots()
    let fetcher = Fetcher(policy: FetcherTests.policy { $0.fileRoots = [roots.root] })
    defer { fetcher.shutdown() }
    func kind(_ path: String) -> FetchError.Kind? {
      FetcherTests.error { _ = try fetcher.fetch(FetchRequest(url: "file://" + path)) { _ in } }?.kind
    }
    for outside in ["/../outside/nope.csv", "/../outside/secret.csv", "/../nodir/deeper/nope.csv", "/../../nope"] {
      #expect(kind(roots.root + outside) == .forbidden, "\(outside)")
    }
    for missing in ["/sub/nope.csv", "/nodir/nope.csv", "/nodir/../nope.csv"] {
      #expect(kind(roots.root + missing) == .notFound, "\(missing)")
    }
    #expect(kind(roots.root + "/" + String(repeating: "a/", count: 2100) + "x.csv") == .invalidURL)
  }

  /// An empty root (`--file-root "$DIR"` with DIR unset) held every path as its prefix:
  /// /etc/passwd was opened and read. It is no root.
  @Test func anEmptyRootHoldsNothing() throws {
    let roots = try Roots()
    let fetcher = Fetcher(policy: FetcherTests.policy { $0.fileRoots = [""] })
    defer { fetcher.shutdown() }
    var body = Data()
    let error = FetcherTests.error {
      _ = try fetcher.fetch(FetchRequest(url: "file://" + roots.root + "/outside/secret.csv")) {
        body.append(contentsOf: $0)
      }
    }
    #expect(error?.kind == .forbidden, "\(String(describing: error))")
    #expect(body.isEmpty)
  }

  @Test func fileURLsReadRegularFilesInsideTheRootOnly() throws {
    let roots = try Roots()
    let fetcher = Fetcher(policy: FetcherTests.policy { $0.fileRoots = [roots.root] })
    defer { fetcher.shutdown() }
    let (_, body, _) = try FetcherTests.get(fetcher, "file://\(roots.root)/sub/ok.csv")
    #expect(body == Data("id\n1\n".utf8))
    // An encoded name inside the root is decoded and read.
    let (_, encoded, _) = try FetcherTests.get(fetcher, "file://localhost\(roots.root)/sub/%6Fk.csv")
    #expect(encoded == body)
    // A directory, a device and a FIFO are errors, not empty exports.
    for path in ["/sub", "/sub/", "/zero", "/fifo"] {
      let error = FetcherTests.error { _ = try FetcherTests.get(fetcher, "file://\(roots.root)\(path)") }
      #expect(error?.kind == .invalidURL || error?.kind == .forbidden, "\(path): \(String(describing: error))")
    }
    #expect(FetcherTests.error { _ = try FetcherTests.get(fetcher, "file://evil.example/etc/passwd") } != nil)
    #expect(FetcherTests.error { _ = try FetcherTests.get(fetcher, "file://\(roots.root)/sub/ok.csv%00") } != nil)
  }

  /// Found by a tester: a socket in the root failed as `other` and was retried; a file cut
  /// while read gave a job that succeeded on a fifth of its rows.
  @Test func aSocketIsNoExportAndAFileCutWhileReadFailsRetryable() throws {
    let roots = try Roots()
    let fetcher = Fetcher(policy: FetcherTests.policy { $0.fileRoots = [roots.root] })
    defer { fetcher.shutdown() }
    let socketPath = roots.root + "/sock.csv"
    let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(listener) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    _ = withUnsafeMutableBytes(of: &address.sun_path) { raw in
      socketPath.utf8CString.withUnsafeBytes {
        raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(raw.count)))
      }
    }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    try #require(bound == 0)
    let socketError = FetcherTests.error { _ = try FetcherTests.get(fetcher, "file://\(socketPath)") }
    #expect(socketError?.kind == .invalidURL && socketError?.retryable == false, "\(String(describing: socketError))")
    // A 4 MiB file cut to 1 MiB after its first chunk is read.
    let path = roots.root + "/cut.csv"
    try Data(repeating: UInt8(ascii: "x"), count: 4 << 20).write(to: URL(fileURLWithPath: path))
    var chunks = 0
    let cut = FetcherTests.error {
      _ = try fetcher.fetch(FetchRequest(url: "file://\(path)")) { _ in
        chunks += 1
        if chunks == 1 { _ = truncate(path, 1 << 20) }
      }
    }
    #expect(cut?.kind == .network && cut?.retryable == true, "\(String(describing: cut))")
    #expect(cut?.message.contains("shrank while it was read") == true, "\(String(describing: cut))")
  }

  /// A credential goes only to the hosts it is bound to: not to another host, not to a
  /// redirect target elsewhere, and the server on the other end records what it got.
  @Test func aCredentialGoesOnlyToItsHosts() async throws {
    let fixture = try await Fixture()
    try fixture.write("a.csv", Data("ok".utf8))
    let fetcher = Fetcher(policy: FetcherTests.policy())
    let port = fixture.server.port
    let bound = BoundCredential(
      name: "meta", header: "Authorization: Bearer s3cret-token",
      hosts: [try #require(BoundCredential.HostRule("http://127.0.0.1:\(port)"))])
    func fetch(_ url: String) throws(FetchError) {
      _ = try fetcher.fetch(FetchRequest(url: url, credential: bound)) { _ in }
    }
    try fetch("http://127.0.0.1:\(port)/files/a.csv?series=bound")
    #expect(fixture.server.authorizations(series: "bound") == ["Bearer s3cret-token"])
    // The same server under another name is another host.
    try fetch("http://localhost:\(port)/files/a.csv?series=other-name")
    #expect(fixture.server.authorizations(series: "other-name") == [""])
    // A redirect to another host goes there without the credential.
    let away = "http://localhost:\(port)/files/a.csv?series=redirected"
    let encoded = away.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
    try fetch("http://127.0.0.1:\(port)/files/a.csv?series=start&redirect_to=\(encoded)")
    #expect(fixture.server.authorizations(series: "start") == ["Bearer s3cret-token"])
    #expect(fixture.server.authorizations(series: "redirected") == [""])
    // A rule without http:// is HTTPS only: plain HTTP to the same host gets nothing.
    let httpsOnly = BoundCredential(
      name: "meta", header: "Authorization: Bearer s3cret-token",
      hosts: [try #require(BoundCredential.HostRule("127.0.0.1:\(port)"))])
    _ = try fetcher.fetch(
      FetchRequest(url: "http://127.0.0.1:\(port)/files/a.csv?series=plain", credential: httpsOnly)
    ) { _ in }
    #expect(fixture.server.authorizations(series: "plain") == [""])
    fetcher.shutdown()
    await fixture.stop()
  }

  @Test(arguments: [
    ("graph.facebook.com", "https://graph.facebook.com/v19.0/me", true),
    ("graph.facebook.com", "https://GRAPH.facebook.com/x", true),
    ("graph.facebook.com", "http://graph.facebook.com/x", false),
    ("graph.facebook.com", "https://graph.facebook.com.evil.example/x", false),
    ("graph.facebook.com", "https://graph.facebook.com@evil.example/x", false),
    ("graph.facebook.com", "https://evil.example/graph.facebook.com", false),
    // libcurl reads "evil.example\" as user info and connects to graph.facebook.com; the rule
    // judges the host curl connects to, with curl's own parser, so the two cannot disagree.
    ("graph.facebook.com", "https://evil.example\\@graph.facebook.com/", true),
    ("*.facebook.com", "https://graph.facebook.com/x", true),
    ("*.facebook.com", "https://facebook.com/x", false),
    ("*.facebook.com", "https://evilfacebook.com/x", false),
    ("api.example:8443", "https://api.example:8443/x", true),
    ("api.example:8443", "https://api.example/x", false),
    ("http://127.0.0.1", "http://127.0.0.1:9000/x", true),
  ])
  func hostRules(rule: String, url: String, allowed: Bool) throws {
    let parsed = try #require(BoundCredential.HostRule(rule))
    let target = FetchURL(url)
    #expect((target.map(parsed.matches) ?? false) == allowed)
  }

  /// A wildcard covers a domain of two labels at least: `*.com` would hand a credential to
  /// every host in a top-level domain, and it was accepted.
  @Test(arguments: ["*.com", "*.", "*..example.com", "*.example.", "http://*.io:443"])
  func aWildcardOverATopLevelDomainIsNoRule(rule: String) {
    #expect(BoundCredential.HostRule(rule) == nil)
  }

  /// A configured proxy is used, and the guard still refuses a private target through it.
  /// (That proxy variables in the environment are not followed is tested on a worker
  /// process, `ExfiltrationTests.proxyVariablesAreIgnored`: set here, they were this whole
  /// process's, and sent the URLSessions and children of tests running beside it to the
  /// proxy.)
  @Test func aConfiguredProxyStillMeetsTheGuard() async throws {
    let proxy = try await Fixture()
    let proxied = Fetcher(
      policy: FetcherTests.policy {
        $0.allowPrivateNetworks = false
        $0.proxy = "http://127.0.0.1:\(proxy.server.port)"
      })
    let refused = FetcherTests.error { _ = try FetcherTests.get(proxied, "http://169.254.169.254/latest/meta-data") }
    #expect(refused?.kind == .forbidden)
    #expect(!proxy.server.requestedPaths.contains { $0.contains("169.254.169.254") })
    proxied.shutdown()
    await proxy.stop()
  }

  /// A legitimate gzip body sent in chunks is judged on what was received, not refused as a
  /// bomb because the received count lagged; a real bomb sent the same way is still refused.
  @Test func chunkedGzipIsMeasuredOnWhatArrived() async throws {
    let fixture = try await Fixture()
    var text = "id,created_at,likes,caption\n"
    var seed: UInt64 = 7
    for row in 0..<60_000 {
      seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      text += "\(row),2026-01-01T00:00:00Z,\(seed % 1000),a caption that repeats a great deal a caption that repeats\n"
    }
    try fixture.writeGzip("posts.csv.gz", Data(text.utf8))
    try fixture.writeGzip("bomb.gz", Data(count: 64 << 20))
    let fetcher = Fetcher(policy: FetcherTests.policy())
    let (response, body, _) = try FetcherTests.get(
      fetcher, fixture.url("posts.csv.gz") + "?encoding=gzip&chunked=1&chunk=4096&content_type=text/csv")
    #expect(body.count == text.utf8.count)
    #expect(response.wireBytes > 0 && response.wireBytes < UInt64(text.utf8.count))
    let bomb = FetcherTests.error {
      _ = try FetcherTests.get(fetcher, fixture.url("bomb.gz") + "?encoding=gzip&chunked=1&chunk=4096")
    }
    #expect(bomb?.kind == .decompression)
    fetcher.shutdown()
    await fixture.stop()
  }

  /// Too many response headers, or one huge one, is a clear non-retryable bad response.
  @Test(arguments: ["header_lines=100000", "header_lines=1&header_bytes=1048576"])
  func hostileHeadersAreABadResponse(query: String) async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: FetcherTests.policy())
    let error = FetcherTests.error { _ = try FetcherTests.get(fetcher, fixture.url("x") + "?" + query) }
    #expect(error?.kind == .badResponse)
    #expect(error?.retryable == false)
    fetcher.shutdown()
    await fixture.stop()
  }

  /// IPv6 spellings that carry a private IPv4 address are judged by that address.
  @Test(arguments: [
    ([UInt8](repeating: 0, count: 12) + [127, 0, 0, 1], false),
    ([UInt8](repeating: 0, count: 12) + [169, 254, 169, 254], false),
    ([UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 10, 0, 0, 1], false),
    ([0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 192, 168, 1, 1], false),
    ([0x20, 0x02, 127, 0, 0, 1] + [UInt8](repeating: 0, count: 10), false),
    ([0x00, 0x64, 0xFF, 0x9B, 0x00, 0x01] + [UInt8](repeating: 0, count: 6) + [10, 1, 2, 3], false),
    ([0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 12), false),
    ([0x20, 0x01, 0x48, 0x60] + [UInt8](repeating: 0, count: 11) + [0x88], true),
    ([UInt8](repeating: 0, count: 12) + [8, 8, 8, 8], true),
  ])
  func ipv6FormsOfPrivateAddresses(bytes: [UInt8], isPublic: Bool) {
    #expect(AddressGuard.isPublic(v6: bytes) == isPublic)
  }

  /// Every spelling of a secret parameter is refused in a spec and redacted in logs, by one
  /// list: encoded, other separators, other cases and the common families.
  @Test(arguments: [
    "access%5Ftoken", "oauth_token", "api-key", "x-api-key", "private_token", "X-Goog-Signature", "ACCESS-TOKEN",
    "access%255Ftoken", "client.secret", "apiKey", "X-Amz-Credential", "refresh_token", "key", "sig",
    "shop_password", "hub.verify_token", "access_token",
    // Found by a tester: these passed.
    "bearer", "passphrase", "client_assertion", "SAML-Assertion",
  ])
  func secretParametersAreFoundAndRedacted(name: String) {
    for url in [
      "https://graph.example.com/me?fields=id&\(name)=S3CRETVALUE&after=x",
      "https://graph.example.com/me?fields=id;\(name)=S3CRETVALUE",
      "https://graph.example.com/me?\(name)=S3CRETVALUE",
    ] {
      #expect(URLSecrets.find(in: url) != nil, "\(url)")
      let redacted = URLRedaction.redact(url)
      #expect(!redacted.contains("S3CRETVALUE"), "\(redacted)")
      #expect(redacted.contains("graph.example.com/me?"))
    }
  }

  /// A fragment is stored with the spec though never sent: OAuth's implicit grant writes
  /// `#access_token=…`, an app's route `#/orders?token=…`. Redaction drops the fragment.
  @Test(arguments: ["access_token", "id_token", "client.secret", "api-key", "sig"])
  func secretsInAFragmentAreFound(name: String) {
    for url in [
      "https://shop.example.com/export.csv#\(name)=S3CRETVALUE&state=x",
      "https://shop.example.com/export.csv#state=x;\(name)=S3CRETVALUE",
      "https://shop.example.com/export.csv?page=2#/orders?\(name)=S3CRETVALUE",
    ] {
      #expect(URLSecrets.find(in: url) != nil, "\(url)")
      #expect(!URLRedaction.redact(url).contains("S3CRETVALUE"))
    }
  }

  /// Found by a tester: a redirect target's 401 page quoted its request line, and its
  /// `access_token` reached logs, `haat dead` and the dashboard in the error. An error's
  /// quoted body hides the secrets of the URL asked, and any value after a secret's name.
  @Test func anErrorBodyQuotesNoSecretOfTheURLAsked() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: FetcherTests.policy())
    let error = FetcherTests.error {
      _ = try FetcherTests.get(
        fetcher, fixture.url("x") + "?redirect=1&status=401&mirror=1&access_token=LEAKAT7X&X-Amz-Signature=LEAKSIG1")
    }
    let message = error?.message ?? ""
    #expect(message.hasPrefix("HTTP 401") && message.contains("access_token=…"), "\(message)")
    #expect(!message.contains("LEAKAT7X") && !message.contains("LEAKSIG1"), "\(message)")
    fetcher.shutdown()
    await fixture.stop()
  }

  /// The secret value of the URL asked, and a value a server wrote after a secret's name,
  /// in the shapes testers found: each hidden where it was written.
  @Test(arguments: [
    "token expired for GET /cdn/x.csv?access_token=LEAK1234&expires=1",
    "<SignatureProvided>LEAKSIG1</SignatureProvided>",
    #"{"error": "bad token LEAK0\/PZBx9sTokn+Qq7Zy"}"#, #"{"access_token":"LEAK0\/PZBx9sTokn+Qq7Zy"}"#,
    "token LEAK0%2fPZBx9sTokn%2bQq7Zy refused", "token LEAK0%252FPZBx9sTokn%252BQq7Zy refused",
    "token LEAK0/PZBX9STOKN+QQ7ZY refused", "token LEAK0&#x2F;PZBx9sTokn+Qq7Zy refused",
    "GET /x?a=1%26access_token%3DLEAK0%252FPZBx9sTokn%252BQq7Zy", #"{"access_token" : "LEAKsrv"}"#,
    "client_secret = LEAKsrv", #"{"client_secret":"\/LEAKsrv"}"#, "{'api_key': 'LEAKsrv'}",
    "Authorization: Bearer  LEAKsrv", "authorization:bearer\tLEAKsrv", "X-Api-Key: LEAKsrv",
    "password%3DLEAKsrv", "echo: Authorization: Bearer LEAK1234 end",
    "token &#00076;&#00069;&#65;&#75;0/PZBx9sTokn+Qq7Zy", "d\0e\0n\0y\0 \0L\0E\0A\0K\0S\0I\0G\01\0",
  ])
  func secretsInAnErrorBodyAreHidden(body: String) {
    let values = [
      "https://s3.example.com/b/k?X-Amz-Signature=LEAKSIG1&a=b", "https://h/x?sig=LEAK0%2FPZBx9sTokn%2BQq7Zy",
    ]
    .flatMap(URLRedaction.secretValues)
    let redacted = URLRedaction.redactText(body, values: values)
    #expect(!redacted.lowercased().contains("leak") && !redacted.lowercased().contains("pzbx9"), "\(redacted)")
    #expect(redacted.contains("…"), "\(redacted)")
  }

  /// Found by a tester: the credential, entity-encoded in an error body, was hidden only
  /// after the body was cut at 200 characters, and a cut copy showed its first half. The
  /// request's credential is hidden before the cut now.
  @Test func aCredentialEchoedInAnErrorBodyIsHiddenBeforeTheCut() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: FetcherTests.policy())
    let error = FetcherTests.error {
      _ = try fetcher.fetch(
        FetchRequest(
          url: fixture.url("x") + "?status=401&mirror=1",
          headers: ["Authorization: Bearer EAAGm0PX4ZCpsBA0ZB9q9Xk7Lm2"]), cancel: nil, onStart: nil, onBody: { _ in })
    }
    let message = error?.message ?? ""
    #expect(message.hasPrefix("HTTP 401") && !message.contains("EAAGm0"), "\(message)")
    fetcher.shutdown()
    await fixture.stop()
  }

  /// Ordinary error text keeps its words and figures.
  @Test(arguments: [
    #"{"error":{"message":"bad","code":190,"error_subcode":463}}"#, "access token: Session has expired",
    "see https://example.com/help?page=2&lang=en&id=42", "key: value, code: 17", "rows=5 at 12:30",
  ])
  func ordinaryErrorTextIsKept(body: String) {
    #expect(URLRedaction.redactText(body, values: ["LEAKSIG1"]) == body)
  }

  /// Found by a tester: an encoded `=` made the refusal quote the value with the name.
  @Test func aSecretIsNamedWithoutItsValue() {
    #expect(URLSecrets.find(in: "https://shop.example.com/x.csv?access_token%3DS3CRET") == "access_token")
  }

  /// Found by a tester: a one-slash typo made the URL "not a URL", and that error quoted it,
  /// password and all. User info is found without "://" too; a file path's "@" is not it.
  @Test func userInfoIsFoundInAURLWithoutItsSlashes() throws {
    for url in [
      "http:/user:S3CRET@127.0.0.1/x.csv", "http:user:S3CRET@127.0.0.1/x.csv", "//user:S3CRET@127.0.0.1/x.csv",
      "https:\\\\user:S3CRET@host/x.csv", "user:S3CRET@host/x.csv",
      // Found by a second tester: extra slashes, an encoded @, a typo for the colon.
      "https:///user:S3CRET@host/x.csv", "https:////user:S3CRET@host/x.csv", "http;//user:S3CRET@host/x.csv",
      "https://user:S3CRET%40host/x.csv", "https://user%3AS3CRET%40host/x.csv",
      // A third tester: a backslash in the host, which libcurl reads as user info.
      "http://evil.invalid\\u:S3CRET@127.0.0.1:1/a.csv", "https://good.com\\@user:S3CRET@example.com/a.csv",
    ] {
      #expect(URLSecrets.find(in: url) != nil, "\(url)")
      let error = try #require(URLSecrets.refusal(of: url, field: "sources[0].url"))
      #expect(!error.message.contains("S3CRET"), "\(error.message)")
    }
    #expect(URLSecrets.find(in: "file:///data/exports@2026/x.csv") == nil)
    #expect(URLSecrets.find(in: "https://host/x.csv?email=a@b.com") == nil)
    #expect(URLSecrets.find(in: "https://host/x.csv?auth:S3CRET") == "auth")
    #expect(URLSecrets.find(in: "https://host/x.csv?%E2%80%8Baccess_token=S3CRET") == "access_token")
    // The worker refuses one too, whoever sent it: libcurl would send it as Basic auth.
    let fetcher = Fetcher(policy: FetcherTests.policy())
    defer { fetcher.shutdown() }
    let refused = FetcherTests.error {
      _ = try FetcherTests.get(fetcher, "http://evil.invalid\\u:S3CRET@127.0.0.1:1/a.csv")
    }
    #expect(
      refused?.kind == .forbidden && refused?.message.contains("S3CRET") == false, "\(String(describing: refused))")
    #expect(URLSecrets.find(in: "https://host/exports@2026/x.csv") == nil)
  }

  /// An anchor, or a fragment's ordinary parameters, are no credential.
  @Test(arguments: ["#auth", "#token", "#section-2", "#/orders?page=2", "#state=x&scroll=10"])
  func ordinaryFragmentsAreKept(fragment: String) {
    #expect(URLSecrets.find(in: "https://shop.example.com/export.csv" + fragment) == nil)
  }

  @Test(arguments: ["fields", "after", "limit", "since", "until", "page_info", "metric", "format", "window"])
  func ordinaryParametersAreKept(name: String) {
    let url = "https://graph.example.com/me?\(name)=value1"
    #expect(URLSecrets.find(in: url) == nil)
    #expect(URLRedaction.redact(url) == url)
  }
}

/// A server whose reply is not HTTP at all (no status line): `bad_response`, as the docs
/// say, not `invalid_url` (the URL was fine).
@Suite struct NotHTTPTests {
  /// A listening socket on a free loopback port, and the port.
  static func listener() throws -> (socket: Int32, port: Int) {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
        bind(listener, pointer, length) == 0 && listen(listener, 1) == 0
          && getsockname(listener, pointer, &length) == 0
      }
    }
    if !bound { close(listener) }
    try #require(bound)
    return (listener, Int(UInt16(bigEndian: address.sin_port)))
  }

  @Test func aReplyWithoutAStatusLineIsABadResponse() throws {
    let (listener, port) = try Self.listener()
    defer { close(listener) }
    // One connection: read the request, answer with a line that is no HTTP, close.
    let server = Thread {
      let connection = accept(listener, nil, nil)
      guard connection >= 0 else { return }
      var buffer = [UInt8](repeating: 0, count: 4096)
      _ = read(connection, &buffer, buffer.count)
      let reply = Array("SSH-2.0-OpenSSH_9.2\r\nnot http at all\r\n".utf8)
      _ = write(connection, reply, reply.count)
      close(connection)
    }
    server.start()
    let fetcher = Fetcher(policy: FetcherTests.policy())
    let error = FetcherTests.error { _ = try FetcherTests.get(fetcher, "http://127.0.0.1:\(port)/x.csv") }
    #expect(error?.kind == .badResponse && error?.retryable == false, "\(String(describing: error))")
    fetcher.shutdown()
  }
}

/// Found by a tester: range requests said `Accept-Encoding: gzip, deflate`, and a server
/// may then answer a range of the gzip representation (RFC 9110), which is not the
/// export's bytes at those offsets. A range asks for identity.
@Suite struct RangeEncodingTests {
  /// The request a one-shot server on loopback received for `request` (its URL's host and
  /// port are the server's).
  static func requestSeen(_ request: FetchRequest) throws -> String {
    let (listener, port) = try NotHTTPTests.listener()
    defer { close(listener) }
    let seen = Mutex("")
    let done = DispatchSemaphore(value: 0)
    let server = Thread {
      defer { done.signal() }
      let connection = accept(listener, nil, nil)
      guard connection >= 0 else { return }
      var buffer = [UInt8](repeating: 0, count: 8192)
      let count = read(connection, &buffer, buffer.count)
      seen.withLock { $0 = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self) }
      let reply = Array(
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-1/10\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab"
          .utf8)
      _ = write(connection, reply, reply.count)
      close(connection)
    }
    server.start()
    let fetcher = Fetcher(policy: FetcherTests.policy())
    var fetched = request
    fetched.url = "http://127.0.0.1:\(port)/export.csv"
    _ = try? fetcher.fetch(fetched) { _ in }
    fetcher.shutdown()
    done.wait()
    return seen.withLock { $0 }
  }

  @Test func aRangeAsksForTheIdentityBytes() throws {
    let ranged = try Self.requestSeen(FetchRequest(url: "", range: 0...1)).lowercased()
    #expect(ranged.contains("range: bytes=0-1"), "\(ranged)")
    #expect(ranged.contains("accept-encoding: identity") && !ranged.contains("gzip"), "\(ranged)")
    let whole = try Self.requestSeen(FetchRequest(url: "")).lowercased()
    #expect(whole.contains("accept-encoding: gzip, deflate"), "\(whole)")
  }
}

/// Found by a tester: a non-2xx body was read to its end (22 GB in 15 s from a server
/// streaming an endless 500, past `--max-body-bytes`, and a redirect's body before its
/// `Location` was followed), holding the slot for the whole timeout. The worker keeps the
/// start of it and reads no more.
@Suite struct EndlessErrorBodyTests {
  /// Serves `replies` to one connection each, in order: each reply's head, then chunks of
  /// 64 KiB (`endless`) until the client closes or 256 MiB are sent, else `Content-Length`
  /// and body "id\n1\n". The bytes of body each connection was sent.
  static func serve(_ heads: [(head: String, endless: Bool)], _ body: (Int) throws -> Void) throws -> [Int] {
    let (listener, port) = try NotHTTPTests.listener()
    defer { close(listener) }
    let sent = Mutex([Int]())
    let done = DispatchSemaphore(value: 0)
    let server = Thread {
      defer { done.signal() }
      for (head, endless) in heads {
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 8192)
        _ = read(connection, &buffer, buffer.count)
        var total = 0
        let chunk = Array("10000\r\n".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 0x10000) + Array("\r\n".utf8)
        let start = Array(
          (head + (endless ? "Transfer-Encoding: chunked\r\n\r\n" : "Content-Length: 5\r\n\r\nid\n1\n")).utf8)
        _ = send(connection, start, start.count, Int32(MSG_NOSIGNAL))
        while endless, total < 256 << 20, send(connection, chunk, chunk.count, Int32(MSG_NOSIGNAL)) == chunk.count {
          total += 0x10000
        }
        sent.withLock { $0.append(total) }
        close(connection)
      }
    }
    server.start()
    try body(port)
    done.wait()
    return sent.withLock { $0 }
  }

  @Test func anEndlessErrorBodyIsCutAndTheStatusReported() throws {
    var error: FetchError?
    let sent = try Self.serve([("HTTP/1.1 500 Internal Server Error\r\n", true)]) { port in
      let fetcher = Fetcher(policy: FetcherTests.policy { $0.maxBodyBytes = 10_000_000 })
      defer { fetcher.shutdown() }
      error = FetcherTests.error { _ = try FetcherTests.get(fetcher, "http://127.0.0.1:\(port)/x.csv") }
    }
    #expect(
      error?.kind == .httpServer && error?.status == 500 && error?.retryable == true, "\(String(describing: error))")
    #expect(error?.message.hasPrefix("HTTP 500: xxxx") == true, "\(String(describing: error))")
    // What socket buffers hold, not the 256 MiB the server would send.
    #expect(sent.count == 1 && sent[0] < 32 << 20, "\(sent)")
  }

  @Test func anEndlessRedirectBodyIsCutAndTheRedirectFollowed() throws {
    var body = Data()
    let sent = try Self.serve([
      ("HTTP/1.1 302 Found\r\nLocation: /next.csv\r\n", true), ("HTTP/1.1 200 OK\r\n", false),
    ]) { port in
      let fetcher = Fetcher(policy: FetcherTests.policy())
      defer { fetcher.shutdown() }
      (_, body, _) = try FetcherTests.get(fetcher, "http://127.0.0.1:\(port)/x.csv")
    }
    #expect(String(decoding: body, as: UTF8.self) == "id\n1\n")
    #expect(sent.count == 2 && sent[0] < 32 << 20, "\(sent)")
  }
}
