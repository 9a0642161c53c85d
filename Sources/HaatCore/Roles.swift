/// What a token allows. A token has exactly one role.
public enum Role: String, Sendable, CaseIterable, Hashable {
  /// Runs tasks: credit, heartbeat, complete, fail, log, drain, rate_request, rate_pause.
  case worker
  /// Submits jobs and cancels them, and everything `read` may do.
  case submit
  /// Reads jobs, results, workers, logs and dead tasks.
  case read
  /// Everything a client may do, including retrying and discarding dead tasks.
  case admin
  /// Scrapes `/metrics` on the admin port (a bearer token over TLS); never a protocol peer.
  case metrics
  /// Reads the dashboard on the admin port (HTTP basic auth over TLS); never a protocol peer.
  case dashboard

  /// "a" or "an", as the role's name is read: "an admin token".
  public var article: String { self == .admin ? "an" : "a" }

  /// The kind of peer that may authenticate with this role on the protocol port; nil for
  /// the admin port's roles.
  public var peerKind: PeerKind? {
    switch self {
    case .worker: return .worker
    case .submit, .read, .admin: return .client
    case .metrics, .dashboard: return nil
    }
  }

  /// Whether a session with this role may send a request of this kind.
  public func allows(_ request: RequestKind) -> Bool {
    switch request.access {
    case .worker: return self == .worker
    case .read: return self == .read || self == .submit || self == .admin
    case .submit: return self == .submit || self == .admin
    case .admin: return self == .admin
    }
  }
}

/// The two kinds of peer named in `hello.role`.
public enum PeerKind: String, Sendable {
  case worker
  case client
}

/// Every request a peer may send after the handshake, with the access it needs.
public enum RequestKind: String, Sendable, CaseIterable {
  case credit, heartbeat, complete, fail, log, drain
  case rateRequest = "rate_request"
  case ratePause = "rate_pause"
  case submit, cancel
  case getJob = "get_job"
  case listJobs = "list_jobs"
  case watch
  case getResult = "get_result"
  case listWorkers = "list_workers"
  case tailLogs = "tail_logs"
  case listDead = "list_dead"
  case retryDead = "retry_dead"
  case discardDead = "discard_dead"
  case pruneJobs = "prune_jobs"
  case listSchedules = "list_schedules"
  case updateSchedule = "update_schedule"
  case getScheduleReport = "get_schedule_report"
  case unpause

  /// The access levels, from a worker's to an operator's.
  public enum Access: Sendable { case worker, read, submit, admin }

  public var access: Access {
    switch self {
    case .credit, .heartbeat, .complete, .fail, .log, .drain, .rateRequest, .ratePause: return .worker
    case .submit, .cancel, .updateSchedule: return .submit
    case .retryDead, .discardDead, .pruneJobs, .unpause: return .admin
    case .getJob, .listJobs, .watch, .getResult, .listWorkers, .tailLogs, .listDead, .listSchedules, .getScheduleReport:
      return .read
    }
  }
}
