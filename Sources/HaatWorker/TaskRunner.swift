import Foundation
import HaatAnalytics
import HaatCore
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
  let credentials: [String: PlatformCredential]
  let maxRecordBytes: Int
  let maxRowErrors = 20

  func run(_ spec: TaskSpec, progress: TaskProgress, onFetchError: @Sendable (FetchError) -> Void) -> TaskOutcome {
    // Durations on the monotonic clock: a wall-clock step does not change them.
    let clock = ContinuousClock()
    let started = clock.now
    var stats = TaskStats()
    func finish() -> TaskStats {
      let elapsed = clock.now - started
      stats.durationMs = UInt64(
        max(0, elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000))
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

    var credential: BoundCredential?
    if !source.credential.isEmpty {
      switch bind(credential: source.credential, for: source.url) {
      case .success(let bound): credential = bound
      case .failure(let error):
        return .fail(
          ErrorInfo(code: "credential", message: error.message), retryable: false, retryAfterMs: 0, finish())
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
        FetchRequest(url: source.url, credential: credential), cancel: progress.cancel,
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
            try reader?.feed(chunk, accepting: { builder.add($0) })
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
      try reader?.finish(accepting: { builder.add($0) })
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

  /// The named credential, read and bound to its hosts, if this worker has it and may send
  /// it to `url`; otherwise why not. Nothing is fetched before this says yes.
  func bind(credential name: String, for url: String) -> Result<BoundCredential, HaatError> {
    guard let configured = credentials[name] else {
      let known = credentials.keys.sorted()
      return .failure(
        HaatError(
          .badRequest,
          "this worker has no credential named \"\(name)\" (it has \(known.isEmpty ? "none" : known.joined(separator: ", "))); start it with --credential \(name)=env:VARIABLE@host"
        ))
    }
    let bound: BoundCredential
    switch configured.bind() {
    case .success(let value): bound = value
    case .failure(let error): return .failure(error)
    }
    guard let target = FetchURL(url), bound.allows(target) else {
      let scheme = FetchURL(url)?.scheme ?? ""
      let host = FetchURL(url)?.authority ?? "an unreadable URL"
      let plain = scheme == "http" ? " over plain HTTP" : ""
      return .failure(
        HaatError(
          .forbidden,
          "the credential \(name) may be sent only to \(bound.hostList); refusing to send it to \(scheme)://\(host)\(plain)"
        ))
    }
    return .success(bound)
  }
}
