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
    let cluster = try await LocalCluster.start(options)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
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
                number: number, port: port, credential: credential, group: group, recorder: recorder)
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
      let job = try await client.submit(spec).job
      for try await event in client.watch(job) where event.final {
        guard event.state == "succeeded" else { throw BenchError("job \(job) ended \(event.state)") }
        break
      }
      let rate = Double(tasks) / ((ContinuousClock.now - started) / .seconds(1))
      let jobBeats = recorder.take()
      await client.close()
      let peak = coordinator.peakResidentBytes
      for channel in channels { channel.close(promise: nil) }
      try? await group.shutdownGracefully()
      await cluster.stop()
      let job50 = percentiles(jobBeats).p50
      let job99 = percentiles(jobBeats).p99
      return [
        String(format: "%.1f", connectSeconds), String(format: "%.1f %%", idleShare * 100),
        String(format: "%.0f MB", Double(idleRSS) / 1e6), String(format: "%.0f", rate),
        String(format: "%.1f (%d)", job50, jobBeats.count), String(format: "%.1f", job99),
        String(format: "%.1f (%d)", percentiles(idleBeats).p99, idleBeats.count),
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

/// Heartbeat round trips in milliseconds, from every session.
final class Recorder: @unchecked Sendable {
  // @unchecked: every access holds `lock`.
  private let lock = NSLock()
  private var values: [Double] = []

  func add(_ milliseconds: Double) {
    lock.lock()
    values.append(milliseconds)
    lock.unlock()
  }

  func reset() { _ = take() }

  func take() -> [Double] {
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
final class SimulatedWorker: ChannelInboundHandler, @unchecked Sendable {
  // @unchecked: touched only on its channel's event loop.
  typealias InboundIn = Envelope
  typealias OutboundOut = Envelope

  private let recorder: Recorder
  private var sent: [String: UInt64] = [:]
  private var beats = 0
  private var completes = 0

  init(recorder: Recorder) {
    self.recorder = recorder
  }

  static func connect(
    number: Int, port: Int, credential: Credential, group: any EventLoopGroup, recorder: Recorder
  ) async throws -> any Channel {
    let loop = group.next()
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
    let handler = SimulatedWorker(recorder: recorder)
    // 500 sessions per source address: the coordinator bounds connections per address.
    let source = try SocketAddress(ipAddress: "127.0.0.\(2 + number / 500)", port: 0)
    let channel = try await ClientBootstrap(group: loop)
      .connectTimeout(.seconds(30))
      .channelOption(.socketOption(.tcp_nodelay), value: 1)
      .bind(to: source)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let operations = channel.pipeline.syncOperations
          try operations.addClientSession(
            endpoint: Endpoint(host: "127.0.0.1", port: port), tls: nil, handshake: handshake, worker: info,
            challengeTimeoutMs: 30_000, established: established)
          try operations.addHandler(handler)
        }
      }
      .connect(host: "127.0.0.1", port: port).get()
    let welcome = try await established.futureResult.get()
    try await loop.submit {
      handler.start(channel: channel, heartbeatMs: Int64(max(100, welcome.heartbeatMs)))
    }.get()
    return channel
  }

  private func start(channel: any Channel, heartbeatMs: Int64) {
    var credit = Haat_V1_Credit()
    credit.pool = "collect"
    credit.free = 1
    channel.writeAndFlush(Envelope(.credit(credit)), promise: nil)
    // Spread the first beats over a period, as workers started at different times would.
    let first = Int64.random(in: 0..<heartbeatMs)
    channel.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(first), delay: .milliseconds(heartbeatMs)) {
      task in
      guard channel.isActive else { return task.cancel() }
      self.beats += 1
      let id = "h\(self.beats)"
      self.sent[id] = monotonicNanoseconds()
      channel.writeAndFlush(Envelope(id: id, .heartbeat(Haat_V1_Heartbeat())), promise: nil)
    }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let envelope = unwrapInboundIn(data)
    switch envelope.body {
    case .assign(let assign)?:
      completes += 1
      var complete = Haat_V1_Complete()
      complete.task = assign.task
      complete.attempt = assign.attempt
      var credit = Haat_V1_Credit()
      credit.pool = "collect"
      credit.free = 1
      context.write(wrapOutboundOut(Envelope(id: "c\(completes)", .complete(complete))), promise: nil)
      context.writeAndFlush(wrapOutboundOut(Envelope(.credit(credit))), promise: nil)
    case .heartbeatAck?:
      if let at = sent.removeValue(forKey: envelope.replyTo) {
        recorder.add(Double(monotonicNanoseconds() - at) / 1e6)
      }
    default:
      break
    }
  }
}

/// A process's CPU time since the sample was made, as a share of one core.
struct CPUSample {
  let pid: Int32
  let cpu: Double
  let at: ContinuousClock.Instant

  init(pid: Int32) {
    self.pid = pid
    cpu = Self.seconds(pid: pid)
    at = .now
  }

  func share() -> Double {
    let elapsed = (ContinuousClock.now - at) / .seconds(1)
    return elapsed > 0 ? (Self.seconds(pid: pid) - cpu) / elapsed : 0
  }

  /// utime + stime from /proc/PID/stat, in seconds.
  static func seconds(pid: Int32) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = text.lastIndex(of: ")")
    else { return 0 }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
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
