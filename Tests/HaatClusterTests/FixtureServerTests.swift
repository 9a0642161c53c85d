import Foundation
import HaatFixtures
import Testing

/// The fixture platform server as a hostile client meets it (found by a tester): it runs in
/// `haat demo`'s process, so one request must never take it down or read outside its
/// directories.
@Suite struct FixtureServerTests {
  /// A request as written, on a connection of its own: its status line and body.
  static func answer(_ server: FixtureServer, _ target: String, headers: [String] = []) async throws -> (
    status: String, body: String
  ) {
    let request =
      (["GET \(target) HTTP/1.1", "Host: 127.0.0.1", "Connection: close"] + headers)
      .joined(separator: "\r\n") + "\r\n\r\n"
    let (reply, _) = try await Task.detached { try AdminPortTests.exchange(port: server.port, request) }.value
    let status = reply.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
    let body = reply.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
    return (status, body)
  }

  static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

  /// Paging positions past the end, negative or huge, and out-of-range fault parameters:
  /// each trapped (a range or an overflow) and killed the server. Now each platform answers
  /// as it does (an empty page past the end, its bad-parameter error), and the server lives.
  @Test func hostilePagingAndFaultParametersAreAnsweredNotFatal() async throws {
    let server = try await FixtureServer.start()
    defer { Task { try? await server.stop() } }
    let tiktok = ["Access-Token: fixture-tiktok-token"]
    let meta = ["Authorization: Bearer fixture-meta-token"]
    let report = "/tiktok/open_api/v1.3/report/integrated/get/?advertiser_id=7&start_date=2026-01-01"
    let cases: [(String, [String], String, String)] = [
      // Past the last page: TikTok's empty list.
      (report + "&end_date=2026-01-01&page=2", tiktok, "200", #""list":[]"#),
      (report + "&end_date=2026-01-10&page=9223372036854775807", tiktok, "200", #""code":40002"#),
      (report + "&end_date=2026-01-10&page=-3", tiktok, "200", #""code":40002"#),
      // Days before 1970 (a negative day number trapped).
      (
        "/tiktok/open_api/v1.3/report/integrated/get/?advertiser_id=1&start_date=1969-12-30&end_date=1970-01-02",
        tiktok, "200", #""code":0"#
      ),
      ("/meta/v21.0/1/posts?after=p9223372036854775807", meta, "400", "Invalid cursor"),
      ("/meta/v21.0/1/posts?after=p-5", meta, "400", "Invalid cursor"),
      (
        "/shopify/dhaka-threads/admin/api/2024-01/orders.json?limit=5&page_info=\(Self.base64("-3|"))",
        ["X-Shopify-Access-Token: fixture-shopify-token"], "400", "page_info"
      ),
      (
        "/pinterest/v5/pins?page_size=5&bookmark=\(Self.base64("off:9223372036854775807"))",
        ["Authorization: Bearer fixture-pinterest-token"], "400", "bookmark"
      ),
      (
        "/youtube/v3/playlistItems?part=contentDetails&playlistId=UUabc&maxResults=5&pageToken=\(Self.base64("-2"))",
        ["Authorization: Bearer fixture-youtube-token"], "400", "invalidPageToken"
      ),
      (
        "/linkedin/rest/posts?q=author&author=urn:li:organization:5&count=10&start=9223372036854775807",
        [
          "Authorization: Bearer fixture-linkedin-token", "LinkedIn-Version: 202506",
          "X-Restli-Protocol-Version: 2.0.0",
        ], "400", "start"
      ),
      ("/samples/x-posts.ndjson?header_lines=-1", [], "200", "ok"),
      ("/samples/x-posts.ndjson?header_lines=1&header_bytes=-1", [], "200", "ok"),
      ("/samples/x-posts.ndjson?status=-1", [], "400", "status must be a status code from 100 to 999"),
      ("/samples/x-posts.ndjson?fail_first=1&fail_status=99999", [], "400", "fail_status"),
    ]
    for (target, headers, status, body) in cases {
      let answer = try await Self.answer(server, target, headers: headers)
      #expect(answer.status.hasPrefix("HTTP/1.1 \(status)"), "\(target): \(answer.status)")
      #expect(answer.body.contains(body), "\(target): \(answer.body.prefix(300))")
    }
    // Still serving.
    #expect(try await Self.answer(server, "/samples/").body.contains("x-posts.ndjson"))
  }

  /// A percent-encoded `..` (or a link) led out of /samples/ and out of --root.
  @Test func noSpellingOfAPathLeavesItsDirectory() async throws {
    let base = NSTemporaryDirectory() + "haat-fixture-root-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: base + "/root/sub", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: base) }
    try "SECRET\n".write(toFile: base + "/outside.txt", atomically: true, encoding: .utf8)
    try "inside\n".write(toFile: base + "/root/sub/in.txt", atomically: true, encoding: .utf8)
    try FileManager.default.createSymbolicLink(
      atPath: base + "/root/link.txt", withDestinationPath: base + "/outside.txt")
    let server = try await FixtureServer.start(root: base + "/root")
    defer { Task { try? await server.stop() } }
    #expect(try await Self.answer(server, "/files/sub/in.txt").body == "inside\n")
    for target in [
      "/files/%2e%2e/outside.txt", "/files/..%2foutside.txt", "/files/sub/%2E%2E/%2e%2e/outside.txt",
      "/files/sub%2f..%2f..%2foutside.txt", "/files/link.txt", "/files/../outside.txt", "/files/%2foutside.txt",
      "/samples/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/hostname",
      "/samples/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fhostname",
    ] {
      let answer = try await Self.answer(server, target)
      #expect(answer.status.hasPrefix("HTTP/1.1 404"), "\(target): \(answer.status)")
      #expect(!answer.body.contains("SECRET"), "\(target)")
    }
  }

  /// Reading the request log is not a request of the series it reads: it counted, and the
  /// `fail_first` that followed answered 200 where it should have failed.
  @Test func readingTheRequestLogIsNotARequest() async throws {
    let server = try await FixtureServer.start()
    defer { Task { try? await server.stop() } }
    for _ in 0..<2 { _ = try await Self.answer(server, "/_requests?series=q7") }
    let first = try await Self.answer(server, "/samples/x-posts.ndjson?fail_first=2&series=q7")
    #expect(first.status.hasPrefix("HTTP/1.1 503"), "\(first.status)")
    #expect(try await Self.answer(server, "/_requests?series=q7").body.split(separator: ",").count == 1)
  }
}
