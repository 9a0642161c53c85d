import Foundation
import HaatClient
import HaatCore
import HaatProtocol
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Where the `haat` executable is: `HAAT_BIN`, else beside this process's executable, else
/// `.build/debug/haat` under the current directory.
public enum HaatBinary {
  public static func path() throws -> String {
    if let path = ProcessInfo.processInfo.environment["HAAT_BIN"] { return path }
    let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let candidates = [
      URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent("haat").path,
      FileManager.default.currentDirectoryPath + "/.build/debug/haat",
    ]
    for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
      return candidate
    }
    throw HaatError(.notFound, "cannot find the haat executable (build it, or set HAAT_BIN)")
  }
}

/// A child process whose output goes to a log file.
public final class ChildProcess: Sendable {
  public let name: String
  public let logPath: String
  private let process: Process

  /// Starts `executable` with `arguments`; stdout and stderr go to `logPath`.
  public init(
    name: String, executable: String, arguments: [String], logPath: String, environment: [String: String]? = nil
  ) throws {
    self.name = name
    self.logPath = logPath
    guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
      throw HaatError(.internal, "cannot create \(logPath)")
    }
    let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = log
    process.standardError = log
    process.standardInput = FileHandle.nullDevice
    if let environment { process.environment = environment }
    try process.run()
    try? log.close()
    self.process = process
  }

  public var pid: Int32 { process.processIdentifier }

  /// The process's peak resident set size in bytes (VmHWM), 0 once it has exited.
  public var peakResidentBytes: UInt64 { status("VmHWM:") }
  /// The process's resident set size in bytes now (VmRSS), 0 once it has exited.
  public var residentBytes: UInt64 { status("VmRSS:") }

  private func status(_ field: String) -> UInt64 {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(field) {
      return (line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) } ?? 0) * 1024
    }
    return 0
  }

  /// The CPU time the process has used so far (user + system), 0 once it has exited.
  public var cpuSeconds: Double { Self.cpuSeconds(pid: pid) }

  /// The CPU time process `pid` has used so far (user + system), from /proc/PID/stat.
  public static func cpuSeconds(pid: Int32) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = text.lastIndex(of: ")")
    else { return 0 }
    // After the command's closing parenthesis: state is field 3, utime and stime 14 and 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
  }

  public var isRunning: Bool { process.isRunning }

  public func signal(_ signal: Int32) {
    if process.isRunning { kill(process.processIdentifier, signal) }
  }

  /// Waits up to `timeout` for the process to exit; its exit status, or nil if it still runs.
  @discardableResult
  public func wait(timeout: Duration) async -> Int32? {
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
      if ContinuousClock.now >= deadline { return nil }
      try? await Task.sleep(for: .milliseconds(20))
    }
    return process.terminationStatus
  }

  /// SIGTERM, then SIGKILL if it has not exited after `grace`.
  @discardableResult
  public func stop(grace: Duration = .seconds(15)) async -> Int32? {
    signal(SIGTERM)
    if let status = await wait(timeout: grace) { return status }
    signal(SIGKILL)
    return await wait(timeout: .seconds(5))
  }

  /// The last lines of the process's output.
  public func tail(_ lines: Int = 20) -> String {
    let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
  }
}

/// A coordinator and workers as real processes on loopback, in a temporary directory.
public final class LocalCluster: Sendable {
  public struct Options: Sendable {
    public var workers = 2
    public var durability = "full"
    public var leaseMs: UInt32 = 30_000
    public var heartbeatMs: UInt32 = 5_000
    public var retryBaseMs: UInt64 = 1_000
    public var retryCapMs: UInt64 = 300_000
    public var collectSlots = 4
    public var coordinatorArguments: [String] = []
    public var workerArguments: [String] = []
    /// Variables added to the coordinator's environment (an LD_PRELOAD fault shim, say).
    public var coordinatorEnvironment: [String: String] = [:]
    /// Variables added to each worker's environment. A test that sets a variable in its own
    /// process sets it for every test running beside it (their URLSessions and children).
    public var workerEnvironment: [String: String] = [:]
    /// Where the data directory and logs go; a new temporary directory if nil.
    public var directory: String?
    /// Coordinators besides the first on the same data directory and store (standbys of
    /// a PostgreSQL store: `--store` in `coordinatorArguments`), named standby-1….
    public var standbys = 0
    /// A directory `scripts/dev-certs` filled: the coordinator serves TLS with its
    /// server.pem, and workers and clients verify it with its ca.pem.
    public var tlsDirectory: String?
    public var logLevel = "info"

    public init() {}
  }

  public let options: Options
  public let directory: String
  public let binary: String
  private let state:
    Mutex<
      (
        coordinators: [String: ChildProcess], workers: [String: ChildProcess], endpoints: [String: Endpoint],
        starts: [String: Int]
      )
    >
  private let ownsDirectory: Bool

  public var dataDirectory: String { directory + "/data" }
  public var workerTokenPath: String { directory + "/worker.token" }
  public var endpoint: Endpoint {
    state.withLock { $0.endpoints["coordinator"] } ?? Endpoint(host: "127.0.0.1", port: 0)
  }
  /// The coordinators' names: the first, then its standbys.
  public var coordinatorNames: [String] { ["coordinator"] + (0..<options.standbys).map { "standby-\($0 + 1)" } }
  /// Every coordinator's address, the first first (what workers and clients are given).
  public var endpoints: [Endpoint] {
    state.withLock { state in coordinatorNames.compactMap { state.endpoints[$0] } }
  }

  /// Starts the coordinator and the workers, and waits until every worker is connected.
  public static func start(_ options: Options = Options()) async throws -> LocalCluster {
    let cluster = try LocalCluster(options: options)
    do {
      if options.standbys > 0 {
        // Standbys listen only once active: every address is chosen now, for the workers.
        let ports = try FreePorts.pick(options.standbys + 1)
        cluster.state.withLock { state in
          for (name, port) in zip(cluster.coordinatorNames, ports) {
            state.endpoints[name] = Endpoint(host: "127.0.0.1", port: port)
          }
        }
      }
      try await cluster.startCoordinator()
      for name in cluster.coordinatorNames.dropFirst() { try await cluster.startCoordinator(name, wait: false) }
      try await cluster.createWorkerToken()
      for index in 1...max(options.workers, 1) where options.workers > 0 {
        try cluster.startWorker(name: "worker-\(index)")
      }
      if options.workers > 0 { try await cluster.waitForWorkers(options.workers) }
      return cluster
    } catch {
      await cluster.stop()
      throw error
    }
  }

  private init(options: Options) throws {
    self.options = options
    binary = try HaatBinary.path()
    if let directory = options.directory {
      self.directory = directory
      ownsDirectory = false
    } else {
      let template = FileManager.default.temporaryDirectory.appendingPathComponent("haat-cluster-XXXXXX").path
      var bytes = Array(template.utf8CString)
      guard let made = mkdtemp(&bytes) else { throw HaatError(.internal, "cannot make a temporary directory") }
      directory = String(cString: made)
      ownsDirectory = true
    }
    try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
    state = Mutex(([:], [:], [:], [:]))
  }

  /// Starts (or restarts) a coordinator on the same data directory and, with `wait`, waits
  /// until it listens (a standby listens only once it is active).
  public func startCoordinator(_ name: String = "coordinator", wait: Bool = true) async throws {
    let readyFile = self.readyFile(name)
    try? FileManager.default.removeItem(atPath: readyFile)
    // Restarts reuse the port the workers know.
    let listen = state.withLock { $0.endpoints[name] }?.description ?? "127.0.0.1:0"
    let arguments =
      [
        "coordinator", "--listen", listen, "--data-dir", dataDirectory, "--durability", options.durability,
        "--lease-ms", String(options.leaseMs), "--heartbeat-ms", String(options.heartbeatMs),
        "--retry-base-ms", String(options.retryBaseMs), "--retry-cap-ms", String(options.retryCapMs),
        "--ready-file", readyFile, "--log-level", options.logLevel, "--exit-with-parent",
      ] + tlsArguments(server: true) + options.coordinatorArguments
    let process = try ChildProcess(
      name: name, executable: binary, arguments: arguments, logPath: logPath(for: name),
      environment: Self.environment(adding: options.coordinatorEnvironment))
    state.withLock { $0.coordinators[name] = process }
    guard wait else { return }
    let deadline = ContinuousClock.now + .seconds(30)
    while true {
      if let text = try? String(contentsOfFile: readyFile, encoding: .utf8), let endpoint = Endpoint(text) {
        state.withLock { $0.endpoints[name] = endpoint }
        return
      }
      guard process.isRunning else {
        throw HaatError(.unavailable, "the coordinator exited at start:\n\(process.tail())")
      }
      // The deadline is checked after a look, never instead of one: a test runner whose
      // threads were all busy may wake this loop only past it, the coordinator long up.
      guard ContinuousClock.now < deadline else { break }
      try await Task.sleep(for: .milliseconds(20))
    }
    throw HaatError(.unavailable, "the coordinator did not start listening within 30 s:\n\(process.tail())")
  }

  private func createWorkerToken() async throws {
    let process = try ChildProcess(
      name: "token", executable: binary,
      arguments: [
        "token", "create", "--role", "worker", "--name-prefix", "worker-", "--data-dir", dataDirectory, "--out",
        workerTokenPath, "--coordinator", endpoints.map(\.description).joined(separator: ","),
      ],
      logPath: directory + "/token.log", environment: Self.environment(adding: [:]))
    // A bound, not a measure: at the suite's start dozens of clusters start at once, and a
    // fresh clone's run saw a token create that had written its file still not reaped at
    // 30 s.
    guard await process.wait(timeout: .seconds(120)) == 0 else {
      throw HaatError(.internal, "haat token create failed:\n\(process.tail())")
    }
  }

  /// Starts a worker process named `name`, given the cluster's coordinators or `through`
  /// (a proxy in front of them).
  @discardableResult
  public func startWorker(name: String, through: [Endpoint]? = nil, extraArguments: [String] = []) throws
    -> ChildProcess
  {
    let arguments =
      [
        "worker", "--coordinator", (through ?? endpoints).map(\.description).joined(separator: ","),
        "--token-file", workerTokenPath,
        "--name", name,
        "--collect-slots", String(options.collectSlots), "--allow-private-networks", "--log-level", options.logLevel,
        "--exit-with-parent",
      ] + tlsArguments(server: false) + options.workerArguments + extraArguments
    let process = try ChildProcess(
      name: name, executable: binary, arguments: arguments, logPath: logPath(for: name),
      environment: Self.environment(adding: options.workerEnvironment))
    state.withLock { $0.workers[name] = process }
    return process
  }

  /// This process's environment without its `HAAT_*` settings, with `variables` added: the
  /// cluster is its own, on its own directory and store. (With the caller's `HAAT_STORE`, the
  /// demo's "temporary" coordinator ran on the caller's real store.)
  static func environment(adding variables: [String: String]) -> [String: String] {
    ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HAAT_") }.merging(variables) { $1 }
  }

  /// `NAME.log` for a process's first start, `NAME-N.log` for its restarts.
  private func logPath(for name: String) -> String {
    let starts = state.withLock { state in
      defer { state.starts[name, default: 0] += 1 }
      return state.starts[name, default: 0]
    }
    return directory + "/\(name)\(starts == 0 ? "" : "-\(starts)").log"
  }

  public func worker(_ name: String) -> ChildProcess? { state.withLock { $0.workers[name] } }
  public var coordinator: ChildProcess? { coordinator("coordinator") }
  public func coordinator(_ name: String) -> ChildProcess? { state.withLock { $0.coordinators[name] } }

  private func readyFile(_ name: String) -> String { directory + "/\(name).ready" }

  private func tlsArguments(server: Bool) -> [String] {
    guard let tls = options.tlsDirectory else { return [] }
    return server
      ? ["--tls-cert", tls + "/server.pem", "--tls-key", tls + "/server.key"] : ["--tls-ca", tls + "/ca.pem"]
  }

  /// The coordinator that is listening now (it wrote its ready file and still runs).
  public var activeCoordinator: String? {
    coordinatorNames.first { name in
      coordinator(name)?.isRunning == true && FileManager.default.fileExists(atPath: readyFile(name))
    }
  }

  /// The admin credential the coordinator wrote on its first start.
  public func adminCredential() throws -> Credential {
    try Credential.load(path: dataDirectory + "/admin.token")
  }

  /// A client with the admin credential.
  public func client() async throws -> HaatClient {
    // A test runner whose threads were all busy (the whole suite on two cores) once let the
    // coordinator's 5 s for the handshake pass before it answered: tried again, twice.
    var tries = 0
    while true {
      tries += 1
      do {
        return try await HaatClient.connect(
          toAny: endpoints, credential: try adminCredential(), name: "local-cluster",
          tls: options.tlsDirectory.map { TLSClientSettings(caPath: $0 + "/ca.pem") })
      } catch let error as HaatError where error.code == .handshakeTimeout && tries < 3 {
        continue
      }
    }
  }

  /// Waits until `count` workers are connected and healthy.
  public func waitForWorkers(_ count: Int, timeout: Duration = .seconds(30)) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
      if let client = try? await client() {
        let healthy = (try? await client.workers())?.filter { $0.state == "healthy" }.count ?? 0
        await client.close()
        if healthy >= count { return }
      }
      // After a look, as for the coordinator's start.
      guard ContinuousClock.now < deadline else { break }
      try await Task.sleep(for: .milliseconds(50))
    }
    throw HaatError(.unavailable, "fewer than \(count) workers connected within \(timeout)")
  }

  /// Stops every process (SIGTERM, then SIGKILL) and removes the directory it made.
  public func stop(keepDirectory: Bool = false) async {
    let (coordinators, workers) = state.withLock { (Array($0.coordinators.values), Array($0.workers.values)) }
    await withTaskGroup(of: Void.self) { group in
      for worker in workers { group.addTask { await worker.stop() } }
    }
    for coordinator in coordinators { await coordinator.stop() }
    // HAAT_KEEP_CLUSTER=1 keeps every cluster's store and logs for a look after a test run.
    let keep = keepDirectory || ProcessInfo.processInfo.environment["HAAT_KEEP_CLUSTER"] != nil
    if ownsDirectory && !keep { try? FileManager.default.removeItem(atPath: directory) }
  }

  /// Whether any of its processes still runs.
  public var anyRunning: Bool {
    let (coordinators, workers) = state.withLock { (Array($0.coordinators.values), Array($0.workers.values)) }
    return (workers + coordinators).contains { $0.isRunning }
  }

  /// Sends `signal` to every process at once, without waiting (for signal handlers).
  public func signalAll(_ signal: Int32) {
    let (coordinators, workers) = state.withLock { (Array($0.coordinators.values), Array($0.workers.values)) }
    for process in workers + coordinators { process.signal(signal) }
  }

  /// Every process's last log lines, for a failing test's message.
  public func logs() -> String {
    let names = coordinatorNames
    let (coordinators, workers) = state.withLock { state in
      (names.compactMap { state.coordinators[$0] }, Array(state.workers.values))
    }
    return (coordinators + workers).map { "--- \($0.name)\n\($0.tail(30))" }.joined(separator: "\n")
  }
}

/// Free loopback ports, for processes that must know each other's address before they listen.
/// Picked at random below the kernel's ephemeral range (`ip_local_port_range`, 32768 and up
/// by default) and checked by binding them: a port the kernel hands out for port 0 (another
/// test's listener, any outgoing connection) could be taken again between the pick and the
/// process's own bind, and was (a coordinator's admin port, once in a fresh clone's run).
/// A port is handed out once per process: tests run in parallel, and two that pick the same
/// free port a moment apart both get it, the second's bind failing once the first's process
/// listens (the likely cause of a busy-port test's holder failing to bind, once in a full run).
public enum FreePorts {
  static let range = 20_000..<32_000
  private static let handedOut = Mutex(Set<Int>())

  public static func pick(_ count: Int) throws -> [Int] {
    var sockets: [Int32] = []
    defer { for socket in sockets { close(socket) } }
    var ports: [Int] = []
    var tries = 0
    while ports.count < count {
      tries += 1
      guard tries <= 1_000 else { throw HaatError(.internal, "cannot find a free loopback port in \(range)") }
      let port = Int.random(in: range)
      guard handedOut.withLock({ $0.insert(port).inserted }) else { continue }
      let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      guard fd >= 0 else { throw HaatError(.internal, "cannot open a socket to pick a port") }
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_addr.s_addr = inet_addr("127.0.0.1")
      address.sin_port = in_port_t(UInt16(port)).bigEndian
      let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
          bind(fd, pointer, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
      }
      guard bound else {
        close(fd)
        continue
      }
      // Held until every port is picked, so one call never returns the same port twice.
      sockets.append(fd)
      ports.append(port)
    }
    return ports
  }
}
