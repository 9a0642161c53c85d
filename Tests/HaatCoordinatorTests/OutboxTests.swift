import Foundation
import HaatProtocol
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import HaatCoordinator
@testable import HaatCore
@testable import HaatStore

/// Replies and assign lines on an embedded channel: no sockets.
@Suite struct OutboxTests {
  func connection(_ channel: EmbeddedChannel, maxLineBytes: Int = 1 << 20) -> Connection {
    Connection(
      channel: channel, session: "s_1",
      peer: Peer(kind: .client, role: .submit, name: "cli", tokenID: "t_1", version: 1), address: "127.0.0.1:1",
      maxLineBytes: maxLineBytes, maxSpecBytes: 1 << 20)
  }

  /// A connected channel: the outbox writes only to active ones.
  func activeChannel() throws -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    return channel
  }

  func lines(_ channel: EmbeddedChannel) throws -> [Envelope] {
    var envelopes: [Envelope] = []
    while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
      while let end = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
        guard let line = buffer.readSlice(length: end - buffer.readerIndex + 1) else { break }
        envelopes.append(try WireCodec.decode(line).get())
      }
    }
    return envelopes
  }

  @Test func repliesWaitForTheFlush() throws {
    let channel = try activeChannel()
    let outbox = Outbox(loop: channel.eventLoop, maxUnsentBytes: 1 << 20, logger: Logger(label: "test"))
    let peer = connection(channel)
    outbox.reply(peer, to: "r1", .pong(.with { $0.atMs = 5 }))
    outbox.reply(peer, to: "r2", .pong(.with { $0.atMs = 6 }))
    #expect(try lines(channel).isEmpty)
    outbox.flush()
    channel.embeddedEventLoop.run()
    #expect(try lines(channel).map(\.replyTo) == ["r1", "r2"])
  }

  /// Found by a tester: 10,000 pipelined `tail_logs` (800 KB replies each), none read, were
  /// all answered before the writer saw the bound; 154 MiB queued and the coordinator grew
  /// to gigabytes. The core counts what it queued until it is written.
  @Test func aPeerQueuedPastTheUnsentBoundIsClosedAndTheRestDropped() throws {
    let channel = try activeChannel()
    let outbox = Outbox(loop: channel.eventLoop, maxUnsentBytes: 4_096, logger: Logger(label: "test"))
    let peer = connection(channel)
    // Written replies leave the count: many small batches never reach the bound.
    for round in 0..<100 {
      outbox.reply(peer, to: "p\(round)", .pong(.with { $0.atMs = 5 }))
      outbox.flush()
      channel.embeddedEventLoop.run()
    }
    #expect(peer.open && peer.unsentBytes.load(ordering: .relaxed) == 0)
    #expect(try lines(channel).count == 100)
    // Replies made faster than they are written: closed at the bound, the rest dropped.
    let long = String(repeating: "x", count: 1_000)
    for index in 0..<10 { outbox.replyError(peer, to: "r\(index)", HaatError(.badRequest, long)) }
    #expect(!peer.open)
    #expect(peer.outgoing.isEmpty)
  }

  /// Found by a tester: an error quoting a long value became `too_large`, its code and
  /// field lost. Cut to fit instead.
  @Test func anErrorOverTheLineLimitIsCutKeepingItsCodeAndField() throws {
    let channel = try activeChannel()
    let outbox = Outbox(loop: channel.eventLoop, maxUnsentBytes: 1 << 20, logger: Logger(label: "test"))
    let peer = connection(channel, maxLineBytes: 300)
    let quoted = String(repeating: "p\"é", count: 200)
    outbox.replyError(peer, to: "s1", HaatError(.badSpec, "is \(quoted)", field: "sources[0].platform"))
    outbox.flush()
    channel.embeddedEventLoop.run()
    let reply = try #require(try lines(channel).first)
    guard case .error(let error)? = reply.body else {
      Issue.record("not an error: \(reply)")
      return
    }
    #expect(error.code == "bad_spec" && error.field == "sources[0].platform" && error.message.hasSuffix("…"))
    #expect(reply.replyTo == "s1")
  }

  @Test func aReplyOverTheSessionsLineLimitIsRefusedNotSent() throws {
    let channel = try activeChannel()
    let outbox = Outbox(loop: channel.eventLoop, maxUnsentBytes: 1 << 20, logger: Logger(label: "test"))
    let peer = connection(channel, maxLineBytes: 300)
    var list = Haat_V1_JobList()
    list.jobs = (0..<20).map { index in
      Haat_V1_Job.with {
        $0.id = "\(index)"; $0.name = "a long job name \(index)"
      }
    }
    outbox.reply(peer, to: "r1", .jobList(list))
    outbox.flush()
    channel.embeddedEventLoop.run()
    let sent = try lines(channel)
    #expect(sent.count == 1)
    guard case .error(let error)? = sent.first?.body else {
      Issue.record("expected an error, got \(sent)")
      return
    }
    #expect(error.code == "too_large")
    #expect(sent.first?.replyTo == "r1")
  }

  /// The limit counts a line without its line break, as it does for lines coming in: a
  /// reply of exactly the limit is sent (one byte short of it was the most that was).
  @Test func aReplyOfExactlyTheLimitIsSent() throws {
    let pong = Envelope(replyTo: "r1", .pong(.with { $0.atMs = 5 }))
    var encoded = ByteBufferAllocator().buffer(capacity: 64)
    try WireCodec.encode(pong, into: &encoded)
    for (limit, sent) in [(encoded.readableBytes - 1, true), (encoded.readableBytes - 2, false)] {
      let channel = try activeChannel()
      let outbox = Outbox(loop: channel.eventLoop, maxUnsentBytes: 1 << 20, logger: Logger(label: "test"))
      outbox.reply(connection(channel, maxLineBytes: limit), to: "r1", .pong(.with { $0.atMs = 5 }))
      outbox.flush()
      channel.embeddedEventLoop.run()
      let body = try lines(channel).first?.body
      if case .pong? = body {
        #expect(sent, "limit \(limit)")
      } else {
        #expect(!sent, "limit \(limit): \(String(describing: body))")
      }
    }
  }

  @Test func nothingGoesToAClosedConnection() throws {
    let channel = try activeChannel()
    let outbox = Outbox(loop: channel.eventLoop, maxUnsentBytes: 1 << 20, logger: Logger(label: "test"))
    let peer = connection(channel)
    peer.gone.set()
    outbox.reply(peer, to: "r1", .pong(Haat_V1_Pong()))
    outbox.flush()
    channel.embeddedEventLoop.run()
    #expect(try lines(channel).isEmpty)
  }

  @Test func theAssignLineIsAValidEnvelope() throws {
    let task = ClaimedTask(
      task: TaskID(42), job: JobID(7), index: 3, attempt: 2, pool: .analyze,
      spec: Data(#"{"source":{"name":"s","url":"https://example.com/a.csv"},"index":3}"#.utf8), startedJob: false)
    let line = WireMessages.assignLine(task, expires: 1_234, allocator: ByteBufferAllocator())
    guard case .assign(let assign)? = try WireCodec.decode(line).get().body else {
      Issue.record("not an assign line")
      return
    }
    #expect(assign.task == "42")
    #expect(assign.job == "7")
    #expect(assign.attempt == 2)
    #expect(assign.leaseExpiresMs == 1_234)
    #expect(assign.pool == "analyze")
    #expect(assign.spec.source.name == "s")
    #expect(assign.spec.index == 3)
  }

  @Test func aBookmarkIsEscapedIntoTheAssignLine() throws {
    var task = ClaimedTask(
      task: TaskID(1), job: JobID(1), index: 0, attempt: 1, pool: .collect,
      spec: Data(#"{"source":{"name":"s"}}"#.utf8), startedJob: false)
    task.bookmark = "cursor \"é\" \\ \u{1}🙂"
    let line = WireMessages.assignLine(task, expires: 1, allocator: ByteBufferAllocator())
    guard case .assign(let assign)? = try WireCodec.decode(line).get().body else {
      Issue.record("not an assign line")
      return
    }
    #expect(assign.spec.bookmark == task.bookmark)
    #expect(assign.spec.source.name == "s")
  }

  @Test(arguments: [
    ("w1", "4214", UInt32(1), true, ""),
    ("", "9", UInt32.max, false, "unavailable"),
    ("q\"b\\c\u{1}\u{1F}d é🙂", "t\n\"", UInt32(0), false, "not_lease_holder"),
    ("r", "", UInt32(3), true, ""),
  ])
  func theAckLineIsTheEnvelopeItStandsFor(id: String, task: String, attempt: UInt32, accepted: Bool, reason: String)
    throws
  {
    var ack = Haat_V1_Ack()
    ack.task = task
    ack.attempt = attempt
    ack.accepted = accepted
    ack.reason = reason
    let line = WireMessages.ackLine(replyTo: id, ack, allocator: ByteBufferAllocator())
    let bytes = line.readableBytesView
    #expect(bytes.last == UInt8(ascii: "\n"))
    #expect(bytes.dropLast().contains(UInt8(ascii: "\n")) == false)
    #expect(try WireCodec.decode(line).get() == Envelope(replyTo: id, .ack(ack)))
  }
}
