/// Cluster-wide request budgets, one per rate key (a platform credential): every request a
/// worker makes under a key first gets a slot here, and slots are spaced
/// 1 / requests-per-second apart whichever worker asks (the generic cell rate algorithm:
/// no bursts, so no second holds more than the budget plus one). A throttling answer from
/// the platform, reported by any worker, pauses the key for every worker.
///
/// Why slots and not a share per lease: a share must be fixed when the lease is given, so
/// it either wastes the budget while few leases run or exceeds it when more start. A slot
/// costs a round trip to the coordinator per request, which is small beside a platform
/// API call.
///
/// Pure: times are monotonic milliseconds passed in; no I/O.
struct RateGovernor {
  /// The most keys kept; past it, the key idle longest is forgotten.
  static let maxKeys = 10_000
  /// The slowest and fastest budgets a key may have.
  static let rateRange = 0.01...10_000.0
  /// A key's stated rate may rise only after this long without a lower statement.
  static let rateHoldMs: Int64 = 60_000
  /// The longest pause a report may ask for.
  static let maxPauseMs: Int64 = 3_600_000

  struct Key {
    var requestsPerSecond: Double
    var rateSetMs: Int64
    /// When the next slot may be, in fractional milliseconds.
    var nextSlotMs: Double
    var pausedUntilMs: Int64 = 0
    var pausedBy = ""
    var pauseReason = ""
    var lastUsedMs: Int64
  }

  private(set) var keys: [String: Key] = [:]

  /// A slot for one request under `key`: how long from `nowMs` to wait before making it.
  mutating func grant(key: String, requestsPerSecond stated: Double, nowMs: Int64) -> Int64 {
    let rate = min(max(stated, Self.rateRange.lowerBound), Self.rateRange.upperBound)
    var state =
      keys[key] ?? Key(requestsPerSecond: rate, rateSetMs: nowMs, nextSlotMs: Double(nowMs), lastUsedMs: nowMs)
    // Sources sharing a credential share its budget: the lowest rate stated lately holds.
    if rate <= state.requestsPerSecond || nowMs - state.rateSetMs > Self.rateHoldMs {
      state.requestsPerSecond = rate
      state.rateSetMs = nowMs
    }
    let slot = max(Double(nowMs), state.nextSlotMs, Double(state.pausedUntilMs))
    state.nextSlotMs = slot + 1000 / state.requestsPerSecond
    state.lastUsedMs = nowMs
    if keys[key] == nil, keys.count >= Self.maxKeys { forgetIdlest() }
    keys[key] = state
    return Int64((slot - Double(nowMs)).rounded(.up))
  }

  /// The platform throttled a request under `key`: no slot before `nowMs + pauseMs`.
  mutating func pause(key: String, pauseMs: Int64, worker: String, reason: String, nowMs: Int64) {
    let until = nowMs + min(max(0, pauseMs), Self.maxPauseMs)
    // A key first seen in a pause has no stated rate yet: the first request's will hold.
    var state =
      keys[key]
      ?? Key(
        requestsPerSecond: Self.rateRange.upperBound, rateSetMs: nowMs, nextSlotMs: Double(nowMs), lastUsedMs: nowMs)
    guard until > state.pausedUntilMs else { return }
    state.pausedUntilMs = until
    state.pausedBy = worker
    state.pauseReason = String(reason.prefix(200))
    state.lastUsedMs = nowMs
    if keys[key] == nil, keys.count >= Self.maxKeys { forgetIdlest() }
    keys[key] = state
  }

  /// Lifts `key`'s pause; its until (monotonic), or nil when it was not paused at `nowMs`.
  mutating func clearPause(key: String, nowMs: Int64) -> Int64? {
    guard var state = keys[key], state.pausedUntilMs > nowMs else { return nil }
    let until = state.pausedUntilMs
    state.pausedUntilMs = 0
    state.pausedBy = ""
    state.pauseReason = ""
    // Slots already granted stay where they were (their workers wait for them), and the
    // next comes after them: moving it back to now ran a second stream of slots beside
    // them, twice the budget once the pause's end came.
    keys[key] = state
    return until
  }

  /// Keys paused now, by key.
  func pauses(nowMs: Int64) -> [(key: String, untilMs: Int64, worker: String, reason: String)] {
    keys.filter { $0.value.pausedUntilMs > nowMs }.sorted { $0.key < $1.key }.map {
      ($0.key, $0.value.pausedUntilMs, $0.value.pausedBy, $0.value.pauseReason)
    }
  }

  private mutating func forgetIdlest() {
    if let idlest = keys.min(by: { $0.value.lastUsedMs < $1.value.lastUsedMs })?.key { keys[idlest] = nil }
  }
}
