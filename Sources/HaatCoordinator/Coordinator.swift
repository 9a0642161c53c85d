import Foundation
import HaatCore
import HaatProtocol
import HaatStore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// The coordinator as a service: it opens the store, recovers, listens for workers and
/// clients, and on graceful shutdown stops accepting, lets the commit in flight finish,
/// and closes.
public final class Coordinator: Service {
  public let config: CoordinatorConfig
  private let logger: Logger

  public init(config: CoordinatorConfig, logger: Logger) {
    self.config = config
    self.logger = logger
  }

  public func run() async throws {
    // The TLS files are read first: a bad one stops the coordinator before it opens anything.
    let tlsContext = try config.tls?.makeContext()
    // The data directory holds the tokens: owner only.
    do {
      try FileManager.default.createDirectory(
        atPath: config.dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    } catch {
      throw HaatError(
        .unavailable, "cannot create the data directory \(config.dataDirectory): \(HaatError.systemReason(error))")
    }
    let store: any JobStore
    var leadership: PostgresLeadership?
    var storeLock: StoreFileLock?
    defer { storeLock?.release() }
    switch config.storeLocation {
    case .sqlite(let path):
      storeLock = try StoreFileLock(store: path)
      store = try SQLiteJobStore(path: path, durability: config.durability)
      if SQLiteJobStore.processSettingsApplied {
        logger.debug("sqlite: multi-thread mode, no memory statistics")
      } else {
        logger.warning("sqlite: initialized before its settings could be made; it keeps a mutex per statement")
      }
    case .postgres(let location):
      // One coordinator is active on a store; the others wait as standbys, not listening,
      // so workers and clients that know them all reach the active one.
      let logger = self.logger
      do {
        leadership = try await cancelWhenGracefulShutdown {
          try await PostgresLeadership.acquire(location, logger: logger) {
            logger.notice(
              "standby: another coordinator is active on this store; taking over when it stops",
              metadata: ["store": "\(location.redacted)"])
          }
        }
      } catch is CancellationError {
        logger.info("standby stopped")
        return
      }
      logger.notice("active: this coordinator holds the store's lock", metadata: ["store": "\(location.redacted)"])
      do {
        let held = leadership
        store = try await PostgresJobStore(location, logger: logger, fenced: { held?.abandon() })
      } catch {
        await leadership?.release()
        throw error
      }
    }
    let tokens = TokenStore(path: config.tokensPath, logger: logger)
    tokens.refresh()

    // One loop for the core, whose state is confined to it; connections live on their own
    // session loops (reading, TLS, framing, heartbeats), so heartbeats never wait behind
    // the core's work.
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop = group.next()
    let sessionGroup = MultiThreadedEventLoopGroup(numberOfThreads: config.sessionThreads)
    let core = CoordinatorCore(
      loop: loop, sessionLoops: Array(sessionGroup.makeIterator()), store: store, config: config, logger: logger)
    do {
      try await core.start()
    } catch {
      await store.close()
      await leadership?.release()
      try? await group.shutdownGracefully()
      try? await sessionGroup.shutdownGracefully()
      throw error
    }
    // Tokens created or changed since are picked up within a second, read off the loop.
    let tokenReload = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
      core.offLoop { tokens.refresh() }.assumeIsolated().whenSuccess { core.closeRevoked(tokens) }
    }

    let config = self.config
    // Everything started so far, stopped in order (a failure to listen, or to start the
    // admin port).
    func stopAll() async {
      tokenReload.cancel()
      await core.shutdown()
      await store.close()
      await leadership?.release()
      try? await sessionGroup.shutdownGracefully()
      try? await group.shutdownGracefully()
    }
    let logger = self.logger
    let throttle = AuthThrottle(logger: logger)
    let gate = ConnectionGate(
      maxPerAddress: config.session.connectionsPerAddress, maxUnauthenticated: config.session.unauthenticatedConnections
    )
    let boards = HealthBoard.boards(for: core)
    let server: any Channel
    do {
      server = try await ServerBootstrap(group: loop, childGroup: sessionGroup)
        .serverChannelOption(.backlog, value: 1024)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            let operations = channel.pipeline.syncOperations
            if let tlsContext {
              try operations.addHandler(TLSProbe(throttle: throttle))
              try operations.addHandler(NIOSSLServerHandler(context: tlsContext))
            }
            let framing = LineFrameDecoder.Limit(Int(config.maxLineBytes))
            try operations.addHandler(ByteToMessageHandler(LineFrameDecoder(limit: framing)))
            try operations.addHandler(
              SessionHandler(
                core: core, tokens: tokens, config: config, throttle: throttle, gate: gate,
                health: boards[ObjectIdentifier(channel.eventLoop)] ?? HealthBoard(loop: channel.eventLoop, core: core),
                framing: framing)
            )
          }
        }
        .bind(host: config.host, port: config.port).get()
    } catch {
      await stopAll()
      throw HaatError(.unavailable, "cannot listen on \(config.host):\(config.port): \(SocketFailure.describe(error))")
    }
    let port = server.localAddress?.port ?? config.port
    // As a client reads it back: an IPv6 host in brackets (`[::1]:7420`).
    let address = Endpoint(host: config.host, port: port).description
    do {
      // After binding, so the credential records the port actually in use.
      try ensureAdminToken(tokens, address: address)
    } catch {
      logger.error("cannot write the admin credential", metadata: ["error": "\(error)"])
    }
    logger.info(
      "coordinator listening",
      metadata: [
        "address": "\(address)", "store": "\(config.storeLocation.redacted)",
        // --durability is SQLite's; PostgreSQL commits as its server is configured.
        "durability": "\(config.storeLocation.isSQLite ? config.durability.rawValue : "server")",
        "tls": "\(config.tls == nil ? "off" : config.tls?.clientCAPath == nil ? "on" : "mutual")",
      ])
    var admin: (group: ServiceGroup, task: Task<Void, Never>)?
    if let adminListen = config.adminListen {
      do {
        // Its start is awaited: a port it cannot bind stops the coordinator, as the
        // protocol's does, rather than leaving it up without probes or metrics.
        let (started, starting) = AsyncStream<Result<Int, any Error>>.makeStream()
        let application = try AdminServer.application(
          host: adminListen.host, port: adminListen.port, requireAuth: config.adminAuth, core: core, tokens: tokens,
          tls: config.tls, logger: logger
        ) { port in starting.yield(.success(port)) }
        // Its own service group, stopped gracefully with the coordinator (a cancelled
        // server logs its cancellation as errors).
        let group = ServiceGroup(
          configuration: .init(services: [application], gracefulShutdownSignals: [], logger: logger))
        let task = Task {
          do { try await group.run() } catch {
            starting.yield(.failure(error))
            logger.error("the admin port stopped", metadata: ["error": "\(SocketFailure.describe(error))"])
          }
          starting.finish()
        }
        admin = (group, task)
        var outcome: Result<Int, any Error>?
        for await first in started {
          outcome = first
          break
        }
        let port = try (outcome ?? .failure(HaatError(.internal, "the admin port ended before it listened"))).get()
        // Bracketed when IPv6, so the address reads back as host:port (a tester).
        let host = adminListen.host.contains(":") ? "[\(adminListen.host)]" : adminListen.host
        logger.info("admin port listening", metadata: ["address": "\(host):\(port)"])
      } catch {
        logger.error("cannot start the admin port", metadata: ["error": "\(SocketFailure.describe(error))"])
        if let admin {
          await admin.group.triggerGracefulShutdown()
          await admin.task.value
        }
        try? await server.close()
        await stopAll()
        throw (error as? HaatError)
          ?? HaatError(
            .unavailable,
            "cannot serve the admin port on \(adminListen.host):\(adminListen.port): \(SocketFailure.describe(error))")
      }
    }
    // A ready file that cannot be written would leave a script waiting for it forever: the
    // coordinator stops instead, as on a shutdown.
    var startFailure: (any Error)?
    if let readyFile = config.readyFile {
      do {
        try RegularFile.write(address + "\n", to: readyFile)
      } catch {
        logger.error("cannot write the ready file; stopping", metadata: ["error": "\(error)"])
        startFailure = error
      }
    }

    // Run until a graceful shutdown (SIGTERM/SIGINT) or cancellation, or until the store's
    // lock is lost (a standby may then be active: this one must stop).
    var lockLost = false
    if startFailure != nil {
      // Nothing to wait for: drain at once.
    } else if let leadership {
      lockLost = await withTaskGroup(of: Bool.self) { group in
        group.addTask {
          try? await gracefulShutdown()
          return false
        }
        group.addTask {
          _ = try? await leadership.lost.get()
          return true
        }
        let first = await group.next() ?? false
        group.cancelAll()
        await leadership.release()  // ends the wait for `lost` when the shutdown came first
        return first
      }
      if lockLost {
        logger.critical(
          "lost the store's lock (its connection closed, or another coordinator took over); stopping so that one coordinator is active"
        )
      }
    } else {
      try? await gracefulShutdown()
    }

    logger.info("coordinator draining")
    if let admin {
      await admin.group.triggerGracefulShutdown()
      await admin.task.value
    }
    try? await server.close()
    tokenReload.cancel()
    var drainEnded = true
    if lockLost {
      // Its writes are refused now, and a store connection that died under a frozen process
      // may never answer (postgres-nio drops a query to a closed connection without a word):
      // the drain gets 5 s, so that its workers go to the active coordinator.
      let drained = loop.makePromise(of: Bool.self)
      Task {
        await core.shutdown()
        await store.close()
        drained.succeed(true)
      }
      let deadline = loop.scheduleTask(in: .seconds(5)) {
        logger.warning("the drain did not end within 5 s of losing the store's lock; stopping without it")
        drained.succeed(false)
      }
      drainEnded = (try? await drained.futureResult.get()) ?? false
      deadline.cancel()
    } else {
      await core.shutdown()
      await store.close()
    }
    try? await sessionGroup.shutdownGracefully()
    // The core's loop stays up under a drain still waiting: the process exits now.
    if drainEnded { try? await group.shutdownGracefully() }
    logger.info("coordinator stopped")
    if let startFailure { throw startFailure }
    if lockLost { throw HaatError(.unavailable, "the coordinator lost the store's lock") }
  }

  /// Until there is an admin token, creates one and writes its credential next to the
  /// store, so the machine's own operator can use the CLI at once.
  private func ensureAdminToken(_ tokens: TokenStore, address: String) throws {
    let path = config.dataDirectory + "/admin.token"
    if FileManager.default.fileExists(atPath: path) {
      try updateAdminAddress(path, tokens: tokens, address: address)
      return
    }
    guard !tokens.list().contains(where: { $0.role == .admin }) else { return }
    let credential = try tokens.create(role: .admin, label: "created on first start", coordinator: address) {
      try $0.write(path: path)
    }
    logger.notice("created an admin token", metadata: ["token": "\(credential.tokenID)", "credential_file": "\(path)"])
  }
  /// A restart on another port (`--listen 127.0.0.1:0`, say) points the admin credential
  /// at the port now in use, so the CLI beside the store still reaches it. Only the port of
  /// a credential naming this host is changed: a name an operator wrote in is kept.
  private func updateAdminAddress(_ path: String, tokens: TokenStore, address: String) throws {
    guard var credential = try? Credential.load(path: path), let recorded = credential.coordinator,
      recorded != address, let old = Endpoint(recorded), let new = Endpoint(address), old.host == new.host,
      tokens.cachedToken(id: credential.tokenID)?.role == .admin
    else { return }
    credential.coordinator = address
    try credential.write(path: path)
    logger.notice(
      "the admin credential now names the port in use",
      metadata: ["credential_file": "\(path)", "address": "\(address)"])
  }

}
