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
  /// The most slots a worker may run in one pool: each slot is a thread of its own (a
  /// blocking libcurl transfer), and a system runs out of threads long before slots do.
  public static let maxSlots = 4_096
  /// How many worker log lines the coordinator keeps.
  public static let logCapacity = 10_000
  /// Beats a worker may miss before it is `lost`.
  public static let missedBeatsForLost: UInt32 = 3
  /// The most sources a job spec may have.
  public static let maxSources = 10_000
  /// The longest job (and schedule) name, in characters: Unicode code points, so a letter
  /// and its combining accent are two (counted as Swift's `Character`s, one letter with
  /// 100,000 accents passed as one, and a tester's schedule got a name of 200 kB that no
  /// command line could hold).
  public static let maxNameCharacters = 200

  /// Whether a job's name is within `maxNameCharacters`.
  public static func nameFits(_ name: String) -> Bool { name.unicodeScalars.count <= maxNameCharacters }
  /// The most items a request's list may hold (a heartbeat's leases, the tasks named to
  /// retry or discard); lists the coordinator sends page at the same bound.
  public static let maxListItems = 10_000
  /// The longest pause between a worker's attempts to reconnect (it doubles from 100 ms).
  public static let reconnectCapMs: Int64 = 5_000
}

/// Durations as people write them on a command line: `30d`, `12h`, `90m`, `45s`, `0`.
public enum DurationText {
  /// "90m", "6h", "1d", "30s", "1h30m" (units s, m, h, d, each once, largest first) or "0"
  /// in milliseconds; nil for text that is not a duration (`1h1h` was two hours, `1s1m` 61
  /// seconds: a slip, read as something else).
  public static func milliseconds(_ text: String) -> Int64? {
    if text == "0" { return 0 }
    let units: [Character: Int64] = ["s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
    var total: Int64 = 0
    var number: Int64?
    var previous = Int64.max
    for character in text {
      if let digit = character.wholeNumberValue, character.isASCII {
        let (times, overflow) = (number ?? 0).multipliedReportingOverflow(by: 10)
        guard !overflow, times <= Int64.max - 9 else { return nil }
        number = times + Int64(digit)
      } else if let unit = units[character], unit < previous, let value = number {
        previous = unit
        let (part, overflow) = value.multipliedReportingOverflow(by: unit)
        guard !overflow, total <= Int64.max - part else { return nil }
        total += part
        number = nil
      } else {
        return nil
      }
    }
    return number == nil && total > 0 ? total : nil
  }
}
