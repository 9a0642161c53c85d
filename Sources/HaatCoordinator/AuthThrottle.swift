import HaatCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Failed handshakes (or admin requests with a wrong token) per peer address: each is logged
/// (a few per address and minute, then one count of the rest), and an address with too many
/// failures in a minute is refused until the minute is over, so a token cannot be guessed at
/// line rate.
final class AuthThrottle: Sendable {
  struct Window {
    var started: NIODeadline
    /// Failures counted toward the refusal.
    var failures = 0
    var logged = 0
    /// Lines not logged (over `logsPerWindow`), said by the next window's first line.
    var suppressed = 0
  }

  let maxFailures: Int
  let window: TimeAmount
  let logsPerWindow = 5
  private let windows = NIOLockedValueBox<[String: Window]>([:])
  private let logger: Logger
  /// The logged line: `handshake failed` (the protocol port), `admin request refused`.
  private let event: Logger.Message
  /// The metadata key of what was asked for: `name` (a handshake's), `path` (a request's).
  private let subject: String

  init(
    logger: Logger, event: Logger.Message = "handshake failed", subject: String = "name", maxFailures: Int = 20,
    window: TimeAmount = .seconds(60)
  ) {
    self.logger = logger
    self.event = event
    self.subject = subject
    self.maxFailures = maxFailures
    self.window = window
  }

  /// How long `address` must wait before it may try again, or nil if it may now.
  func refusal(for address: String) -> TimeAmount? {
    let now = NIODeadline.now()
    return windows.withLockedValue { windows in
      guard let entry = windows[address] else { return nil }
      if now - entry.started >= window {
        // Kept while it has failures it did not log: the next one's line counts them.
        if entry.suppressed == 0 { windows[address] = nil }
        return nil
      }
      return entry.failures >= maxFailures ? window - (now - entry.started) : nil
    }
  }

  /// Records a failed handshake (or request, `subject` its path); logs it unless this
  /// address has had its share of lines. `counted`: false for a failure logged within the
  /// same share but not counted toward the refusal. `event` and `details` replace the
  /// line's message and add to its fields.
  func failed(
    address: String, tokenID: String, subject: String, error: HaatError, counted: Bool = true,
    event: Logger.Message? = nil, details: Logger.Metadata = [:]
  ) {
    let now = NIODeadline.now()
    let (log, suppressed) = windows.withLockedValue { windows -> (Bool, Int) in
      var entry = windows[address] ?? Window(started: now)
      if now - entry.started >= window {
        // A new window: say how many lines the last one did not log.
        let hidden = entry.suppressed
        entry = Window(started: now)
        entry.failures = counted ? 1 : 0
        entry.logged = 1
        windows[address] = entry
        return (true, hidden)
      }
      if counted { entry.failures += 1 }
      let log = entry.logged < logsPerWindow
      if log { entry.logged += 1 } else { entry.suppressed += 1 }
      windows[address] = entry
      // Forget quiet addresses so the table stays small.
      if windows.count > 10_000 { windows = windows.filter { now - $0.value.started < self.window } }
      return (log, 0)
    }
    guard log else { return }
    var metadata: Logger.Metadata = [
      "address": "\(address)", "token": "\(DisplayText.escape(String(tokenID.prefix(64))))",
      self.subject: "\(DisplayText.escape(String(subject.prefix(128))))", "code": "\(error.code.rawValue)",
      "reason": "\(error.message)",
    ]
    if suppressed > 0 { metadata["suppressed_before"] = "\(suppressed)" }
    metadata.merge(details) { _, detail in detail }
    logger.warning(event ?? self.event, metadata: metadata)
  }
}
