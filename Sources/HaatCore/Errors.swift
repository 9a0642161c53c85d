import Foundation

/// The stable error codes of the protocol, the CLI and the logs.
public enum ErrorCode: String, Sendable, CaseIterable {
  /// A line that is not JSON, or not an Envelope. The connection stays open.
  case badFrame = "bad_frame"
  /// A line longer than the negotiated limit. The connection is closed.
  case frameTooLong = "frame_too_long"
  /// A message type the receiver does not know or does not take in this state.
  case unsupported
  /// A wrong token, MAC or role in the handshake. The connection is closed.
  case authFailed = "auth_failed"
  /// The handshake did not finish in time. The connection is closed.
  case handshakeTimeout = "handshake_timeout"
  /// No common protocol version. The connection is closed.
  case versionUnsupported = "version_unsupported"
  /// The session's role may not send this message.
  case forbidden
  /// A request with a missing or malformed field.
  case badRequest = "bad_request"
  /// A job spec that cannot run; `field` names the culprit.
  case badSpec = "bad_spec"
  /// No such job, task or worker.
  case notFound = "not_found"
  /// The job has not ended, so it has no result yet.
  case notFinished = "not_finished"
  /// A complete, fail or heartbeat for an attempt that no longer holds the lease.
  case staleAttempt = "stale_attempt"
  /// The coordinator cannot take the request now (shutting down, store full).
  case unavailable
  /// The session has too many requests or streams in flight; wait for replies and retry.
  case busy
  /// The reply would be longer than the session's line limit; ask for less.
  case tooLarge = "too_large"
  /// A sum passed 2^64 − 1: the result would be wrong, so none is made.
  case overflow
  /// A fault inside the coordinator; the message says what.
  case `internal`
}

/// An error with a stable code and a message a person can act on.
public struct HaatError: Error, Sendable, Equatable, CustomStringConvertible {
  public var code: ErrorCode
  public var message: String
  /// The offending field's path, for `bad_spec` and `bad_request`.
  public var field: String

  public init(_ code: ErrorCode, _ message: String, field: String = "") {
    self.code = code
    self.message = message
    self.field = field
  }

  public var description: String {
    field.isEmpty ? "\(code.rawValue): \(message)" : "\(code.rawValue): \(field): \(message)"
  }

  /// The system's reason for a failed file operation ("Not a directory", "Permission
  /// denied"), not Foundation's wrapper around it ("The file doesn't exist.").
  public static func systemReason(_ error: any Error) -> String {
    let posix = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error).map { $0 as NSError }
    return posix.map { String(cString: strerror(Int32($0.code))) } ?? "\(error)"
  }
}
