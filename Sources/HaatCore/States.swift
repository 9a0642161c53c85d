/// A job's lifecycle: `queued → running → succeeded | failed | partial | cancelled`.
public enum JobState: String, Sendable, CaseIterable, Hashable {
  case queued, running, succeeded, failed, partial, cancelled

  /// Whether the job has ended (its report, if any, is final).
  public var isFinal: Bool {
    switch self {
    case .queued, .running: return false
    case .succeeded, .failed, .partial, .cancelled: return true
    }
  }
}

/// A task's lifecycle: `scheduled → ready → leased → done | dead | cancelled`.
///
/// The store keeps `ready` with a `not_before` time; a ready task whose time has not come
/// is shown as `scheduled`, so waiting out a backoff needs no write.
public enum TaskState: String, Sendable, CaseIterable, Hashable {
  case scheduled, ready, leased, done, dead, cancelled

  /// Whether the task will not run again (unless an operator retries a dead one).
  public var isFinal: Bool {
    switch self {
    case .scheduled, .ready, .leased: return false
    case .done, .dead, .cancelled: return true
    }
  }

  /// The state as shown for a stored state: a ready task whose time has not come is
  /// `scheduled`. The one place that derives it, for every store backend.
  public static func shown(stored: TaskState, notBeforeMs: Int64, nowMs: Int64) -> TaskState {
    stored == .ready && notBeforeMs > nowMs ? .scheduled : stored
  }
}

/// How many of a job's tasks are in each state.
public struct TaskCounts: Sendable, Equatable, Hashable {
  public var scheduled: Int = 0
  public var ready: Int = 0
  public var leased: Int = 0
  public var done: Int = 0
  public var dead: Int = 0
  public var cancelled: Int = 0

  public init(
    scheduled: Int = 0, ready: Int = 0, leased: Int = 0, done: Int = 0, dead: Int = 0,
    cancelled: Int = 0
  ) {
    self.scheduled = scheduled
    self.ready = ready
    self.leased = leased
    self.done = done
    self.dead = dead
    self.cancelled = cancelled
  }

  public var total: Int { scheduled + ready + leased + done + dead + cancelled }
  /// Tasks that have not ended.
  public var open: Int { scheduled + ready + leased }
  /// Tasks that have ended.
  public var ended: Int { done + dead + cancelled }

  public subscript(state: TaskState) -> Int {
    get {
      switch state {
      case .scheduled: return scheduled
      case .ready: return ready
      case .leased: return leased
      case .done: return done
      case .dead: return dead
      case .cancelled: return cancelled
      }
    }
    set {
      switch state {
      case .scheduled: scheduled = newValue
      case .ready: ready = newValue
      case .leased: leased = newValue
      case .done: done = newValue
      case .dead: dead = newValue
      case .cancelled: cancelled = newValue
      }
    }
  }

  /// Moves one task from one state to another.
  public mutating func move(from old: TaskState, to new: TaskState) {
    guard old != new else { return }
    self[old] -= 1
    self[new] += 1
  }
}

/// The rules that give a job its state from its tasks.
public enum JobRules {
  /// The state of a job with these task counts.
  ///
  /// A cancelled job stays cancelled. Otherwise a job with open tasks is `queued` until one
  /// of its tasks has been leased, then `running`; once every task has ended it is
  /// `succeeded` (all done), `failed` (none done) or `partial` (some done, some not).
  public static func state(counts: TaskCounts, cancelled: Bool, started: Bool) -> JobState {
    if cancelled { return .cancelled }
    if counts.open > 0 { return started ? .running : .queued }
    if counts.done == counts.total { return .succeeded }
    if counts.done == 0 { return .failed }
    return .partial
  }
}
