/// Documented defaults shared by the coordinator, the workers and the docs.
public enum Defaults {
  /// The coordinator's listen address.
  public static let host = "127.0.0.1"
  public static let port = 7420
  /// How long a lease lasts without a heartbeat.
  public static let leaseMs: UInt32 = 30_000
  /// How often workers heartbeat.
  public static let heartbeatMs: UInt32 = 5_000
  /// The longest line either side may send.
  public static let maxLineBytes: UInt32 = 1 << 20
  /// The shortest and longest line limit a peer may ask for.
  public static let minLineBytes: UInt32 = 64 << 10
  public static let maxNegotiatedLineBytes: UInt32 = 64 << 20
  /// How long a peer has to finish the handshake.
  public static let handshakeTimeoutMs: UInt32 = 5_000
  /// Attempts per task before it is dead.
  public static let maxAttempts: UInt32 = 5
  /// Worker slots per pool.
  public static let collectSlots = 4
  public static let analyzeSlots = 2
  /// How many worker log lines the coordinator keeps.
  public static let logCapacity = 10_000
  /// Beats a worker may miss before it is `lost`.
  public static let missedBeatsForLost: UInt32 = 3
  /// The most sources a job spec may have.
  public static let maxSources = 10_000
  /// The most items a request's list may hold (a heartbeat's leases, the tasks named to
  /// retry or discard); lists the coordinator sends page at the same bound.
  public static let maxListItems = 10_000
  /// The longest pause between a worker's attempts to reconnect (it doubles from 100 ms).
  public static let reconnectCapMs: Int64 = 5_000
}

/// Durations as people write them on a command line: `30d`, `12h`, `90m`, `45s`, `0`.
public enum DurationText {
  /// Milliseconds, or nil for text that is not a duration.
  public static func milliseconds(_ text: String) -> Int64? {
    if text == "0" { return 0 }
    guard let unit = text.last, let number = Int64(text.dropLast()), number >= 0 else { return nil }
    let scale: Int64
    switch unit {
    case "s": scale = 1_000
    case "m": scale = 60_000
    case "h": scale = 3_600_000
    case "d": scale = 86_400_000
    default: return nil
    }
    let (ms, overflow) = number.multipliedReportingOverflow(by: scale)
    return overflow ? nil : ms
  }
}
