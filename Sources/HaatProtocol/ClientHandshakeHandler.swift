import Foundation
import HaatCore
import NIOCore
import NIOPosix
import NIOSSL

/// The peer side of a connection's start: waits for the challenge, sends hello, checks
/// the welcome's server MAC, then passes decoded envelopes on. `established` succeeds with
/// the welcome, or fails with the server's error or a failed proof; nothing reaches the
/// next handler from a server that could not prove it knows the token's secret.
public final class ClientHandshakeHandler: ChannelInboundHandler {
  public typealias InboundIn = LineFrame
  public typealias InboundOut = Envelope
  public typealias OutboundOut = Envelope

  private var handshake: ClientHandshake
  private let worker: Haat_V1_WorkerInfo?
  private let maxLineBytes: UInt32
  private let established: EventLoopPromise<Haat_V1_Welcome>
  private var welcomed = false
  private var challenged = false
  /// Whether this connection uses TLS (what to suggest when the coordinator stays silent).
  private let tls: Bool
  private let challengeTimeoutMs: UInt32
  private var challengeTimer: Scheduled<Void>?
  private static let helloID = "hello"

  /// `challengeTimeoutMs`: how long to wait for the coordinator's challenge (it speaks
  /// first) before saying why it may be silent.
  /// The address dialled, named in a TLS failure's message.
  private let endpoint: String

  public init(
    handshake: ClientHandshake, worker: Haat_V1_WorkerInfo?, maxLineBytes: UInt32 = 0, tls: Bool = false,
    challengeTimeoutMs: UInt32 = Defaults.handshakeTimeoutMs, endpoint: String = "",
    established: EventLoopPromise<Haat_V1_Welcome>
  ) {
    self.endpoint = endpoint
    self.handshake = handshake
    self.worker = worker
    self.maxLineBytes = maxLineBytes
    self.tls = tls
    self.challengeTimeoutMs = challengeTimeoutMs
    self.established = established
  }

  public func channelActive(context: ChannelHandlerContext) {
    let timeoutMs = challengeTimeoutMs
    let tls = self.tls
    challengeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(timeoutMs))) {
      guard !self.challenged else { return }
      self.fail(
        context,
        tls
          ? HaatError(.handshakeTimeout, "no challenge from the coordinator in \(timeoutMs / 1000) s")
          : TLSHints.noChallenge(afterMs: timeoutMs))
    }
    context.fireChannelActive()
  }

  public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let line: ByteBuffer
    switch unwrapInboundIn(data) {
    case .tooLong(let limit):
      return fail(context, HaatError(.frameTooLong, "the coordinator sent a line longer than \(limit) bytes"))
    case .line(let buffer):
      line = buffer
    }
    let envelope: Envelope
    switch WireCodec.decode(line) {
    case .success(let decoded): envelope = decoded
    case .failure(let failure):
      if welcomed {
        // A newer coordinator's message this build does not know: skip it.
        return
      }
      return fail(context, failure.error)
    }
    if welcomed {
      return context.fireChannelRead(wrapInboundOut(envelope))
    }
    switch envelope.body {
    case .challenge(let challenge)?:
      challenged = true
      challengeTimer?.cancel()
      switch handshake.receive(
        challengeVersions: challenge.versions, nonce: challenge.nonce, mac: HandshakeMAC.hmacSHA256)
      {
      case .failure(let error):
        fail(context, error)
      case .success(let values):
        let hello = Haat_V1_Hello(values, maxLineBytes: maxLineBytes, worker: worker)
        context.writeAndFlush(wrapOutboundOut(Envelope(id: Self.helloID, .hello(hello))), promise: nil)
      }
    case .welcome(let welcome)?:
      switch handshake.receive(
        welcomeSession: welcome.session, serverMAC: welcome.serverMac, mac: HandshakeMAC.hmacSHA256)
      {
      case .failure(let error):
        fail(context, error)
      case .success:
        welcomed = true
        established.succeed(welcome)
      }
    case .error(let error)?:
      fail(context, error.haatError)
    default:
      fail(context, HaatError(.unsupported, "expected a challenge or welcome from the coordinator"))
    }
  }

  public func channelInactive(context: ChannelHandlerContext) {
    challengeTimer?.cancel()
    if !welcomed {
      established.fail(
        HaatError(
          .unavailable,
          challenged || tls
            ? "the coordinator closed the connection during the handshake"
            : "the coordinator closed the connection before its challenge: is it using TLS? try --tls (and --tls-ca)"))
    }
    context.fireChannelInactive()
  }

  public func errorCaught(context: ChannelHandlerContext, error: Error) {
    if !welcomed {
      // An alert the coordinator sends once its side of the handshake has looked at the
      // client's certificate arrives as a BoringSSLError on the first read.
      if tls, error is NIOSSLError || error is NIOSSLExtraError || error is BoringSSLError {
        // Named: with several addresses, which one's certificate failed is not otherwise said.
        var failure = TLSHints.handshakeFailed(error)
        if !endpoint.isEmpty { failure.message += " (the coordinator at \(endpoint))" }
        established.fail(failure)
      } else {
        established.fail(error)
      }
    }
    context.fireErrorCaught(error)
  }

  private func fail(_ context: ChannelHandlerContext, _ error: HaatError) {
    if !welcomed { established.fail(error) }
    context.close(promise: nil)
  }
}

/// "host:port" or "[v6]:port".
public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
  public var host: String
  public var port: Int

  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

  /// `host:port` or `[v6]:port`: a host of letters, digits, `.`, `-`, `_`, `:` and `%` (an
  /// address's zone), a port of 0 to 65535 in digits. `[]:1` and `a:1,b:2` are none: they
  /// passed, and failed later as a resolver's error (exit 6, not a usage error).
  public init?(_ text: String) {
    let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
    let hostText: Substring
    let portText: Substring
    if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
      hostText = text[text.index(after: text.startIndex)..<close]
      let rest = text[text.index(after: close)...]
      guard rest.hasPrefix(":") else { return nil }
      portText = rest.dropFirst()
    } else {
      guard let colon = text.lastIndex(of: ":") else { return nil }
      hostText = text[..<colon]
      portText = text[text.index(after: colon)...]
    }
    guard !hostText.isEmpty, hostText.utf8.allSatisfy(Self.isHostByte), !portText.isEmpty, portText.utf8.count <= 5,
      portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let port = Int(portText),
      port <= 65535
    else { return nil }
    host = String(hostText)
    self.port = port
  }

  private static func isHostByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"),
      UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "%"):
      return true
    default:
      return false
    }
  }

  public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

  /// "host:port,host:port…" (an active coordinator and its standbys); nil if any is not one.
  public static func list(_ text: String) -> [Endpoint]? {
    let endpoints = text.split(separator: ",").map { Endpoint(String($0)) }
    guard !endpoints.isEmpty, endpoints.allSatisfy({ $0 != nil }) else { return nil }
    return endpoints.compactMap { $0 }
  }
}

extension Haat_V1_Hello {
  /// The hello a client handshake answers a challenge with.
  public init(_ values: ClientHandshake.HelloValues, maxLineBytes: UInt32 = 0, worker: Haat_V1_WorkerInfo? = nil) {
    self.init()
    version = values.version
    role = values.role
    name = values.name
    tokenID = values.tokenID
    clientNonce = values.clientNonce
    mac = values.mac
    self.maxLineBytes = maxLineBytes
    if let worker { self.worker = worker }
  }
}

extension ClientBootstrap {
  /// Connects a peer's session to `endpoint`: a 10 s connect timeout, no Nagle delay, the
  /// session pipeline (`addClientSession`), then the handler `makeHandler` makes for the
  /// envelopes after the welcome.
  public static func session(
    on loop: any EventLoop, endpoint: Endpoint, tls: NIOSSLContext?, handshake: ClientHandshake,
    worker: Haat_V1_WorkerInfo?, maxLineBytes: UInt32 = 0, established: EventLoopPromise<Haat_V1_Welcome>,
    handler makeHandler: @escaping @Sendable () -> any ChannelHandler
  ) -> EventLoopFuture<any Channel> {
    ClientBootstrap(group: loop)
      .connectTimeout(.seconds(10))
      .channelOption(.tcpOption(.tcp_nodelay), value: 1)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let operations = channel.pipeline.syncOperations
          try operations.addClientSession(
            endpoint: endpoint, tls: tls, handshake: handshake, worker: worker, maxLineBytes: maxLineBytes,
            established: established)
          try operations.addHandler(makeHandler())
        }
      }
      .connect(host: endpoint.host, port: endpoint.port)
  }
}

extension ChannelPipeline.SynchronousOperations {
  /// The peer side of a session, for workers and clients alike: TLS to `endpoint` when
  /// `tls` is given, lines in and envelopes out, then the handshake, which hands the
  /// envelopes after the welcome to whatever handler is added next.
  public func addClientSession(
    endpoint: Endpoint, tls: NIOSSLContext?, handshake: ClientHandshake, worker: Haat_V1_WorkerInfo?,
    maxLineBytes: UInt32 = 0, challengeTimeoutMs: UInt32 = Defaults.handshakeTimeoutMs,
    established: EventLoopPromise<Haat_V1_Welcome>
  ) throws {
    if let tls { try addHandler(try TLSClientSettings.handler(context: tls, for: endpoint)) }
    try addHandler(ByteToMessageHandler(LineFrameDecoder(maxLineBytes: Int(Defaults.maxNegotiatedLineBytes))))
    try addHandler(MessageToByteHandler(EnvelopeEncoder()))
    try addHandler(
      ClientHandshakeHandler(
        handshake: handshake, worker: worker, maxLineBytes: maxLineBytes, tls: tls != nil,
        challengeTimeoutMs: challengeTimeoutMs, endpoint: endpoint.description, established: established))
  }
}
