import HaatCore

extension Envelope {
  /// An envelope with this body and, for replies, the request id it answers.
  public init(id: String = "", replyTo: String = "", _ body: Envelope.OneOf_Body) {
    self.init()
    self.id = id
    self.replyTo = replyTo
    self.body = body
  }

  /// An `error` reply.
  public static func error(_ error: HaatError, replyTo: String = "") -> Envelope {
    Envelope(replyTo: replyTo, .error(WireError(error)))
  }
}

extension WireError {
  public init(_ error: HaatError) {
    self.init()
    code = error.code.rawValue
    message = error.message
    field = error.field
  }

  /// The error as a typed value; an unknown code becomes `internal` with the code kept in
  /// the message.
  public var haatError: HaatError {
    if let known = ErrorCode(rawValue: code) {
      return HaatError(known, message, field: field)
    }
    return HaatError(.internal, "\(code): \(message)", field: field)
  }
}

extension ErrorInfo {
  public init(code: String, message: String) {
    self.init()
    self.code = code
    self.message = message
  }

  public init(_ error: TaskError) {
    self.init(code: error.code, message: error.message)
  }

  public var taskError: TaskError { TaskError(code: code, message: message) }
}

extension Envelope.OneOf_Body {
  /// The request kind for role checks, or nil for messages that are not requests.
  public var requestKind: RequestKind? {
    switch self {
    case .credit: return .credit
    case .heartbeat: return .heartbeat
    case .complete: return .complete
    case .fail: return .fail
    case .log: return .log
    case .drain: return .drain
    case .rateRequest: return .rateRequest
    case .ratePause: return .ratePause
    case .submit: return .submit
    case .cancel: return .cancel
    case .getJob: return .getJob
    case .listJobs: return .listJobs
    case .watch: return .watch
    case .getResult: return .getResult
    case .listWorkers: return .listWorkers
    case .tailLogs: return .tailLogs
    case .listDead: return .listDead
    case .retryDead: return .retryDead
    case .discardDead: return .discardDead
    case .pruneJobs: return .pruneJobs
    case .listSchedules: return .listSchedules
    case .updateSchedule: return .updateSchedule
    case .getScheduleReport: return .getScheduleReport
    case .unpause: return .unpause
    default: return nil
    }
  }

  /// The message's name on the wire, e.g. "heartbeat_ack".
  public var wireName: String {
    switch self {
    case .challenge: return "challenge"
    case .hello: return "hello"
    case .welcome: return "welcome"
    case .error: return "error"
    case .credit: return "credit"
    case .assign: return "assign"
    case .heartbeat: return "heartbeat"
    case .heartbeatAck: return "heartbeat_ack"
    case .complete: return "complete"
    case .fail: return "fail"
    case .ack: return "ack"
    case .log: return "log"
    case .drain: return "drain"
    case .shutdown: return "shutdown"
    case .listSchedules: return "list_schedules"
    case .scheduleList: return "schedule_list"
    case .updateSchedule: return "update_schedule"
    case .scheduleUpdated: return "schedule_updated"
    case .getScheduleReport: return "get_schedule_report"
    case .rateRequest: return "rate_request"
    case .rateGrant: return "rate_grant"
    case .ratePause: return "rate_pause"
    case .submit: return "submit"
    case .accepted: return "accepted"
    case .getJob: return "get_job"
    case .job: return "job"
    case .listJobs: return "list_jobs"
    case .jobList: return "job_list"
    case .watch: return "watch"
    case .jobEvent: return "job_event"
    case .getResult: return "get_result"
    case .result: return "result"
    case .cancel: return "cancel"
    case .listWorkers: return "list_workers"
    case .workerList: return "worker_list"
    case .tailLogs: return "tail_logs"
    case .streamEnd: return "stream_end"
    case .listDead: return "list_dead"
    case .deadList: return "dead_list"
    case .retryDead: return "retry_dead"
    case .discardDead: return "discard_dead"
    case .deadUpdated: return "dead_updated"
    case .ping: return "ping"
    case .pong: return "pong"
    case .pruneJobs: return "prune_jobs"
    case .pruned: return "pruned"
    case .unpause: return "unpause"
    case .unpaused: return "unpaused"
    }
  }
}
