import HaatCore
import HaatProtocol
import NIOCore

/// Where each authenticated message goes.
extension CoordinatorCore {
  /// Handles the messages one read brought from an authenticated connection, then sends
  /// the replies they made.
  func receive(_ envelopes: [Envelope], from connection: Connection) {
    let now = self.now
    // A worker that fell silent takes tasks again on any line (docs/protocol.md §7), so its
    // line wakes the claims a heartbeat would: a ping or a log alone left it idle until
    // something else asked for claims. Looked up only past the bound, not on every read.
    let silentBound = UInt64(config.heartbeatMs) * UInt64(Defaults.missedBeatsForLost) * 1_000_000
    let wasSilent = now &- connection.lastHeard > silentBound && !takesWork(connection, now: now)
    connection.lastHeard = now
    // A session closed meanwhile (for its unread replies, say) has the rest of its
    // requests dropped, not answered into the void.
    for envelope in envelopes {
      guard connection.open else { break }
      receive(envelope, from: connection)
    }
    if wasSilent && workerConnections[connection.name] === connection && takesWork(connection, now: now) {
      for pool in Pool.allCases { markWork(pool) }
    }
    outbox.flush()
  }

  /// Handles one message from an authenticated connection (its role is already checked).
  func receive(_ envelope: Envelope, from connection: Connection) {
    loop.preconditionInEventLoop()
    guard let body = envelope.body else { return }
    let id = envelope.id
    switch body {
    case .credit(let credit): receiveCredit(credit, from: connection)
    case .complete(let complete): receiveComplete(complete, id: id, from: connection)
    case .fail(let fail): receiveFail(fail, id: id, from: connection)
    case .log(let line): receiveLog(line, from: connection)
    case .rateRequest(let request): receiveRateRequest(request, id: id, from: connection)
    case .ratePause(let pause): receiveRatePause(pause, from: connection)
    case .drain:
      connection.draining = true
      workers[connection.name]?.draining = true
      logger.info("worker is draining", metadata: ["worker": "\(connection.name)"])
    case .submit(let submit):
      guard submit.part > 0 else { return receiveSubmit(submit.spec, id: id, from: connection) }
      let held = connection.specParts.bytes
      let room = config.session.stagedSpecBytesTotal - (specPartBytes - held)
      defer { specPartBytes += connection.specParts.bytes - held }
      switch connection.specParts.receive(submit, room: room) {
      case .kept:
        var accepted = Haat_V1_Accepted()
        accepted.part = submit.part
        outbox.reply(connection, to: id, .accepted(accepted))
      case .whole(let spec):
        receiveSubmit(spec, id: id, from: connection)
      case .refused(let error):
        outbox.replyError(connection, to: id, error)
      }
    case .getJob(let request): getJob(request, id: id, from: connection)
    case .listJobs(let request): listJobs(request, id: id, from: connection)
    case .watch(let request): watch(request.job, id: id, from: connection)
    case .getResult(let request): getResult(request.job, id: id, from: connection)
    case .cancel(let request): cancel(request.job, id: id, from: connection)
    case .listWorkers: outbox.reply(connection, to: id, .workerList(workerList()))
    case .tailLogs(let request): tailLogs(request, id: id, from: connection)
    case .listDead(let request): listDead(request, id: id, from: connection)
    case .retryDead(let request): updateDead(request.tasks, job: request.job, retry: true, id: id, from: connection)
    case .discardDead(let request): updateDead(request.tasks, job: request.job, retry: false, id: id, from: connection)
    case .ping: outbox.reply(connection, to: id, .pong(.with { $0.atMs = nowMs }))
    case .listSchedules(let request): listSchedules(request, id: id, from: connection)
    case .updateSchedule(let request): updateSchedule(request, id: id, from: connection)
    case .getScheduleReport(let request): getScheduleReport(request.name, id: id, from: connection)
    case .unpause(let request): unpause(request.key, id: id, from: connection)
    case .pruneJobs(let request):
      prune(endedBeforeMs: request.endedBeforeMs) { result in
        switch result {
        case .success(let (jobs, tasks)):
          self.logger.notice(
            "jobs pruned", metadata: ["jobs": "\(jobs)", "tasks": "\(tasks)", "by": "\(connection.name)"])
          self.outbox.reply(
            connection, to: id,
            .pruned(
              .with {
                $0.jobs = UInt32(clamping: jobs)
                $0.tasks = UInt64(tasks)
              }))
        case .failure(let error):
          self.outbox.replyError(connection, to: id, error)
        }
      }
    default:
      outbox.replyError(
        connection, to: id, HaatError(.unsupported, "\(body.wireName) is not a request the coordinator takes"))
    }
  }

  /// Runs a store read and hands the value back on the loop; a failed read is answered
  /// with the error. `fetch` runs off the loop: shaping what it read (building and
  /// encoding big replies) belongs in it too.
  func read<T: Sendable>(
    _ connection: Connection, id: String, _ fetch: @escaping @Sendable () async throws -> T,
    then body: @escaping (T) -> Void
  ) {
    guard connection.readsInFlight < config.session.readsInFlight else {
      return outbox.replyError(
        connection, to: id,
        HaatError(
          .busy,
          "this session has \(connection.readsInFlight) requests in flight, the most it may have; wait for their replies"
        ))
    }
    connection.readsInFlight += 1
    let gone = connection.gone
    onStore { () async throws -> T in
      // Waiting its turn, the session may have gone: nobody to answer.
      guard !gone.isSet else { throw SessionClosed() }
      return try await fetch()
    }.assumeIsolated().whenComplete { result in
      connection.readsInFlight -= 1
      switch result {
      case .failure(is SessionClosed): return
      case .success(let value): body(value)
      case .failure(let error as HaatError): self.outbox.replyError(connection, to: id, error)
      case .failure(let error): self.outbox.replyError(connection, to: id, HaatError(.unavailable, "\(error)"))
      }
      self.outbox.flush()
    }
  }
}

/// A store read given up because its session closed first.
struct SessionClosed: Error {}
