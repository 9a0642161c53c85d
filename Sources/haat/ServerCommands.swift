import ArgumentParser
import Foundation
import HaatCoordinator
import HaatCore
import HaatFetch
import HaatFixtures
import HaatProtocol
import HaatStore
import HaatWorker
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
  @Option(help: "How long a lease lasts without a heartbeat, in ms.")
  var leaseMs: UInt32 = Defaults.leaseMs
  @Option(help: "How often workers heartbeat, in ms.")
  var heartbeatMs: UInt32 = Defaults.heartbeatMs
  @Option(help: "The longest line a peer may send, in bytes.")
  var maxLineBytes: UInt32 = Defaults.maxLineBytes
  @Option(help: "Default attempts per task (a spec's max_attempts overrides it).")
  var maxAttempts: UInt32 = Defaults.maxAttempts
  @Option(help: "Default first retry backoff ceiling, in ms.")
  var retryBaseMs: UInt64 = RetryPolicy.default.baseMs
  @Option(help: "Default largest retry backoff ceiling, in ms.")
  var retryCapMs: UInt64 = RetryPolicy.default.capMs
  @Option(help: "Refuse new jobs while the store's disk has less free space than this many bytes.")
  var minFreeDiskBytes: UInt64 = 64 << 20
  @Option(help: "Write host:port here once listening.")
  var readyFile: String?
  @Option(
    help:
      "Event-loop threads for connections (reading, TLS, framing, heartbeats), beside the core's one (default: one per core)."
  )
  var sessionThreads: Int?
  @Option(help: "The most tasks one store commit claims for workers (smaller commits keep a large swarm's flow even).")
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
  @Flag(help: "Require TLS and a metrics-role token on the admin port even on a loopback address.")
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

struct WorkerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "worker", abstract: "Run a worker: fetch exports with libcurl and compute partial aggregates.")

  @OptionGroup var connection: WorkerConnectionOptions
  @Option(help: "The worker's name, its identity across reconnects (default: host-pid).")
  var name: String?
  @Option(help: "Tasks of the collect pool run at once.")
  var collectSlots = Defaults.collectSlots
  @Option(help: "Tasks of the analyze pool run at once.")
  var analyzeSlots = Defaults.analyzeSlots
  @Flag(help: "Allow fetching from loopback and private addresses (tests, on-premise sources).")
  var allowPrivateNetworks = false
  @Option(help: "A directory file:// sources may read from (repeatable).")
  var fileRoot: [String] = []
  @Option(
    help: ArgumentHelp(
      "A host platform API sources may reach besides the platform's own, e.g. a fixture server (repeatable).",
      discussion: "host, *.domain, optionally :port; HTTPS only unless written http://host."))
  var allowHost: [String] = []
  @Option(help: "A CA bundle to verify TLS servers with, instead of the system's.")
  var caFile: String?
  @Option(
    help: ArgumentHelp(
      "A platform credential specs may name: NAME=env:VARIABLE@host[,host…] or NAME=file:/path@host (repeatable).",
      discussion:
        "It is sent only to the hosts listed, over HTTPS (http://host allows plain HTTP to that host); *.domain covers subdomains."
    ))
  var credential: [String] = []
  @Option(help: "Fetch through this HTTP proxy (proxy variables in the environment are ignored).")
  var proxy: String?
  @Option(help: "Connect timeout per fetch, in ms.")
  var connectTimeoutMs = 10_000
  @Option(help: "Whole-transfer timeout per fetch, in ms (0 = none; stalls still time out).")
  var timeoutMs = 30 * 60 * 1000
  @Option(help: "Seconds at under 1 byte/s before a transfer counts as stalled.")
  var stallSeconds = 60
  @Option(help: "The largest body a fetch may download, in bytes.")
  var maxBodyBytes: UInt64 = 16 << 30
  @Option(help: "At most this many redirects per fetch.")
  var maxRedirects = 5
  @Option(help: "How long a draining worker waits for its tasks, in ms.")
  var drainTimeoutMs = 30_000
  @Option(help: "trace, debug, info, notice, warning, error or critical.")
  var logLevel: Logger.Level = .info
  @Option(help: "Ship log lines at this level and above to the coordinator.")
  var shipLevel: Logger.Level = .info
  @Flag(help: .hidden)
  var exitWithParent = false

  func validate() throws {
    let credential: Credential
    do {
      credential = try connection.credential()
    } catch let error as HaatError {
      throw ValidationError(error.message)
    }
    guard credential.role == .worker else {
      let article = credential.role == .admin ? "an" : "a"
      throw ValidationError(
        "\(connection.tokenFile ?? "the credential") holds \(article) \(credential.role.rawValue) token; a worker needs a worker token (haat token create --role worker)"
      )
    }
    _ = try connection.endpoints(for: credential)
    for (flag, value) in [
      ("--connect-timeout-ms", connectTimeoutMs), ("--timeout-ms", timeoutMs), ("--stall-seconds", stallSeconds),
      ("--max-redirects", maxRedirects), ("--drain-timeout-ms", drainTimeoutMs),
    ] where value < 0 {
      throw ValidationError("\(flag) must not be negative, not \(value)")
    }
    // libcurl takes the stall window as a C long of seconds, and its timeouts in ms.
    guard stallSeconds <= 86_400 else {
      throw ValidationError("--stall-seconds must be at most 86400, not \(stallSeconds)")
    }
    if fileRoot.contains(where: \.isEmpty) {
      throw ValidationError("--file-root must name a directory, not an empty string (an unset variable?)")
    }
    for (flag, slots) in [("--collect-slots", collectSlots), ("--analyze-slots", analyzeSlots)]
    where !(0...Defaults.maxSlots).contains(slots) {
      throw ValidationError("\(flag) must be 0 to \(Defaults.maxSlots), not \(slots)")
    }
    if let name, !HandshakeLimits.isValidName(name) {
      throw ValidationError("--name must be 1 to 128 bytes without control or bidi characters")
    }
    _ = try platformCredentials()
    _ = try allowedHosts()
  }

  func allowedHosts() throws -> [BoundCredential.HostRule] {
    try allowHost.map { text in
      guard let rule = BoundCredential.HostRule(text) else {
        throw ValidationError(
          "--allow-host \"\(text)\" is not a host, *.domain or http://host, with an optional :port")
      }
      return rule
    }
  }

  func platformCredentials() throws -> [String: PlatformCredential] {
    var credentials: [String: PlatformCredential] = [:]
    for text in credential {
      do {
        let parsed = try PlatformCredential(parsing: text)
        guard credentials[parsed.name] == nil else {
          throw ValidationError("--credential \(parsed.name) is given twice")
        }
        credentials[parsed.name] = parsed
      } catch let error as HaatError {
        throw ValidationError(error.message)
      }
    }
    return credentials
  }

  func run() async throws {
    let credential = try connection.credential()
    let endpoints = try connection.endpoints(for: credential)
    let workerName = name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
    var config = WorkerConfig(name: workerName, coordinators: endpoints, credential: credential)
    config.tls = try connection.tls.settings()
    config.slots = [.collect: collectSlots, .analyze: analyzeSlots]
    config.fetch.allowPrivateNetworks = allowPrivateNetworks
    config.fetch.fileRoots = fileRoot
    config.fetch.caFile = caFile
    config.fetch.proxy = proxy
    config.credentials = try platformCredentials()
    config.allowedHosts = try allowedHosts()
    config.fetch.connectTimeoutMs = connectTimeoutMs
    config.fetch.totalTimeoutMs = timeoutMs
    config.fetch.stallSeconds = stallSeconds
    config.fetch.maxBodyBytes = maxBodyBytes
    config.fetch.maxRedirects = maxRedirects
    config.drainTimeoutMs = drainTimeoutMs
    config.shipLevel = shipLevel
    let shipper = LogShipper()
    var logger = Logger(label: "haat.worker") { label in
      shipper.handler(base: JSONLogHandler(label: label, level: logLevel), baseLevel: logLevel)
    }
    logger.logLevel = min(logLevel, shipLevel)
    logger[metadataKey: "worker"] = "\(workerName)"
    try await runServices(
      [Worker(config: config, logger: logger, shipper: shipper)], exitWithParent: exitWithParent, logger: logger)
  }
}

struct TokenCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "token", abstract: "Create, list and revoke tokens.",
    subcommands: [Create.self, List.self, Revoke.self])

  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Create a token in the coordinator's token file and write its credential file.")

    @Option(help: "worker, submit, read, admin, metrics (scrapes /metrics) or dashboard (the admin port's pages).")
    var role: String
    @Option(help: "The coordinator's data directory (env HAAT_DATA_DIR; default: haat-data).")
    var dataDir: String?
    @Option(help: "Where to write the credential file (mode 0600; default: <data-dir>/<role>-<id>.token).")
    var out: String?
    @Option(help: "A note kept with the token.")
    var label: String?
    @Option(help: "The coordinator address to record in the credential, host:port.")
    var coordinator: String?
    @Option(help: "The one worker (or client) name this token may be used with.")
    var name: String?
    @Option(help: "Every name this token may be used with starts with this (a pool of workers sharing one token).")
    var namePrefix: String?

    var names: NameScope? {
      if let name { return .name(name) }
      if let namePrefix { return .prefix(namePrefix) }
      return nil
    }

    func validate() throws {
      guard let role = Role(rawValue: role) else {
        throw ValidationError("--role must be worker, submit, read, admin, metrics or dashboard")
      }
      guard name == nil || namePrefix == nil else { throw ValidationError("give --name or --name-prefix, not both") }
      if role == .worker, names == nil {
        throw ValidationError(
          "a worker token is bound to the workers that may use it: give --name NAME (one worker) or --name-prefix PREFIX (a pool)"
        )
      }
      if let name, !HandshakeLimits.isValidName(name) {
        throw ValidationError("--name must be 1 to 128 bytes without control or bidi characters")
      }
      if let namePrefix, namePrefix.isEmpty || !HandshakeLimits.isValidName(namePrefix) {
        throw ValidationError("--name-prefix must be 1 to 127 bytes without control or bidi characters")
      }
      // An active coordinator and its standbys, as a worker's --coordinator takes them.
      if let coordinator, Endpoint.list(coordinator) == nil {
        throw ValidationError("--coordinator must be host:port[,host:port…], not \(coordinator)")
      }
      try refuseEmptyDataDirectory(dataDir)
      if let out, let refusal = RegularFile.refusal(out) { throw ValidationError("--out: \(refusal)") }
      let directory = dataDir ?? ProcessInfo.processInfo.environment["HAAT_DATA_DIR"] ?? "haat-data"
      if let out, samePath(out, in: directory, ["tokens", "haat.db", "haat.db-wal"]) {
        throw ValidationError("--out \(out) is one of the coordinator's own files")
      }
    }

    func run() throws {
      let role = Role(rawValue: role) ?? .read
      let directory = dataDir ?? ProcessInfo.processInfo.environment["HAAT_DATA_DIR"] ?? "haat-data"
      let store = TokenStore(path: directory + "/tokens")
      do {
        let credential = try store.create(role: role, label: label, coordinator: coordinator, names: names) {
          credential in
          let path = out ?? "\(directory)/\(role.rawValue)-\(credential.tokenID).token"
          do {
            if role == .metrics || role == .dashboard {
              // A bearer token file, as Prometheus reads one (`credentials_file`): ID:SECRET.
              try credential.writeBearer(path: path)
            } else {
              try credential.write(path: path)
            }
          } catch {
            // The path and the system's reason, not Foundation's "the file doesn't exist".
            let posix = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error).map { $0 as NSError }
            let reason = posix.map { String(cString: strerror(Int32($0.code))) } ?? "\(error)"
            throw HaatError(.internal, "cannot write \(path): \(reason)")
          }
        }
        let path = out ?? "\(directory)/\(role.rawValue)-\(credential.tokenID).token"
        // The secret is written only to the credential file, never to the terminal.
        print("created \(role.rawValue) token \(credential.tokenID); credential written to \(path)")
      } catch let error as HaatError {
        printError("cannot create the token: \(error.message)")
        throw ExitCode(Exit.failure)
      } catch {
        printError("cannot create the token: \(error.localizedDescription)")
        throw ExitCode(Exit.failure)
      }
    }
  }

  struct Revoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Revoke a token: new sessions are refused and the running coordinator closes open ones within a second."
    )
    @Argument(help: "The token's id (t_…), as `haat token list` shows it.")
    var id: String
    @Option(help: "The coordinator's data directory (env HAAT_DATA_DIR; default: haat-data).")
    var dataDir: String?

    func validate() throws { try refuseEmptyDataDirectory(dataDir) }

    func run() throws {
      let directory = dataDir ?? ProcessInfo.processInfo.environment["HAAT_DATA_DIR"] ?? "haat-data"
      do {
        guard try TokenStore(path: directory + "/tokens").revoke(id: id) else {
          printError("no token \(DisplayText.escape(id)) in \(directory)/tokens")
          throw ExitCode(Exit.notFound)
        }
        print("revoked token \(id); open sessions with it close within a second")
      } catch let error as HaatError {
        printError("cannot revoke the token: \(error.message)")
        throw ExitCode(Exit.failure)
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List tokens (ids and roles; never secrets).")
    @Option(help: "The coordinator's data directory (env HAAT_DATA_DIR; default: haat-data).")
    var dataDir: String?

    func validate() throws { try refuseEmptyDataDirectory(dataDir) }

    func run() throws {
      let directory = dataDir ?? ProcessInfo.processInfo.environment["HAAT_DATA_DIR"] ?? "haat-data"
      for token in TokenStore(path: directory + "/tokens").list() {
        let names = token.names.map { "for peers \($0)" } ?? "any name"
        // A label is anyone's text: its line breaks shown, not a forged line of the list.
        print("\(token.id)  \(token.role.rawValue)  \(names)  \(DisplayText.escape(token.label))")
      }
    }
  }
}

struct FixtureServerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fixture-server",
    abstract:
      "Run the fixture platform server on loopback: the bundled sample exports and fixtures of the platforms' APIs, for trying Haat without the platforms.",
    discussion: """
      Routes and tokens: /samples/NAME (the bundled canonical exports); \
      /meta/v21.0/{page}/posts, /meta/v21.0/{ig-user}/media and /meta/v21.0/act_{id}/insights \
      (Meta's Graph API and ads insights; fixture-meta-token); \
      /shopify/{shop}/admin/api/2024-01/orders.json (fixture-shopify-token); \
      /tiktok/open_api/v1.3/report/integrated/get/ (fixture-tiktok-token); \
      /linkedin/rest/posts (fixture-linkedin-token); /youtube/v3/… and /youtubeanalytics/v2/reports \
      (fixture-youtube-token); /pinterest/v5/pins (fixture-pinterest-token); \
      /files/PATH (with --root); /generate/posts.csv?rows=N. docs/fixtures.md.
      """)

  @Option(help: "Serve files under this directory at /files/.")
  var root: String?
  @Option(help: "The port (0 = any free one).")
  var port = 0
  @Option(help: "Write host:port here once listening.")
  var readyFile: String?
  @Flag(help: .hidden)
  var exitWithParent = false

  func validate() throws {
    guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0 to 65535, not \(port)") }
    if let readyFile, let refusal = RegularFile.refusal(readyFile) {
      throw ValidationError("--ready-file: \(refusal)")
    }
  }

  func run() async throws {
    let server: FixtureServer
    do {
      server = try await FixtureServer.start(port: port, root: root)
    } catch {
      // As the coordinator says it (exit 6), not the socket layer's raw error.
      printError(HaatError(.unavailable, "cannot listen on 127.0.0.1:\(port): \(error)").description)
      throw ExitCode(Exit.unavailable)
    }
    if let readyFile {
      do {
        try RegularFile.write("\(server.host):\(server.port)\n", to: readyFile)
      } catch let error as HaatError {
        try? await server.stop()
        printError(error.description)
        throw ExitCode(Exit.unavailable)
      }
    }
    try? FileHandle.standardOutput.write(
      contentsOf: Data(
        "serving \(server.baseURL): exports at /samples/, Meta's Graph API at /meta/v21.0 (token fixture-meta-token); the other platforms' routes and tokens: haat fixture-server --help\n"
          .utf8))
    let logger = makeLogger("haat.fixtures", level: .warning)
    try await runServices([IdleService()], exitWithParent: exitWithParent, logger: logger)
    try await server.stop()
  }
}

/// Whether `path` names one of `files` in `directory` (a credential or ready file written
/// over the token file lost every token).
func samePath(_ path: String, in directory: String, _ files: [String]) -> Bool {
  func resolved(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
  }
  let target = resolved(path)
  return files.contains { resolved(directory + "/" + $0) == target }
}

/// An empty data directory (`--data-dir "$DIR"` with DIR unset, or `HAAT_DATA_DIR=`) would put
/// the store and the tokens at the file system's root: refused, not read as the root.
func refuseEmptyDataDirectory(_ flag: String?) throws {
  if flag?.isEmpty == true { throw ValidationError("--data-dir must name a directory, not an empty string") }
  if flag == nil, ProcessInfo.processInfo.environment["HAAT_DATA_DIR"]?.isEmpty == true {
    throw ValidationError("HAAT_DATA_DIR is set but empty: name a directory, or unset it for haat-data")
  }
}

/// A service that waits for the group's graceful shutdown.
struct IdleService: Service {
  func run() async throws { try? await gracefulShutdown() }
}

/// Ends the group when the process that started this one is gone, so no child outlives a
/// demo or a test run.
struct ParentWatch: Service {
  let parent = getppid()

  func run() async throws {
    while !Task.isCancelled && !Task.isShuttingDownGracefully {
      if getppid() != parent { return }
      try? await Task.sleep(for: .milliseconds(250))
    }
  }
}

func makeLogger(_ label: String, level: Logger.Level) -> Logger {
  var logger = Logger(label: label) { JSONLogHandler(label: $0, level: level) }
  logger.logLevel = level
  return logger
}

/// Runs services until SIGTERM/SIGINT (graceful) or, with `exitWithParent`, until the parent
/// process is gone.
func runServices(_ services: [any Service], exitWithParent: Bool, logger: Logger) async throws {
  var configured = services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
  if exitWithParent {
    configured.append(
      .init(service: ParentWatch(), successTerminationBehavior: .gracefullyShutdownGroup))
  }
  var configuration = ServiceGroupConfiguration(services: configured, logger: logger)
  configuration.gracefulShutdownSignals = [.sigterm, .sigint]
  do {
    try await ServiceGroup(configuration: configuration).run()
  } catch let error as HaatError {
    logger.critical("\(error.description)")
    printError(error.description)
    throw ExitCode(Exit.code(for: error))
  }
}
