import Foundation
import HaatCore
import HaatFetch
import HaatProtocol
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// A worker as a service: connects to the coordinator, runs what it is assigned, and on
/// graceful shutdown (SIGTERM) drains: finishes or hands back what it holds, then returns.
public final class Worker: Service {
  public let config: WorkerConfig
  private let logger: Logger
  private let shipper: LogShipper

  /// `shipper` forwards this process's log lines to the coordinator once connected.
  public init(config: WorkerConfig, logger: Logger, shipper: LogShipper) {
    self.config = config
    self.logger = logger
    self.shipper = shipper
  }

  public func run() async throws {
    // A thread per slot: past the bound a system's thread limit ends the process.
    for (pool, slots) in config.slots where !(0...Defaults.maxSlots).contains(slots) {
      throw HaatError(.badRequest, "the \(pool.rawValue) pool's slots must be 0 to \(Defaults.maxSlots), not \(slots)")
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let threads = NIOThreadPool(numberOfThreads: max(1, config.slots.values.reduce(0, +)))
    threads.start()
    let fetcher = Fetcher(policy: config.fetch)
    let tlsContext: NIOSSLContext?
    do {
      tlsContext = try config.tls?.makeContext()
    } catch {
      try? await threads.shutdownGracefully()
      try? await group.shutdownGracefully()
      throw error
    }
    let runtime = WorkerRuntime(
      loop: group.next(), config: config, fetcher: fetcher, threads: threads, logger: logger, tlsContext: tlsContext)
    shipper.attach(runtime)
    logger.info(
      "worker starting",
      metadata: [
        "worker": "\(config.name)", "coordinator": "\(config.coordinators.map(\.description).joined(separator: ","))",
        "slots": "\(config.slots.map { "\($0.key.rawValue)=\($0.value)" }.sorted().joined(separator: ","))",
        "curl": "\(Fetcher.version)",
      ])
    // Read again at each use (a rotated file takes effect), so a missing one is no reason
    // not to start; said now, where the operator looks, not first in a failed task.
    for credential in config.credentials.values.sorted(by: { $0.name < $1.name }) {
      if case .failure(let missing) = credential.lookUp() {
        logger.warning(
          "a credential has no value yet", metadata: ["credential": "\(credential.name)", "reason": "\(missing.text)"])
      }
    }
    runtime.start()
    let outcome: Result<Void, any Error>
    do {
      try await withGracefulShutdownHandler {
        try await runtime.done.futureResult.get()
      } onGracefulShutdown: {
        runtime.loop.execute { runtime.startDrain(exit: true) }
      }
      outcome = .success(())
    } catch {
      outcome = .failure(error)
    }
    shipper.detach()
    try? await threads.shutdownGracefully()
    fetcher.shutdown()
    try? await group.shutdownGracefully()
    try outcome.get()
  }
}

/// A swift-log handler that forwards lines to the coordinator as `log` messages (and to
/// another handler, usually stderr). Lines below `level` are not shipped.
public final class LogShipper: Sendable {
  private let runtime = Mutex<WorkerRuntime?>(nil)

  public init() {}

  func attach(_ runtime: WorkerRuntime) { self.runtime.withLock { $0 = runtime } }
  func detach() { runtime.withLock { $0 = nil } }

  func ship(level: Logger.Level, message: String, metadata: Logger.Metadata) {
    guard let runtime = runtime.withLock({ $0 }), level >= runtime.config.shipLevel else { return }
    var line = Haat_V1_Log()
    line.level = level.rawValue
    line.message = message
    line.atMs = Int64(Date().timeIntervalSince1970 * 1000)
    for (key, value) in metadata {
      if key == "task" { line.task = "\(value)" } else { line.fields[key] = "\(value)" }
    }
    let shipped = line
    runtime.loop.execute { runtime.ship(shipped) }
  }

  /// A handler that ships and also writes through `base` the lines at `baseLevel` and above.
  public func handler(base: any LogHandler, baseLevel: Logger.Level) -> any LogHandler {
    ShippingLogHandler(base: base, baseLevel: baseLevel, shipper: self)
  }
}

struct ShippingLogHandler: LogHandler {
  var base: any LogHandler
  let baseLevel: Logger.Level
  let shipper: LogShipper

  var metadata: Logger.Metadata {
    get { base.metadata }
    set { base.metadata = newValue }
  }

  var logLevel: Logger.Level {
    get { base.logLevel }
    set { base.logLevel = newValue }
  }

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { base[metadataKey: key] }
    set { base[metadataKey: key] = newValue }
  }

  func log(event: LogEvent) {
    if event.level >= baseLevel { base.log(event: event) }
    var merged = base.metadata
    if let extra = event.metadata { merged.merge(extra) { $1 } }
    shipper.ship(level: event.level, message: event.message.description, metadata: merged)
  }
}
