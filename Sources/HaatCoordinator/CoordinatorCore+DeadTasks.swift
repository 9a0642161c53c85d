import HaatCore
import HaatProtocol
import HaatStore

/// Client requests about dead tasks: list them a page at a time, retry or discard them.
extension CoordinatorCore {
  func listDead(_ request: Haat_V1_ListDead, id: String, from connection: Connection) {
    var job: JobID?
    if !request.job.isEmpty {
      guard let parsed = JobID(request.job) else {
        return outbox.replyError(
          connection, to: id, HaatError(.badRequest, "\"\(request.job)\" is not a job id", field: "job"))
      }
      job = parsed
    }
    let after: TaskID?
    do {
      after = try Paging.cursor(request.after, TaskID.init)
    } catch {
      return outbox.replyError(connection, to: id, error)
    }
    let limit = Paging.limit(request.limit, default: 100)
    let store = self.store
    let wanted = job
    let maxLineBytes = connection.maxLineBytes
    read(connection, id: id, { [after] in try await store.deadTasks(job: wanted, after: after, limit: limit + 1) }) {
      records in
      var list = Haat_V1_DeadList()
      let tasks = records.prefix(limit).map { record in
        var dead = Haat_V1_DeadTask()
        dead.task = record.task.description
        dead.job = record.job.description
        dead.source = record.source
        dead.attempts = record.attempts
        dead.error = ErrorInfo(record.error)
        dead.diedMs = record.diedMs
        return dead
      }
      let fits = Paging.fitting(Array(tasks), beside: list, maxLineBytes: maxLineBytes)
      list.tasks = Array(tasks.prefix(max(fits, 1)))
      if list.tasks.count < records.count, let last = list.tasks.last { list.next = last.task }
      self.outbox.reply(connection, to: id, .deadList(list))
    }
  }

  func updateDead(_ tasks: [String], job: String, retry: Bool, id: String, from connection: Connection) {
    guard tasks.count <= Defaults.maxListItems else {
      return outbox.replyError(
        connection, to: id,
        HaatError(.badRequest, "\(tasks.count) tasks named; at most \(Defaults.maxListItems)", field: "tasks"))
    }
    let selector: DeadSelector
    if !tasks.isEmpty {
      var ids: [TaskID] = []
      for (index, text) in tasks.enumerated() {
        guard let task = TaskID(text) else {
          return outbox.replyError(
            connection, to: id, HaatError(.badRequest, "\"\(text)\" is not a task id", field: "tasks[\(index)]"))
        }
        ids.append(task)
      }
      selector = .tasks(ids)
    } else if !job.isEmpty {
      guard let parsed = JobID(job) else {
        return outbox.replyError(connection, to: id, HaatError(.badRequest, "\"\(job)\" is not a job id", field: "job"))
      }
      selector = .job(parsed)
    } else {
      selector = .all
    }
    enqueue(retry ? .retryDead(selector) : .discardDead(selector)) { result in
      guard case .deadUpdated(let changes, let counts) = result else {
        if case .failed(let error) = result { return self.outbox.replyError(connection, to: id, error) }
        return self.outbox.replyError(connection, to: id, HaatError(.internal, "unexpected store result"))
      }
      if retry {
        // A revived task reopens its job, with the counts the same transaction saw.
        for (job, jobCounts) in counts {
          if let active = self.jobs[job] {
            active.counts = jobCounts
          } else {
            self.jobs[job] = ActiveJob(id: job, counts: jobCounts, started: true, cancelled: false)
          }
        }
        for pool in Set(changes.map(\.pool)) { self.markWork(pool) }
      }
      self.logger.info(
        retry ? "dead tasks retried" : "dead tasks discarded",
        metadata: ["count": "\(changes.count)", "by": "\(connection.name)"])
      var updated = Haat_V1_DeadUpdated()
      updated.count = UInt32(clamping: changes.count)
      self.outbox.reply(connection, to: id, .deadUpdated(updated))
    }
  }
}
