import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatStore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// One authenticated connection, as the core sees it. Its channel lives on a session
/// loop; everything mutable here belongs to the core's loop.
final class Connection: @unchecked Sendable {
  // @unchecked: created on the session's loop and handed to the core, which alone touches
  // the mutable state below; the session handler only passes it along.
  let channel: any Channel
  let session: String
  let peer: Peer
  let address: String
  /// For workers: credit per pool, credit reserved by claims in flight, and whether the
  /// worker asked to drain.
  var credit: [Pool: Int] = [:]
  var reserved: [Pool: Int] = [:]
  var draining = false
  /// Until the session closes (`gone`).
  var open: Bool { !gone.isSet }
  /// Lines written since the last flush, sent to the channel's loop together, and
  /// whether to close the channel after them.
  var outgoing: [SessionWriter.Line] = []
  var closeAfterWrite = false
  var needsFlush = false
  /// Bytes the core queued for it that are not yet written to its socket: added by the
  /// core, taken off on the session's loop as each batch is written.
  let unsentBytes = Atomic<Int>(0)
  /// The session's line limit, both ways: a longer reply is refused as `too_large`.
  let maxLineBytes: Int
  /// Store reads in flight and streams open, bounded by `SessionLimits`.
  var readsInFlight = 0
  /// Set when the session closes, read off the loop by its store reads.
  let gone = SessionGone()
  var watches = 0
  var follows = 0
  /// A spec arriving in parts.
  var specParts: SpecParts
  /// The rate keys this session was granted a slot under (for a task it held): only such a
  /// key may it pause for everyone, as only a request under it can have been throttled.
  var grantedRateKeys: Set<String> = []
  /// Monotonic nanoseconds of the last line the core read from it (heartbeats, answered
  /// on the session's loop, count through the worker's record instead).
  var lastHeard: UInt64 = 0

  /// The token as it was when the session authenticated: a later edit of the token file
  /// that changes it (its secret, role or names) closes the session (`closeRevoked`).
  let token: Token?

  init(
    channel: any Channel, session: String, peer: Peer, address: String, maxLineBytes: Int, maxSpecBytes: Int,
    token: Token? = nil
  ) {
    self.token = token
    self.channel = channel
    self.session = session
    self.peer = peer
    self.address = address
    self.maxLineBytes = maxLineBytes
    specParts = SpecParts(maxBytes: maxSpecBytes)
  }

  var name: String { peer.name }
}

/// A job that has not ended, with its task counts kept in memory.
final class ActiveJob {
  let id: JobID
  var counts: TaskCounts
  var started: Bool
  var cancelled: Bool
  var reducing = false
  /// Reduced off the loop (its partials were too big to reduce inline): its end gives the
  /// memory back to the system.
  var reducedOffLoop = false
  /// Its done tasks' partials, merged as their results are stored.
  let early = EarlyReduce()
  /// The early merges not yet run, in order; the job's end waits for them.
  var merging: EventLoopFuture<Void>?
  var watchers: [(Connection, String)] = []
  /// Run once its end is recorded (a cancel's reply waits for the result to be stored).
  var afterEnd: [() -> Void] = []
  var lastEvent: UInt64 = 0
  var eventScheduled = false
  /// A 1-task job submitted to this coordinator: what its end's reduce reads of the job and
  /// the task, so that its result's commit can record the end without reading them.
  var onlyTask: (reports: [String], source: String)?

  init(id: JobID, counts: TaskCounts, started: Bool, cancelled: Bool) {
    self.id = id
    self.counts = counts
    self.started = started
    self.cancelled = cancelled
  }
}

/// Whether a session has closed, readable off the core's loop: a store read (and the
/// reply it builds) for a session that has gone is not made. A tester's three sessions,
/// each closing with 8 `get_result` of a 500,000-row report unread, left both cores
/// building them for a minute, and another client's `list_jobs` waited 50 s.
final class SessionGone: Sendable {
  private let flag = Atomic<Bool>(false)

  func set() { flag.store(true, ordering: .relaxed) }

  var isSet: Bool { flag.load(ordering: .relaxed) }
}
