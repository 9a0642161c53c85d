/// What the store knows of a task that the rules need.
public struct TaskStatus: Sendable, Equatable {
  /// The stored state: `ready`, `leased`, `done`, `dead` or `cancelled` (never `scheduled`).
  public var state: TaskState
  /// Attempts started so far; while leased, the current attempt, which is the lease token.
  public var attempt: UInt32
  public var maxAttempts: UInt32
  /// The worker that holds the lease while leased (the lease is task, attempt and worker).
  public var owner: String

  public init(state: TaskState, attempt: UInt32, maxAttempts: UInt32, owner: String = "") {
    self.state = state
    self.attempt = attempt
    self.maxAttempts = maxAttempts
    self.owner = owner
  }
}

/// A task's error: a stable code and a message.
public struct TaskError: Sendable, Equatable {
  public var code: String
  public var message: String

  public init(code: String, message: String) {
    self.code = code
    self.message = message
  }

  public static let leaseExpired = TaskError(
    // Not "stopped heartbeating" alone: a task claimed just before a coordinator restart
    // was never sent, and its workers beat all along (a tester looked for a hung worker).
    code: "lease_expired",
    message: "the lease ran out unrenewed (its worker stopped heartbeating or left, or never got the task)")
}

/// What happens to a task.
public enum TaskEvent: Sendable, Equatable {
  /// A worker with credit takes the task.
  case claim
  /// A worker returns a result for an attempt it holds.
  case complete(attempt: UInt32, worker: String)
  /// A worker reports that an attempt it holds failed.
  case fail(attempt: UInt32, worker: String, error: TaskError, retryable: Bool, retryAfterMs: UInt64)
  /// The lease of an attempt ran out.
  case expire(attempt: UInt32)
  /// A claim whose assign never reached a worker is undone; it does not count as an attempt.
  case release(attempt: UInt32)
  /// The task's job is cancelled.
  case cancel
  /// An operator gives a dead task a fresh set of attempts.
  case retryDead
  /// An operator gives up on a dead task.
  case discardDead
}

/// Why an event changed nothing.
public enum Refusal: String, Sendable, Equatable {
  /// The attempt does not hold the lease (a later attempt does, or the lease expired).
  case staleAttempt = "stale_attempt"
  /// Another worker holds the lease: only the holder may answer for it.
  case notLeaseHolder = "not_lease_holder"
  /// The task already has its result.
  case alreadyDone = "already_done"
  /// The task was cancelled.
  case cancelled
  /// The event does not apply in the task's state (e.g. claiming a leased task).
  case invalidState = "invalid_state"
  /// A result's split cannot add ranges: the task is not a plan task (or its stored spec
  /// does not read back). Nothing is recorded; the lease stands.
  case badSplit = "bad_split"
}

/// The outcome of applying an event to a task.
public enum TaskTransition: Sendable, Equatable {
  /// Leased under this attempt.
  case leased(attempt: UInt32)
  /// The result is accepted: the task is done.
  case done
  /// Back to ready, not before `delayMs` from now.
  case retry(delayMs: UInt64)
  /// No more attempts: dead with this error.
  case dead(TaskError)
  /// Back to ready at once, with the attempt count undone.
  case released
  case cancelled
  /// Back to ready with a fresh set of attempts.
  case revived
  case refused(Refusal)

  /// The stored state after the transition, or nil when nothing changes.
  public var newState: TaskState? {
    switch self {
    case .leased: return .leased
    case .done: return .done
    case .retry, .released, .revived: return .ready
    case .dead: return .dead
    case .cancelled: return .cancelled
    case .refused: return nil
    }
  }
}

/// The task lifecycle: the one place that decides what an event does to a task.
public enum TaskRules {
  public static func apply<R: RandomNumberGenerator>(
    _ event: TaskEvent, to task: TaskStatus, retry policy: RetryPolicy, random: inout R
  ) -> TaskTransition {
    switch event {
    case .claim:
      guard task.state == .ready else { return .refused(.invalidState) }
      return .leased(attempt: task.attempt + 1)

    case .complete(let attempt, let worker):
      if let refusal = refusal(for: attempt, worker: worker, task) { return .refused(refusal) }
      return .done

    case .fail(let attempt, let worker, let error, let retryable, let retryAfterMs):
      if let refusal = refusal(for: attempt, worker: worker, task) { return .refused(refusal) }
      return failure(
        task, error: error, retryable: retryable, retryAfterMs: retryAfterMs,
        policy: policy, random: &random)

    case .expire(let attempt):
      if let refusal = refusal(for: attempt, task) { return .refused(refusal) }
      return failure(
        task, error: .leaseExpired, retryable: true, retryAfterMs: 0,
        policy: policy, random: &random)

    case .release(let attempt):
      if let refusal = refusal(for: attempt, task) { return .refused(refusal) }
      return .released

    case .cancel:
      switch task.state {
      case .ready, .scheduled, .leased: return .cancelled
      case .done: return .refused(.alreadyDone)
      case .cancelled: return .refused(.cancelled)
      case .dead: return .refused(.invalidState)
      }

    case .retryDead:
      return task.state == .dead ? .revived : .refused(.invalidState)

    case .discardDead:
      return task.state == .dead ? .cancelled : .refused(.invalidState)
    }
  }

  /// Why a worker's attempt may not act on the task, or nil if it holds the lease. An
  /// earlier attempt's answer is stale whoever sends it: its lease ran out and the task
  /// moved on (a worker paused past its lease, a frozen VM), which is no alarm. For the
  /// attempt held, a worker that does not hold the lease learns nothing more than
  /// `not_lease_holder` (a bug or a stolen token: the coordinator warns), as does anyone,
  /// the holder too, naming an attempt never given: a later one, or 0 (attempts start at 1;
  /// proto3 JSON leaves a 0 out, so a worker that forgot the field learns it, found by a
  /// tester: as `stale_attempt` it dropped its results without a word).
  static func refusal(for attempt: UInt32, worker: String, _ task: TaskStatus) -> Refusal? {
    if task.state == .leased,
      Self.neverGiven(attempt, task.attempt) || (attempt == task.attempt && task.owner != worker)
    {
      return .notLeaseHolder
    }
    return refusal(for: attempt, task)
  }

  /// Whether `attempt` is one the task never had, its current attempt being `current`.
  public static func neverGiven(_ attempt: UInt32, _ current: UInt32) -> Bool { attempt == 0 || attempt > current }

  /// Why an attempt may not act on the task, or nil if it holds the lease.
  static func refusal(for attempt: UInt32, _ task: TaskStatus) -> Refusal? {
    switch task.state {
    case .leased where task.attempt == attempt: return nil
    case .done: return .alreadyDone
    case .cancelled: return .cancelled
    default: return .staleAttempt
    }
  }

  static func failure<R: RandomNumberGenerator>(
    _ task: TaskStatus, error: TaskError, retryable: Bool, retryAfterMs: UInt64,
    policy: RetryPolicy, random: inout R
  ) -> TaskTransition {
    guard retryable else { return .dead(error) }
    guard task.attempt < task.maxAttempts else {
      return .dead(
        TaskError(
          code: error.code,
          message: "\(error.message) (gave up after \(task.attempt) attempt\(task.attempt == 1 ? "" : "s"))"))
    }
    return .retry(
      delayMs: policy.delayMs(afterAttempt: task.attempt, retryAfterMs: retryAfterMs, using: &random))
  }
}
