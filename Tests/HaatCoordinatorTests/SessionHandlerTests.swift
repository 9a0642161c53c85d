import Foundation
import HaatProtocol
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
import Testing

@testable import HaatCoordinator
@testable import HaatCore
@testable import HaatStore

/// A session's handler on its own loop (an embedded channel here) with the core on another:
/// heartbeats are answered while the core's loop is busy, and their health still reaches it.
@Suite struct SessionHandlerTests {
  /// A worker session through the real handshake; returns the channel after `welcome`.
  static func session(core: CoordinatorCore, tokens: TokenStore, credential: Credential) throws -> EmbeddedChannel {
    let channel = try connection(core: core, tokens: tokens, throttle: AuthThrottle(logger: core.logger))
    try send(hello(answering: channel, credential), to: channel)
    guard case .welcome? = try next(channel).body else { throw HaatError(.internal, "no welcome") }
    return channel
  }

  /// A worker's `hello` for "w1", answering the challenge the channel has written.
  static func hello(answering channel: EmbeddedChannel, _ credential: Credential, id: String = "hello") throws
    -> Envelope
  {
    guard case .challenge(let challenge)? = try next(channel).body else {
      throw HaatError(.internal, "no challenge")
    }
    var handshake = ClientHandshake(
      kind: .worker, name: "w1", tokenID: credential.tokenID, secret: credential.secret,
      clientNonce: HandshakeMAC.nonce(bytes: 16))
    let values = try handshake.receive(
      challengeVersions: challenge.versions, nonce: challenge.nonce, mac: HandshakeMAC.hmacSHA256
    ).get()
    return Envelope(id: id, .hello(Haat_V1_Hello(values, worker: Haat_V1_WorkerInfo())))
  }

  /// A connection from 127.0.0.1, before the handshake (the coordinator's first line is
  /// waiting to be read).
  static func connection(core: CoordinatorCore, tokens: TokenStore, throttle: AuthThrottle) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(
      SessionHandler(
        core: core, tokens: tokens, config: core.config, throttle: throttle,
        gate: ConnectionGate(maxPerAddress: 16, maxUnauthenticated: 16),
        health: HealthBoard(loop: channel.eventLoop, core: core)))
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    return channel
  }

  /// A core on a store of its own, with a worker credential for "w1".
  static func withCore(
    logger: Logger = Logger(label: "test"), _ body: (CoordinatorCore, TokenStore, Credential) throws -> Void
  ) throws {
    let directory = NSTemporaryDirectory() + "haat-session-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let tokens = TokenStore(path: directory + "/tokens")
    let credential = try tokens.create(role: .worker, names: .name("w1"))
    tokens.refresh()
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    let store = try SQLiteJobStore(path: directory + "/haat.db", durability: .normal)
    var config = CoordinatorConfig()
    config.dataDirectory = directory
    let core = CoordinatorCore(
      loop: group.next(), sessionLoops: [], store: store, config: config, logger: logger)
    try body(core, tokens, credential)
  }

  static func send(_ envelope: Envelope, to channel: EmbeddedChannel) throws {
    var buffer = ByteBuffer()
    try WireCodec.encode(envelope, into: &buffer)
    buffer.moveWriterIndex(to: buffer.writerIndex - 1)  // the framer strips the newline
    try channel.writeInbound(LineFrame.line(buffer))
  }

  static func next(_ channel: EmbeddedChannel) throws -> Envelope {
    guard var line = try channel.readOutbound(as: ByteBuffer.self) else {
      throw HaatError(.internal, "nothing written")
    }
    return try WireCodec.decode(line.readSlice(length: line.readableBytes) ?? ByteBuffer()).get()
  }

  /// Synchronous: an embedded channel belongs to the thread that made it.
  @Test func aHeartbeatIsAnsweredWhileTheCoresLoopIsBusy() throws {
    try Self.withCore { core, tokens, credential in try heartbeatWhileBusy(core, tokens, credential) }
  }

  func heartbeatWhileBusy(_ core: CoordinatorCore, _ tokens: TokenStore, _ credential: Credential) throws {
    let channel = try Self.session(core: core, tokens: tokens, credential: credential)
    try core.loop.submit { core.leases.grant(task: TaskID(1), attempt: 1, owner: "w1", now: core.now) }.wait()

    // The core's loop is held until the test lets it go (a future would not do to see it
    // held: its callbacks run on that loop).
    let release = Mutex(false)
    defer { release.withLock { $0 = true } }
    let held = Mutex(false)
    core.loop.execute {
      held.withLock { $0 = true }
      while !release.withLock({ $0 }) { usleep(1_000) }
    }
    while !held.withLock({ $0 }) { usleep(1_000) }

    var heartbeat = Haat_V1_Heartbeat()
    heartbeat.health.rssBytes = 12_345
    heartbeat.leases = [
      .with {
        $0.task = "1"
        $0.attempt = 1
      },
      .with {
        $0.task = "2"
        $0.attempt = 1
      },
    ]
    try Self.send(Envelope(id: "h1", .heartbeat(heartbeat)), to: channel)
    let reply = try Self.next(channel)
    #expect(release.withLock { !$0 }, "answered only after the core's loop was free")
    #expect(reply.replyTo == "h1")
    guard case .heartbeatAck(let ack)? = reply.body else {
      Issue.record("expected a heartbeat_ack, got \(reply)")
      return
    }
    #expect(ack.extended.map(\.task) == ["1"])
    #expect(ack.revoked.map(\.task) == ["2"])

    // Once the core is free, the health the heartbeat reported is recorded (handed over
    // with the others of its period).
    release.withLock { $0 = true }
    channel.embeddedEventLoop.advanceTime(by: .milliseconds(HealthBoard.periodMs))
    let rss = try core.loop.submit { core.workers["w1"]?.health.rssBytes }.wait()
    #expect(rss == 12_345)
    _ = try? channel.finish()
  }

  /// A `hello` whose id is over 64 bytes is not carried out, as any message after the
  /// handshake (protocol.md §3): `bad_request` without `reply_to`, and a hello may follow.
  @Test func aHelloWithALongIDIsNotCarriedOut() throws {
    try Self.withCore { core, tokens, credential in
      let channel = try Self.connection(core: core, tokens: tokens, throttle: AuthThrottle(logger: core.logger))
      var hello = try Self.hello(answering: channel, credential, id: String(repeating: "i", count: 65))
      try Self.send(hello, to: channel)
      let refused = try Self.next(channel)
      #expect(refused.error.code == "bad_request" && refused.error.field == "id", "\(refused)")
      #expect(refused.replyTo.isEmpty)
      hello.id = "h"
      try Self.send(hello, to: channel)
      let welcome = try Self.next(channel)
      #expect(welcome.replyTo == "h")
      guard case .welcome? = welcome.body else {
        Issue.record("no welcome after the short id: \(welcome)")
        return
      }
      _ = try? channel.finish()
    }
  }

  /// Every failed handshake counts toward the address's refusal (protocol.md §4), not only
  /// a wrong MAC: a first message other than `hello`, and a handshake that times out.
  @Test func handshakesThatNeverSayHelloCountTowardTheRefusal() throws {
    try Self.withCore { core, tokens, _ in
      let throttle = AuthThrottle(logger: core.logger, maxFailures: 4)
      for index in 0..<4 {
        let channel = try Self.connection(core: core, tokens: tokens, throttle: throttle)
        guard case .challenge? = try Self.next(channel).body else {
          Issue.record("no challenge")
          return
        }
        if index < 2 {
          try Self.send(Envelope(id: "p\(index)", .ping(Haat_V1_Ping())), to: channel)
        } else {
          channel.embeddedEventLoop.advanceTime(by: .milliseconds(Int64(core.config.handshakeTimeoutMs)))
        }
        let reply = try Self.next(channel)
        #expect(reply.error.code == (index < 2 ? "auth_failed" : "handshake_timeout"), "\(reply)")
        _ = try? channel.finish()
      }
      let refused = try Self.connection(core: core, tokens: tokens, throttle: throttle)
      let first = try Self.next(refused)
      #expect(first.error.code == "busy", "the fifth connection got \(first) instead of busy")
      #expect(first.error.message.contains("too many failed handshakes from 127.0.0.1"))
      _ = try? refused.finish()
    }
  }

  /// A peer that stops reading is closed after `stalledWriteMs`, and the coordinator says
  /// so (docs/protocol.md: "closed (logged)"): to the peer it looks like a crash.
  @Test func aPeerThatStopsReadingIsClosedAndLogged() throws {
    let lines = LogLines()
    try Self.withCore(logger: Logger(label: "test") { _ in lines }) { core, tokens, credential in
      let channel = try Self.session(core: core, tokens: tokens, credential: credential)
      channel.isWritable = false
      channel.pipeline.fireChannelWritabilityChanged()
      channel.embeddedEventLoop.advanceTime(by: .milliseconds(core.config.session.stalledWriteMs - 1))
      #expect(channel.isActive)
      channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
      #expect(!channel.isActive)
      #expect(
        lines.messages.contains(
          "closing a peer that has not read its replies for \(core.config.session.stalledWriteMs) ms"),
        "\(lines.messages)")
    }
  }
}

/// Failed handshakes and refused admin requests: the first 5 per address and window are
/// logged, and the next window's first line counts the rest. The count was lost when a
/// connection's throttle check, which comes first, dropped the window that had passed.
@Suite struct AuthThrottleTests {
  @Test(arguments: [("handshake failed", "name"), ("admin request refused", "path")])
  func theNextWindowsFirstLineCountsTheFailuresNotLogged(event: String, subject: String) async throws {
    let lines = LogLines()
    let throttle = AuthThrottle(
      logger: Logger(label: "test") { _ in lines }, event: "\(event)", subject: subject, window: .milliseconds(200))
    let refused = HaatError(.authFailed, "no")
    for _ in 0..<7 {
      #expect(throttle.refusal(for: "10.0.0.1") == nil)
      throttle.failed(address: "10.0.0.1", tokenID: "t_1", subject: "/metrics", error: refused)
    }
    #expect(lines.entries.count == 5)
    try await Task.sleep(for: .milliseconds(300))
    // As a connection does: the check first, then the failure.
    #expect(throttle.refusal(for: "10.0.0.1") == nil)
    throttle.failed(address: "10.0.0.1", tokenID: "t_1", subject: "/metrics", error: refused)
    let last = try #require(lines.entries.last)
    #expect(lines.entries.count == 6 && last.message == event)
    #expect(last.metadata["suppressed_before"] == "2", "\(last)")
    #expect(last.metadata[subject] == "/metrics", "\(last)")
    // A quiet address's window goes once it has passed with nothing left to count.
    try await Task.sleep(for: .milliseconds(300))
    #expect(throttle.refusal(for: "10.0.0.1") == nil)
    throttle.failed(address: "10.0.0.1", tokenID: "t_1", subject: "/metrics", error: refused)
    #expect(lines.entries.last?.metadata["suppressed_before"] == nil)
  }
}

/// A log handler that keeps each message with its metadata, for a test to read.
struct LogLines: LogHandler {
  private let box: Box
  final class Box: Sendable {
    let lines = Mutex<[(message: String, metadata: [String: String])]>([])
  }
  init() { box = Box() }
  var messages: [String] { box.lines.withLock { $0.map(\.message) } }
  var entries: [(message: String, metadata: [String: String])] { box.lines.withLock { $0 } }
  var metadata: Logger.Metadata = [:]
  var logLevel: Logger.Level = .trace
  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }
  func log(event: LogEvent) {
    let fields = (event.metadata ?? [:]).mapValues { "\($0)" }
    box.lines.withLock { $0.append((event.message.description, fields)) }
  }
}
