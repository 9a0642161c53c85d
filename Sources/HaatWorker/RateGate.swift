import Dispatch
import Foundation
import HaatFetch
import HaatProtocol
import HaatRecords
import Synchronization

/// The worker's side of the cluster-wide rate governor: before each request under a rate
/// key, a task's thread asks the coordinator for a slot (`rate_request`) and waits for the
/// grant, then for the slot's time; a throttling answer from the platform is reported
/// (`rate_pause`) so every worker holds off. The task threads block here; the event loop
/// only sends and delivers.
final class RateGate: Sendable {
  /// How long a task waits for a grant before giving up (retryably).
  static let grantTimeout: Duration = .seconds(60)
  /// How late after its slot a request may still go. A request later than this (a thread
  /// not scheduled in time, a reply held up) gives its slot back and asks again, so late
  /// requests cannot bunch up with punctual ones.
  static let lateness: Duration = .milliseconds(100)
  /// How many late slots a request gives back before it goes late anyway.
  static let lateRetries = 3

  private final class Waiter: Sendable {
    let envelope: Envelope
    let semaphore = DispatchSemaphore(value: 0)
    /// The wait in ms, or why there is no slot.
    let answer = Mutex<Result<Int64, ExportError>?>(nil)
    init(_ envelope: Envelope) { self.envelope = envelope }
  }

  private let waiters = Mutex<[String: Waiter]>([:])
  private let counter = Atomic<UInt64>(0)
  /// Sends a message on the current session (set once the runtime exists).
  private let deliver = Mutex<Delivery?>(nil)

  /// The closure in a struct: a bare closure read out of the Mutex (`withLock { $0 }`,
  /// inout through a generic) was written back wrapped in two more reabstraction thunks
  /// on every read, so each message went through all the earlier ones, and after about
  /// 15,000 rate requests the worker died of a stack overflow (found by a tester).
  private struct Delivery: Sendable {
    let send: @Sendable (Envelope) -> Void
  }

  func connect(_ deliver: @escaping @Sendable (Envelope) -> Void) {
    self.deliver.withLock { $0 = Delivery(send: deliver) }
  }

  func send(_ envelope: Envelope) {
    deliver.withLock { $0 }?.send(envelope)
  }

  /// Blocks until the coordinator's slot for one request under `key` has come; returns
  /// within `lateness` of it unless the machine is too busy to be punctual.
  func acquire(key: String, requestsPerSecond: Double, task: String, attempt: UInt32, cancel: CancellationFlag)
    throws(ExportError)
  {
    // One deadline for all the tries: a coordinator that stops answering fails the task
    // (retryably) after `grantTimeout`, not after a timeout per try.
    let deadline = ContinuousClock.now + Self.grantTimeout
    // A late slot is given back and asked for again, a few times; past that (a machine too
    // busy to be punctual) the request goes late rather than the task failing.
    for _ in 0..<Self.lateRetries {
      if try slot(
        key: key, requestsPerSecond: requestsPerSecond, task: task, attempt: attempt, cancel: cancel,
        deadline: deadline)
      {
        return
      }
    }
    _ = try slot(
      key: key, requestsPerSecond: requestsPerSecond, task: task, attempt: attempt, cancel: cancel,
      deadline: deadline)
  }

  /// One slot: true when it came and this thread is within `lateness` of it.
  private func slot(
    key: String, requestsPerSecond: Double, task: String, attempt: UInt32, cancel: CancellationFlag,
    deadline: ContinuousClock.Instant
  ) throws(ExportError) -> Bool {
    let clock = ContinuousClock()
    let asked = clock.now
    let id = "r\(counter.add(1, ordering: .relaxed).newValue)"
    var request = Haat_V1_RateRequest()
    request.key = key
    request.requestsPerSecond = requestsPerSecond
    request.task = task
    request.attempt = attempt
    let waiter = Waiter(Envelope(id: id, .rateRequest(request)))
    waiters.withLock { $0[id] = waiter }
    defer { _ = waiters.withLock { $0.removeValue(forKey: id) } }
    send(waiter.envelope)
    while waiter.semaphore.wait(timeout: .now() + .milliseconds(250)) == .timedOut {
      if cancel.isCancelled {
        throw ExportError("cancelled while waiting for a rate slot", code: "cancelled", retryable: true)
      }
      if ContinuousClock.now >= deadline {
        throw ExportError(
          "no rate slot for \(key) from the coordinator within \(Self.grantTimeout)", code: "unavailable",
          retryable: true)
      }
    }
    let answer = waiter.answer.withLock { $0 } ?? .failure(ExportError("no answer", code: "internal"))
    let wait: Int64
    switch answer {
    case .success(let value): wait = value
    case .failure(let error): throw error
    }
    // The coordinator measured the wait somewhere between `asked` and now, so the slot is
    // no later than now + wait (never early from here) and no earlier than asked + wait
    // (lateness is counted from there). Wait in slices: a cancelled task does not sleep on.
    let due = clock.now + .milliseconds(wait)
    while clock.now < due {
      if cancel.isCancelled {
        throw ExportError("cancelled while waiting for a rate slot", code: "cancelled", retryable: true)
      }
      let left = due - clock.now
      Thread.sleep(
        forTimeInterval: min(0.1, Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18))
    }
    return clock.now - (asked + .milliseconds(wait)) <= Self.lateness
  }

  /// Delivers the coordinator's answer to a request; false when it answers none of ours.
  @discardableResult
  func resolve(replyTo: String, _ answer: Result<Int64, ExportError>) -> Bool {
    guard let waiter = waiters.withLock({ $0[replyTo] }) else { return false }
    waiter.answer.withLock { $0 = answer }
    waiter.semaphore.signal()
    return true
  }

  /// After a reconnect: ask again for every slot still awaited (the old session's answers
  /// are lost with it).
  func resendPending() {
    for waiter in waiters.withLock({ Array($0.values) }) { send(waiter.envelope) }
  }

  /// The platform throttled a request under `key`: tell the coordinator to pause it.
  func pause(key: String, ms: UInt64, reason: String) {
    var pause = Haat_V1_RatePause()
    pause.key = key
    pause.pauseMs = UInt32(clamping: ms)
    pause.reason = String(reason.prefix(200))
    send(Envelope(id: "", .ratePause(pause)))
  }
}
