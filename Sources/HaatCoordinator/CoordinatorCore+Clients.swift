import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatStore
import Logging
import NIOCore
import NIOPosix

/// Client requests: submit, jobs and their pages, watch, results, cancel, workers, logs
/// (dead tasks: `+DeadTasks`).
extension CoordinatorCore {
  func receiveSubmit(_ spec: JobSpec, id: String, from connection: Connection) {
    guard accepting else {
      return outbox.replyError(connection, to: id, HaatError(.unavailable, "the coordinator is shutting down"))
    }
    if let pressure = diskPressure() { return outbox.replyError(connection, to: id, pressure) }
    let submittedBy = "\(connection.peer.role.rawValue):\(connection.name)"
    let defaults = config.planner
    // A small spec is planned at once; a big one (thousands of sources, a million tasks)
    // on `work`, so the loop keeps serving everyone else meanwhile.
    guard spec.sources.count > 64 else {
      do {
        return submitPlanned(
          try Planner.plan(spec, submittedBy: submittedBy, defaults: defaults), every: spec.every, id: id,
          from: connection)
      } catch {
        return outbox.replyError(connection, to: id, error)
      }
    }
    offLoop { try Planner.plan(spec, submittedBy: submittedBy, defaults: defaults) }
      .assumeIsolated().whenComplete { result in
        switch result {
        case .success(let job): self.submitPlanned(job, every: spec.every, id: id, from: connection)
        case .failure(let error):
          self.outbox.replyError(connection, to: id, (error as? HaatError) ?? HaatError(.internal, "\(error)"))
        }
        self.outbox.flush()
      }
  }

  /// Stores a planned job and answers `accepted` once it is durable. A spec with `every`
  /// becomes a schedule too, in the same commit; the job is its first run.
  func submitPlanned(_ job: NewJob, every: String, id: String, from connection: Connection) {
    var op = StoreOp.submit(job)
    var scheduleName = ""
    // The planner checked `every` (and that it has a next run) and that the job has a name.
    if !every.isEmpty, let recurrence = try? Recurrence(every),
      let next = recurrence.next(dueMs: nowMs, nowMs: nowMs)
    {
      scheduleName = job.name
      op = .schedule(
        NewSchedule(
          name: job.name, spec: job.spec, every: every, everyMs: recurrence.everyMs, nextMs: next,
          createdBy: job.submittedBy),
        firstRun: job)
    }
    storeJob(job, op: op) { result in
      switch result {
      case .success(let (jobID, count)):
        self.logger.info(
          "job accepted", metadata: ["job": "\(jobID)", "tasks": "\(count)", "by": "\(connection.name)"])
        var accepted = Haat_V1_Accepted()
        accepted.job = jobID.description
        accepted.tasks = UInt32(clamping: count)
        accepted.schedule = scheduleName
        self.outbox.reply(connection, to: id, .accepted(accepted))
        self.finishIfEnded(jobID)
      case .failure(let error):
        self.outbox.replyError(connection, to: id, error)
      }
    }
  }

  /// Commits `op`, which stores `job` (a submit, a schedule with its first run, a run of a
  /// schedule), and starts tracking the job; `done` gets its id and task count, or nil
  /// when a schedule's run was not fired after all.
  func storeJob(
    _ job: NewJob, op: StoreOp, _ done: @escaping (Result<(JobID, Int), HaatError>) -> Void,
    notFired: (() -> Void)? = nil
  ) {
    let pools = Set(job.tasks.map(\.pool))
    // Claims ride in the submit's own transaction, so a worker with free credit gets the
    // first tasks after one commit, not two.
    let due = job.notBeforeMs <= nowMs
    if due { for pool in pools { scheduler.markWork(pool) } }
    enqueue(op) { result in
      switch result {
      case .submitted(let jobID, let count, let notBeforeMs):
        var counts = TaskCounts()
        let waits = notBeforeMs > self.nowMs
        if waits { counts.scheduled = count } else { counts.ready = count }
        let active = ActiveJob(id: jobID, counts: counts, started: false, cancelled: false)
        if count == 1, job.tasks.count == 1 { active.onlyTask = (job.reports, job.tasks[0].source) }
        self.jobs[jobID] = active
        if waits {
          // Task ids of a job are consecutive; the store assigned them in order.
          self.readTasks(of: jobID) { tasks in
            for task in tasks { self.addWaiting(task.id, job: jobID, pool: task.pool, notBeforeMs: notBeforeMs) }
          }
        } else {
          // Marked before the commit when due then; a claim commit now would find nothing.
          if !due { for pool in pools { self.markWork(pool) } }
        }
        done(.success((jobID, count)))
      case .notFired:
        notFired?()
      case .failed(let error):
        done(.failure(error))
      default:
        done(.failure(HaatError(.internal, "unexpected store result for submit")))
      }
    }
  }

  func readTasks(of job: JobID, _ body: @escaping ([TaskRecord]) -> Void) {
    let store = self.store
    let nowMs = self.nowMs
    onStore { try await store.job(job, tasks: true, nowMs: nowMs)?.tasks ?? [] }
      .assumeIsolated().whenComplete { result in
        switch result {
        case .success(let tasks): body(tasks)
        case .failure(let error):
          // A failed read must not strand the job's waiting tasks: try again shortly.
          self.logger.warning(
            "cannot read a job's tasks; retrying", metadata: ["job": "\(job)", "error": "\(error)"])
          self.loop.assumeIsolated().scheduleTask(in: .seconds(1)) { self.readTasks(of: job, body) }
        }
      }
  }

  /// Refuses new jobs while the store's disk is nearly full (as last measured).
  func diskPressure() -> HaatError? {
    if let damage = store.damage {
      return HaatError(
        .unavailable,
        "the store's file is damaged (\(damage)); refusing new jobs: stop the coordinator and restore the store from a backup (operations.md \"Backups and upgrades\")"
      )
    }
    if storeFileGone, case .sqlite(let file) = config.storeLocation {
      return HaatError(
        .unavailable,
        "the store's file \(file) is gone from its path (removed while the coordinator runs): SQLite writes on to the deleted file, which is lost when the coordinator stops; refusing new jobs (copy the file from /proc/\(getpid())/fd/ before stopping it)"
      )
    }
    guard let free = diskFreeBytes, free < config.minFreeDiskBytes else { return nil }
    // Rounded alike ("2.0 MiB free, less than the 2.0 MiB"), the two are said in bytes.
    var (shownFree, shownFloor) = (ReportRendering.bytes(free), ReportRendering.bytes(config.minFreeDiskBytes))
    if shownFree == shownFloor { (shownFree, shownFloor) = ("\(free) bytes", "\(config.minFreeDiskBytes) bytes") }
    return HaatError(
      .unavailable,
      "the store's disk has \(shownFree) free, less than the \(shownFloor) the coordinator keeps; refusing new jobs (nothing is evicted)"
    )
  }

  func getJob(_ request: Haat_V1_GetJob, id: String, from connection: Connection) {
    guard let job = JobID(request.job) else {
      return outbox.replyError(
        connection, to: id, HaatError(.badRequest, "\"\(request.job)\" is not a job id", field: "job"))
    }
    let after: UInt32?
    do {
      after = try Paging.cursor(request.after, UInt32.init)
    } catch {
      return outbox.replyError(connection, to: id, error)
    }
    let store = self.store
    let nowMs = self.nowMs
    let withTasks = request.tasks
    // One more than asked for tells whether another page follows.
    let limit = Paging.limit(request.limit, default: 1_000)
    let maxLineBytes = connection.maxLineBytes
    read(
      connection, id: id,
      { [after] () throws -> Haat_V1_Job? in
        guard let record = try await store.job(job, tasks: false, nowMs: nowMs) else { return nil }
        var message = WireMessages.message(record)
        if Paging.jsonSize(message) ?? 0 > maxLineBytes - Paging.envelopeSlack {
          // A spec too large to travel with its job (thousands of sources) is left out.
          message.clearSpec()
        }
        guard withTasks else { return message }
        let page = try await store.tasks(of: job, after: after, limit: limit + 1, nowMs: nowMs)
        let tasks = page.prefix(limit).map(WireMessages.message)
        let fits = Paging.fitting(Array(tasks), beside: message, maxLineBytes: maxLineBytes)
        guard fits > 0 || tasks.isEmpty else {
          throw HaatError(.tooLarge, "one task of job \(job) is over this session's line limit")
        }
        message.tasks = Array(tasks.prefix(fits))
        if fits < page.count, let last = message.tasks.last { message.next = String(last.index) }
        return message
      }
    ) { message in
      guard let message else {
        return self.outbox.replyError(connection, to: id, HaatError(.notFound, "no job \(job)"))
      }
      self.outbox.reply(connection, to: id, .job(message))
    }
  }

  func listJobs(_ request: Haat_V1_ListJobs, id: String, from connection: Connection) {
    var state: JobState?
    if !request.state.isEmpty {
      guard let parsed = JobState(rawValue: request.state) else {
        return outbox.replyError(
          connection, to: id, HaatError(.badRequest, "unknown state \"\(request.state)\"", field: "state"))
      }
      state = parsed
    }
    let before: JobID?
    do {
      before = try Paging.cursor(request.after, JobID.init)
    } catch {
      return outbox.replyError(connection, to: id, error)
    }
    let limit = Paging.limit(request.limit, default: 50)
    let store = self.store
    let nowMs = self.nowMs
    let wanted = state
    let maxLineBytes = connection.maxLineBytes
    read(
      connection, id: id,
      { [before] in try await store.jobs(state: wanted, before: before, limit: limit + 1, nowMs: nowMs) }
    ) {
      records in
      // Jobs in a list carry no spec: get_job has it.
      let jobs = records.prefix(limit).map { record in
        var job = WireMessages.message(record)
        job.clearSpec()
        return job
      }
      var list = Haat_V1_JobList()
      let fits = Paging.fitting(Array(jobs), beside: list, maxLineBytes: maxLineBytes)
      list.jobs = Array(jobs.prefix(max(fits, 1)))
      if list.jobs.count < records.count, let last = list.jobs.last { list.next = last.id }
      self.outbox.reply(connection, to: id, .jobList(list))
    }
  }

  func watch(_ text: String, id: String, from connection: Connection) {
    guard let job = JobID(text) else {
      return outbox.replyError(connection, to: id, HaatError(.badRequest, "\"\(text)\" is not a job id", field: "job"))
    }
    guard connection.watches < config.session.watches else {
      return outbox.replyError(
        connection, to: id,
        HaatError(.busy, "this session watches \(connection.watches) jobs, the most it may; close one first"))
    }
    if let active = jobs[job] {
      if !active.watchers.contains(where: { $0.0 === connection && $0.1 == id }) {
        active.watchers.append((connection, id))
        connection.watches += 1
      }
      outbox.reply(connection, to: id, .jobEvent(event(active)))
      return
    }
    let store = self.store
    let nowMs = self.nowMs
    read(connection, id: id, { try await store.job(job, tasks: false, nowMs: nowMs) }) { record in
      guard let record else { return self.outbox.replyError(connection, to: id, HaatError(.notFound, "no job \(job)")) }
      if let active = self.jobs[job] {
        // It became active while we read (a retried dead task).
        active.watchers.append((connection, id))
        connection.watches += 1
        return self.outbox.reply(connection, to: id, .jobEvent(self.event(active)))
      }
      var event = Haat_V1_JobEvent()
      event.job = job.description
      event.state = record.state.rawValue
      event.counts = WireMessages.message(record.counts)
      event.atMs = nowMs
      event.final = record.state.isFinal
      event.message = record.error
      self.outbox.reply(connection, to: id, .jobEvent(event))
    }
  }

  func getResult(_ text: String, id: String, from connection: Connection) {
    guard let job = JobID(text) else {
      return outbox.replyError(connection, to: id, HaatError(.badRequest, "\"\(text)\" is not a job id", field: "job"))
    }
    let store = self.store
    let nowMs = self.nowMs
    let maxLineBytes = connection.maxLineBytes
    let gone = connection.gone
    read(
      connection, id: id,
      { () async throws -> [ByteBuffer] in
        guard let record = try await store.job(job, tasks: false, nowMs: nowMs) else {
          throw HaatError(.notFound, "no job \(job)")
        }
        // The store's state is the truth: once it says the job ended, its report is there.
        guard record.state.isFinal, let report = try await store.report(of: job) else {
          let counts = record.counts
          throw HaatError(
            .notFinished,
            "job \(job) is \(record.state.rawValue) (\(counts.ended) of \(counts.total) tasks ended); it has no result yet"
          )
        }
        return try Self.resultLines(record, report: report, replyTo: id, maxLineBytes: maxLineBytes, gone: gone)
      }
    ) { lines in
      self.outbox.sendInTurn(lines[...], to: connection)
    }
  }

  /// A finished job's `result` as encoded lines: one, or parts when the report is over the
  /// session's line limit (docs/protocol.md, `result`). Off the loop: a report can be big.
  static func resultLines(
    _ record: JobRecord, report: Data, replyTo id: String, maxLineBytes: Int, gone: SessionGone = SessionGone()
  ) throws -> [ByteBuffer] {
    guard !gone.isSet else { throw SessionClosed() }
    var result = Haat_V1_Result()
    result.job = WireMessages.message(record)
    // The spec is get_job's to show; a result is about the report.
    result.job.clearSpec()
    do {
      result.report = try JobReducer.storedReport(report)
    } catch {
      throw HaatError(.internal, "job \(record.id)'s stored report is unreadable: \(error)")
    }
    guard let parts = ResultParts.split(result, maxLineBytes: maxLineBytes) else {
      throw HaatError(
        .tooLarge, "one row of job \(record.id)'s report is over this session's line limit of \(maxLineBytes) bytes")
    }
    let allocator = ByteBufferAllocator()
    return try parts.map { part in
      guard !gone.isSet else { throw SessionClosed() }
      var buffer = allocator.buffer(capacity: 1 << 16)
      try WireCodec.encode(Envelope(replyTo: id, .result(part)), into: &buffer)
      return buffer
    }
  }

  func cancel(_ text: String, id: String, from connection: Connection) {
    guard let job = JobID(text) else {
      return outbox.replyError(connection, to: id, HaatError(.badRequest, "\"\(text)\" is not a job id", field: "job"))
    }
    enqueue(.cancelJob(job)) { result in
      switch result {
      case .cancelled(let job, let changes):
        self.jobs[job]?.cancelled = true
        for change in changes { self.apply(change) }
        self.logger.info(
          "job cancelled", metadata: ["job": "\(job)", "tasks": "\(changes.count)", "by": "\(connection.name)"])
        self.finishIfEnded(job)
        // Answered once the cancelled job's result is stored, when it is being made: a
        // `get_result` sent after the answer then finds it.
        let reply = { self.getJob(.with { $0.job = job.description }, id: id, from: connection) }
        if let active = self.jobs[job], active.reducing {
          active.afterEnd.append(reply)
        } else {
          reply()
        }
      case .failed(let error):
        self.outbox.replyError(connection, to: id, error)
      default:
        self.outbox.replyError(connection, to: id, HaatError(.internal, "unexpected store result for cancel"))
      }
    }
  }

  func workerList() -> Haat_V1_WorkerList {
    var list = Haat_V1_WorkerList()
    let now = self.now
    list.workers = workers.values.sorted { $0.name < $1.name }.map { record in
      var status = Haat_V1_WorkerStatus()
      status.id = record.name
      status.host = record.host
      status.pid = record.pid
      let held = leases.count(of: record.name)
      status.state = record.state(
        now: now, heartbeatMs: config.heartbeatMs, leaseMs: config.leaseMs, leases: held)
      status.pools = record.pools
      status.tasksDone = record.tasksDone
      status.tasksFailed = record.tasksFailed
      status.rssBytes = record.health.rssBytes
      status.cpuSeconds = record.health.cpuSeconds
      status.lastHeartbeatMs = record.lastHeartbeatMs
      status.connectedMs = record.connectedMs
      status.leases = UInt32(clamping: held)
      status.version = record.version
      status.address = record.address
      status.lastProgressMs = record.health.lastProgressMs
      return status
    }
    let monotonic = monotonicMs
    let wall = nowMs
    list.pauses = rates.pauses(nowMs: monotonic).map { pause in
      var status = Haat_V1_RatePauseStatus()
      status.key = pause.key
      status.untilMs = wall + (pause.untilMs - monotonic)
      status.worker = pause.worker
      status.reason = pause.reason
      return status
    }
    return list
  }

  func tailLogs(_ request: Haat_V1_TailLogs, id: String, from connection: Connection) {
    var level = LogLevel.trace
    if !request.level.isEmpty {
      guard let parsed = LogLevel(name: request.level) else {
        return outbox.replyError(
          connection, to: id, HaatError(.badRequest, "unknown level \"\(request.level)\"", field: "level"))
      }
      level = parsed
    }
    // A follow past the bound is refused before anything of it is sent: the first reply to
    // the request is the answer.
    if request.follow, connection.follows >= config.session.follows {
      return outbox.replyError(
        connection, to: id, HaatError(.busy, "this session follows \(connection.follows) log streams, the most it may"))
    }
    let worker = request.worker
    let limit = request.limit == 0 ? 100 : Int(request.limit)
    let backlog = logs.tail(
      limit: limit,
      where: { line in
        (worker.isEmpty || line.worker == worker) && (LogLevel(name: line.level) ?? .info) >= level
      })
    // The backlog goes at once, so at most half of what a session may leave unsent: the
    // newest lines that fit. A thousand lines of 8 KiB closed the session as a peer that
    // did not read (a tester's find).
    var budget = config.session.outboundBytes / 2
    var first = backlog.endIndex
    while first > backlog.startIndex {
      // The line and its envelope (`reply_to`, the keys, braces, newline): charged 512
      // bytes each, 4,673 lines of 300 bytes were called 4 MiB (a tester's find).
      let size = (Paging.jsonSize(backlog[first - 1]) ?? budget) + id.utf8.count + 64
      guard size <= budget else { break }
      budget -= size
      first -= 1
    }
    for line in backlog[first...] { outbox.reply(connection, to: id, .log(line)) }
    if request.follow {
      connection.follows += 1
      tailers.append((connection, id, worker, level))
    } else {
      outbox.reply(connection, to: id, .streamEnd(Haat_V1_StreamEnd()))
    }
  }
}
