import ArgumentParser
import Foundation
import HaatClient
import HaatCore
import HaatProtocol

/// How a CLI command finds and authenticates to the coordinator.
struct ClientOptions: ParsableArguments {
  @Option(
    name: .long,
    help:
      "The coordinator's address, host:port, or several, comma-separated, tried in turn (an active coordinator and its standbys; env HAAT_COORDINATOR; default: the credential's, else 127.0.0.1:7420)."
  )
  var coordinator: String?

  @Option(
    name: .long,
    help: "A credential file from `haat token create` (env HAAT_TOKEN_FILE; default: <data-dir>/admin.token).")
  var tokenFile: String?

  @Option(
    name: .long,
    help: "The coordinator's data directory, whose admin.token to use (env HAAT_DATA_DIR; default: haat-data).")
  var dataDir: String?

  @OptionGroup var tls: TLSOptions

  @Flag(name: .long, help: "Print machine-readable JSON.")
  var json = false

  func validate() throws {
    if let coordinator, Endpoint.list(coordinator) == nil {
      throw ValidationError("--coordinator must be host:port[,host:port…], not \(coordinator)")
    }
    if tokenFile?.isEmpty == true { throw ValidationError("--token-file must name a file, not an empty string") }
    // Only where the data directory is where the credential comes from.
    if tokenFile == nil, dataDir != nil || ProcessInfo.processInfo.environment["HAAT_TOKEN_FILE"] == nil {
      try refuseEmptyDataDirectory(dataDir)
    }
    // As HAAT_DATA_DIR: `HAAT_TOKEN_FILE=` said `cannot read the credential file : No such
    // file or directory` (found by a tester).
    if tokenFile == nil, dataDir == nil, ProcessInfo.processInfo.environment["HAAT_TOKEN_FILE"]?.isEmpty == true {
      throw ValidationError("HAAT_TOKEN_FILE is set but empty: name a credential file, or unset it")
    }
  }

  /// Flags first, then the environment: --token-file, --data-dir's admin.token,
  /// HAAT_TOKEN_FILE, HAAT_DATA_DIR's admin.token, then haat-data/admin.token.
  func credential() throws -> Credential {
    let environment = ProcessInfo.processInfo.environment
    if let tokenFile { return try Credential.load(path: tokenFile) }
    if let dataDir { return try Credential.load(path: dataDir + "/admin.token") }
    if let path = environment["HAAT_TOKEN_FILE"] { return try Credential.load(path: path) }
    let fallback = (environment["HAAT_DATA_DIR"] ?? "haat-data") + "/admin.token"
    guard FileManager.default.fileExists(atPath: fallback) else {
      throw HaatError(
        .authFailed,
        "no credential: pass --token-file (or set HAAT_TOKEN_FILE); \(fallback) does not exist")
    }
    return try Credential.load(path: fallback)
  }

  func endpoints(for credential: Credential) throws -> [Endpoint] {
    try coordinatorEndpoints(flag: coordinator, credential: credential)
  }

  func connect() async throws -> HaatClient {
    let credential = try credential()
    return try await HaatClient.connect(
      toAny: try endpoints(for: credential), credential: credential, tls: try tls.settings())
  }

  /// Connects, runs `body`, closes the connection, and reports errors as `runClient` does.
  func session(_ body: (HaatClient) async throws -> Void) async throws {
    try await runClient(json: json) {
      let connection = try await connect()
      do {
        try await body(connection)
      } catch {
        await connection.close()
        throw error
      }
      await connection.close()
    }
  }
}

/// How a worker finds and authenticates to the coordinator: a worker token, always explicit.
struct WorkerConnectionOptions: ParsableArguments {
  @Option(
    name: .long,
    help:
      "The coordinator's address, host:port, or several, comma-separated, tried in turn (an active coordinator and its standbys; env HAAT_COORDINATOR; default: the credential's, else 127.0.0.1:7420)."
  )
  var coordinator: String?

  @Option(name: .long, help: "A worker credential file from `haat token create --role worker` (env HAAT_TOKEN_FILE).")
  var tokenFile: String?

  @OptionGroup var tls: TLSOptions

  func credential() throws -> Credential {
    guard let path = tokenFile ?? ProcessInfo.processInfo.environment["HAAT_TOKEN_FILE"] else {
      throw ValidationError(
        "a worker needs --token-file (or HAAT_TOKEN_FILE): create one with `haat token create --role worker`")
    }
    return try Credential.load(path: path)
  }

  func endpoints(for credential: Credential) throws -> [Endpoint] {
    try coordinatorEndpoints(flag: coordinator, credential: credential)
  }
}

/// TLS to the coordinator, for workers and clients alike.
struct TLSOptions: ParsableArguments {
  @Flag(name: .long, help: "Speak TLS to the coordinator, verifying it with the system's roots (or --tls-ca).")
  var tls = false

  @Option(
    name: .customLong("tls-ca"),
    help: "The CA that signed the coordinator's certificate (implies --tls; env HAAT_TLS_CA).")
  var ca: String?

  @Option(
    name: .customLong("tls-cert"), help: "A client certificate, for a coordinator that asks for one (with --tls-key).")
  var certificate: String?

  @Option(name: .customLong("tls-key"), help: "The client certificate's private key.")
  var key: String?

  func validate() throws {
    guard (certificate == nil) == (key == nil) else {
      throw ValidationError("--tls-cert and --tls-key go together")
    }
    // The files read now, each named in its error, before anything connects (exit 64).
    do {
      _ = try settings()?.makeContext()
    } catch let error as HaatError {
      throw ValidationError(error.message)
    }
  }

  /// nil when neither the flags nor HAAT_TLS_CA ask for TLS.
  func settings() throws -> TLSClientSettings? {
    let variable = ProcessInfo.processInfo.environment["HAAT_TLS_CA"]
    // Said as what it is: "--tls-ca : No such file or directory" blamed a flag not given.
    if self.ca == nil, variable == "" {
      throw ValidationError("HAAT_TLS_CA is set but empty: name the CA's PEM file, or unset it")
    }
    if self.ca == "" { throw ValidationError("--tls-ca is empty: name the CA's PEM file") }
    let ca = self.ca ?? variable
    guard tls || ca != nil || certificate != nil else { return nil }
    return TLSClientSettings(caPath: ca, certificatePath: certificate, keyPath: key)
  }
}

/// The coordinator's address: the flag, then HAAT_COORDINATOR, then the credential's, then
/// the default.
func coordinatorEndpoints(flag: String?, credential: Credential) throws -> [Endpoint] {
  // The error names where the address came from: a bad HAAT_COORDINATOR is not a bad flag.
  let environment = ProcessInfo.processInfo.environment["HAAT_COORDINATOR"]
  let (text, source) =
    flag.map { ($0, "--coordinator") } ?? environment.map { ($0, "HAAT_COORDINATOR") }
    ?? credential.coordinator.map { ($0, "the credential file's coordinator") }
    ?? ("\(Defaults.host):\(Defaults.port)", "the default")
  guard let endpoints = Endpoint.list(text) else {
    // `HAAT_COORDINATOR=` said "must be host:port…, not " with nothing after it (a tester).
    if text.isEmpty { throw ValidationError("\(source) is set but empty: name host:port, or unset it") }
    throw ValidationError("\(source) must be host:port[,host:port…], not \(text)")
  }
  return endpoints
}

/// Exit codes a script can rely on (docs/cli.md).
enum Exit {
  static let failure: Int32 = 1
  static let badSpec: Int32 = 2
  static let jobNotSucceeded: Int32 = 3
  static let notFound: Int32 = 4
  static let authFailed: Int32 = 5
  static let unavailable: Int32 = 6
  static let notFinished: Int32 = 7

  static func code(for error: HaatError) -> Int32 {
    switch error.code {
    case .badSpec, .badRequest: return badSpec
    case .notFound: return notFound
    case .authFailed, .forbidden: return authFailed
    case .unavailable, .handshakeTimeout: return unavailable
    case .notFinished: return notFinished
    default: return failure
    }
  }
}

/// Runs a client command body; prints an error the way scripts and people want it.
func runClient(json: Bool, _ body: () async throws -> Void) async throws {
  do {
    try await body()
  } catch let error as HaatError {
    if json {
      // Default fields are left out, as in every --json document (docs/cli.md).
      let field = error.field.isEmpty ? "" : #","field":\#(WireCodec.jsonString(error.field))"#
      print(#"{"error":{"code":"\#(error.code.rawValue)","message":\#(WireCodec.jsonString(error.message))\#(field)}}"#)
    }
    printError(error.description)
    throw ExitCode(Exit.code(for: error))
  } catch let error where HaatClient.isTransportError(error) {
    // Whatever NIO throws on its own (a connect or write on a reset socket) is the
    // coordinator being unreachable: exit 6, as docs/cli.md says.
    let wrapped = HaatError(.unavailable, "the connection to the coordinator failed: \(error)")
    printError(wrapped.description)
    throw ExitCode(Exit.unavailable)
  }
}

func printError(_ message: String) {
  flushOutput()  // after whatever stdout still holds
  try? FileHandle.standardError.write(
    contentsOf: Data("haat: \(DisplayText.escape(message, keepNewlines: true))\n".utf8))
}
