import ArgumentParser
import Foundation
import HaatClient
import HaatCore
import HaatProtocol
import HaatTesting
import NIOCore
import NIOPosix

#if canImport(Glibc)
  import Glibc
#endif

/// Scale by simulation: one process holds W worker sessions (a credit of one slot each,
/// heartbeats on schedule, no-op tasks completed at once) while a client runs a 50,000-task
/// job. Reports connect time, dispatch rate, heartbeat round trips, and the coordinator's
/// RSS and CPU, for each W and store.
struct Swarm: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "W simulated worker sessions against one coordinator during a 50,000-task job (issue 13 §6).")

  @Option(help: "Session counts, comma-separated.")
  var sessions = "1000,4000,10000"
  @Option(
    help:
      "Stores, comma-separated: sqlite, postgres (the server HAAT_POSTGRES_URL names). Default: both when it is set.")
  var stores = ProcessInfo.processInfo.environment["HAAT_POSTGRES_URL"] == nil ? "sqlite" : "sqlite,postgres"
  @Option(help: "Tasks in the job.")
  var tasks = 50_000
  @Option(help: "Seconds of idle measurement (sessions connected, no job).")
  var idleSeconds = 10
  @Option(help: "Event-loop threads for the simulated sessions.")
  var threads = 2
  @Option(help: "The coordinator's --session-threads (default: its own, one per core).")
  var sessionThreads: Int?
  @Option(help: "Write each heartbeat of the job (sent at, in ms from the job's start; round trip, ms) to this file.")
  var beatsFile: String?

  func run() async throws {
    let counts = sessions.split(separator: ",").compactMap { Int($0) }
    say(
      "swarm: W worker sessions in this process (credit 1 each, heartbeat every 5 s as the coordinator asks, no-op tasks completed at once); a \(tasks)-task no-op job; \(ProcessInfo.processInfo.activeProcessorCount) cores, \(threads) event-loop threads for the sessions"
    )
    say("sessions connect from 127.0.0.2… (at most 500 per address, under the coordinator's per-address bound)\n")
    var rows: [[String]] = []
    for store in stores.split(separator: ",").map(String.init) {
      for count in counts {
        let result = try await runOne(sessions: count, store: store)
        rows.append([store, String(count)] + result)
        say("  \(store) W=\(count): " + result.joined(separator: "  "))
      }
    }
    say(
      "\n"
        + table(
          [
            "store", "sessions", "connect s", "idle CPU", "idle RSS", "tasks/s", "hb p50 ms (job)", "hb p99 ms (job)",
            "hb p99 ms (idle)", "peak RSS",
          ], rows))
    say("CPU: the coordinator's share of one core; hb: heartbeat → heartbeat_ack round trip seen by the session.")
  }

  func runOne(sessions count: Int, store: String) async throws -> [String] {
    var options = LocalCluster.Options()
    options.workers = 0
    options.logLevel = "warning"
    if store == "postgres" { options.coordinatorArguments = try postgresStore() }
    if let sessionThreads { options.coordinatorArguments += ["--session-threads", String(sessionThreads)] }
    let cluster = try await LocalCluster.start(options)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    let writers = LoopWriters(group: group)
    let recorder = Recorder()
    var channels: [any Channel] = []
    do {
      guard let coordinator = cluster.coordinator else { throw BenchError("no coordinator") }
      let credential = try Credential.load(path: cluster.workerTokenPath)
      let port = cluster.endpoint.port
      // Connect in waves of 400 handshakes (the coordinator allows 1,024 in flight).
      let connectStart = ContinuousClock.now
      var index = 0
      while index < count {
        let wave = min(400, count - index)
        let opened = try await withThrowingTaskGroup(of: (any Channel).self) { tasks in
          for offset in 0..<wave {
            let number = index + offset
            tasks.addTask {
              try await SimulatedWorker.connect(
                number: number, port: port, credential: credential, group: group, writers: writers, recorder: recorder)
            }
          }
          var opened: [any Channel] = []
          for try await channel in tasks { opened.append(channel) }
          return opened
        }
        channels += opened
        index += wave
      }
      let connectSeconds = (ContinuousClock.now - connectStart) / .seconds(1)

      // Idle: heartbeats only.
      recorder.reset()
      let idleCPU = CPUSample(pid: coordinator.pid)
      try await Task.sleep(for: .seconds(idleSeconds))
      let idleShare = idleCPU.share()
      let idleRSS = currentRSS(pid: coordinator.pid)
      let idleBeats = recorder.take()

      // The job.
      let client = try await cluster.client()
      var spec = JobSpec()
      spec.name = "swarm"
      var source = Source()
      source.kind = "noop"
      source.tasks = UInt32(tasks)
      spec.sources = [source]
      recorder.reset()
      let started = ContinuousClock.now
      let origin = monotonicNanoseconds()
      let job = try await client.submit(spec).job
      for try await event in client.watch(job) where event.final {
        guard event.state == "succeeded" else { throw BenchError("job \(job) ended \(event.state)") }
        break
      }
      let rate = Double(tasks) / ((ContinuousClock.now - started) / .seconds(1))
      let jobBeats = recorder.take()
      if let beatsFile {
        let lines = jobBeats.map {
          String(
            format: "%.1f %.2f %.0f\n", Double(Int64($0.sentNs) - Int64(origin)) / 1e6, $0.roundTripMs, $0.toAnswerMs)
        }
        try lines.joined().write(toFile: "\(beatsFile).\(store).\(count)", atomically: true, encoding: .utf8)
      }
      await client.close()
      let peak = coordinator.peakResidentBytes
      for channel in channels { channel.close(promise: nil) }
      try? await group.shutdownGracefully()
      await cluster.stop()
      let job50 = percentiles(jobBeats.map(\.roundTripMs)).p50
      let job99 = percentiles(jobBeats.map(\.roundTripMs)).p99
      return [
        String(format: "%.1f", connectSeconds), String(format: "%.1f %%", idleShare * 100),
        String(format: "%.0f MB", Double(idleRSS) / 1e6), String(format: "%.0f", rate),
        String(format: "%.1f (%d)", job50, jobBeats.count), String(format: "%.1f", job99),
        String(format: "%.1f (%d)", percentiles(idleBeats.map(\.roundTripMs)).p99, idleBeats.count),
        String(format: "%.0f MB", Double(peak) / 1e6),
      ]
    } catch {
      for channel in channels { channel.close(promise: nil) }
      try? await group.shutdownGracefully()
      say(cluster.logs())
      await cluster.stop()
      throw error
    }
  }
}

/// Heartbeat round trips, from every session.
final class Recorder: @unchecked Sendable {
  // @unchecked: every access holds `lock`.
  struct Beat {
    /// Monotonic nanoseconds.
    var sentNs: UInt64
    var roundTripMs: Double
    /// Of the round trip, the part until the coordinator answered (wall clock, ms).
    var toAnswerMs: Double = 0
  }

  private let lock = NSLock()
  private var values: [Beat] = []

  func add(_ beat: Beat) {
    lock.lock()
    values.append(beat)
    lock.unlock()
  }

  func reset() { _ = take() }

  func take() -> [Beat] {
    lock.lock()
    defer { lock.unlock() }
    let taken = values
    values = []
    return taken
  }
}

/// A worker session that does nothing but the protocol: credit one slot, complete every
/// assign at once and give the slot back, heartbeat on the coordinator's schedule and time
/// each heartbeat's ack.
///
/// After the handshake it reads and writes lines itself, in front of the envelope codec:
/// an `assign` is scanned for its task and attempt and answered from a template, so the
/// simulator's own JSON work (thousands of sessions in one process, on the coordinator's
/// two cores) does not stand in front of the acks it times. The bytes on the wire are the
/// protocol's.
final class SimulatedWorker: ChannelInboundHandler, @unchecked Sendable {
  // @unchecked: touched only on its channel's event loop.
  typealias InboundIn = LineFrame
  typealias InboundOut = LineFrame
  typealias OutboundOut = ByteBuffer

  private let recorder: Recorder
  private let writer: LoopWriter
  private var sent: [String: (monotonic: UInt64, wallMs: Double)] = [:]
  private var leaseMs = 0.0
  private var beats = 0
  private var completes = 0
  /// Lines pass to the handshake until the welcome.
  private var established = false
  /// Where this handler writes: in front of the envelope encoder.
  private var context: ChannelHandlerContext?

  init(recorder: Recorder, writer: LoopWriter) {
    self.recorder = recorder
    self.writer = writer
  }

  static func connect(
    number: Int, port: Int, credential: Credential, group: any EventLoopGroup, writers: LoopWriters,
    recorder: Recorder
  ) async throws -> any Channel {
    let loop = group.next()
    let writer = writers.writer(for: loop)
    let established = loop.makePromise(of: Haat_V1_Welcome.self)
    let handshake = ClientHandshake(
      kind: .worker, name: "worker-sim-\(number)", tokenID: credential.tokenID, secret: credential.secret,
      clientNonce: HandshakeMAC.nonce(bytes: 16))
    var info = Haat_V1_WorkerInfo()
    info.host = "swarm"
    info.pid = UInt32(getpid())
    info.version = HaatVersion.current
    var pool = Haat_V1_PoolSlots()
    pool.pool = "collect"
    pool.slots = 1
    info.pools = [pool]
    let worker = info
    let handler = SimulatedWorker(recorder: recorder, writer: writer)
    // 500 sessions per source address: the coordinator bounds connections per address.
    let source = try SocketAddress(ipAddress: "127.0.0.\(2 + number / 500)", port: 0)
    let channel = try await ClientBootstrap(group: loop)
      .connectTimeout(.seconds(30))
      .channelOption(.tcpOption(.tcp_nodelay), value: 1)
      .bind(to: source)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let operations = channel.pipeline.syncOperations
          try operations.addClientSession(
            endpoint: Endpoint(host: "127.0.0.1", port: port), tls: nil, handshake: handshake, worker: worker,
            challengeTimeoutMs: 30_000, established: established)
          // Right after the line framer: lines in, bytes out, past the envelope codec.
          let framer = try operations.handler(type: ByteToMessageHandler<LineFrameDecoder>.self)
          try operations.addHandler(handler, position: .after(framer))
        }
      }
      .connect(host: "127.0.0.1", port: port).get()
    let welcome = try await established.futureResult.get()
    try await loop.submit {
      handler.leaseMs = Double(welcome.leaseMs)
      handler.established = true
      handler.start(channel: channel, heartbeatMs: Int64(max(100, welcome.heartbeatMs)))
    }.get()
    return channel
  }

  private static let creditLine = #"{"credit":{"pool":"collect","free":1}}"# + "\n"

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
  }

  private func start(channel: any Channel, heartbeatMs: Int64) {
    context?.writeAndFlush(wrapOutboundOut(ByteBuffer(string: Self.creditLine)), promise: nil)
    // Spread the first beats over a period, as workers started at different times would.
    let first = Int64.random(in: 0..<heartbeatMs)
    channel.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(first), delay: .milliseconds(heartbeatMs)) {
      task in
      guard channel.isActive else { return task.cancel() }
      self.beats += 1
      let id = "h\(self.beats)"
      self.sent[id] = (monotonicNanoseconds(), Date().timeIntervalSince1970 * 1000)
      self.context?.writeAndFlush(
        self.wrapOutboundOut(ByteBuffer(string: #"{"id":""# + id + #"","heartbeat":{}}"# + "\n")), promise: nil)
    }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard established, case .line(let line) = unwrapInboundIn(data) else {
      return context.fireChannelRead(data)
    }
    let bytes = line.readableBytesView
    if bytes.starts(with: Self.assignPrefix) {
      guard let task = Self.string(after: Self.taskKey, in: bytes),
        let attempt = Self.digits(after: Self.attemptKey, in: bytes)
      else { return }
      completes += 1
      var buffer = context.channel.allocator.buffer(capacity: 128)
      buffer.writeString(#"{"id":"c\#(completes)","complete":{"task":"\#(task)","attempt":\#(attempt)}}"# + "\n")
      buffer.writeString(Self.creditLine)
      writer.add(self, buffer)
    } else if bytes.starts(with: Self.replyPrefix), let id = Self.string(after: Self.replyKey, in: bytes),
      let at = sent.removeValue(forKey: id)
    {
      let ack = Haat_V1_HeartbeatAck.from(line: line)
      // The ack's lease end is the coordinator's wall clock when it answered, plus a lease.
      recorder.add(
        Recorder.Beat(
          sentNs: at.monotonic, roundTripMs: Double(monotonicNanoseconds() - at.monotonic) / 1e6,
          toAnswerMs: ack.map { Double($0.leaseExpiresMs) - leaseMs - at.wallMs } ?? 0))
    }
  }

  /// Writes a line now (from this session's loop).
  func send(_ buffer: ByteBuffer) {
    context?.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
  }

  private static let assignPrefix = Array(#"{"assign":"#.utf8)
  private static let replyPrefix = Array(#"{"reply_to":"#.utf8)
  private static let taskKey = Array(#""task":""#.utf8)
  private static let attemptKey = Array(#""attempt":"#.utf8)
  private static let replyKey = Array(#""reply_to":""#.utf8)

  /// The string value after `key` (a JSON key with its opening quote), up to its closing quote.
  private static func string(after key: [UInt8], in bytes: ByteBufferView) -> String? {
    value(after: key, in: bytes) { $0 != UInt8(ascii: "\"") }
  }

  private static func digits(after key: [UInt8], in bytes: ByteBufferView) -> String? {
    value(after: key, in: bytes) { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
  }

  /// The bytes after the first `key` while `accept` holds (a plain scan: the generic
  /// collection search costs more than the rest of a simulated session).
  private static func value(after key: [UInt8], in bytes: ByteBufferView, while accept: (UInt8) -> Bool) -> String? {
    bytes.withUnsafeBytes { raw -> String? in
      guard raw.count >= key.count else { return nil }
      var start = -1
      search: for index in 0...(raw.count - key.count) where raw[index] == key[0] {
        for offset in 1..<key.count where raw[index + offset] != key[offset] { continue search }
        start = index + key.count
        break
      }
      guard start >= 0 else { return nil }
      var end = start
      while end < raw.count, accept(raw[end]) { end += 1 }
      return end > start ? String(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<end]), as: UTF8.self) : nil
    }
  }
}

/// The simulated sessions' answers on one loop, written after the reads that asked for
/// them and at most `linesPerTurn` at a time, so a burst of assigns does not hold the loop
/// (and the heartbeat acks it has yet to read) for the whole burst.
final class LoopWriter: @unchecked Sendable {
  // @unchecked: touched only on `loop`.
  static let linesPerTurn = 256
  let loop: any EventLoop
  private var pending: [(SimulatedWorker, ByteBuffer)] = []
  private var head = 0
  private var scheduled = false

  init(loop: any EventLoop) {
    self.loop = loop
  }

  func add(_ worker: SimulatedWorker, _ buffer: ByteBuffer) {
    pending.append((worker, buffer))
    schedule()
  }

  private func schedule() {
    guard !scheduled else { return }
    scheduled = true
    // Not due at once: NIO runs every due task before it polls its sockets again.
    loop.scheduleTask(in: .microseconds(20)) { self.drain() }
  }

  private func drain() {
    scheduled = false
    let end = min(pending.count, head + Self.linesPerTurn)
    for index in head..<end { pending[index].0.send(pending[index].1) }
    head = end
    if head == pending.count {
      pending.removeAll(keepingCapacity: true)
      head = 0
    } else {
      schedule()
    }
  }
}

/// One writer per loop of the simulator's group.
final class LoopWriters: Sendable {
  private let writers: [ObjectIdentifier: LoopWriter]

  init(group: MultiThreadedEventLoopGroup) {
    var writers: [ObjectIdentifier: LoopWriter] = [:]
    for loop in group.makeIterator() { writers[ObjectIdentifier(loop)] = LoopWriter(loop: loop) }
    self.writers = writers
  }

  func writer(for loop: any EventLoop) -> LoopWriter {
    writers[ObjectIdentifier(loop)] ?? LoopWriter(loop: loop)
  }
}

extension Haat_V1_HeartbeatAck {
  /// The ack in a `heartbeat_ack` line (heartbeats are few: decoded in full).
  static func from(line: ByteBuffer) -> Haat_V1_HeartbeatAck? {
    guard case .success(let envelope) = WireCodec.decode(line), case .heartbeatAck(let ack)? = envelope.body else {
      return nil
    }
    return ack
  }
}

/// A process's CPU time since the sample was made, as a share of one core.
struct CPUSample {
  let pid: Int32
  let cpu: Double
  let at: ContinuousClock.Instant

  init(pid: Int32) {
    self.pid = pid
    cpu = ChildProcess.cpuSeconds(pid: pid)
    at = .now
  }

  func share() -> Double {
    let elapsed = (ContinuousClock.now - at) / .seconds(1)
    return elapsed > 0 ? (ChildProcess.cpuSeconds(pid: pid) - cpu) / elapsed : 0
  }
}

/// VmRSS of a process, in bytes.
func currentRSS(pid: Int32) -> UInt64 {
  guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
  for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
    return (line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) } ?? 0) * 1024
  }
  return 0
}
