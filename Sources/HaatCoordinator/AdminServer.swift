import Foundation
import HaatCore
import HaatProtocol
import HaatStore
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// The admin HTTP port (`--admin-listen`, off by default): `/metrics` (Prometheus text),
/// `/healthz` (the process and its event loops, the core's and the sessions', answer), `/readyz` (the store answers and
/// its disk has room) and the dashboard (`/`, `/jobs/ID`; Dashboard.swift). On a loopback address it serves without auth. On any other it needs
/// the coordinator's TLS certificate, `/metrics` a bearer token of the `metrics` role and
/// the dashboard one of the `dashboard` role (basic auth, for browsers), never a protocol
/// token; the probes stay open (they tell nothing but up or down).
public enum AdminServer {
  public static func isLoopback(_ host: String) -> Bool {
    host == "localhost" || host == "::1" || host.hasPrefix("127.")
  }

  /// `requireAuth` asks for TLS and tokens on a loopback address too (`--admin-auth`).
  static func application(
    host: String, port: Int, requireAuth: Bool, core: CoordinatorCore, tokens: TokenStore, tls: TLSServerSettings?,
    logger: Logger, onRunning: @escaping @Sendable (Int) -> Void
  ) throws -> some ApplicationProtocol {
    let open = isLoopback(host) && !requireAuth
    guard open || tls != nil else {
      throw HaatError(
        .badRequest,
        isLoopback(host)
          ? "--admin-auth needs TLS (--tls-cert and --tls-key)"
          : "--admin-listen \(host):\(port) is not a loopback address: it needs TLS (--tls-cert and --tls-key)")
    }
    // Every GET answers HEAD too: the same status and headers (Content-Length included),
    // no body. And another method on a path that exists is a 405, not a 404.
    let router = Router(context: AdminRequestContext.self, options: .autoGenerateHeadEndpoints)
    // Wrong tokens are logged and, 20 from one address in a minute, refused for the rest of
    // it, as failed handshakes are on the protocol port (a throttle of its own: a scraper
    // with a stale token does not lock the address's workers out).
    let throttle = AuthThrottle(logger: logger, event: "admin request refused", subject: "path")
    @Sendable func guarded(_ request: Request, _ context: AdminRequestContext, _ role: Role) -> Response? {
      open ? foreignHost(request) : refusal(request, context, role: role, tokens: tokens, throttle: throttle)
    }
    @Sendable func healthz(_ request: Request, _: AdminRequestContext) async -> Response {
      guard await core.answers(within: .seconds(2)) else {
        return text(.serviceUnavailable, "the coordinator's event loops did not answer within 2 s\n")
      }
      return text(.ok, "ok\n")
    }
    @Sendable func readyz(_ request: Request, _: AdminRequestContext) async -> Response {
      if let problem = await core.readiness() { return text(.serviceUnavailable, problem + "\n") }
      return text(.ok, "ready\n")
    }
    let pages = DashboardCache()
    @Sendable func jobPage(_ id: JobID) async throws -> Data? {
      try await pages.page("job \(id)") {
        core.metrics.dashboardPages.increment()
        return try await Dashboard.jobPage(id, core: core, cache: pages).map(Dashboard.encoded)
      }
    }
    router.get("/healthz", use: healthz)
    router.get("/readyz", use: readyz)
    router.get("/metrics") { request, context -> Response in
      if let refusal = guarded(request, context, .metrics) { return refusal }
      await core.recordMetrics()
      var headers = HTTPFields()
      headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
      return Response(
        status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: core.metrics.registry.emitToBuffer())))
    }
    // The dashboard: pages, their script and style, and the JSON they poll.
    router.get("/") { request, context -> Response in
      if let refusal = guarded(request, context, .dashboard) {
        return refusal
      }
      return Dashboard.asset(
        Dashboard.page(title: "Haat — cluster", script: "cluster"), type: "text/html; charset=utf-8")
    }
    router.get("/jobs/:id") { request, context -> Response in
      if let refusal = guarded(request, context, .dashboard) {
        return refusal
      }
      // A job that does not exist is a 404, not a page that says the coordinator is down.
      guard let id = context.parameters.get("id").flatMap({ JobID($0) }), try await jobPage(id) != nil
      else { return text(.notFound, "no such job\n") }
      return Dashboard.asset(Dashboard.page(title: "Haat — job", script: "job"), type: "text/html; charset=utf-8")
    }
    router.get("/dashboard.js") { _, _ in
      Dashboard.asset(DashboardAssets.script, type: "text/javascript; charset=utf-8")
    }
    router.get("/dashboard.css") { _, _ in Dashboard.asset(DashboardAssets.style, type: "text/css; charset=utf-8") }
    router.get("/api/cluster") { request, context -> Response in
      if let refusal = guarded(request, context, .dashboard) {
        return refusal
      }
      let cluster = try await pages.page("cluster") {
        core.metrics.dashboardPages.increment()
        return try Dashboard.encoded(try await Dashboard.cluster(core: core))
      }
      return Dashboard.json(cluster ?? Data())
    }
    router.get("/api/jobs/:id") { request, context -> Response in
      if let refusal = guarded(request, context, .dashboard) {
        return refusal
      }
      guard let id = context.parameters.get("id").flatMap({ JobID($0) }), let page = try await jobPage(id)
      else { return text(.notFound, "no such job\n") }
      return Dashboard.json(page)
    }
    var quiet = logger
    quiet.logLevel = .warning
    let configuration = ApplicationConfiguration(address: .hostname(host, port: port), serverName: "haat")
    // An idle connection (or one that never starts its TLS, or trickles its request) is
    // closed after 30 s: open ones were kept for ever, each a file descriptor the protocol
    // port needs too. And a peer may hold only so many at once.
    let http1Configuration = HTTP1Channel.Configuration(idleTimeout: .seconds(30))
    let tlsConfiguration = try tls?.makeConfiguration()
    let connections = AdminConnections()
    let server = HTTPServerBuilder { responder in
      let http1 = HTTP1Channel(responder: responder, configuration: http1Configuration)
      guard let tlsConfiguration else { return BoundedChannel(inner: http1, connections: connections, log: logger) }
      return BoundedChannel(
        inner: try TLSChannel(http1, tlsConfiguration: tlsConfiguration), connections: connections, log: logger)
    }
    return Application(
      responder: ReadOnlyMethods(router: router.buildResponder()), server: server, configuration: configuration,
      onServerRunning: { channel in onRunning(channel.localAddress?.port ?? port) }, logger: quiet)
  }

  /// On an open (loopback, no auth) port, the 421 for a request whose `Host` is not a
  /// loopback name: a web page the operator visits could otherwise point its own name at
  /// 127.0.0.1 (DNS rebinding) and read the dashboard. nil when the host is loopback.
  static func foreignHost(_ request: Request) -> Response? {
    var host = request.head.authority ?? ""
    // What follows the host is a port or nothing: `[::1].evil` passed as `[::1]`.
    var rest = ""
    if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
      rest = String(host[host.index(after: close)...])
      host = String(host[host.index(after: host.startIndex)..<close])
    } else if let colon = host.lastIndex(of: ":") {
      rest = String(host[colon...])
      host = String(host[..<colon])
    }
    let port = rest.dropFirst()
    let portOK =
      rest.isEmpty
      || (rest.hasPrefix(":") && !port.isEmpty && port.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        && UInt16(port) != nil)
    // A literal only: `127.attacker.example` is a name its owner can point anywhere.
    let lowered = host.lowercased()
    let parts = lowered.split(separator: ".", omittingEmptySubsequences: false)
    let literal =
      parts.count == 4 && parts[0] == "127"
      && parts.allSatisfy { part in UInt8(part).map { String($0) == part } ?? false }
    guard !(portOK && (lowered == "localhost" || lowered == "::1" || literal)) else { return nil }
    // A request without `Host` (a plain HTTP/1.0 scraper) is told so: it read "not " with
    // nothing after it (a tester).
    let named = host.isEmpty ? "a request without a Host header" : DisplayText.escape(String(host.prefix(255)))
    return text(.misdirectedRequest, "this admin port answers requests for a loopback host only, not \(named)\n")
  }

  /// The 401 for a request without a token of `role`, or nil when it has one; a 429 while
  /// the peer's address is locked out for too many wrong tokens.
  static func refusal(
    _ request: Request, _ context: AdminRequestContext, role: Role, tokens: TokenStore, throttle: AuthThrottle
  ) -> Response? {
    let address = context.remoteAddress?.ipAddress ?? ""
    var headers = HTTPFields()
    if let wait = throttle.refusal(for: address) {
      let seconds = max(1, wait.nanoseconds / 1_000_000_000)
      headers[.retryAfter] = String(seconds)
      headers[.contentType] = "text/plain; charset=utf-8"
      return Response(
        status: .tooManyRequests, headers: headers,
        body: .init(
          byteBuffer: ByteBuffer(string: "too many wrong tokens from \(address); try again in \(seconds) s\n")))
    }
    if let header = request.headers[.authorization] {
      if authorized(header, role: role, tokens: tokens) { return nil }
      // A request with no credentials is a browser's first ask, not a guess: only a wrong
      // one counts.
      throttle.failed(
        address: address, tokenID: tokenID(header), subject: request.uri.path,
        error: HaatError(.authFailed, "no valid token of the \(role.rawValue) role"))
    }
    // Browsers ask for basic auth (the dashboard); Prometheus sends a bearer token.
    headers[.wwwAuthenticate] = role == .dashboard ? "Basic realm=\"haat\", charset=\"UTF-8\"" : "Bearer realm=\"haat\""
    return Response(
      status: .unauthorized, headers: headers,
      body: .init(byteBuffer: ByteBuffer(string: "a token of the \(role.rawValue) role is required\n")))
  }

  /// `Bearer ID:SECRET`, or basic auth with the id as user and the secret as password, of a
  /// token of `role`, compared in constant time.
  static func authorized(_ header: String, role: Role, tokens: TokenStore) -> Bool {
    guard let value = credentials(header), let colon = value.firstIndex(of: ":") else { return false }
    let id = String(value[..<colon])
    // A token made since the last reload: read the file again (a stat when it has not changed).
    if tokens.cachedToken(id: id) == nil { tokens.refresh() }
    guard let token = tokens.cachedToken(id: id), token.role == role else { return false }
    return Hex.constantTimeEqual(Array(token.secret.utf8), Array(value[value.index(after: colon)...].utf8))
  }

  /// `ID:SECRET` from a bearer or basic `Authorization` header; nil for another scheme.
  static func credentials(_ header: String) -> String? {
    // The scheme's name is case-insensitive (RFC 9110 §11.1): `bearer` is `Bearer`.
    let parts = header.split(separator: " ", maxSplits: 1)
    guard parts.count == 2 else { return nil }
    let credentials = parts[1].trimmingCharacters(in: .whitespaces)
    switch parts[0].lowercased() {
    case "bearer":
      return credentials.trimmingCharacters(in: .whitespaces)
    case "basic":
      guard let decoded = Data(base64Encoded: credentials) else { return nil }
      return String(decoding: decoded, as: UTF8.self).trimmingCharacters(in: .whitespaces)
    default:
      return nil
    }
  }

  /// The token id a header names, for the log (never its secret); "" when it names none.
  static func tokenID(_ header: String) -> String {
    guard let value = credentials(header), let colon = value.firstIndex(of: ":") else { return "" }
    return String(value[..<colon])
  }

  /// A plain-text answer.
  static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "text/plain; charset=utf-8"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
  }
}

extension CoordinatorCore {
  /// Whether the loop runs a submitted closure within `timeout` (a wedged loop does not).
  func answers(within timeout: Duration) async -> Bool {
    await withTaskGroup(of: Bool.self) { group in
      let loops = [loop] + sessionLoops
      group.addTask {
        for loop in loops where (try? await loop.submit {}.get()) == nil { return false }
        return true
      }
      group.addTask {
        try? await Task.sleep(for: timeout)
        return false
      }
      let first = await group.next() ?? false
      group.cancelAll()
      return first
    }
  }

  /// Why the coordinator should not get traffic now, or nil: the store does not answer a
  /// read within 2 s, a commit failed in the last 10 s (a full disk: reads still answer),
  /// or its disk is below the free-space floor.
  func readiness() async -> String? {
    let store = self.store
    let nowMs = self.nowMs
    let read = await withTaskGroup(of: String?.self) { group in
      group.addTask {
        do {
          _ = try await store.readyQueue(nowMs: nowMs)
          return nil
        } catch {
          return "the store does not answer: \(error)"
        }
      }
      group.addTask {
        try? await Task.sleep(for: .seconds(2))
        return "the store did not answer within 2 s"
      }
      let first = await group.next() ?? "no answer"
      group.cancelAll()
      return first
    }
    if let read { return read }
    return
      (try? await loop.submit {
        self.commits.recentFailure(within: .seconds(10)).map {
          "a store commit failed in the last 10 s (retried until it succeeds): \($0)"
        }
          ?? self.diskPressure()?.message
      }.get()) ?? nil
  }

  /// Sets the scrape's gauges from the loop's state and the store's queue.
  func recordMetrics() async {
    var snapshot = (try? await loop.submit { self.metricsSnapshot() }.get()) ?? CoordinatorMetrics.Snapshot()
    if let queue = try? await store.readyQueue(nowMs: snapshot.nowMs) {
      for (pool, depth) in queue { snapshot.queue[pool] = (depth.ready, depth.oldestReadyMs) }
    }
    metrics.record(snapshot)
  }

  private func metricsSnapshot() -> CoordinatorMetrics.Snapshot {
    var snapshot = CoordinatorMetrics.Snapshot()
    snapshot.nowMs = nowMs
    for job in jobs.values {
      for state in TaskState.allCases { snapshot.tasks[state] += job.counts[state] }
    }
    snapshot.jobs = jobs.count
    snapshot.leases = leases.count
    let now = self.now
    for record in workers.values {
      let state = record.state(
        now: now, heartbeatMs: config.heartbeatMs, leaseMs: config.leaseMs, leases: leases.count(of: record.name))
      snapshot.workers[state, default: 0] += 1
    }
    return snapshot
  }
}

/// Every admin path is read-only: another method than GET and HEAD on a path that exists
/// is answered 405 with `Allow: GET, HEAD` (RFC 9110 §15.5.6), where the router alone says
/// 404 as if the path did not exist. Whether it exists is asked of the path's own GET, so a
/// request that GET would refuse (no token, a foreign Host, no such job) gets its answer.
/// (A responder around the router's: the router answers a method it has no route for
/// before any of its middleware runs.)
struct ReadOnlyMethods<Router: HTTPResponder<AdminRequestContext>>: HTTPResponder {
  typealias Context = AdminRequestContext
  let router: Router

  func respond(to request: Request, context: Context) async throws -> Response {
    guard request.method != .get, request.method != .head else {
      return try await router.respond(to: request, context: context)
    }
    var head = request.head
    head.method = .get
    let response = try await router.respond(to: Request(head: head, body: request.body), context: context)
    // A path that is not there (404), or a refusal (no token, a foreign Host): as GET says.
    guard response.status.kind != .clientError else { return response }
    var headers = HTTPFields()
    headers[.allow] = "GET, HEAD"
    headers[.contentType] = "text/plain; charset=utf-8"
    return Response(
      status: .methodNotAllowed, headers: headers,
      body: .init(byteBuffer: ByteBuffer(string: "\(request.method.rawValue) is not allowed here: use GET or HEAD\n")))
  }
}

/// The admin port's request context: Hummingbird's basic one, with the peer's address (for
/// the wrong-token throttle).
struct AdminRequestContext: RequestContext, RemoteAddressRequestContext {
  var coreContext: CoreRequestContextStorage
  let remoteAddress: SocketAddress?

  init(source: ApplicationRequestContextSource) {
    coreContext = .init(source: source)
    remoteAddress = source.channel.remoteAddress
  }
}

/// The admin connections open, per peer address and in all: a peer that opens connections
/// and sends nothing holds each for the 30 s idle timeout, and without a bound could hold
/// every file descriptor the protocol port needs too.
final class AdminConnections: Sendable {
  static let perAddress = 32
  static let total = 256
  private let open = NIOLockedValueBox<(total: Int, byAddress: [String: Int])>((0, [:]))

  /// Counts a new connection from `address`, or false (nothing counted) past a bound.
  func admit(_ address: String) -> Bool {
    open.withLockedValue { open in
      guard open.total < Self.total, open.byAddress[address, default: 0] < Self.perAddress else { return false }
      open.total += 1
      open.byAddress[address, default: 0] += 1
      return true
    }
  }

  func release(_ address: String) {
    open.withLockedValue { open in
      open.total -= 1
      let left = open.byAddress[address, default: 1] - 1
      open.byAddress[address] = left > 0 ? left : nil
    }
  }
}

/// A child channel that counts itself in `AdminConnections` for its life, and one past a
/// bound is set up as usual and closed at once (a failed setup would be the server's error,
/// not the connection's).
struct BoundedChannel<Inner: ServerChildChannel>: ServerChildChannel {
  typealias Value = Inner.Value
  let inner: Inner
  let connections: AdminConnections
  /// The coordinator's logger: the server's own is quieted to warnings (found by a tester:
  /// the documented debug line was never written).
  let log: Logger

  func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
    let address = channel.remoteAddress?.ipAddress ?? ""
    let admitted = connections.admit(address)
    if admitted {
      channel.closeFuture.whenComplete { _ in connections.release(address) }
    } else {
      log.debug("admin connection closed: too many open", metadata: ["address": "\(address)"])
    }
    return inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
      if !admitted { channel.close(promise: nil) }
      // Right after the request decoder: where a request's head still has its version.
      if let decoder = try? channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
      {
        try channel.pipeline.syncOperations.addHandler(ConnectionClose(), position: .after(decoder))
      }
      return value
    }
  }

  func handle(value: Value, logger: Logger) async { await inner.handle(value: value, logger: logger) }
}

/// A request that ends its connection gets it ended after the response: the server keeps
/// connections by HTTP/1.1's rule, and read only an exact, lowercase `Connection: close` as
/// that rule's exception. So an HTTP/1.0 request without `keep-alive` (HTTP/1.0's own rule),
/// and `Close` or `keep-alive, close` (options are a case-insensitive list, RFC 9110
/// §7.6.1), each held one of its address's 32 connections until the 30 s idle timeout.
final class ConnectionClose: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias InboundOut = HTTPServerRequestPart

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
    // Two Host headers (RFC 9112 §3.2 refuses them) were read as the first: collapsed to a
    // name that is no loopback host, so the Host check refuses the request.
    if head.headers["host"].count > 1 {
      head.headers.replaceOrAdd(name: "host", value: "two-host-headers.invalid")
      return context.fireChannelRead(wrapInboundOut(.head(head)))
    }
    let options = head.headers[canonicalForm: "connection"].map { $0.lowercased() }
    // A CONNECT or an Upgrade leaves the request decoder passing bytes through, unparsed:
    // answered, then closed (found by a tester: a CONNECT's 404 had no length and the
    // connection, or a request pipelined behind an Upgrade, hung to the idle timeout).
    let tunnel = head.method == .CONNECT || head.headers.contains(name: "upgrade")
    guard tunnel || options.contains("close") || (head.version == .http1_0 && !options.contains("keep-alive")) else {
      return context.fireChannelRead(data)
    }
    head.headers.replaceOrAdd(name: "connection", value: "close")
    context.fireChannelRead(wrapInboundOut(.head(head)))
  }
}
