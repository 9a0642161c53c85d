import Foundation
import HaatCore
import HaatFetch
import HaatProtocol
import HaatRecords
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// The session with the coordinator: connecting (in turn to each coordinator given),
/// the handshake's outcome, reconnecting with backoff, and what goes out.
extension WorkerRuntime {
  func start() {
    runner.gate.connect { envelope in
      self.loop.execute {
        self.send(envelope)
        self.flush()
      }
    }
    loop.execute { self.connect() }
  }

  func connect() {
    guard !stopping else { return }
    let established = loop.makePromise(of: Haat_V1_Welcome.self)
    let handshake = ClientHandshake(
      kind: .worker, name: config.name, tokenID: config.credential.tokenID, secret: config.credential.secret,
      clientNonce: HandshakeMAC.nonce(bytes: 16))
    var info = Haat_V1_WorkerInfo()
    info.host = ProcessInfo.processInfo.hostName
    info.pid = UInt32(ProcessInfo.processInfo.processIdentifier)
    info.version = HaatVersion.current
    info.pools = config.slots.sorted { $0.key.rawValue < $1.key.rawValue }.map { pool, slots in
      var entry = Haat_V1_PoolSlots()
      entry.pool = pool.rawValue
      entry.slots = UInt32(slots)
      return entry
    }
    let workerInfo = info
    let tlsContext = self.tlsContext
    let endpoint = coordinator
    ClientBootstrap.session(
      on: loop, endpoint: endpoint, tls: tlsContext, handshake: handshake, worker: workerInfo, established: established
    ) { WorkerSessionHandler(runtime: self) }
    .assumeIsolated().whenComplete { result in
      switch result {
      case .failure(let error):
        established.fail(error)
        self.retry("cannot reach the coordinator at \(self.coordinator): \(SocketFailure.describe(error))")
      case .success(let channel):
        established.futureResult.assumeIsolated().whenComplete { result in
          switch result {
          case .success(let welcome): self.opened(channel, welcome: welcome)
          case .failure(let error as HaatError) where error.code == .authFailed || error.code == .versionUnsupported:
            self.logger.critical("the coordinator refused this worker", metadata: ["error": "\(error)"])
            self.stopping = true
            // Its tasks stop too: a revoked worker fetched on with its platform credentials
            // until each transfer ended (up to --timeout-ms), for results nobody would take.
            for task in self.running.values { task.progress.cancel.cancel() }
            self.done.fail(error)
          case .failure(let error):
            self.retry("the handshake failed: \(error)")
          }
        }
      }
    }
  }

  func retry(_ reason: String) {
    guard !stopping else { return }
    // The next coordinator (a standby that may be active now) is tried at once; the
    // backoff applies once every one has been tried.
    coordinatorIndex = (coordinatorIndex + 1) % config.coordinators.count
    if coordinatorIndex != 0 {
      logger.warning("\(reason); trying \(coordinator)")
      loop.assumeIsolated().execute { self.connect() }
      return
    }
    logger.warning("\(reason); retrying in \(reconnectDelayMs) ms")
    let delay = reconnectDelayMs
    reconnectDelayMs = min(reconnectDelayMs * 2, Defaults.reconnectCapMs)
    loop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) { self.connect() }
  }

  func opened(_ channel: any Channel, welcome: Haat_V1_Welcome) {
    self.channel = channel
    self.welcome = welcome
    openedAt = .now()
    (unansweredSince, partsWrittenSince, partsAllowance) = (nil, nil, .zero)
    logger.info(
      "connected to the coordinator",
      metadata: ["coordinator": "\(coordinator)", "session": "\(welcome.session)"])
    // A new session starts from zero credit: offer every free slot.
    if !draining {
      send(credit: free)
    } else {
      send(Envelope(.drain(Haat_V1_Drain())))
    }
    pendingCredit = [:]
    // Results the previous session did not acknowledge, and rate slots still awaited.
    for task in unacked.keys { sendResult(task) }
    runner.gate.resendPending()
    for line in logBuffer { send(Envelope(.log(line))) }
    logBuffer.removeAll()
    let period = TimeAmount.milliseconds(Int64(max(100, welcome.heartbeatMs)))
    heartbeat?.cancel()
    heartbeat = loop.scheduleRepeatedTask(initialDelay: .zero, delay: period) { _ in self.beat() }
    channel.flush()
  }

  func closed(_ channel: any Channel) {
    guard self.channel === channel else { return }
    self.channel = nil
    heartbeat?.cancel()
    heartbeat = nil
    // Only a session that lasted resets the backoff: one the coordinator closes right
    // after the handshake must not make this worker reconnect ten times a second.
    if NIODeadline.now() - openedAt >= .seconds(10) { reconnectDelayMs = 100 }
    if stopping { return }
    if draining && running.isEmpty && unacked.isEmpty {
      finishDrain()
      return
    }
    retry("the coordinator connection closed")
  }

  func send(_ envelope: Envelope) {
    channel?.write(envelope, promise: nil)
  }

  func flush() { channel?.flush() }
}
