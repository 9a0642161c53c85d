import Foundation
import HaatCore
import HaatProtocol
import HaatStore
import NIOCore

/// Everything a coordinator runs with; every field has a documented default
/// (docs/configuration.md). Filled from flags, then `HAAT_*` environment variables.
public struct CoordinatorConfig: Sendable {
  public var host = Defaults.host
  /// 0 picks a free port (see `readyFile`).
  public var port = Defaults.port
  /// Holds `haat.db` and `tokens`.
  public var dataDirectory = "haat-data"
  public var durability = Durability.full
  /// Where the queue lives; nil keeps it in `haat.db` in the data directory (SQLite).
  public var store: StoreLocation?
  public var leaseMs = Defaults.leaseMs
  public var heartbeatMs = Defaults.heartbeatMs
  public var maxLineBytes = Defaults.maxLineBytes
  public var handshakeTimeoutMs = Defaults.handshakeTimeoutMs
  /// Event-loop threads for connections (reading, TLS, framing, heartbeats), beside the
  /// core's one.
  public var sessionThreads = System.coreCount
  /// The most tasks one commit claims. Thousands of workers each with a free slot would
  /// otherwise take a task each in one commit, and the burst of `assign`s out and results
  /// back would swamp the session loops (and the heartbeats they answer); smaller commits
  /// keep the flow even at the same rate (docs/benchmarks.md "Swarm").
  public var claimsPerCommit = 1_024
  public var planner = Planner.Defaults()
  /// How many worker log lines are kept for `haat logs`, and at most how many bytes.
  public var logCapacity = Defaults.logCapacity
  public var logCapacityBytes = 16 << 20
  /// What one session may hold at once (docs/operations.md "Security model").
  public var session = SessionLimits()
  /// New jobs are refused while the store's disk has less free space than this.
  public var minFreeDiskBytes: UInt64 = 64 << 20
  /// Jobs that ended longer ago than this are deleted with their tasks and results, hourly
  /// (0 keeps them forever); `haat jobs prune` does it on demand.
  public var retainMs: Int64 = 30 * 86_400_000
  /// A worker disconnected this long, holding no lease, is dropped from `haat workers`.
  public var forgetWorkersAfterMs: Int64 = 3_600_000
  /// How often retention and forgetting run.
  public var housekeepingMs: Int64 = 3_600_000
  /// Where to write "host:port" once listening (for scripts that start it on port 0).
  public var readyFile: String?
  /// TLS on the protocol port (`--tls-cert`, `--tls-key`, `--tls-client-ca`); nil is plaintext.
  public var tls: TLSServerSettings?
  /// The admin HTTP port (`/metrics`, `/healthz`, `/readyz`); nil keeps it off.
  public var adminListen: Endpoint?
  /// TLS and tokens (metrics role for /metrics, dashboard role for the dashboard) on the
  /// admin port even on a loopback address.
  public var adminAuth = false

  public init() {}

  public var databasePath: String { dataDirectory + "/haat.db" }
  public var storeLocation: StoreLocation { store ?? .sqlite(path: databasePath) }
  /// The directory whose free space `minFreeDiskBytes` guards: the SQLite file's. A
  /// PostgreSQL server watches its own disk (a full one refuses writes, answered
  /// `unavailable`), so there is none.
  public var storeDirectory: String? {
    guard case .sqlite(let path) = storeLocation else { return nil }
    return (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
  }
  public var tokensPath: String { dataDirectory + "/tokens" }
}

/// Bounds on what one session may make the coordinator hold, so a client or worker that
/// sends much and reads nothing cannot grow its memory.
public struct SessionLimits: Sendable {
  /// Store reads (get_job, list_jobs, get_result, list_dead, watch of an ended job) in flight.
  public var readsInFlight = 8
  /// `watch` streams open on one session.
  public var watches = 16
  /// `tail_logs {follow}` streams open on one session.
  public var follows = 4
  /// Bytes written to a peer and not yet sent; past this the peer is closed.
  public var outboundBytes = 8 << 20
  /// How long a peer may leave the coordinator unable to write to it before it is closed.
  public var stalledWriteMs: Int64 = 30_000
  /// The longest log message a worker may ship, and the most fields, each at most 1 KiB.
  public var logMessageBytes = 8 * 1024
  public var logFields = 32
  public var logFieldBytes = 1024
  /// The earlier parts of results sent in parts, held until their last part: per worker
  /// (the largest result a worker can send) and over all workers.
  public var stagedPartBytesPerWorker = 128 << 20
  public var stagedPartBytes = 512 << 20
  /// Open connections from one peer address, and connections still in their handshake.
  public var connectionsPerAddress = 512
  public var unauthenticatedConnections = 1_024
  /// A spec sent in parts, held until its last part, per session and over all sessions (so
  /// many sessions each holding a spec's early parts cannot take the coordinator's memory).
  public var stagedSpecBytes = 64 << 20
  public var stagedSpecBytesTotal = 256 << 20

  public init() {}
}
