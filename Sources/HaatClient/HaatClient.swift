import Foundation
import HaatCore
import HaatProtocol
import NIOCore
import NIOPosix
import Synchronization

/// A client of the coordinator: the CLI's, and the one to embed. It authenticates with a
/// credential, sends requests and matches replies by `reply_to`, and turns streams
/// (`watch`, `tail_logs`) into async sequences.
public final class HaatClient: Sendable {
  private let channel: any Channel
  private let router: ReplyRouter
  private let counter = Atomic<UInt64>(0)
  /// What the coordinator said when the session opened.
  public let welcome: Haat_V1_Welcome
  /// How long a request waits for its reply.
  public let timeout: Duration

  /// Connects and authenticates. Fails with `auth_failed` for a wrong token or a server
  /// that cannot prove it knows the secret, `unavailable` if nobody listens.
  public static func connect(
    to endpoint: Endpoint, credential: Credential, name: String = "haat-cli", tls: TLSClientSettings? = nil,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, timeout: Duration = .seconds(60)
  ) async throws -> HaatClient {
    let tlsContext = try tls?.makeContext()
    let router = ReplyRouter()
    let loop = group.next()
    let established = loop.makePromise(of: Haat_V1_Welcome.self)
    let handshake = ClientHandshake(
      kind: .client, name: name, tokenID: credential.tokenID, secret: credential.secret,
      clientNonce: HandshakeMAC.nonce(bytes: 16))
    let channel: any Channel
    do {
      channel = try await ClientBootstrap.session(
        on: loop, endpoint: endpoint, tls: tlsContext, handshake: handshake, worker: nil,
        maxLineBytes: Defaults.maxNegotiatedLineBytes, established: established
      ) { ReplyRouterHandler(router: router) }.get()
    } catch {
      established.fail(error)
      throw HaatError(.unavailable, "cannot reach the coordinator at \(endpoint): \(SocketFailure.describe(error))")
    }
    do {
      let welcome = try await established.futureResult.get()
      return HaatClient(channel: channel, router: router, welcome: welcome, timeout: timeout)
    } catch {
      try? await channel.close()
      throw error
    }
  }

  /// Connects to the first of `endpoints` that answers: the active coordinator among a
  /// store's active and standbys (standbys do not listen). A refused credential is final.
  public static func connect(
    toAny endpoints: [Endpoint], credential: Credential, name: String = "haat-cli", tls: TLSClientSettings? = nil,
    timeout: Duration = .seconds(60)
  ) async throws -> HaatClient {
    var last = HaatError(.unavailable, "no coordinator address was given")
    for endpoint in endpoints {
      do {
        return try await connect(to: endpoint, credential: credential, name: name, tls: tls, timeout: timeout)
      } catch let error as HaatError where error.code == .unavailable || error.code == .handshakeTimeout {
        last = error
      }
    }
    throw last
  }

  private init(channel: any Channel, router: ReplyRouter, welcome: Haat_V1_Welcome, timeout: Duration) {
    self.channel = channel
    self.router = router
    self.welcome = welcome
    self.timeout = timeout
  }

  public func close() async {
    try? await channel.close()
  }

  private func nextID() -> String {
    "c\(counter.wrappingAdd(1, ordering: .relaxed).newValue)"
  }

  /// Sends a request and returns its reply's body; an `error` reply is thrown as HaatError.
  public func call(_ body: Envelope.OneOf_Body) async throws -> Envelope.OneOf_Body {
    let id = nextID()
    let reply: Envelope = try await withThrowingTaskGroup(of: Envelope.self) { group in
      group.addTask {
        // The wait ends on a reply or on cancellation (the timeout below), never hangs.
        try await withTaskCancellationHandler {
          try await withCheckedThrowingContinuation { continuation in
            self.router.expect(id, .call(continuation))
            self.channel.writeAndFlush(Envelope(id: id, body), promise: nil)
          }
        } onCancel: {
          self.router.cancel(id)
        }
      }
      group.addTask {
        try await Task.sleep(for: self.timeout)
        throw HaatError(.unavailable, "no reply from the coordinator within \(self.timeout)")
      }
      defer { group.cancelAll() }
      guard let first = try await group.next() else { throw HaatError(.internal, "no reply") }
      return first
    }
    router.forget(id)
    if case .error(let error)? = reply.body { throw error.haatError }
    guard let body = reply.body else { throw HaatError(.badFrame, "an empty reply") }
    return body
  }

  /// Sends a request whose replies are a stream; it ends at `stream_end`, a final
  /// `job_event`, or an error (thrown).
  public func stream(_ body: Envelope.OneOf_Body) -> AsyncThrowingStream<Envelope.OneOf_Body, any Error> {
    let id = nextID()
    let (stream, continuation) = AsyncThrowingStream<Envelope.OneOf_Body, any Error>.makeStream()
    router.expect(id, .stream(continuation))
    continuation.onTermination = { _ in self.router.forget(id) }
    channel.writeAndFlush(Envelope(id: id, body), promise: nil)
    return stream
  }

  // MARK: Typed requests

  /// Submits a job; a spec too long for one line goes in parts (docs/protocol.md,
  /// `submit`) and is accepted as one job or not at all.
  public func submit(_ spec: JobSpec) async throws -> Haat_V1_Accepted {
    try Self.checkBeforeSending(spec)
    var whole = Haat_V1_Submit()
    whole.spec = spec
    let limit = Int(welcome.maxLineBytes) - 512
    guard let parts = SpecSplit.parts(of: whole, maxBytes: limit) else {
      throw HaatError(.badSpec, "one source of the spec is over the session's line limit of \(limit) bytes")
    }
    var accepted = Haat_V1_Accepted()
    for part in parts { accepted = try await expect(call(.submit(part)), \.accepted) }
    return accepted
  }

  /// A job; with `tasks`, every task, read a page at a time.
  public func job(_ id: String, tasks: Bool = false) async throws -> Haat_V1_Job {
    var request = Haat_V1_GetJob()
    request.job = id
    request.tasks = tasks
    var job = try await expect(call(.getJob(request)), \.job)
    var all = job.tasks
    var next = job.next
    while tasks, !next.isEmpty {
      request.after = next
      let page = try await expect(call(.getJob(request)), \.job)
      all += page.tasks
      next = page.next
    }
    // Set once: appending through the message's accessor would copy the list every page.
    job.tasks = all
    job.next = ""
    return job
  }

  /// Up to `limit` jobs, newest first, read a page at a time.
  public func jobs(state: String = "", limit: UInt32 = 50) async throws -> [Haat_V1_Job] {
    var request = Haat_V1_ListJobs()
    request.state = state
    var jobs: [Haat_V1_Job] = []
    repeat {
      request.limit = limit - UInt32(jobs.count)
      let page = try await expect(call(.listJobs(request)), \.jobList)
      jobs += page.jobs
      request.after = page.next
    } while !request.after.isEmpty && jobs.count < limit
    return jobs
  }

  /// Whether `error` is one NIO raises on a broken connection (reset, closed, refused),
  /// which callers report as `unavailable`.
  public static func isTransportError(_ error: any Error) -> Bool {
    error is IOError || error is ChannelError || error is NIOConnectionError
  }

  /// A job's result, joined from its parts when it came in several.
  public func result(_ id: String) async throws -> Haat_V1_Result {
    try await result(of: .getResult(.with { $0.job = id }))
  }

  /// A schedule's cumulative report: every finished run merged.
  public func scheduleReport(_ name: String) async throws -> Haat_V1_Result {
    try await result(of: .getScheduleReport(.with { $0.name = name }))
  }

  /// Reads a `result`, whole or in parts, answering `request`.
  private func result(of request: Envelope.OneOf_Body) async throws -> Haat_V1_Result {
    let replies = stream(request)
    return try await withThrowingTaskGroup(of: Haat_V1_Result.self) { group in
      group.addTask {
        var parts: [Haat_V1_Result] = []
        for try await body in replies {
          guard case .result(let part) = body else {
            throw HaatError(.badFrame, "expected a result, got \(body.wireName)")
          }
          parts.append(part)
          if ResultParts.isLast(part) { return try ResultParts.join(parts) }
        }
        throw HaatError(.unavailable, "the connection closed before the whole result came")
      }
      group.addTask {
        try await Task.sleep(for: self.timeout)
        throw HaatError(.unavailable, "no result from the coordinator within \(self.timeout)")
      }
      defer { group.cancelAll() }
      guard let whole = try await group.next() else { throw HaatError(.internal, "no result") }
      return whole
    }
  }

  public func cancel(_ id: String) async throws -> Haat_V1_Job {
    try await expect(call(.cancel(.with { $0.job = id })), \.job)
  }

  public func workers() async throws -> [Haat_V1_WorkerStatus] {
    try await workerList().workers
  }

  /// The workers, and the rate keys paused cluster-wide.
  public func workerList() async throws -> Haat_V1_WorkerList {
    try await expect(call(.listWorkers(Haat_V1_ListWorkers())), \.workerList)
  }

  /// Deletes jobs that ended before `endedBeforeMs`, with their tasks and results.
  /// Every schedule (recurring job spec), by name, read a page at a time.
  public func schedules() async throws -> [Haat_V1_Schedule] {
    var all: [Haat_V1_Schedule] = []
    var request = Haat_V1_ListSchedules()
    while true {
      let page = try await expect(call(.listSchedules(request)), \.scheduleList)
      all += page.schedules
      // A cursor that does not move would loop for ever: a coordinator's fault, said.
      guard !page.next.isEmpty else { return all }
      guard page.next != request.after else {
        throw HaatError(.badRequest, "the coordinator's schedule pages do not advance (next \"\(page.next)\")")
      }
      request.after = page.next
    }
  }

  /// Pauses, resumes or removes a schedule.
  public func updateSchedule(_ name: String, action: String) async throws -> Haat_V1_ScheduleUpdated {
    try await expect(
      call(
        .updateSchedule(
          .with {
            $0.name = name
            $0.action = action
          })), \.scheduleUpdated)
  }

  public func prune(endedBeforeMs: Int64) async throws -> Haat_V1_Pruned {
    try await expect(call(.pruneJobs(.with { $0.endedBeforeMs = endedBeforeMs })), \.prunedJobs)
  }

  /// Up to `limit` dead tasks, read a page at a time.
  public func dead(job: String = "", limit: UInt32 = 100) async throws -> [Haat_V1_DeadTask] {
    var request = Haat_V1_ListDead()
    request.job = job
    var tasks: [Haat_V1_DeadTask] = []
    repeat {
      request.limit = limit - UInt32(tasks.count)
      let page = try await expect(call(.listDead(request)), \.deadList)
      tasks += page.tasks
      request.after = page.next
    } while !request.after.isEmpty && tasks.count < limit
    return tasks
  }

  public func retryDead(tasks: [String] = [], job: String = "") async throws -> UInt32 {
    try await expect(
      call(
        .retryDead(
          .with {
            $0.tasks = tasks; $0.job = job
          })), \.deadUpdated
    ).count
  }

  public func discardDead(tasks: [String] = [], job: String = "") async throws -> UInt32 {
    try await expect(
      call(
        .discardDead(
          .with {
            $0.tasks = tasks; $0.job = job
          })), \.deadUpdated
    ).count
  }

  /// Lifts a rate key's pause (admin); when the pause would have ended.
  public func unpause(key: String) async throws -> Haat_V1_Unpaused {
    try await expect(call(.unpause(.with { $0.key = key })), \.unpausedKey)
  }

  /// A job's progress until it ends.
  public func watch(_ id: String) -> AsyncThrowingStream<Haat_V1_JobEvent, any Error> {
    let replies = stream(.watch(.with { $0.job = id }))
    return AsyncThrowingStream { continuation in
      let task = Task {
        do {
          for try await body in replies {
            if case .jobEvent(let event) = body {
              continuation.yield(event)
              if event.final { break }
            }
          }
          continuation.finish()
        } catch {
          continuation.finish(throwing: error)
        }
      }
      continuation.onTermination = { _ in task.cancel() }
    }
  }

  /// Worker log lines, the stored tail first; with `follow`, new ones as they come.
  public func logs(worker: String = "", level: String = "", follow: Bool = false, limit: UInt32 = 100)
    -> AsyncThrowingStream<Haat_V1_Log, any Error>
  {
    let replies = stream(
      .tailLogs(
        .with {
          $0.worker = worker; $0.level = level; $0.follow = follow; $0.limit = limit
        }))
    return AsyncThrowingStream { continuation in
      let task = Task {
        do {
          for try await body in replies {
            if case .log(let line) = body { continuation.yield(line) }
          }
          continuation.finish()
        } catch {
          continuation.finish(throwing: error)
        }
      }
      continuation.onTermination = { _ in task.cancel() }
    }
  }

  private func expect<T>(_ body: Envelope.OneOf_Body, _ path: KeyPath<Envelope.OneOf_Body, T?>) throws -> T {
    guard let value = body[keyPath: path] else {
      throw HaatError(.unsupported, "the coordinator answered with \(body.wireName)")
    }
    return value
  }
}

extension Envelope.OneOf_Body {
  var accepted: Haat_V1_Accepted? { if case .accepted(let value) = self { value } else { nil } }
  var job: Haat_V1_Job? { if case .job(let value) = self { value } else { nil } }
  var jobList: Haat_V1_JobList? { if case .jobList(let value) = self { value } else { nil } }
  var result: Haat_V1_Result? { if case .result(let value) = self { value } else { nil } }
  var workerList: Haat_V1_WorkerList? { if case .workerList(let value) = self { value } else { nil } }
  var deadList: Haat_V1_DeadList? { if case .deadList(let value) = self { value } else { nil } }
  var deadUpdated: Haat_V1_DeadUpdated? { if case .deadUpdated(let value) = self { value } else { nil } }
  var unpausedKey: Haat_V1_Unpaused? { if case .unpaused(let value) = self { value } else { nil } }
  var prunedJobs: Haat_V1_Pruned? { if case .pruned(let value) = self { value } else { nil } }
  var scheduleList: Haat_V1_ScheduleList? { if case .scheduleList(let value) = self { value } else { nil } }
  var scheduleUpdated: Haat_V1_ScheduleUpdated? {
    if case .scheduleUpdated(let value) = self { value } else { nil }
  }
}

/// Matches replies to the requests waiting for them.
final class ReplyRouter: Sendable {
  enum Waiter {
    case call(CheckedContinuation<Envelope, any Error>)
    case stream(AsyncThrowingStream<Envelope.OneOf_Body, any Error>.Continuation)
  }

  private let state = Mutex<(waiters: [String: Waiter], closed: (any Error)?, cancelled: Set<String>)>(
    ([:], nil, []))

  func expect(_ id: String, _ waiter: Waiter) {
    let failure: (any Error)? = state.withLock { state in
      // Cancelled before it was registered: fail it at once instead of waiting forever.
      if state.cancelled.remove(id) != nil { return CancellationError() }
      if state.closed == nil { state.waiters[id] = waiter }
      return state.closed
    }
    if let failure { Self.fail(waiter, failure) }
  }

  /// Ends the wait for `id` with `CancellationError` (the caller gave up: a timeout).
  func cancel(_ id: String) {
    let waiter = state.withLock { state -> Waiter? in
      guard let waiter = state.waiters.removeValue(forKey: id) else {
        state.cancelled.insert(id)
        return nil
      }
      return waiter
    }
    if let waiter { Self.fail(waiter, CancellationError()) }
  }

  func forget(_ id: String) {
    _ = state.withLock { $0.waiters.removeValue(forKey: id) }
  }

  func deliver(_ envelope: Envelope) {
    let id = envelope.replyTo
    guard !id.isEmpty else {
      // The coordinator's last word before it closes the session (a revoked token, a line
      // too long): what every wait ends with, not "the connection closed".
      if case .error(let error)? = envelope.body, Self.closesSession(error.haatError.code) { close(error.haatError) }
      return
    }
    let waiter = state.withLock { state -> Waiter? in
      guard let waiter = state.waiters[id] else { return nil }
      if case .call = waiter { state.waiters[id] = nil }
      return waiter
    }
    switch waiter {
    case .call(let continuation)?:
      continuation.resume(returning: envelope)
    case .stream(let continuation)?:
      switch envelope.body {
      case .error(let error)?:
        continuation.finish(throwing: error.haatError)
        forget(id)
      case .streamEnd?:
        continuation.finish()
        forget(id)
      case let body?:
        continuation.yield(body)
        if case .jobEvent(let event) = body, event.final {
          continuation.finish()
          forget(id)
        }
      case nil:
        break
      }
    case nil:
      break
    }
  }

  static func closesSession(_ code: ErrorCode) -> Bool {
    code == .authFailed || code == .frameTooLong || code == .versionUnsupported
  }

  /// Ends every wait with `error`; the first reason given is the one kept.
  func close(_ error: any Error) {
    let waiters = state.withLock { state -> [Waiter] in
      if state.closed == nil { state.closed = error }
      defer { state.waiters = [:] }
      return Array(state.waiters.values)
    }
    for waiter in waiters { Self.fail(waiter, error) }
  }

  private static func fail(_ waiter: Waiter, _ error: any Error) {
    switch waiter {
    case .call(let continuation): continuation.resume(throwing: error)
    case .stream(let continuation): continuation.finish(throwing: error)
    }
  }
}

final class ReplyRouterHandler: ChannelInboundHandler {
  typealias InboundIn = Envelope
  let router: ReplyRouter

  init(router: ReplyRouter) { self.router = router }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    router.deliver(unwrapInboundIn(data))
  }

  func channelInactive(context: ChannelHandlerContext) {
    router.close(HaatError(.unavailable, "the connection to the coordinator closed"))
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // A reset or another transport error is the coordinator being unreachable, with a code
    // scripts know (exit 6), not a raw NIO error.
    router.close(
      error as? HaatError ?? HaatError(.unavailable, "the connection to the coordinator failed: \(error)"))
    context.close(promise: nil)
  }
}
