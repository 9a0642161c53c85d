import ArgumentParser
import Foundation
import HaatCore
import HaatFetch
import HaatProtocol
import HaatWorker
import Logging
import ServiceLifecycle

struct WorkerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "worker", abstract: "Run a worker: fetch exports with libcurl and compute partial aggregates.")

  @OptionGroup var connection: WorkerConnectionOptions
  @Option(help: "The worker's name, its identity across reconnects (default: host-pid).")
  var name: String?
  @Option(parsing: .unconditional, help: "Tasks of the collect pool run at once.")
  var collectSlots = Defaults.collectSlots
  @Option(parsing: .unconditional, help: "Tasks of the analyze pool run at once.")
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
  @Option(parsing: .unconditional, help: "Connect timeout per fetch, in ms.")
  var connectTimeoutMs = 10_000
  @Option(parsing: .unconditional, help: "Whole-transfer timeout per fetch, in ms (0 = none; stalls still time out).")
  var timeoutMs = 30 * 60 * 1000
  @Option(
    parsing: .unconditional, help: "Seconds at under 1 byte/s before a transfer counts as stalled (0 = no stall check)."
  )
  var stallSeconds = 60
  @Option(parsing: .unconditional, help: "The largest body a fetch may download, in bytes.")
  var maxBodyBytes: UInt64 = 16 << 30
  @Option(parsing: .unconditional, help: "At most this many redirects per fetch.")
  var maxRedirects = 5
  @Option(parsing: .unconditional, help: "How long a draining worker waits for its tasks, in ms.")
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
    // libcurl reads a connect timeout of 0 as its own default, 300 s; and a body bound of 0
    // would fail every fetch.
    guard connectTimeoutMs >= 1 else { throw ValidationError("--connect-timeout-ms must be at least 1, not 0") }
    guard maxBodyBytes >= 1 else { throw ValidationError("--max-body-bytes must be at least 1, not 0") }
    // libcurl takes the stall window as a C long of seconds, and its timeouts in ms.
    guard stallSeconds <= 86_400 else {
      throw ValidationError("--stall-seconds must be at most 86400, not \(stallSeconds)")
    }
    if fileRoot.contains(where: \.isEmpty) {
      throw ValidationError("--file-root must name a directory, not an empty string (an unset variable?)")
    }
    // A root that is no directory (a typo) made every file task fail as "outside the
    // allowed file roots", blaming the path (a tester).
    for root in fileRoot {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw ValidationError("--file-root \(root) is not a directory this worker can see")
      }
    }
    for (flag, slots) in [("--collect-slots", collectSlots), ("--analyze-slots", analyzeSlots)]
    where !(0...Defaults.maxSlots).contains(slots) {
      throw ValidationError("\(flag) must be 0 to \(Defaults.maxSlots), not \(slots)")
    }
    if let name, !HandshakeLimits.isValidName(name) {
      throw ValidationError(
        "--name must be 1 to 128 bytes in Unicode NFC (composed) without control or bidi characters")
    }
    _ = try platformCredentials()
    _ = try allowedHosts()
    // Both were read only at the first fetch, failing every task there.
    if let caFile {
      do {
        _ = try TLSFiles.certificates(caFile, "--ca-file")
      } catch let error as HaatError {
        throw ValidationError(error.message)
      }
    }
    if let proxy, !Self.isProxy(proxy) {
      throw ValidationError(
        "--proxy \"\(proxy)\" is not a proxy: [http|https|socks4|socks4a|socks5|socks5h://]host[:port]")
    }
  }

  /// A proxy as libcurl takes it: a host, with an optional scheme it knows and a port.
  static func isProxy(_ text: String) -> Bool {
    let schemes = ["http", "https", "socks4", "socks4a", "socks5", "socks5h"]
    let written = text.contains("://") ? text : "http://" + text
    guard !text.contains(where: \.isWhitespace), let url = URLComponents(string: written),
      let scheme = url.scheme?.lowercased(), schemes.contains(scheme), let host = url.host, !host.isEmpty,
      url.path.isEmpty || url.path == "/", url.query == nil, url.fragment == nil
    else { return false }
    return url.port.map { (1...65_535).contains($0) } ?? true
  }

  func allowedHosts() throws -> [BoundCredential.HostRule] {
    try allowHost.map { text in
      guard let rule = BoundCredential.HostRule(text) else {
        throw ValidationError(
          "--allow-host \"\(text)\" is not a host, *.domain (of two labels at least: *.example.com) or http://host, with an optional :port"
        )
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
