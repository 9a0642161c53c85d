import Foundation
import HaatAnalytics
import HaatFetch
import HaatProtocol
import HaatRecords
import Synchronization

/// How far a running task got, readable from any thread (for heartbeats).
final class TaskProgress: Sendable {
  let rows = Atomic<UInt64>(0)
  let bytes = Atomic<UInt64>(0)
  let cancel = CancellationFlag()
}

/// What a task attempt produced.
enum TaskOutcome: Sendable {
  case complete(Partial, TaskStats)
  case fail(ErrorInfo, retryable: Bool, retryAfterMs: UInt32, TaskStats)
}

/// Runs one task: fetch the export with libcurl, parse it as it streams, and fold every
/// post into the partials. Memory stays flat whatever the export's size.
struct TaskRunner: Sendable {
  let fetcher: Fetcher
  let maxRecordBytes: Int
  let maxRowErrors = 20

  func run(_ spec: TaskSpec, progress: TaskProgress, onFetchError: @Sendable (FetchError) -> Void) -> TaskOutcome {
    let started = Date()
    var stats = TaskStats()
    func finish() -> TaskStats {
      stats.durationMs = UInt64(max(0, Date().timeIntervalSince(started) * 1000))
      return stats
    }
    let source = spec.source
    switch source.kind {
    case "noop":
      return .complete(Partial(), finish())
    case "posts", "":
      break
    default:
      return .fail(
        ErrorInfo(code: "unsupported", message: "this worker cannot run \(source.kind) sources"), retryable: false,
        retryAfterMs: 0, finish())
    }

    var headers: [String] = []
    if !source.credential.isEmpty {
      switch Self.resolve(credential: source.credential) {
      case .value(let secret): headers.append("Authorization: Bearer \(secret)")
      case .problem(let message):
        return .fail(ErrorInfo(code: "credential", message: message), retryable: false, retryAfterMs: 0, finish())
      }
    }

    let reports = spec.reports.compactMap(ReportName.init(rawValue:))
    var builder = PartialBuilder(reports: reports)
    var reader: PostsReader?
    var format =
      ExportFormat(rawValue: source.format) ?? ExportFormat(path: URL(string: source.url)?.path ?? source.url)
    func makeReader(_ format: ExportFormat) -> PostsReader {
      PostsReader(
        format: format, defaultPlatform: source.platform, defaultAccount: source.account,
        maxRecordBytes: maxRecordBytes, maxRowProblems: maxRowErrors)
    }
    do {
      let response = try fetcher.fetch(
        FetchRequest(url: source.url, headers: headers), cancel: progress.cancel,
        onStart: { _, contentType in
          if format == nil, let contentType { format = ExportFormat(contentType: contentType) }
          guard let format else {
            throw FetchError(
              .sink, "cannot tell the export's format from its URL or Content-Type; set the source's format",
              retryable: false)
          }
          reader = makeReader(format)
        },
        onBody: { chunk in
          do throws(ExportError) {
            try reader?.feed(chunk) { builder.add($0) }
          } catch {
            throw FetchError(.sink, error.message, retryable: false)
          }
          progress.bytes.add(UInt64(chunk.count), ordering: .relaxed)
          progress.rows.store(reader?.posts ?? 0, ordering: .relaxed)
        })
      if reader == nil, let format {
        // An empty body never reached onStart.
        reader = makeReader(format)
      }
      try reader?.finish { builder.add($0) }
      stats.bytes = response.bodyBytes
      stats.pages = 1
      stats.httpStatuses[String(response.status)] = 1
    } catch let error as FetchError {
      onFetchError(error)
      stats.bytes = progress.bytes.load(ordering: .relaxed)
      if let status = error.status { stats.httpStatuses[String(status)] = 1 }
      let code = error.kind == .sink ? "bad_export" : error.code
      return .fail(
        ErrorInfo(code: code, message: error.message), retryable: error.retryable,
        retryAfterMs: UInt32(clamping: error.retryAfterMs ?? 0), finish())
    } catch let error as ExportError {
      return .fail(ErrorInfo(code: "bad_export", message: error.message), retryable: false, retryAfterMs: 0, finish())
    } catch {
      return .fail(ErrorInfo(code: "internal", message: "\(error)"), retryable: true, retryAfterMs: 0, finish())
    }
    if let reader {
      stats.rows = reader.posts
      stats.badRows = reader.badRows
      stats.rowErrors = reader.problems.map { problem in
        var error = RowError()
        error.row = problem.row
        error.column = problem.column
        error.message = problem.reason.rawValue
        return error
      }
    }
    return .complete(builder.partial, finish())
  }

  /// Resolves `env:NAME` or `file:/path` on this machine. The value never leaves the worker
  /// except in the request's Authorization header.
  static func resolve(credential reference: String) -> CredentialResolution {
    if reference.hasPrefix("env:") {
      let name = String(reference.dropFirst(4))
      guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
        return .problem("the credential \(reference) is not set on this worker")
      }
      return .value(value)
    }
    if reference.hasPrefix("file:") {
      let path = String(reference.dropFirst(5))
      guard let data = FileManager.default.contents(atPath: path),
        let value = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
        !value.isEmpty
      else {
        return .problem("the credential file \(path) cannot be read on this worker")
      }
      return .value(value)
    }
    return .problem("a credential must be env:NAME or file:/path")
  }
}

/// A credential reference resolved on the worker: its value, or why there is none.
enum CredentialResolution: Sendable {
  case value(String)
  case problem(String)
}
