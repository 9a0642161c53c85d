import HaatCore
import HaatProtocol
import NIOCore
import NIOSSL

/// One connection's protocol front, on its session loop (not the core's): the server-first
/// handshake, framing faults, role checks and heartbeats, which it answers itself from the
/// shared lease table. The other authenticated messages go to the core's loop, those of
/// one read together; this handler holds no queue state.
final class SessionHandler: ChannelInboundHandler {
  typealias InboundIn = LineFrame
  typealias OutboundOut = ByteBuffer

  private let core: CoordinatorCore
  private let tokens: TokenStore
  private let config: CoordinatorConfig
  private var handshake: ServerHandshake
  private var connection: Connection?
  private var lineLimit: Int
  /// The framing decoder's limit: lowered to the session's once it is agreed.
  private let framing: LineFrameDecoder.Limit?
  private var timeout: Scheduled<Void>?
  private var stalled: Scheduled<Void>?
  private let session = "s_" + HandshakeMAC.nonce(bytes: 8)

  private let throttle: AuthThrottle
  private let gate: ConnectionGate
  /// This loop's board for the health heartbeats report.
  private let health: HealthBoard
  private var address = ""
  /// Whether this connection's failed handshake was counted (a timeout and the TLS error
  /// of the close it causes are one failure, not two).
  private var failureCounted = false
  private var admitted = false
  /// Lines that arrived while the token file was being re-read for an unknown token id.
  private var held: [Envelope]?
  /// Messages for the core from the current read, handed over together at its end.
  private var forCore: [Envelope] = []
  /// A worker's log lines, paced (`LogPace`): while `paced`, the session is not read.
  private var logPace = LogPace()
  private var paced = false
  private var pacedLogged: UInt64 = 0

  init(
    core: CoordinatorCore, tokens: TokenStore, config: CoordinatorConfig, throttle: AuthThrottle, gate: ConnectionGate,
    health: HealthBoard, framing: LineFrameDecoder.Limit? = nil
  ) {
    self.framing = framing
    self.core = core
    self.health = health
    self.tokens = tokens
    self.config = config
    self.throttle = throttle
    self.gate = gate
    handshake = ServerHandshake(nonce: HandshakeMAC.nonce(bytes: 16))
    lineLimit = Int(config.maxLineBytes)
  }

  func channelActive(context: ChannelHandlerContext) {
    address = context.remoteAddress?.ipAddress ?? ""
    if let wait = throttle.refusal(for: address) {
      let seconds = max(1, wait.nanoseconds / 1_000_000_000)
      return fail(
        context,
        HaatError(.busy, "too many failed handshakes from \(address); try again in \(seconds) s"))
    }
    if let refusal = gate.admit(address) { return fail(context, refusal) }
    admitted = true
    var challenge = Haat_V1_Challenge()
    challenge.versions = HandshakeLimits.versions
    challenge.nonce = handshake.nonce
    challenge.server = "haat-coordinator/\(HaatVersion.current)"
    context.writeAndFlush(wrap(Envelope(.challenge(challenge)), context), promise: nil)
    timeout = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(config.handshakeTimeoutMs))) {
      guard self.connection == nil, context.channel.isActive else { return }
      let error = HaatError(
        .handshakeTimeout, "the handshake did not finish within \(self.config.handshakeTimeoutMs) ms")
      self.failedHandshake(tokenID: "", name: "", error)
      self.fail(context, error)
    }
    context.fireChannelActive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .tooLong(let limit):
      fail(context, HaatError(.frameTooLong, "a line is longer than \(limit) bytes; closing the connection"))
    case .line(let line):
      guard line.readableBytes <= lineLimit else {
        return fail(
          context, HaatError(.frameTooLong, "a line is longer than \(lineLimit) bytes; closing the connection"))
      }
      switch WireCodec.decode(line) {
      case .failure(let failure):
        context.write(wrap(.error(failure.error, replyTo: failure.replyTo), context), promise: nil)
      case .success(let envelope):
        if let connection {
          dispatch(envelope, connection: connection, context: context)
        } else if held != nil {
          guard held?.count ?? 0 < 16 else {
            return fail(context, HaatError(.badRequest, "too many lines before the handshake finished"))
          }
          held?.append(envelope)
        } else {
          authenticate(envelope, context: context)
        }
      }
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    handOver()
    context.flush()
  }

  /// Hands the messages of this read to the core's loop, in one task.
  private func handOver() {
    guard !forCore.isEmpty, let connection else { return }
    let envelopes = forCore
    forCore.removeAll(keepingCapacity: true)
    let core = self.core
    core.loop.execute { core.receive(envelopes, from: connection) }
  }

  /// Holds reading for `ms`: a worker past its log pace. Said once a minute per session.
  private func pace(_ context: ChannelHandlerContext, ms: Int64, worker: String) {
    paced = true
    context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
    let now = NIODeadline.now().uptimeNanoseconds
    if pacedLogged == 0 || now &- pacedLogged > 60_000_000_000 {
      pacedLogged = now
      core.logger.warning(
        "pacing a worker's log lines: over \(Int(LogPace.perSecond)) a second after a burst of \(Int(LogPace.burst)); its session is read more slowly",
        metadata: ["worker": "\(worker)", "address": "\(address)"])
    }
    context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(ms)) {
      // Lines of the read batch that came after the pause began are owed too.
      if let more = self.logPace.wait(now: NIODeadline.now().uptimeNanoseconds) {
        self.paced = false
        return self.pace(context, ms: more, worker: worker)
      }
      self.paced = false
      // As writability says: a peer that does not read its replies stays unread.
      context.channel.setOption(.autoRead, value: context.channel.isWritable).whenFailure { _ in }
    }
  }

  /// While the peer does not read what it is sent, read nothing more from it (so it cannot
  /// pile up requests), and close it if that lasts `stalledWriteMs`.
  func channelWritabilityChanged(context: ChannelHandlerContext) {
    let writable = context.channel.isWritable
    context.channel.setOption(.autoRead, value: writable && !paced).whenFailure { _ in }
    stalled?.cancel()
    stalled = nil
    if !writable {
      let limit = config.session.stalledWriteMs
      let (logger, peer, address) = (core.logger, connection?.name ?? "", connection?.address ?? "")
      stalled = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(limit)) {
        guard !context.channel.isWritable else { return }
        // Said, as a peer closed for its unsent bytes is (Outbox): it looks like a crash to it.
        logger.warning(
          "closing a peer that has not read its replies for \(limit) ms",
          metadata: ["peer": "\(peer)", "address": "\(address)"])
        context.close(promise: nil)
      }
    }
    context.fireChannelWritabilityChanged()
  }

  func channelInactive(context: ChannelHandlerContext) {
    timeout?.cancel()
    stalled?.cancel()
    if admitted { gate.release(address, authenticated: connection != nil) }
    admitted = false
    handOver()
    if let connection {
      let core = self.core
      core.loop.execute { core.closed(connection) }
    }
    connection = nil
    context.fireChannelInactive()
  }

  /// Logs and counts this connection's failed handshake toward its address's refusal, once.
  private func failedHandshake(tokenID: String, name: String, _ error: HaatError) {
    guard !failureCounted else { return }
    failureCounted = true
    throttle.failed(address: address, tokenID: tokenID, subject: name, error: error)
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if event is PlaintextPeer { failureCounted = true }
    context.fireUserInboundEventTriggered(event)
  }

  func errorCaught(context: ChannelHandlerContext, error: Error) {
    // A TLS handshake this coordinator refused (a client certificate missing, of another CA,
    // expired, not for client authentication): logged and counted as any failed handshake.
    // Any other TLS failure is logged, not counted: a client that refused this coordinator's
    // certificate (an alert; a TLS 1.3 client's reads as BAD_PACKET_LENGTH here) or closed
    // mid-handshake guesses at nothing, and one monitor with a stale CA locked every worker
    // behind its address out (testers). A peer idle past the deadline is counted there.
    if connection == nil, let failure = error as? NIOSSLError, case .handshakeFailed = failure {
      let reason = TLSHints.reason(failure)
      if reason.contains("CERTIFICATE"), !reason.contains("_ALERT_") {
        failedHandshake(tokenID: "", name: "", HaatError(.authFailed, "the TLS handshake failed: \(reason)"))
      } else if !failureCounted {
        let closed = "\(failure)".contains("EOF during handshake")
        throttle.failed(
          address: address, tokenID: "", subject: "",
          error: HaatError(
            .handshakeTimeout,
            closed
              ? "the peer closed the connection during the TLS handshake (a client without --tls sends no TLS and gives up; one that does not trust this coordinator's certificate may close too); not counted toward the address's refusal"
              : "the client ended the TLS handshake (\(reason)): most likely it does not trust this coordinator's certificate (the CA that signed it, or the address it names); not counted toward the address's refusal"
          ),
          counted: false)
      }
    }
    context.close(promise: nil)
  }

  private func authenticate(_ envelope: Envelope, context: ChannelHandlerContext, refreshed: Bool = false) {
    guard case .hello(let hello)? = envelope.body else {
      // A failed handshake like a wrong MAC (protocol.md §4): logged, and counted toward
      // the address's refusal.
      let error = handshake.receiveOther()
      failedHandshake(tokenID: "", name: "", error)
      return fail(context, error, replyTo: envelope.id.utf8.count <= Self.maxIDBytes ? envelope.id : "")
    }
    // Not carried out, as after the handshake; the peer may send its hello again.
    if let error = Self.longID(envelope) {
      return context.write(wrap(.error(error, replyTo: ""), context), promise: nil)
    }
    let token = tokens.cachedToken(id: hello.tokenID)
    if token == nil, !refreshed {
      // A token this coordinator has not seen may have been created since the last read
      // of the token file: read it again off the loop, holding what the peer sends meanwhile.
      held = []
      let tokens = self.tokens
      core.offLoop { tokens.refresh() }.hop(to: context.eventLoop).assumeIsolated().whenComplete { _ in
        let held = self.held ?? []
        self.held = nil
        guard context.channel.isActive else { return }
        self.authenticate(envelope, context: context, refreshed: true)
        for envelope in held {
          if let connection = self.connection {
            self.dispatch(envelope, connection: connection, context: context)
          }
        }
        self.handOver()
        context.flush()
      }
      return
    }
    let outcome = handshake.receive(
      hello: ServerHandshake.Hello(
        version: hello.version, role: hello.role, name: hello.name, tokenID: hello.tokenID,
        clientNonce: hello.clientNonce, mac: hello.mac),
      token: token, session: session, mac: HandshakeMAC.hmacSHA256)
    switch outcome {
    case .reject(let error):
      failedHandshake(tokenID: hello.tokenID, name: hello.name, error)
      fail(context, error, replyTo: envelope.id)
    case .welcome(let session, let serverMAC, let version, let peer):
      timeout?.cancel()
      if hello.maxLineBytes != 0 {
        lineLimit = Int(min(max(hello.maxLineBytes, Defaults.minLineBytes), config.maxLineBytes))
        framing?.bytes = lineLimit
      }
      var welcome = Haat_V1_Welcome()
      welcome.session = session
      welcome.serverMac = serverMAC
      welcome.heartbeatMs = config.heartbeatMs
      welcome.leaseMs = config.leaseMs
      welcome.maxLineBytes = UInt32(lineLimit)
      welcome.version = version
      welcome.role = peer.role.rawValue
      welcome.partialBinary = true
      context.write(wrap(Envelope(replyTo: envelope.id, .welcome(welcome)), context), promise: nil)
      let connection = Connection(
        channel: context.channel, session: session, peer: peer,
        address: context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "",
        maxLineBytes: lineLimit, maxSpecBytes: config.session.stagedSpecBytes, token: token)
      self.connection = connection
      gate.authenticated()
      let core = self.core
      let worker = hello.hasWorker ? hello.worker : nil
      core.loop.execute { core.opened(connection, worker: worker) }
    }
  }

  private func dispatch(_ envelope: Envelope, connection: Connection, context: ChannelHandlerContext) {
    guard let body = envelope.body else { return }
    if let error = Self.longID(envelope) {
      return context.write(wrap(.error(error, replyTo: ""), context), promise: nil)
    }
    if case .ping = body {
      return forCore.append(envelope)
    }
    guard let kind = body.requestKind else {
      let error = HaatError(.unsupported, "\(body.wireName) is not a message a peer sends to the coordinator")
      return context.write(wrap(.error(error, replyTo: envelope.id), context), promise: nil)
    }
    guard connection.peer.role.allows(kind) else {
      let error = HaatError(
        .forbidden,
        "\(connection.peer.role.article) \(connection.peer.role.rawValue) token may not send \(body.wireName)")
      return context.write(wrap(.error(error, replyTo: envelope.id), context), promise: nil)
    }
    // Every line takes its token, those read while paced too (a read's batch holds
    // hundreds: counting only the first let 1.5 million lines through in 10 s).
    if case .log = body, let pause = logPace.take(now: NIODeadline.now().uptimeNanoseconds), !paced {
      pace(context, ms: pause, worker: connection.name)
    }
    if case .complete(let complete) = body, let error = Self.partialBinaryProblem(complete) {
      return context.write(wrap(.error(error, replyTo: envelope.id), context), promise: nil)
    }
    if case .heartbeat(let heartbeat) = body {
      switch core.answerHeartbeat(heartbeat, worker: connection.name) {
      case .success(let ack):
        // It echoes every lease listed: at the limit, the answer is longer than the request.
        var line = context.channel.allocator.buffer(capacity: 256)
        try? WireCodec.encode(Envelope(replyTo: envelope.id, .heartbeatAck(ack)), into: &line)
        if line.readableBytes - 1 > lineLimit {
          let error = HaatError(
            .tooLarge,
            "the heartbeat's answer would be \(line.readableBytes - 1) bytes, over this session's \(lineLimit); its leases were extended or revoked all the same: list fewer per heartbeat"
          )
          context.write(wrap(.error(error, replyTo: envelope.id), context), promise: nil)
        } else {
          context.write(wrapOutboundOut(line), promise: nil)
        }
        health.record(
          HealthBoard.Beat(connection: connection, health: heartbeat.health, now: core.now, nowMs: core.nowMs))
      case .failure(let error):
        context.write(wrap(.error(error, replyTo: envelope.id), context), promise: nil)
      }
      return
    }
    forCore.append(envelope)
  }

  static let maxIDBytes = WireCodec.maxIDBytes

  /// The error for a message whose id is too long, answered without `reply_to`: a long id
  /// would make every reply to it long too.
  static func longID(_ envelope: Envelope) -> HaatError? {
    guard envelope.id.utf8.count > maxIDBytes else { return nil }
    return HaatError(
      .badRequest, "the id is \(envelope.id.utf8.count) bytes; an id is at most \(maxIDBytes)", field: "id")
  }

  /// Why a `complete`'s `partial_binary` cannot be taken, if it cannot: it is checked here,
  /// on the session's loop, as a JSON `partial` is checked by decoding the line, and stored
  /// as sent.
  static func partialBinaryProblem(_ complete: Haat_V1_Complete) -> HaatError? {
    guard !complete.partialBinary.isEmpty else { return nil }
    if complete.hasPartial {
      return HaatError(
        .badRequest, "a complete carries partial or partial_binary, not both", field: "complete.partial_binary")
    }
    do {
      _ = try Partial(serializedBytes: complete.partialBinary)
      return nil
    } catch {
      return HaatError(
        .badRequest, "partial_binary is not a Partial in protobuf's binary encoding (\(error))",
        field: "complete.partial_binary")
    }
  }

  /// One encoded line for `envelope` (the coordinator writes bytes: the core also splices
  /// lines it builds itself).
  private func wrap(_ envelope: Envelope, _ context: ChannelHandlerContext) -> NIOAny {
    var buffer = context.channel.allocator.buffer(capacity: 256)
    try? WireCodec.encode(envelope, into: &buffer)
    return wrapOutboundOut(buffer)
  }

  /// Sends an error and closes the connection.
  private func fail(_ context: ChannelHandlerContext, _ error: HaatError, replyTo: String = "") {
    // The error may never be written: on a TLS port before the TLS handshake (it waits for
    // one that never comes), or to a peer that reads nothing. The close does not wait past
    // a second for it.
    let deadline = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) {
      context.close(promise: nil)
    }
    context.writeAndFlush(wrap(.error(error, replyTo: replyTo), context)).assumeIsolated().whenComplete { _ in
      deadline.cancel()
      context.close(promise: nil)
    }
  }
}
