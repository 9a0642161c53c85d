import HaatCore
import HaatProtocol
import Logging
import NIOCore
import Synchronization

/// Replies on their way out: encoded under each session's line limit on the core's loop,
/// gathered per connection, and handed at the end of the unit of work that produced them
/// to the session loops, one task per loop, which write and flush them.
final class Outbox {
  let loop: any EventLoop
  private let logger: Logger
  /// A peer that lets more than this pile up unsent is closed: it is not reading.
  private let maxUnsentBytes: Int
  private var dirty: [Connection] = []
  private var flushQueued = false

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
    // The limit holds both ways, on a line without its line break: a reply that would not
    // fit is refused, not sent.
    // An error too long for the line is cut, keeping its code and field (a `too_large` in
    // its place hid what was wrong: a tester).
    if buffer.readableBytes - 1 > connection.maxLineBytes, case .error(var wire)? = envelope.body {
      let over = buffer.readableBytes - 1 - connection.maxLineBytes
      // Each byte cut takes one or more off the line (JSON escapes are longer); 16 spare
      // for the mark, and a character cut in two (U+FFFD).
      wire.message = CoordinatorCore.clipped(wire.message, to: max(0, wire.message.utf8.count - over - 16))
      buffer.clear()
      try? WireCodec.encode(Envelope(replyTo: envelope.replyTo, .error(wire)), into: &buffer)
    }
    if buffer.readableBytes - 1 > connection.maxLineBytes {
      let error = HaatError(
        .tooLarge,
        "the \(envelope.body?.wireName ?? "reply") would be \(buffer.readableBytes - 1) bytes, over this session's line limit of \(connection.maxLineBytes); ask for less (a smaller limit, or without tasks)"
      )
      buffer.clear()
      try? WireCodec.encode(.error(error, replyTo: envelope.replyTo), into: &buffer)
    }
    send(line: buffer, to: connection)
  }

  /// Queues an encoded line; sent by `flush()`.
  func send(line: ByteBuffer, to connection: Connection, written: EventLoopPromise<Void>? = nil) {
    loop.preconditionInEventLoop()
    guard connection.open else { return }
    connection.outgoing.append(SessionWriter.Line(bytes: line, written: written))
    markDirty(connection)
    // Counted here, as the core makes them: a peer that pipelines requests and reads
    // nothing had every request of a read answered first (a tester queued 154 MiB of
    // 800 KB log replies past the 8 MiB bound; the coordinator grew to gigabytes).
    let unsent = connection.unsentBytes.add(line.readableBytes, ordering: .relaxed).newValue
    if unsent > maxUnsentBytes { refuse(connection, unsent: unsent) }
  }

  /// Closes a peer the core has queued more than `maxUnsentBytes` for, dropping what is
  /// queued: it is not reading.
  private func refuse(_ connection: Connection, unsent: Int) {
    logger.warning(
      "closing a peer that does not read its replies",
      metadata: ["peer": "\(connection.name)", "address": "\(connection.address)", "unsent_bytes": "\(unsent)"])
    for line in connection.outgoing { line.written?.fail(ChannelError.ioOnClosedChannel) }
    connection.outgoing.removeAll()
    connection.gone.set()
    connection.channel.close(promise: nil)
  }

  private func markDirty(_ connection: Connection) {
    guard !connection.needsFlush else { return }
    connection.needsFlush = true
    dirty.append(connection)
    // The unit of work that queued a line flushes when it ends; should one not, the
    // line still leaves once the loop's current tasks are done.
    guard !flushQueued else { return }
    flushQueued = true
    loop.assumeIsolated().execute {
      self.flushQueued = false
      self.flush()
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
    let written = connection.channel.eventLoop.makePromise(of: Void.self)
    send(line: line, to: connection, written: written)
    flush()
    written.futureResult.hop(to: loop).assumeIsolated().whenSuccess {
      self.sendInTurn(lines.dropFirst(), to: connection)
    }
  }

  /// Closes a connection after the lines queued for it are written (an error that says
  /// why goes first).
  func close(_ connection: Connection) {
    loop.preconditionInEventLoop()
    guard connection.open else { return }
    connection.closeAfterWrite = true
    markDirty(connection)
    flush()
    connection.gone.set()
  }

  /// Hands every connection's queued lines to the writer of its channel's loop.
  func flush() {
    guard !dirty.isEmpty else { return }
    var byLoop: [ObjectIdentifier: (writer: SessionWriter, writes: [SessionWriter.Write])] = [:]
    for connection in dirty {
      connection.needsFlush = false
      let write = SessionWriter.Write(
        channel: connection.channel, lines: connection.outgoing, close: connection.closeAfterWrite,
        peer: connection.name, address: connection.address, connection: connection)
      connection.outgoing.removeAll()
      connection.closeAfterWrite = false
      guard connection.open, !write.lines.isEmpty || write.close else { continue }
      let key = ObjectIdentifier(connection.channel.eventLoop)
      if byLoop[key] == nil { byLoop[key] = (writer(for: connection.channel.eventLoop), []) }
      byLoop[key]?.writes.append(write)
    }
    dirty.removeAll(keepingCapacity: true)
    for (writer, writes) in byLoop.values { writer.enqueue(writes) }
  }

  private var writers: [ObjectIdentifier: SessionWriter] = [:]

  private func writer(for channelLoop: any EventLoop) -> SessionWriter {
    if let writer = writers[ObjectIdentifier(channelLoop)] { return writer }
    let writer = SessionWriter(loop: channelLoop, maxUnsentBytes: maxUnsentBytes, logger: logger)
    writers[ObjectIdentifier(channelLoop)] = writer
    return writer
  }
}

/// The writing half of the outbox, one per session loop: lines from the core are written
/// in the order they were flushed, at most `linesPerTurn` before the loop goes back to its
/// sockets. Thousands of `assign` lines from one commit would otherwise hold the loop for
/// tens of milliseconds, and the heartbeats it reads meanwhile with it.
final class SessionWriter: @unchecked Sendable {
  // @unchecked: `queue` and `draining` are touched only on `loop`.

  /// One encoded line, and whom to tell once it is written to the socket (results in
  /// parts go one at a time).
  struct Line: Sendable {
    var bytes: ByteBuffer
    var written: EventLoopPromise<Void>?
  }

  /// Lines for one channel, and whether to close it after them.
  struct Write: Sendable {
    var channel: any Channel
    var lines: [Line]
    var close: Bool
    var peer: String
    var address: String
    /// Whose unsent bytes these lines are.
    var connection: Connection
  }

  static let linesPerTurn = 256

  let loop: any EventLoop
  private let maxUnsentBytes: Int
  private let logger: Logger
  private var queue: [Write] = []
  private var head = 0
  private var draining = false

  init(loop: any EventLoop, maxUnsentBytes: Int, logger: Logger) {
    self.loop = loop
    self.maxUnsentBytes = maxUnsentBytes
    self.logger = logger
  }

  func enqueue(_ writes: [Write]) {
    loop.execute {
      self.queue += writes
      if !self.draining { self.drain() }
    }
  }

  private func drain() {
    draining = true
    var budget = Self.linesPerTurn
    while budget > 0, head < queue.count {
      let write = queue[head]
      head += 1
      budget -= max(1, write.lines.count)
      self.write(write)
    }
    if head == queue.count {
      queue.removeAll(keepingCapacity: true)
      head = 0
      draining = false
      return
    }
    // A turn later, not at once: NIO runs every task that is due before it polls its
    // sockets again, so the next batch must not be due yet when this one ends.
    loop.scheduleTask(in: .microseconds(20)) { self.drain() }
  }

  /// Writes and flushes a channel's lines, and closes a peer that lets more than
  /// `maxUnsentBytes` pile up unsent (it is not reading).
  private func write(_ write: Write) {
    let bytes = write.lines.reduce(0) { $0 + $1.bytes.readableBytes }
    guard write.channel.isActive, let last = write.lines.last else {
      write.connection.unsentBytes.subtract(bytes, ordering: .relaxed)
      for line in write.lines { line.written?.fail(ChannelError.ioOnClosedChannel) }
      if write.close { write.channel.close(promise: nil) }
      return
    }
    for line in write.lines.dropLast() { write.channel.write(line.bytes, promise: line.written) }
    // One promise per batch: lines are written in order, so the last one's write (or its
    // failure) says the whole batch left.
    let written = write.channel.eventLoop.makePromise(of: Void.self)
    let connection = write.connection
    written.futureResult.whenComplete { _ in connection.unsentBytes.subtract(bytes, ordering: .relaxed) }
    if let own = last.written { written.futureResult.cascade(to: own) }
    write.channel.write(last.bytes, promise: written)
    write.channel.flush()
    if write.close {
      write.channel.close(promise: nil)
      return
    }
    guard !write.channel.isWritable else { return }
    let unsent = (try? write.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    guard unsent > maxUnsentBytes else { return }
    logger.warning(
      "closing a peer that does not read its replies",
      metadata: ["peer": "\(write.peer)", "address": "\(write.address)", "unsent_bytes": "\(unsent)"])
    write.channel.close(promise: nil)
  }
}
