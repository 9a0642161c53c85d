import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A real HTTP/1.1 server on loopback that plays a platform's export endpoint: it serves
/// the bundled sample exports, files from a test directory and generated exports of any
/// size, and misbehaves on request (throttling, errors, delays, trickling, redirects,
/// hanging). Tests, the demo and the benchmarks point Haat's workers at it.
///
/// Routes:
/// - `GET /samples/NAME`: a bundled sample export (`Sources/HaatFixtures/Samples`);
///   `GET /samples/` lists their names, one a line.
/// - `GET /files/PATH`: a file under the server's root directory; one `Range: bytes=A-B`
///   is served as 206 (`?ranges=0` ignores it, as some servers do).
/// - `GET /generate/posts.csv?rows=N&seed=S&accounts=K&multiline=1`: N generated rows over
///   K accounts (default: four), some captions over several lines with `multiline=1`, streamed.
/// - `GET /meta/vNN.0/{page-id}/posts?fields=…`: Meta's Graph API (`MetaGraphFixture`).
/// - `GET /shopify/{shop}/admin/api/2024-01/orders.json`: Shopify's Admin API (`ShopifyFixture`).
/// - `GET /tiktok/open_api/v1.3/report/integrated/get/`: TikTok's Business API report (`TikTokFixture`).
/// - `GET /pinterest/v5/pins`: Pinterest's pins (`PinterestFixture`).
/// - `GET /linkedin/rest/posts`, `/linkedin/rest/organizationalEntityShareStatistics`:
///   LinkedIn's posts and their statistics (`LinkedInFixture`).
/// - `GET /youtube/v3/{channels,playlistItems}`, `/youtubeanalytics/v2/reports`: YouTube's
///   uploads and their metrics (`YouTubeFixture`).
/// - `POST /meta/vNN.0/act_{id}/insights`, `GET /meta/vNN.0/{run}[/insights]`: Meta's ads
///   insights as asynchronous report runs (`MetaAdsFixture`).
/// - `GET /_requests?series=S`: when requests with `series=S` arrived (JSON, ms since the epoch).
/// - `GET /_stats`: connections and requests so far (JSON).
///
/// Options on any export route (query parameters; `trickle_ms`, `chunk` and `encoding` on
/// files and samples only):
/// `series` (names a request series), `fail_first=N` with `fail_status` (default 503) and
/// `retry_after` (seconds): the first N requests of the series fail; `status=S` always fails;
/// `delay_ms`: wait before answering; `trickle_ms` with `chunk`: send the body in pieces
/// with pauses; `encoding`: a Content-Encoding header (the file must already be encoded);
/// `redirect=N`: N redirects before the answer; `hang=1`: never answer; `mirror=1`: an
/// error's body repeats the request's line and Authorization.
public final class FixtureServer: Sendable {
  public let host: String
  public let port: Int
  private let channel: any Channel
  let state: FixtureState

  /// The server's base URL, e.g. "http://127.0.0.1:40123".
  public var baseURL: String { "http://\(host):\(port)" }

  /// Starts a server on `host:port` (0 = any free port).
  public static func start(
    host: String = "127.0.0.1", port: Int = 0, root: String? = nil,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) async throws -> FixtureServer {
    let state = FixtureState(root: root)
    let channel = try await ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 256)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        state.connections.add(1, ordering: .relaxed)
        return channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
          try channel.pipeline.syncOperations.addHandler(FixtureHandler(state: state))
        }
      }
      .bind(host: host, port: port).get()
    let bound = channel.localAddress?.port ?? port
    return FixtureServer(host: host, port: bound, channel: channel, state: state)
  }

  private init(host: String, port: Int, channel: any Channel, state: FixtureState) {
    self.host = host
    self.port = port
    self.channel = channel
    self.state = state
  }

  public func stop() async throws {
    try await channel.close().get()
  }

  /// When requests with `series=S` arrived, in milliseconds since the epoch.
  public func requestTimes(series: String) -> [Int64] {
    state.log.withLock { $0[series] ?? [] }
  }

  /// The path (or `series`) of every request so far, each once: a proxy's are whole URLs.
  public var requestedPaths: [String] { state.log.withLock { Array($0.keys) } }

  /// The Authorization header of every request with `series=S`, in order ("" when absent):
  /// what a recording server learns, for tests that no secret goes where it must not.
  public func authorizations(series: String) -> [String] {
    state.authorizations.withLock { $0[series] ?? [] }
  }

  /// Every Authorization header the server has seen, whatever the request.
  public var allAuthorizations: [String] {
    state.authorizations.withLock { $0.values.flatMap { $0 }.filter { !$0.isEmpty } }
  }

  /// Shopify's Admin REST API (`/shopify/{shop}/admin/api/…`) and what a test may change.
  public var shopify: ShopifyFixture { state.shopify }
  /// TikTok's Business API report (`/tiktok/open_api/v1.3/…`) and what a test may change in it.
  public var tiktok: TikTokFixture { state.tiktok }
  /// Pinterest's API v5 (`/pinterest/v5/…`) and what a test may change in it.
  public var pinterest: PinterestFixture { state.pinterest }
  /// Meta's Marketing API insights runs (`/meta/vNN.0/act_…/insights`, `/meta/vNN.0/{run}…`).
  public var metaAds: MetaAdsFixture { state.metaAds }
  /// LinkedIn's versioned REST API (`/linkedin/rest/…`) and what a test may change in it.
  public var linkedIn: LinkedInFixture { state.linkedIn }
  /// YouTube's Data and Analytics APIs (`/youtube/v3/…`, `/youtubeanalytics/v2/…`).
  public var youTube: YouTubeFixture { state.youTube }
  /// Meta's Graph API (`/meta/vNN.0/…`) and what a test may change in it.
  public var meta: MetaGraphFixture { state.meta }

  /// Connections accepted so far.
  public var connections: Int { state.connections.load(ordering: .relaxed) }
  /// Requests answered so far.
  public var requests: Int { state.requests.load(ordering: .relaxed) }

  /// The directory of the bundled sample exports.
  public static var samplesDirectory: URL? {
    Bundle.module.resourceURL?.appendingPathComponent("Samples")
  }
}

/// What the handlers share.
/// A paging position a client sent (an offset, a page number): a count from 0 to 10^8, or
/// nil, for which a fixture answers its platform's bad-parameter error. A negative or huge
/// one reached range and overflow traps and took the whole server down.
func pagingCount(_ text: (some StringProtocol)?) -> Int? {
  guard let text, let value = Int(text), value >= 0, value <= 100_000_000 else { return nil }
  return value
}

final class FixtureState: Sendable {
  let root: String?
  let connections = Atomic<Int>(0)
  let requests = Atomic<Int>(0)
  let log = Mutex<[String: [Int64]]>([:])
  let authorizations = Mutex<[String: [String]]>([:])
  let meta = MetaGraphFixture()
  let shopify = ShopifyFixture()
  let tiktok = TikTokFixture()
  let pinterest = PinterestFixture()
  let metaAds = MetaAdsFixture()
  let linkedIn = LinkedInFixture()
  let youTube = YouTubeFixture()

  init(root: String?) { self.root = root }

  /// Records a request of a series; returns how many the series has had before it.
  func record(series key: String) -> Int {
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    return log.withLock { log in
      defer { log[key, default: []].append(now) }
      return log[key]?.count ?? 0
    }
  }
}

final class FixtureHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let state: FixtureState
  private var head: HTTPRequestHead?

  init(state: FixtureState) { self.state = state }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head): self.head = head
    case .body: break
    case .end:
      guard let head else { return }
      self.head = nil
      state.requests.add(1, ordering: .relaxed)
      handle(head, context: context)
    }
  }

  private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
    let (path, query) = Self.split(head.uri)
    // Reading the request log is not a request of the series it reads: it counted, and
    // changed what `fail_first` then did.
    guard path != "/_requests", path != "/_stats" else {
      return route(head, path: path, query: query, seen: 0, context: context)
    }
    let key = query["series"] ?? path
    let seen = state.record(series: key)
    let authorization = head.headers["Authorization"].first ?? ""
    state.authorizations.withLock { $0[key, default: []].append(authorization) }
    if query["hang"] == "1" { return }
    // At most 10 minutes: a larger one overflowed the timer's nanoseconds and trapped.
    let delay = min(600_000, Int64(query["delay_ms"] ?? "") ?? 0)
    let respond = { [self] in
      self.route(head, path: path, query: query, seen: seen, context: context)
    }
    if delay > 0 {
      context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) { respond() }
    } else {
      respond()
    }
  }

  private func route(
    _ head: HTTPRequestHead, path: String, query: [String: String], seen: Int,
    context: ChannelHandlerContext
  ) {
    if let redirects = Int(query["redirect"] ?? ""), redirects > 0 {
      var next = query
      next["redirect"] = String(redirects - 1)
      next["series"] = next["series"] ?? path
      // Encoded again: a decoded value (a space, a `;`, a `+`) arrived changed after the hop.
      func encoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))
          ?? text
      }
      let location =
        path + "?" + next.map { "\(encoded($0.key))=\(encoded($0.value))" }.sorted().joined(separator: "&")
      return send(
        status: .found, headers: [("Location", location)], body: Array("redirect\n".utf8), head: head, context: context)
    }
    if let target = query["redirect_to"] {
      // An absolute redirect, to another host or scheme (percent-encoded in the query).
      return send(
        status: .found, headers: [("Location", target.removingPercentEncoding ?? target)],
        body: Array("redirect\n".utf8), head: head, context: context)
    }
    if let count = Int(query["header_lines"] ?? "") {
      // A hostile server: very many response headers, or one very long one.
      var headers = (0..<max(0, min(count, 200_000))).map { ("X-Filler-\($0)", "x") }
      if let bytes = Int(query["header_bytes"] ?? "") {
        headers.append(("X-Long", String(repeating: "a", count: max(0, min(bytes, 4 << 20)))))
      }
      return send(status: .ok, headers: headers, body: Array("ok\n".utf8), head: head, context: context)
    }
    // A status the fixture is asked to answer: three digits (a negative one trapped). Only
    // a number is one: Shopify's own `status=any` is the platform's parameter.
    for name in ["status", "fail_status"] {
      if let text = query[name], let code = Int(text), !(100...999).contains(code) {
        return send(
          status: .badRequest, headers: [("Content-Type", "text/plain")],
          body: Array("\(name) must be a status code from 100 to 999, not \(text)\n".utf8), head: head, context: context
        )
      }
    }
    if let failFirst = Int(query["fail_first"] ?? ""), seen < failFirst {
      let status = HTTPResponseStatus(statusCode: Int(query["fail_status"] ?? "") ?? 503)
      return sendError(status, query: query, head: head, context: context)
    }
    if let code = Int(query["status"] ?? "") {
      return sendError(HTTPResponseStatus(statusCode: code), query: query, head: head, context: context)
    }
    // The platforms' APIs: each fixture answers with a status, headers and a body.
    let host = head.headers["Host"].first ?? "127.0.0.1"
    var platform: (Int, [(String, String)], String)?
    if path.hasPrefix("/meta/"),
      let ads = state.metaAds.answer(
        method: head.method.rawValue, path: path, query: query,
        token: String((head.headers["Authorization"].first ?? "").dropFirst("Bearer ".count)), host: host)
    {
      platform = ads
    } else if path.hasPrefix("/meta/") {
      platform = state.meta.answer(
        path: path, query: query, authorization: head.headers["Authorization"].first ?? "", host: host)
    } else if path.hasPrefix("/shopify/") {
      platform = state.shopify.answer(
        path: path, query: query, token: head.headers["X-Shopify-Access-Token"].first ?? "", host: host)
    } else if path.hasPrefix("/youtube/") || path.hasPrefix("/youtubeanalytics/") {
      platform = state.youTube.answer(
        path: path, query: query, authorization: head.headers["Authorization"].first ?? "")
    } else if path.hasPrefix("/linkedin/") {
      platform = state.linkedIn.answer(
        path: path, query: query, authorization: head.headers["Authorization"].first ?? "",
        version: head.headers["LinkedIn-Version"].first ?? "",
        restli: head.headers["X-Restli-Protocol-Version"].first ?? "")
    } else if path.hasPrefix("/pinterest/") {
      platform = state.pinterest.answer(
        path: path, query: query, authorization: head.headers["Authorization"].first ?? "")
    } else if path.hasPrefix("/tiktok/") {
      platform = state.tiktok.answer(path: path, query: query, token: head.headers["Access-Token"].first ?? "")
    }
    if let (status, headers, body) = platform {
      return send(
        status: HTTPResponseStatus(statusCode: status), headers: headers, body: Array(body.utf8), head: head,
        context: context)
    }
    switch path {
    case "/_stats":
      let body =
        "{\"connections\":\(state.connections.load(ordering: .relaxed)),\"requests\":\(state.requests.load(ordering: .relaxed))}\n"
      send(
        status: .ok, headers: [("Content-Type", "application/json")], body: Array(body.utf8), head: head,
        context: context)
    case "/_requests":
      let times = state.log.withLock { $0[query["series"] ?? ""] ?? [] }
      let body = "[" + times.map(String.init).joined(separator: ",") + "]\n"
      send(
        status: .ok, headers: [("Content-Type", "application/json")], body: Array(body.utf8), head: head,
        context: context)
    case "/generate/posts.csv":
      let rows = UInt64(query["rows"] ?? "") ?? 1000
      let seed = UInt64(query["seed"] ?? "") ?? 1
      let accounts = UInt64(query["accounts"] ?? "") ?? 0
      streamGenerated(
        rows: rows, generator: PostsGenerator(seed: seed, accounts: accounts, multiline: query["multiline"] == "1"),
        head: head, context: context)
    case "/samples", "/samples/":
      // The bundled exports, one name a line: what the banner's "exports at /samples/" holds.
      let names = FixtureServer.samplesDirectory.flatMap {
        try? FileManager.default.contentsOfDirectory(atPath: $0.path)
      }
      // The exports alone: the manifest describes them, it is not one.
      let listing = (names ?? []).filter { $0 != "manifest.json" }.sorted().map { $0 + "\n" }.joined()
      send(
        status: .ok, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array(listing.utf8), head: head,
        context: context)
    default:
      guard let file = resolve(path) else {
        return send(
          status: .notFound, headers: [], body: Array("no such export: \(path)\n".utf8), head: head, context: context)
      }
      guard let data = FileManager.default.contents(atPath: file.path) else {
        return send(
          status: .notFound, headers: [], body: Array("cannot read \(path)\n".utf8), head: head, context: context)
      }
      var headers = [("Content-Type", query["content_type"] ?? Self.contentType(file.path))]
      if let encoding = query["encoding"] { headers.append(("Content-Encoding", encoding)) }
      if let range = head.headers["Range"].first, query["ranges"] != "0" {
        // One range, as RFC 9110 serves it (`ranges=0` plays a server that ignores Range).
        guard let (from, to) = Self.byteRange(range, size: data.count) else {
          headers.append(("Content-Range", "bytes */\(data.count)"))
          return send(
            status: .rangeNotSatisfiable, headers: headers, body: Array("range not satisfiable\n".utf8),
            head: head, context: context)
        }
        headers.append(("Content-Range", "bytes \(from)-\(to)/\(data.count)"))
        headers.append(("Accept-Ranges", "bytes"))
        return send(
          status: .partialContent, headers: headers, body: Array(data[from...to]), head: head, context: context)
      }
      if query["chunked"] == "1" {
        // No Content-Length: the body goes as HTTP/1.1 chunks of `chunk` bytes.
        let chunk = max(1, Int(query["chunk"] ?? "") ?? 16_384)
        trickleBody(
          Array(data), chunk: chunk, pauseMs: 0, chunked: true, headers: headers, head: head, context: context)
      } else if let trickle = Int64(query["trickle_ms"] ?? "").map({ min($0, 600_000) }), trickle > 0 {
        let chunk = max(1, Int(query["chunk"] ?? "") ?? 1024)
        trickleBody(Array(data), chunk: chunk, pauseMs: trickle, headers: headers, head: head, context: context)
      } else {
        send(status: .ok, headers: headers, body: Array(data), head: head, context: context)
      }
    }
  }

  private func resolve(_ path: String) -> URL? {
    let base: URL?
    let relative: String
    if path.hasPrefix("/samples/") {
      base = FixtureServer.samplesDirectory
      relative = String(path.dropFirst("/samples/".count))
    } else if path.hasPrefix("/files/"), let root = state.root {
      base = URL(fileURLWithPath: root)
      relative = String(path.dropFirst("/files/".count))
    } else {
      return nil
    }
    // Judged after decoding: `%2e%2e/` and `..%2f` are `../` too, and led out of the
    // directory. No `..` or `.` segment, no empty one, and no NUL.
    guard let base, let decoded = relative.removingPercentEncoding, !decoded.isEmpty, !decoded.contains("\0"),
      !decoded.hasPrefix("/"),
      decoded.split(separator: "/", omittingEmptySubsequences: false).allSatisfy({
        $0 != ".." && $0 != "." && !$0.isEmpty
      })
    else { return nil }
    // And a symbolic link inside must not lead out either.
    let file = base.appendingPathComponent(decoded).resolvingSymlinksInPath().path
    guard file.hasPrefix(base.resolvingSymlinksInPath().path + "/") else { return nil }
    return URL(fileURLWithPath: file)
  }

  private func sendError(
    _ status: HTTPResponseStatus, query: [String: String], head: HTTPRequestHead,
    context: ChannelHandlerContext
  ) {
    var headers: [(String, String)] = [("Content-Type", "text/plain")]
    if let retryAfter = query["retry_after"] { headers.append(("Retry-After", retryAfter)) }
    // `mirror=1`: the body repeats the request's line and Authorization, as a careless or
    // hostile platform's (or CDN's) error page may.
    let auth = head.headers["Authorization"].first ?? "none"
    let echo = query["mirror"] == "1" ? " (for \(head.method) \(head.uri); auth was: \(auth))" : ""
    send(
      status: status, headers: headers, body: Array("\(status.code) \(status.reasonPhrase)\(echo)\n".utf8),
      head: head, context: context)
  }

  private func send(
    status: HTTPResponseStatus, headers: [(String, String)], body: [UInt8], head: HTTPRequestHead,
    context: ChannelHandlerContext
  ) {
    var fields = HTTPHeaders(headers)
    fields.replaceOrAdd(name: "Content-Length", value: String(body.count))
    context.write(
      wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: fields))), promise: nil)
    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
    finish(head, context: context)
  }

  private func finish(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
    let keepAlive = head.isKeepAlive
    context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
      if !keepAlive { context.close(promise: nil) }
    }
  }

  private func trickleBody(
    _ body: [UInt8], chunk: Int, pauseMs: Int64, chunked: Bool = false, headers: [(String, String)],
    head: HTTPRequestHead, context: ChannelHandlerContext
  ) {
    var fields = HTTPHeaders(headers)
    if chunked {
      fields.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
    } else {
      fields.replaceOrAdd(name: "Content-Length", value: String(body.count))
    }
    context.writeAndFlush(
      wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: fields))), promise: nil)
    func sendPiece(from offset: Int) {
      guard context.channel.isActive else { return }
      guard offset < body.count else { return finish(head, context: context) }
      let end = min(body.count, offset + chunk)
      context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body[offset..<end])))), promise: nil)
      context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(pauseMs)) { sendPiece(from: end) }
    }
    sendPiece(from: 0)
  }

  private func streamGenerated(
    rows: UInt64, generator: PostsGenerator, head: HTTPRequestHead, context: ChannelHandlerContext
  ) {
    let fields = HTTPHeaders([("Content-Type", "text/csv"), ("Transfer-Encoding", "chunked")])
    context.write(
      wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: fields))), promise: nil)
    var buffer = context.channel.allocator.buffer(capacity: 1 << 16)
    buffer.writeString(PostsGenerator.header)
    func sendChunk(from row: UInt64, buffer: ByteBuffer) {
      guard context.channel.isActive else { return }
      var buffer = buffer
      var row = row
      while row < rows, buffer.readableBytes < 1 << 16 {
        buffer.writeString(generator.row(row))
        row += 1
      }
      let next = row
      // Wait for each write before generating more: the reader sets the pace.
      context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer)))).assumeIsolated().whenComplete { result in
        guard case .success = result else { return }
        if next >= rows {
          self.finish(head, context: context)
        } else {
          sendChunk(from: next, buffer: context.channel.allocator.buffer(capacity: 1 << 16))
        }
      }
    }
    sendChunk(from: 0, buffer: buffer)
  }

  static func split(_ uri: String) -> (String, [String: String]) {
    guard let question = uri.firstIndex(of: "?") else { return (uri, [:]) }
    var query: [String: String] = [:]
    for pair in uri[uri.index(after: question)...].split(separator: "&") {
      let parts = pair.split(separator: "=", maxSplits: 1)
      let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
      let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
      query[name] = value
    }
    return (String(uri[..<question]), query)
  }

  /// The first and last byte of a single `bytes=A-B` or `bytes=A-` range within `size`
  /// bytes; nil when it starts past the end (or is not one).
  static func byteRange(_ header: String, size: Int) -> (Int, Int)? {
    guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
    let parts = header.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
    guard parts.count == 2, let from = Int(parts[0]), from < size else { return nil }
    let to = parts[1].isEmpty ? size - 1 : min(size - 1, Int(parts[1]) ?? -1)
    return to >= from ? (from, to) : nil
  }

  static func contentType(_ path: String) -> String {
    if path.hasSuffix(".csv") { return "text/csv; charset=utf-8" }
    if path.hasSuffix(".ndjson") || path.hasSuffix(".jsonl") { return "application/x-ndjson" }
    if path.hasSuffix(".json") { return "application/json" }
    return "application/octet-stream"
  }
}
