import HaatCore
import HaatStore

/// Everything a coordinator runs with; every field has a documented default
/// (docs/configuration.md). Filled from flags, then `HAAT_*` environment variables.
public struct CoordinatorConfig: Sendable {
  public var host = Defaults.host
  /// 0 picks a free port (see `readyFile`).
  public var port = Defaults.port
  /// Holds `haat.db` and `tokens`.
  public var dataDirectory = "haat-data"
  public var durability = Durability.full
  public var leaseMs = Defaults.leaseMs
  public var heartbeatMs = Defaults.heartbeatMs
  public var maxLineBytes = Defaults.maxLineBytes
  public var handshakeTimeoutMs = Defaults.handshakeTimeoutMs
  public var planner = Planner.Defaults()
  /// How many worker log lines are kept for `haat logs`.
  public var logCapacity = Defaults.logCapacity
  /// New jobs are refused while the store's disk has less free space than this.
  public var minFreeDiskBytes: UInt64 = 64 << 20
  /// Where to write "host:port" once listening (for scripts that start it on port 0).
  public var readyFile: String?

  public init() {}

  public var databasePath: String { dataDirectory + "/haat.db" }
  public var tokensPath: String { dataDirectory + "/tokens" }
}
