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
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(
      SessionHandler(
        core: core, tokens: tokens, config: core.config, throttle: AuthThrottle(logger: core.logger),
        gate: ConnectionGate(maxPerAddress: 16, maxUnauthenticated: 16),
        health: HealthBoard(loop: channel.eventLoop, core: core)))
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    guard case .challenge(let challenge)? = try next(channel).body else {
      throw HaatError(.internal, "no challenge")
    }
    var handshake = ClientHandshake(
      kind: .worker, name: "w1", tokenID: credential.tokenID, secret: credential.secret,
      clientNonce: HandshakeMAC.nonce(bytes: 16))
    let values = try handshake.receive(
      challengeVersions: challenge.versions, nonce: challenge.nonce, mac: HandshakeMAC.hmacSHA256
    ).get()
    try send(Envelope(id: "hello", .hello(Haat_V1_Hello(values, worker: Haat_V1_WorkerInfo()))), to: channel)
    guard case .welcome? = try next(channel).body else { throw HaatError(.internal, "no welcome") }
    return channel
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
    let directory = NSTemporaryDirectory() + "haat-session-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let tokens = TokenStore(path: directory + "/tokens")
    let credential = try tokens.create(role: .worker, names: .name("w1"))
    tokens.refresh()
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let store = try SQLiteJobStore(path: directory + "/haat.db", durability: .normal)
    var config = CoordinatorConfig()
    config.dataDirectory = directory
    let core = CoordinatorCore(
      loop: group.next(), sessionLoops: [], store: store, config: config, logger: Logger(label: "test"))
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
    try group.syncShutdownGracefully()
  }
}
