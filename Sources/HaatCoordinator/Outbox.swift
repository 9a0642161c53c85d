import HaatCore
import HaatProtocol
import Logging
import NIOCore

/// Replies on their way out: encoded under each session's line limit, written at once and
/// flushed together at the end of the unit of work that produced them.
final class Outbox {
  let loop: any EventLoop
  private let logger: Logger
  /// A peer that lets more than this pile up unsent is closed: it is not reading.
  private let maxUnsentBytes: Int
  private var dirty: [Connection] = []

  init(loop: any EventLoop, maxUnsentBytes: Int, logger: Logger) {
    self.loop = loop
    self.maxUnsentBytes = maxUnsentBytes
    self.logger = logger
  }

  func send(_ envelope: Envelope, to connection: Connection) {
    guard connection.open else { return }
    var buffer = connection.channel.allocator.buffer(capacity: 256)
    do {
      try WireCodec.encode(envelope, into: &buffer)
    } catch {
      logger.error(
        "cannot encode a reply", metadata: ["type": "\(envelope.body?.wireName ?? "")", "error": "\(error)"])
      return
    }
    if buffer.readableBytes > connection.maxLineBytes {
      // The limit holds both ways: a reply that would not fit is refused, not sent.
      let error = HaatError(
        .tooLarge,
        "the \(envelope.body?.wireName ?? "reply") would be \(buffer.readableBytes) bytes, over this session's line limit of \(connection.maxLineBytes); ask for less (a smaller limit, or without tasks)"
      )
      buffer.clear()
      try? WireCodec.encode(.error(error, replyTo: envelope.replyTo), into: &buffer)
    }
    send(line: buffer, to: connection)
  }

  /// Writes an encoded line; flushed by `flush()`.
  func send(line: ByteBuffer, to connection: Connection) {
    loop.preconditionInEventLoop()
    guard connection.open else { return }
    if !connection.channel.isWritable, unsentBytes(of: connection) > maxUnsentBytes {
      logger.warning(
        "closing a peer that does not read its replies",
        metadata: [
          "peer": "\(connection.name)", "address": "\(connection.address)",
          "unsent_bytes": "\(unsentBytes(of: connection))",
        ])
      connection.open = false
      connection.channel.close(promise: nil)
      return
    }
    connection.channel.write(line, promise: nil)
    if !connection.needsFlush {
      connection.needsFlush = true
      dirty.append(connection)
    }
  }

  func reply(_ connection: Connection, to id: String, _ body: Envelope.OneOf_Body) {
    send(Envelope(replyTo: id, body), to: connection)
  }

  func replyError(_ connection: Connection, to id: String, _ error: HaatError) {
    send(.error(error, replyTo: id), to: connection)
  }

  /// Sends encoded replies one after another, each once the one before has been written
  /// to the socket: a result in parts never piles up past the session's unsent bound.
  func sendInTurn(_ lines: ArraySlice<ByteBuffer>, to connection: Connection) {
    loop.preconditionInEventLoop()
    guard connection.open, let line = lines.first else { return }
    let written = loop.makePromise(of: Void.self)
    connection.channel.writeAndFlush(line, promise: written)
    written.futureResult.assumeIsolated().whenSuccess {
      self.sendInTurn(lines.dropFirst(), to: connection)
    }
  }

  func unsentBytes(of connection: Connection) -> Int {
    (try? connection.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
  }

  /// Flushes every connection written to since the last flush.
  func flush() {
    for connection in dirty where connection.open {
      connection.needsFlush = false
      connection.channel.flush()
    }
    for connection in dirty { connection.needsFlush = false }
    dirty.removeAll(keepingCapacity: true)
  }
}
