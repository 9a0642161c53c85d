import Foundation
import HaatCore
import HaatFetch
import HaatProtocol
import Logging
import NIOCore
import NIOPosix

/// Everything a worker runs with (docs/configuration.md has the defaults and flags).
public struct WorkerConfig: Sendable {
  /// The worker's identity across reconnects; leases are held by this name.
  public var name: String
  /// Where coordinators listen, tried in turn: the active one and its standbys.
  public var coordinators: [Endpoint]
  public var credential: Credential
  /// TLS to the coordinator (`--tls`, `--tls-ca`); nil speaks plaintext.
  public var tls: TLSClientSettings?
  public var slots: [Pool: Int] = [.collect: Defaults.collectSlots, .analyze: Defaults.analyzeSlots]
  public var fetch = FetchPolicy()
  /// Platform credentials by name; a task may use only these, and only toward their hosts.
  public var credentials: [String: PlatformCredential] = [:]
  /// Hosts every API kind may reach besides its platform's own (a fixture server, an
  /// on-premise mirror): `--allow-host`.
  public var allowedHosts: [BoundCredential.HostRule] = []
  /// How long a draining worker waits for its tasks before failing them back.
  public var drainTimeoutMs = 30_000
  /// The longest CSV record or NDJSON line an export may have.
  public var maxRecordBytes = 1 << 20
  /// The most log lines kept while the coordinator is unreachable.
  public var logBuffer = 1000
  /// Lines at this level or above are shipped to the coordinator.
  public var shipLevel = Logger.Level.info

  public init(name: String, coordinators: [Endpoint], credential: Credential) {
    self.name = name
    self.coordinators = coordinators
    self.credential = credential
  }
}
