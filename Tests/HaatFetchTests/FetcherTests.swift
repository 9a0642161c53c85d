import Foundation
import HaatFetch
import HaatFixtures
import Testing

/// The libcurl client against a real HTTP server on loopback.
@Suite("Fetcher", .serialized)
struct FetcherTests {
  /// A fixture server over a temporary directory of test files.
  final class Fixture: Sendable {
    let server: FixtureServer
    let root: String

    init() async throws {
      root = NSTemporaryDirectory() + "haat-fetch-\(UUID().uuidString)"
      try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
      server = try await FixtureServer.start(root: root)
    }

    func write(_ name: String, _ data: Data) throws {
      try data.write(to: URL(fileURLWithPath: root + "/" + name))
    }

    /// gzip with the system's gzip, as a platform would serve it.
    func writeGzip(_ name: String, _ data: Data) throws {
      try write(name + ".raw", data)
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/bin/sh")
      process.arguments = ["-c", "gzip -c '\(root)/\(name).raw' > '\(root)/\(name)'"]
      try process.run()
      process.waitUntilExit()
    }

    func url(_ path: String) -> String { "\(server.baseURL)/files/\(path)" }

    func stop() async {
      try? await server.stop()
      try? FileManager.default.removeItem(atPath: root)
    }
  }

  static func policy(_ change: (inout FetchPolicy) -> Void = { _ in }) -> FetchPolicy {
    var policy = FetchPolicy()
    policy.allowPrivateNetworks = true
    change(&policy)
    return policy
  }

  /// Fetches into memory (tests only; Haat itself streams).
  static func get(_ fetcher: Fetcher, _ url: String) throws(FetchError) -> (FetchResponse, Data, Int) {
    var body = Data()
    var chunks = 0
    let response = try fetcher.fetch(FetchRequest(url: url)) { chunk in
      body.append(contentsOf: chunk)
      chunks += 1
    }
    return (response, body, chunks)
  }

  /// The FetchError `body` throws, or nil.
  static func error(_ body: () throws -> Void) -> FetchError? {
    do {
      try body()
      return nil
    } catch {
      return error as? FetchError
    }
  }

  /// The banner says "exports at /samples/": that address lists them.
  @Test func theSamplesAreListed() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy())
    let (response, body, _) = try Self.get(fetcher, "\(fixture.server.baseURL)/samples/")
    let names = String(decoding: body, as: UTF8.self).split(separator: "\n")
    #expect(response.status == 200)
    #expect(names.contains("tiktok.ndjson") && names.contains("facebook-pages.csv"))
    #expect(names == names.sorted())
    fetcher.shutdown()
    await fixture.stop()
  }

  @Test func streamsTheBodyInChunks() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy())
    let data = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
    try fixture.write("big.bin", data)
    let (response, body, chunks) = try Self.get(fetcher, fixture.url("big.bin"))
    #expect(response.status == 200)
    #expect(body == data)
    #expect(chunks > 10)
    fetcher.shutdown()
    await fixture.stop()
  }

  @Test func reusesConnections() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy())
    try fixture.write("a.csv", Data("id\n1\n".utf8))
    for _ in 0..<5 { _ = try Self.get(fetcher, fixture.url("a.csv")) }
    #expect(fixture.server.connections == 1)
    let (second, _, _) = try Self.get(fetcher, fixture.url("a.csv"))
    #expect(second.reusedConnection)
    fetcher.shutdown()
    await fixture.stop()
  }

  /// A host that does not resolve fails that fetch (`dns`, retryable) and nothing after
  /// it: the handle goes back to the pool in a state every later fetch can use (a worker
  /// failed every task after one with "libcurl refused an option").
  @Test func aFailedLookupLeavesTheHandleUsable() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy())
    try fixture.write("a.csv", Data("id\n1\n".utf8))
    _ = try Self.get(fetcher, fixture.url("a.csv"))
    for _ in 0..<2 {
      let failed = Self.error { _ = try Self.get(fetcher, "http://nonexistent-host.invalid/x.csv") }
      #expect(failed?.kind == .dns && failed?.retryable == true, "\(String(describing: failed))")
      let (response, body, _) = try Self.get(fetcher, fixture.url("a.csv"))
      #expect(response.status == 200 && body == Data("id\n1\n".utf8))
    }
    fetcher.shutdown()
    await fixture.stop()
  }

  /// A request limited to some hosts (a platform API source's) follows no redirect off
  /// them: the hop is refused as the URL itself would be.
  @Test func aRedirectLeavesNoAllowedHost() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy())
    try fixture.write("a.csv", Data("id\n1\n".utf8))
    let rules = [try #require(BoundCredential.HostRule("http://127.0.0.1:\(fixture.server.port)"))]
    var direct = FetchRequest(url: fixture.url("a.csv"))
    direct.hosts = rules
    _ = try fetcher.fetch(direct) { _ in }
    let elsewhere = "http://localhost:\(fixture.server.port)/files/a.csv"
    var redirected = FetchRequest(
      url: fixture.url("a.csv") + "?redirect_to="
        + (elsewhere.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
    _ = try fetcher.fetch(redirected) { _ in }
    redirected.hosts = rules
    let refused = Self.error { _ = try fetcher.fetch(redirected) { _ in } }
    #expect(
      refused?.kind == .forbidden && refused?.message.contains("http://localhost") == true,
      "\(String(describing: refused))")
    fetcher.shutdown()
    await fixture.stop()
  }

  /// A redirect to `file://` is refused, saying a redirect may go to http(s) only (it said
  /// that file:// URLs can be fetched, naming the file:// URL it refused).
  @Test func aRedirectToAFileURLSaysRedirectsAreHTTPOnly() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy())
    try fixture.write("a.csv", Data("id\n1\n".utf8))
    let request = FetchRequest(url: fixture.url("a.csv") + "?redirect_to=file%3A%2F%2F%2Fetc%2Fhostname")
    let refused = Self.error { _ = try fetcher.fetch(request) { _ in } }
    #expect(
      refused?.kind == .invalidURL
        && refused?.message.hasPrefix("a redirect may go to an http:// or https:// URL only")
          == true,
      "\(String(describing: refused))")
    fetcher.shutdown()
    await fixture.stop()
  }

  @Test func decodesGzip() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy())
    let text = Data(String(repeating: "platform,account,id\nx,y,1\n", count: 5000).utf8)
    try fixture.writeGzip("posts.csv.gz", text)
    let (response, body, _) = try Self.get(fetcher, fixture.url("posts.csv.gz") + "?encoding=gzip")
    #expect(body == text)
    #expect(response.wireBytes < response.bodyBytes)
    fetcher.shutdown()
    await fixture.stop()
  }

  /// A gzip export cut mid-stream is an error that says so, never a shorter report
  /// (libcurl's own decoding took it for whole; the fault suite found it).
  @Test func aGzipStreamCutShortIsAnError() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy())
    let text = Data(String(repeating: "platform,account,id\nx,y,1\n", count: 5000).utf8)
    try fixture.writeGzip("whole.gz", text)
    let whole = try Data(contentsOf: URL(fileURLWithPath: fixture.root + "/whole.gz"))
    try fixture.write("cut.gz", whole.prefix(whole.count / 2))
    let error = Self.error { _ = try Self.get(fetcher, fixture.url("cut.gz") + "?encoding=gzip") }
    #expect(error?.kind == .decompression)
    #expect(error?.message.contains("cut short") == true, "\(String(describing: error))")
    // Garbage in place of gzip is refused too, not passed on.
    try fixture.write("not.gz", Data("platform,account\n".utf8))
    let garbage = Self.error { _ = try Self.get(fetcher, fixture.url("not.gz") + "?encoding=gzip") }
    #expect(garbage?.kind == .decompression)
    // Two gzip members back to back are one valid body.
    try fixture.write("two.gz", whole + whole)
    let (_, body, _) = try Self.get(fetcher, fixture.url("two.gz") + "?encoding=gzip")
    #expect(body == text + text)
    // An encoding Haat does not decode is named.
    let brotli = Self.error { _ = try Self.get(fetcher, fixture.url("two.gz") + "?encoding=br") }
    #expect(brotli?.kind == .decompression)
    #expect(brotli?.message.contains("\"br\"") == true)
    // Quoted as written: lower-cased, a credential a server echoed there slipped past the
    // worker's redaction (found by a tester).
    let echoed = Self.error { _ = try Self.get(fetcher, fixture.url("two.gz") + "?encoding=x-EaAbCdEfGh1JkLm") }
    #expect(echoed?.message.contains("\"x-EaAbCdEfGh1JkLm\"") == true, "\(String(describing: echoed))")
    fetcher.shutdown()
    await fixture.stop()
  }

  @Test func refusesADecompressionBomb() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy { $0.maxDecompressionRatio = 50 })
    try fixture.writeGzip("bomb.gz", Data(count: 64 << 20))
    let error = Self.error { _ = try Self.get(fetcher, fixture.url("bomb.gz") + "?encoding=gzip") }
    #expect(error?.kind == .decompression)
    #expect(error?.retryable == false)
    fetcher.shutdown()
    await fixture.stop()
  }

  @Test func limitsTheBodySize() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy { $0.maxBodyBytes = 1000 })
    try fixture.write("big.bin", Data(count: 100_000))
    let error = Self.error { _ = try Self.get(fetcher, fixture.url("big.bin")) }
    #expect(error?.kind == .tooLarge)
    #expect(error?.retryable == false)
    fetcher.shutdown()
    await fixture.stop()
  }

  static let statuses: [(String, String, Bool, UInt64?)] = [
    ("status=404", "http_404", false, nil),
    ("status=403", "http_403", false, nil),
    ("status=429&retry_after=3", "http_429", true, 3000),
    ("status=503&retry_after=1", "http_503", true, 1000),
    ("status=500", "http_500", true, nil),
    ("status=408", "http_408", true, nil),
  ]

  @Test(arguments: statuses)
  func classifiesHTTPErrors(query: String, code: String, retryable: Bool, retryAfterMs: UInt64?) async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy())
    try fixture.write("a.csv", Data("x".utf8))
    var started = false
    let error = Self.error {
      _ = try fetcher.fetch(FetchRequest(url: fixture.url("a.csv") + "?" + query), onStart: { _, _ in started = true })
      { _ in }
    }
    #expect(error?.code == code)
    #expect(error?.retryable == retryable)
    #expect(error?.retryAfterMs == retryAfterMs)
    #expect(!started, "an error body must never reach the parser")
    fetcher.shutdown()
    await fixture.stop()
  }

  @Test func followsRedirectsUpToTheLimit() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy { $0.maxRedirects = 3 })
    try fixture.write("a.csv", Data("ok".utf8))
    let (response, body, _) = try Self.get(fetcher, fixture.url("a.csv") + "?redirect=3")
    #expect(body == Data("ok".utf8))
    #expect(response.redirects == 3)
    let error = Self.error { _ = try Self.get(fetcher, fixture.url("a.csv") + "?redirect=4") }
    #expect(error?.kind == .tooManyRedirects)
    fetcher.shutdown()
    await fixture.stop()
  }

  @Test func aHangingServerTimesOut() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy { $0.totalTimeoutMs = 500 })
    let error = Self.error { _ = try Self.get(fetcher, fixture.url("any") + "?hang=1") }
    #expect(error?.kind == .timeout)
    #expect(error?.retryable == true)
    fetcher.shutdown()
    await fixture.stop()
  }

  @Test func refusesPrivateAddressesUnlessAllowed() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy { $0.allowPrivateNetworks = false })
    let error = Self.error { _ = try Self.get(fetcher, fixture.url("a.csv")) }
    #expect(error?.kind == .forbidden)
    #expect(error?.retryable == false)
    #expect(error?.message.contains("127.0.0.1") == true)
    #expect(fixture.server.requests == 0)
    fetcher.shutdown()
    await fixture.stop()
  }

  /// A `.gz` export is gunzipped whether its server says it is encoded or not: a
  /// `file://`, and a server that serves the file as it is (no Content-Encoding).
  @Test func aGzipFileIsGunzippedWithoutContentEncoding() async throws {
    let fixture = try await Fixture()
    let csv = Data(("id,likes\n" + (0..<2_000).map { "p\($0),\($0)\n" }.joined()).utf8)
    try fixture.writeGzip("posts.csv.gz", csv)
    let fetcher = Fetcher(policy: Self.policy { $0.fileRoots = [fixture.root] })
    #expect(try Self.get(fetcher, "file://\(fixture.root)/posts.csv.gz").1 == csv)
    #expect(try Self.get(fetcher, fixture.url("posts.csv.gz")).1 == csv)
    // With Content-Encoding: gzip it is decoded once, as before.
    #expect(try Self.get(fetcher, fixture.url("posts.csv.gz") + "?encoding=gzip").1 == csv)
    // A local gzip file cut short is a decompression error not worth retrying.
    let whole = try Data(contentsOf: URL(fileURLWithPath: fixture.root + "/posts.csv.gz"))
    try fixture.write("cut.csv.gz", whole.prefix(whole.count / 2))
    let cut = Self.error { _ = try Self.get(fetcher, "file://\(fixture.root)/cut.csv.gz") }
    #expect(cut?.kind == .decompression && cut?.retryable == false, "\(String(describing: cut))")
    fetcher.shutdown()
    await fixture.stop()
  }

  @Test func fileURLsStayInsideTheirRoots() async throws {
    let fixture = try await Fixture()
    try fixture.write("ok.csv", Data("id\n".utf8))
    let confined = Fetcher(policy: Self.policy { $0.fileRoots = [fixture.root] })
    let (_, body, _) = try Self.get(confined, "file://\(fixture.root)/ok.csv")
    #expect(body == Data("id\n".utf8))
    #expect(Self.error { _ = try Self.get(confined, "file:///etc/passwd") }?.kind == .forbidden)
    #expect(Self.error { _ = try Self.get(confined, "file://\(fixture.root)/../../etc/passwd") }?.kind == .forbidden)
    let closed = Fetcher(policy: Self.policy())
    #expect(Self.error { _ = try Self.get(closed, "file://\(fixture.root)/ok.csv") }?.kind == .forbidden)
    #expect(Self.error { _ = try Self.get(closed, "gopher://example.com/") }?.kind == .invalidURL)
    confined.shutdown()
    closed.shutdown()
    await fixture.stop()
  }

  @Test func aCancelledTransferStops() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy())
    try fixture.write("slow.bin", Data(count: 200_000))
    let flag = CancellationFlag()
    var received = 0
    let error = Self.error {
      _ = try fetcher.fetch(FetchRequest(url: fixture.url("slow.bin") + "?trickle_ms=50&chunk=1000"), cancel: flag) {
        chunk in
        received += chunk.count
        if received > 3000 { flag.cancel() }
      }
    }
    #expect(error?.kind == .cancelled)
    #expect(received < 200_000)
    fetcher.shutdown()
    await fixture.stop()
  }

  @Test func anErrorFromTheConsumerEndsTheTransferNotRetryable() async throws {
    let fixture = try await Fixture()
    let fetcher = Fetcher(policy: Self.policy())
    try fixture.write("a.csv", Data(count: 10_000))
    struct Broken: Error {}
    let error = Self.error { _ = try fetcher.fetch(FetchRequest(url: fixture.url("a.csv"))) { _ in throw Broken() } }
    #expect(error?.kind == .sink)
    #expect(error?.retryable == false)
    fetcher.shutdown()
    await fixture.stop()
  }

  @Test func redactsSecretsFromURLs() {
    #expect(
      URLRedaction.redact("https://user:pw@graph.facebook.com/v19.0/me/posts?fields=id&access_token=EAAB123&after=x")
        == "https://…@graph.facebook.com/v19.0/me/posts?fields=id&access_token=…&after=x")
    #expect(URLRedaction.redact("http://h/p?sig=abc#frag") == "http://h/p?sig=…#…")
    #expect(URLRedaction.redact("http://h/p") == "http://h/p")
    // A fragment is dropped whether or not a query follows it (found by `make fuzz`).
    #expect(URLRedaction.redact("https://h/cb#access_token=EAAB") == "https://h/cb#…")
    #expect(URLRedaction.redact("https://h/p#frag?token=EAAB") == "https://h/p#…")
  }
}

/// Found by a tester: a server that sent more than its Content-Length, the rest arriving
/// after libcurl had read the response, left it on the pooled connection, and the next
/// request (another task's, on a healthy URL) read it as its reply and died `bad_response`
/// at once. A reply that is not HTTP on a reused connection is asked again on a new one.
@Suite("Fetcher: a connection left dirty")
struct DirtyConnectionTests {
  static let server = """
    import socket, sys, threading, time
    listener = socket.socket(); listener.bind(('127.0.0.1', 0)); listener.listen(8)
    open(sys.argv[1], 'w').write(str(listener.getsockname()[1]))
    def serve(connection):
        data = b''
        while True:
            while b'\\r\\n\\r\\n' not in data:
                chunk = connection.recv(4096)
                if not chunk: return
                data += chunk
            head, data = data.split(b'\\r\\n\\r\\n', 1)
            if b' /long ' in head:
                connection.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\nhello')
                time.sleep(0.1)
                connection.sendall(b'LEFT OVER, NOT HTTP\\r\\n\\r\\n')
            else:
                connection.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')
    deadline = time.time() + 20
    listener.settimeout(20)
    while time.time() < deadline:
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            break
        threading.Thread(target=serve, args=(connection,), daemon=True).start()
    """

  @Test func bytesLeftOnAReusedConnectionAreNotTheNextReply() throws {
    let directory = NSTemporaryDirectory() + "haat-dirty-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try Self.server.write(toFile: directory + "/server.py", atomically: true, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = [directory + "/server.py", directory + "/port"]
    // Its own output: an inherited one held `swift test`'s pipe open after the test ended.
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    defer {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }
    var port: Int?
    for _ in 0..<100 where port == nil {
      port = (try? String(contentsOfFile: directory + "/port", encoding: .utf8)).flatMap { Int($0) }
      if port == nil { Thread.sleep(forTimeInterval: 0.05) }
    }
    let listening = try #require(port, "the server did not start")
    let fetcher = Fetcher(policy: FetcherTests.policy())
    defer { fetcher.shutdown() }
    let (first, body, _) = try FetcherTests.get(fetcher, "http://127.0.0.1:\(listening)/long")
    #expect(first.status == 200 && body == Data("hello".utf8))
    // The left-over bytes arrive on the pooled connection after the response was read.
    Thread.sleep(forTimeInterval: 0.3)
    let (second, ok, _) = try FetcherTests.get(fetcher, "http://127.0.0.1:\(listening)/ok")
    #expect(second.status == 200 && ok == Data("ok".utf8))
  }
}
