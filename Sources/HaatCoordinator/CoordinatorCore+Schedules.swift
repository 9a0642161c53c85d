import Foundation
import HaatCore
import HaatProtocol
import HaatStore
import NIOCore
import NIOPosix

/// Recurring jobs: firing their runs, and the client requests that list and change them.
extension CoordinatorCore {
  /// Starts a run of every schedule that is due. The store fires each run once (the run's
  /// job is stored only if the schedule is still due at that time), so a slow round, a
  /// restart or a second coordinator never starts a run twice.
  func fireDueSchedules() {
    guard accepting, !firingSchedules, monotonicMs >= schedulesRetryAtMs else { return }
    // A run is a new job: under the disk's reserve it waits, as a submit is refused (a
    // tester's schedule ate the reserve a refused submit had kept).
    if let pressure = diskPressure() {
      if !schedulesHeldForDisk {
        schedulesHeldForDisk = true
        logger.warning(
          "schedule runs that come due wait while the store refuses new jobs",
          metadata: ["error": "\(pressure.message)"])
      }
      return
    }
    if schedulesHeldForDisk {
      schedulesHeldForDisk = false
      logger.notice("schedule runs that come due go ahead: the store takes new jobs again")
    }
    firingSchedules = true
    let store = self.store
    let defaults = config.planner
    let nowMs = self.nowMs
    onStore { try await store.schedules() }
      .assumeIsolated().whenComplete { result in
        self.firingSchedules = false
        guard case .success(let schedules) = result else {
          if case .failure(let error) = result {
            self.logger.warning("cannot read the schedules", metadata: ["error": "\(error)"])
          }
          return
        }
        for schedule in schedules where !schedule.paused && schedule.nextMs <= nowMs {
          self.fire(schedule, defaults: defaults)
        }
      }
  }

  private func fire(_ schedule: ScheduleRecord, defaults: Planner.Defaults) {
    let name = schedule.name
    guard let next = (try? Recurrence(schedule.every))?.next(dueMs: schedule.nextMs, nowMs: nowMs) else {
      return logger.error(
        "a schedule's recurrence has no next run; pause or remove it",
        metadata: ["schedule": "\(name)", "every": "\(schedule.every)"])
    }
    offLoop { () -> NewJob in
      var spec = try JobSpec(jsonUTF8Data: schedule.spec, options: WireCodec.decodingOptions)
      // A run is one job; its sources are already incremental (planned with `every`).
      spec.every = ""
      return try Planner.plan(spec, submittedBy: "schedule:\(name)", defaults: defaults, schedule: name)
    }
    .assumeIsolated().whenComplete { result in
      switch result {
      case .success(let job):
        self.storeJob(job, op: .fire(schedule: name, dueMs: schedule.nextMs, nextMs: next, run: job)) { stored in
          switch stored {
          case .success(let (jobID, count)):
            self.schedulesBackoffMs = 0
            self.logger.info(
              "schedule run started", metadata: ["schedule": "\(name)", "job": "\(jobID)", "tasks": "\(count)"])
            self.finishIfEnded(jobID)
          case .failure(let error):
            // Tried again after a pause that doubles to a minute, not every second (a
            // tester's full disk logged a warning and an error a second).
            self.schedulesBackoffMs = min(max(self.schedulesBackoffMs * 2, 1_000), 60_000)
            self.schedulesRetryAtMs = self.monotonicMs + self.schedulesBackoffMs
            self.logger.warning(
              "cannot start a schedule's run",
              metadata: [
                "schedule": "\(name)", "error": "\(error)", "retry_in_ms": "\(self.schedulesBackoffMs)",
              ])
          }
        }
      case .failure(let error) where Self.isStopping(error):
        // Not the spec's fault (a fenced coordinator, stopping, told the operator to pause
        // or remove a healthy schedule; found by a tester): the active coordinator fires it.
        self.logger.notice(
          "a schedule's run was not started: this coordinator is stopping", metadata: ["schedule": "\(name)"])
      case .failure(let error):
        // The spec was valid when the schedule was made; a newer Haat may refuse it.
        self.logger.error(
          "a schedule's spec no longer plans; pause or remove it",
          metadata: ["schedule": "\(name)", "error": "\(error)"])
      }
      self.outbox.flush()
    }
  }

  /// Whether planning failed because the coordinator is stopping (its thread pool is shut
  /// down), not because of the spec.
  static func isStopping(_ error: any Error) -> Bool { error is NIOThreadPoolError.ThreadPoolInactive }

  func listSchedules(_ request: Haat_V1_ListSchedules, id: String, from connection: Connection) {
    let store = self.store
    let limit = Paging.limit(request.limit, default: 1_000)
    let after = request.after
    let maxLineBytes = connection.maxLineBytes
    onStore { try await store.schedules() }
      .assumeIsolated().whenComplete { result in
        switch result {
        case .success(let all):
          // By name in byte order, from the one after the cursor (the name it names need not
          // still exist).
          let sorted = all.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
          let rest = after.isEmpty ? sorted[...] : sorted.drop { !after.utf8.lexicographicallyPrecedes($0.name.utf8) }
          let schedules = rest.prefix(limit).map { record in
            var schedule = Haat_V1_Schedule()
            schedule.name = record.name
            schedule.every = record.every
            schedule.nextMs = record.nextMs
            schedule.paused = record.paused
            schedule.runs = UInt32(clamping: record.runs)
            schedule.lastJob = record.lastJob?.description ?? ""
            schedule.createdBy = record.createdBy
            schedule.createdMs = record.createdMs
            return schedule
          }
          var list = Haat_V1_ScheduleList()
          // The cursor is the page's last name, known only once the page is cut: room for the
          // longest, escaped (a byte may take three). A page that ended on a long name was
          // over the line, and the whole listing failed.
          list.next = String(repeating: "x", count: 3 * (schedules.map(\.name.utf8.count).max() ?? 0))
          let fits = Paging.fitting(schedules, beside: list, maxLineBytes: maxLineBytes)
          list.next = ""
          list.schedules = Array(schedules.prefix(max(fits, 1)))
          if list.schedules.count < rest.count, let last = list.schedules.last { list.next = last.name }
          self.outbox.reply(connection, to: id, .scheduleList(list))
        case .failure(let error):
          self.outbox.replyError(connection, to: id, HaatError(.unavailable, "cannot read the schedules: \(error)"))
        }
        self.outbox.flush()
      }
  }

  func updateSchedule(_ request: Haat_V1_UpdateSchedule, id: String, from connection: Connection) {
    guard let action = ScheduleAction(rawValue: request.action) else {
      return outbox.replyError(
        connection, to: id,
        HaatError(.badRequest, "unknown action \"\(request.action)\"; use pause, resume or remove", field: "action"))
    }
    enqueue(.updateSchedule(request.name, action)) { result in
      switch result {
      case .scheduleUpdated(true):
        self.logger.notice(
          "schedule updated",
          metadata: ["schedule": "\(request.name)", "action": "\(action)", "by": "\(connection.name)"])
        var updated = Haat_V1_ScheduleUpdated()
        updated.name = request.name
        updated.action = action.rawValue
        self.outbox.reply(connection, to: id, .scheduleUpdated(updated))
      case .scheduleUpdated(false):
        self.outbox.replyError(
          connection, to: id, HaatError(.notFound, "no schedule named \"\(request.name)\"", field: "name"))
      case .failed(let error):
        self.outbox.replyError(connection, to: id, error)
      default:
        self.outbox.replyError(connection, to: id, HaatError(.internal, "unexpected store result for a schedule"))
      }
    }
  }

  /// A schedule's cumulative report: every finished run's task results reduced as one job.
  /// Runs read only what is new since the last, plus the lookback window a platform still
  /// revises, whose figures replace the earlier runs' (`ReportKernel.overlay`): so this is
  /// the report of one run over the whole time the schedule has covered.
  func getScheduleReport(_ name: String, id: String, from connection: Connection) {
    let store = self.store
    let nowMs = self.nowMs
    let maxLineBytes = connection.maxLineBytes
    let gone = connection.gone
    read(
      connection, id: id,
      { () async throws -> [ByteBuffer] in
        // The schedule as it is now: a removed one has no report, and one made again (or
        // replaced) under the name starts afresh; runs before it belong to another.
        guard let schedule = try await store.schedules().first(where: { $0.name == name }) else {
          throw HaatError(.notFound, "no schedule named \"\(name)\"", field: "name")
        }
        var runs = try await store.finishedRuns(ofSchedule: name)[...]
        if let first = schedule.firstJob {
          // Its first run under its present making, as its bookmarks count them.
          runs = runs.drop { $0 < first }
        } else {
          // A schedule from before the first run was kept: by creation time. Runs are in id
          // order, and ids in creation order: the first of this schedule's found by halves,
          // reading a few job records rather than every run's.
          var (low, high) = (runs.startIndex, runs.endIndex)
          while low < high {
            let middle = (low + high) / 2
            let created = try await store.job(runs[middle], tasks: false, nowMs: nowMs)?.createdMs ?? .min
            if created < schedule.createdMs { low = middle + 1 } else { high = middle }
          }
          runs = runs[low...]
        }
        // The job shown is the newest run that was not cancelled (a cancelled run has no
        // report of its own), and a cancelled run's tasks that never ran are no source
        // missing: they said "0 of 1 sources" beside the records the runs did read.
        var record: JobRecord?
        for run in runs.reversed() {
          guard let read = try await store.job(run, tasks: false, nowMs: nowMs) else { continue }
          if record == nil || record?.state == .cancelled { record = read }
          if read.state != .cancelled { break }
        }
        guard var record else {
          throw HaatError(.notFound, "schedule \"\(name)\" has no finished run", field: "name")
        }
        var outputs: [[TaskOutput]] = []
        for run in runs {
          guard !gone.isSet else { throw SessionClosed() }
          outputs.append(try await store.outputs(of: run).filter { $0.state != .cancelled })
        }
        let outcome = try JobReducer.reduce(record, runs: outputs, cancelled: false)
        record.name = name
        return try Self.resultLines(
          record, report: outcome.report, replyTo: id, maxLineBytes: maxLineBytes, gone: gone)
      }
    ) { lines in
      self.outbox.sendInTurn(lines[...], to: connection)
    }
  }
}
