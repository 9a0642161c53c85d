import ArgumentParser
import Foundation
import HaatCoordinator
import HaatCore
import HaatProtocol
import HaatStore
import Logging
import ServiceLifecycle

struct CoordinatorCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "coordinator", abstract: "Run the coordinator: the durable queue workers and clients connect to.")

  @Option(help: "Where to listen, host:port (env HAAT_LISTEN; default: 127.0.0.1:7420). Port 0 picks a free one.")
  var listen: String?
  @Option(help: "Holds the store (haat.db) and tokens (env HAAT_DATA_DIR; default: haat-data).")
  var dataDir: String?
  @Option(
    help:
      "Where the queue lives: sqlite:PATH or postgres://USER@HOST:PORT/DATABASE[?schema=haat&sslmode=require&password_file=PATH] (env HAAT_STORE; default: sqlite:DATA_DIR/haat.db). The password comes from PGPASSWORD or password_file, never the URL."
  )
  var store: String?
  @Option(help: "full: fsync every commit (survives power loss); normal: survives a crash of the process.")
  var durability: String = Durability.full.rawValue
  @Option(parsing: .unconditional, help: "How long a lease lasts without a heartbeat, in ms.")
  var leaseMs: UInt32 = Defaults.leaseMs
  @Option(parsing: .unconditional, help: "How often workers heartbeat, in ms.")
  var heartbeatMs: UInt32 = Defaults.heartbeatMs
  @Option(parsing: .unconditional, help: "The longest line a peer may send, in bytes.")
  var maxLineBytes: UInt32 = Defaults.maxLineBytes
  @Option(parsing: .unconditional, help: "Default attempts per task (a spec's max_attempts overrides it).")
  var maxAttempts: UInt32 = Defaults.maxAttempts
  @Option(parsing: .unconditional, help: "Default first retry backoff ceiling, in ms.")
  var retryBaseMs: UInt64 = RetryPolicy.default.baseMs
  @Option(parsing: .unconditional, help: "Default largest retry backoff ceiling, in ms.")
  var retryCapMs: UInt64 = RetryPolicy.default.capMs
  @Option(
    parsing: .unconditional, help: "Refuse new jobs while the store's disk has less free space than this many bytes.")
  var minFreeDiskBytes: UInt64 = 64 << 20
  @Option(help: "Write host:port here once listening.")
  var readyFile: String?
  @Option(
    parsing: .unconditional,
    help:
      "Event-loop threads for connections (reading, TLS, framing, heartbeats), beside the core's one (default: one per core)."
  )
  var sessionThreads: Int?
  @Option(
    parsing: .unconditional,
    help: "The most tasks one store commit claims for workers (smaller commits keep a large swarm's flow even).")
  var claimsPerCommit = 1_024
  @Option(help: "TLS on the protocol port: the certificate chain, PEM (with --tls-key; env HAAT_TLS_CERT).")
  var tlsCert: String?
  @Option(help: "The certificate's private key, PEM (env HAAT_TLS_KEY).")
  var tlsKey: String?
  @Option(help: "Require client certificates signed by this CA, PEM (mutual TLS; needs --tls-cert).")
  var tlsClientCa: String?
  @Option(
    help:
      "The admin HTTP port, host:port: the dashboard (/), /metrics, /healthz, /readyz (env HAAT_ADMIN_LISTEN; default: off). A non-loopback address needs --tls-cert, and /metrics a metrics-role token."
  )
  var adminListen: String?
  @Flag(
    help:
      "Require TLS and tokens on the admin port even on a loopback address: metrics role for /metrics, dashboard role for the dashboard."
  )
  var adminAuth = false
  @Option(help: "Delete jobs that ended longer ago than this, with their results: 30d, 12h, 90m; 0 keeps them.")
  var retain: String = "30d"
  @Option(help: "trace, debug, info, notice, warning, error or critical.")
  var logLevel: Logger.Level = .info
  @Flag(help: .hidden)
  var exitWithParent = false

  var listenAddress: String {
    listen ?? ProcessInfo.processInfo.environment["HAAT_LISTEN"] ?? "\(Defaults.host):\(Defaults.port)"
  }

  var storeValue: String? { store ?? ProcessInfo.processInfo.environment["HAAT_STORE"] }

  func validate() throws {
    guard Endpoint(listenAddress) != nil else {
      throw ValidationError("\(listen == nil ? "HAAT_LISTEN" : "--listen") must be host:port, not \(listenAddress)")
    }
    guard Durability(rawValue: durability) != nil else { throw ValidationError("--durability must be full or normal") }
    if let storeValue {
      do { _ = try StoreLocation(parsing: storeValue) } catch let error as HaatError {
        throw ValidationError(error.message)
      }
    }
    for (flag, value) in [("--retry-base-ms", retryBaseMs), ("--retry-cap-ms", retryCapMs)]
    where value > UInt64(Planner.maxRetryMs) {
      throw ValidationError("\(flag) must be at most \(Planner.maxRetryMs) (a day), as in a job spec, not \(value)")
    }
    guard retryCapMs >= retryBaseMs else {
      throw ValidationError("--retry-cap-ms must not be less than --retry-base-ms")
    }
    // A worker beats at least every 100 ms apart: a shorter period would show every worker lost.
    guard (100...3_600_000).contains(heartbeatMs) else {
      throw ValidationError("--heartbeat-ms must be 100 to 3600000 (an hour), not \(heartbeatMs)")
    }
    guard leaseMs <= 86_400_000 else {
      throw ValidationError("--lease-ms must be at most 86400000 (a day), not \(leaseMs)")
    }
    guard leaseMs > heartbeatMs else { throw ValidationError("--lease-ms must be longer than --heartbeat-ms") }
    guard (Defaults.minLineBytes...Defaults.maxNegotiatedLineBytes).contains(maxLineBytes) else {
      throw ValidationError(
        "--max-line-bytes must be \(Defaults.minLineBytes) to \(Defaults.maxNegotiatedLineBytes), not \(maxLineBytes)")
    }
    try refuseEmptyDataDirectory(dataDir)
    if let readyFile, let refusal = RegularFile.refusal(readyFile) {
      throw ValidationError("--ready-file: \(refusal)")
    }
    let directory = dataDir ?? ProcessInfo.processInfo.environment["HAAT_DATA_DIR"] ?? "haat-data"
    if let readyFile, samePath(readyFile, in: directory, ["tokens", "admin.token", "haat.db", "haat.db-wal"]) {
      throw ValidationError("--ready-file \(readyFile) is one of the coordinator's own files")
    }
    guard claimsPerCommit >= 1 else { throw ValidationError("--claims-per-commit must be at least 1") }
    if let sessionThreads, !(1...64).contains(sessionThreads) {
      throw ValidationError("--session-threads must be 1 to 64, not \(sessionThreads)")
    }
    let environment = ProcessInfo.processInfo.environment
    for (flag, value, variable) in [("--tls-cert", tlsCert, "HAAT_TLS_CERT"), ("--tls-key", tlsKey, "HAAT_TLS_KEY")] {
      if value == "" { throw ValidationError("\(flag) is empty: name a PEM file") }
      if value == nil, environment[variable] == "" {
        throw ValidationError("\(variable) is set but empty: name a PEM file, or unset it")
      }
    }
    let certificate = tlsCert ?? environment["HAAT_TLS_CERT"]
    let key = tlsKey ?? environment["HAAT_TLS_KEY"]
    guard (certificate == nil) == (key == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
    guard tlsClientCa == nil || certificate != nil else { throw ValidationError("--tls-client-ca needs --tls-cert") }
    if let certificate, let key {
      // Each file read now and named in its error (exit 64), not NIOSSL's
      // `failedToLoadCertificate` at start.
      do {
        _ = try TLSServerSettings(certificatePath: certificate, keyPath: key, clientCAPath: tlsClientCa).makeContext()
      } catch let error as HaatError {
        throw ValidationError(error.message)
      }
    }
    if let admin = adminListen ?? environment["HAAT_ADMIN_LISTEN"] {
      guard let endpoint = Endpoint(admin) else {
        throw ValidationError(
          "\(adminListen == nil ? "HAAT_ADMIN_LISTEN" : "--admin-listen") must be host:port, not \(admin)")
      }
      guard certificate != nil || (AdminServer.isLoopback(endpoint.host) && !adminAuth) else {
        throw ValidationError(
          adminAuth
            ? "--admin-auth needs TLS (--tls-cert and --tls-key)"
            : "--admin-listen \(admin) is not a loopback address: it needs TLS (--tls-cert and --tls-key)")
      }
    } else if adminAuth {
      throw ValidationError("--admin-auth needs --admin-listen")
    }
    guard (1...100).contains(maxAttempts) else {
      throw ValidationError("--max-attempts must be 1 to 100, not \(maxAttempts)")
    }
    guard DurationText.milliseconds(retain) != nil else {
      throw ValidationError(
        "--retain must be a duration in s, m, h and d (30d, 12h, 1h30m), or 0 to keep every job")
    }
  }

  func run() async throws {
    let environment = ProcessInfo.processInfo.environment
    var config = CoordinatorConfig()
    guard let endpoint = Endpoint(listenAddress), let durability = Durability(rawValue: durability) else {
      throw ValidationError("invalid --listen or --durability")
    }
    config.host = endpoint.host
    config.port = endpoint.port
    config.dataDirectory = dataDir ?? environment["HAAT_DATA_DIR"] ?? config.dataDirectory
    config.durability = durability
    config.store = try storeValue.map { try StoreLocation(parsing: $0) }
    config.leaseMs = leaseMs
    config.heartbeatMs = heartbeatMs
    config.maxLineBytes = maxLineBytes
    config.planner.maxAttempts = maxAttempts
    config.planner.retry = RetryPolicy(baseMs: retryBaseMs, capMs: retryCapMs)
    config.minFreeDiskBytes = minFreeDiskBytes
    config.retainMs = DurationText.milliseconds(retain) ?? config.retainMs
    config.readyFile = readyFile
    config.sessionThreads = sessionThreads ?? config.sessionThreads
    config.claimsPerCommit = claimsPerCommit
    config.adminListen = (adminListen ?? environment["HAAT_ADMIN_LISTEN"]).flatMap { Endpoint($0) }
    config.adminAuth = adminAuth
    if let certificate = tlsCert ?? environment["HAAT_TLS_CERT"], let key = tlsKey ?? environment["HAAT_TLS_KEY"] {
      config.tls = TLSServerSettings(certificatePath: certificate, keyPath: key, clientCAPath: tlsClientCa)
    }
    let logger = makeLogger("haat.coordinator", level: logLevel)
    try await runServices([Coordinator(config: config, logger: logger)], exitWithParent: exitWithParent, logger: logger)
  }
}
