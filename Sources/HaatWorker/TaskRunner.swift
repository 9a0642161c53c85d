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
  /// `split`: a plan task's ranges, to add to the job as tasks.
  case complete(Partial, TaskStats, bookmark: String, split: Split? = nil)
  case fail(ErrorInfo, retryable: Bool, retryAfterMs: UInt32, TaskStats)
}

/// Runs one task: the source's connector says what to fetch, page by page; libcurl fetches
/// it; the connector turns the bytes into canonical records as they stream, and every
/// record is folded into the partials. Memory stays flat whatever the export's size. The
/// same loop drives every connector (DESIGN.md §2 "Extension points").
struct TaskRunner: Sendable {
  let fetcher: Fetcher
  let credentials: [String: PlatformCredential]
  /// Hosts API kinds may reach besides their platform's own (`--allow-host`).
  let allowedHosts: [BoundCredential.HostRule]
  let limits: ReadLimits
  let gate: RateGate

  func run(
    _ spec: TaskSpec, task: String = "", attempt: UInt32 = 0, progress: TaskProgress,
    onFetchError: @Sendable (FetchError) -> Void
  ) -> TaskOutcome {
    guard let kind = SourceKind(named: spec.source.kind) else {
      return .fail(
        ErrorInfo(code: "unsupported", message: "this worker cannot run \(spec.source.kind) sources"),
        retryable: false, retryAfterMs: 0, TaskStats())
    }
    // Its error messages come with secrets hidden (`drive`'s `hidden`).
    let outcome = drive(
      kind.connector, spec, task: task, attempt: attempt, progress: progress, onFetchError: onFetchError)
    if !spec.rateKey.isEmpty, case .fail(let error, true, let retryAfterMs, _) = outcome,
      Self.isThrottling(error.code)
    {
      // The platform's limit is the credential's, not this worker's: pause it for all, as
      // long as the platform said, else a second (docs/connectors.md "Rate governor"; Meta's
      // throttling codes come with their minute already). It was a minute for any 429
      // without a readable Retry-After (a tester).
      gate.pause(key: spec.rateKey, ms: retryAfterMs > 0 ? UInt64(retryAfterMs) : 1_000, reason: error.message)
    }
    return outcome
  }

  private func drive<C: Connector>(
    _ type: C.Type, _ spec: TaskSpec, task: String, attempt: UInt32, progress: TaskProgress,
    onFetchError: @Sendable (FetchError) -> Void
  ) -> TaskOutcome {
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
    let reachable = hosts(C.self)
    var builder = PartialBuilder(
      reports: spec.reports,
      context: ReportContext(timezone: spec.source.timezone, businessHours: spec.source.businessHours))
    var connector = C(task: spec, limits: limits)
    // Each record, parsed once, goes to every report that reads its type.
    func emit(_ record: CanonicalRecord) -> Bool { builder.add(record) }
    func emit(post: PostRecord) -> Bool { builder.add(post: post) }
    func counted() {
      let counts = connector.counts
      stats.rows = counts.records
      stats.badRows = counts.badRecords
      stats.rowErrors = counts.problems.map { problem in
        var error = RowError()
        error.row = problem.row
        error.column = problem.column
        error.message = problem.reason.rawValue
        error.note = problem.note
        return error
      }
    }
    // The secret values of every URL asked, hidden in any message that quotes a server (a
    // next page's `signature=`, a redirect target's `access_token=`: found by a tester).
    var secrets = Set(URLRedaction.secretValues(of: source.url))
    func hidden(_ message: String) -> String {
      let text = URLRedaction.redactText(message, values: Array(secrets))
      return credentials[source.credential]?.redacting(text) ?? text
    }
    do {
      var next = try connector.firstRequest()
      var requests = 0
      var waits = 0
      // The pages read (hashes of URL, method and range): a platform whose next page is one
      // already read loops, and ran to the page bound, hours of quota (a tester).
      var read = Set<Int>()
      func key(_ page: PageRequest) -> Int {
        var hasher = Hasher()
        hasher.combine(page.url)
        hasher.combine(page.post)
        hasher.combine(page.range)
        return hasher.finalize()
      }
      /// A platform API source throttled: hold off as the platform says and ask for the
      /// same page again, rather than start the task over and re-read its pages. (An export
      /// file is one request: its task is retried by the coordinator instead.) False, having
      /// waited for nothing, when this failure is not one to wait out here.
      func heldOff(_ failure: ExportError) throws -> Bool {
        let wait = failure.retryAfterMs.map { max($0, 100) } ?? 1_000
        guard !spec.rateKey.isEmpty, failure.retryable, Self.isThrottling(failure.code),
          waits < Self.maxThrottleWaits,
          wait <= Self.maxThrottleWaitMs
        else { return false }
        waits += 1
        // The reason is shown in `haat workers`: `failure` was hidden before it came here.
        gate.pause(key: spec.rateKey, ms: wait, reason: failure.message)
        try sleep(ms: wait, cancel: progress.cancel)
        return true
      }
      while let page = next {
        guard requests < limits.maxPages else {
          // A byte range asks a page at a time too: a server that answers a byte per 206.
          throw ExportError(
            spec.hasRange || spec.splitPlan
              ? "the byte range is not read after \(limits.maxPages) requests (does the server answer Range requests with only a few bytes each?); stopping; read the export whole (split_bytes 0)"
              : "the source is still offering pages after \(limits.maxPages) requests; stopping")
        }
        requests += 1
        if page.waitMs > 0 {
          // A job the platform is still running: poll again later (the lease holds meanwhile).
          try sleep(ms: page.waitMs, cancel: progress.cancel)
        }
        secrets.formUnion(URLRedaction.secretValues(of: page.url))
        if let refusal = reach(C.self, page.url) {
          return .fail(ErrorInfo(code: "forbidden", message: refusal), retryable: false, retryAfterMs: 0, finish())
        }
        var credential: BoundCredential?
        if !source.credential.isEmpty {
          // Bound per page: a next page on a host the credential is not bound to fails the
          // task, saying so, rather than go without the secret (the platform would answer
          // with an authentication error that points at the token instead).
          switch bind(credential: source.credential, for: page.url, as: C.auth) {
          case .success(let bound): credential = bound
          case .failure(let error):
            let which = requests > 1 ? "the next page the platform named: " : ""
            return .fail(
              ErrorInfo(code: "credential", message: which + error.message), retryable: false, retryAfterMs: 0,
              finish())
          }
        }
        if !spec.rateKey.isEmpty {
          // Every request under the credential's key waits for its cluster-wide slot.
          try gate.acquire(
            key: spec.rateKey, requestsPerSecond: spec.requestsPerSecond, task: task, attempt: attempt,
            cancel: progress.cancel)
        }
        // A connector's own error, kept whole (its code and retry advice) across the fetcher.
        var sinkError: ExportError?
        let response: FetchResponse
        do {
          response = try fetcher.fetch(
            FetchRequest(
              url: page.url, headers: page.headers, range: page.range, post: page.post, credential: credential,
              hosts: reachable),
            cancel: progress.cancel,
            onStart: { status, contentType in
              do throws(ExportError) {
                try connector.pageStarted(status: status, contentType: contentType)
              } catch {
                sinkError = error
                throw FetchError(.sink, error.message, retryable: false)
              }
            },
            onBody: { chunk in
              do throws(ExportError) {
                try connector.feed(chunk, post: emit(post:), emit: emit)
              } catch {
                sinkError = error
                throw FetchError(.sink, error.message, retryable: false)
              }
              progress.bytes.add(UInt64(chunk.count), ordering: .relaxed)
              progress.rows.store(connector.counts.records, ordering: .relaxed)
            })
        } catch {
          if let sinkError { throw sinkError }
          secrets.formUnion(error.secrets)
          guard let status = error.status, [.httpClient, .httpServer, .throttled].contains(error.kind) else {
            throw error
          }
          // The platform's error object may say more than the status (or ask for a retry
          // without something it refuses).
          stats.httpStatuses[String(status), default: 0] += 1
          let failed = PageResponse(
            status: status, contentType: nil, headers: error.headers.map { ($0.name, $0.value) })
          var failure: ExportError
          do throws(ExportError) {
            if let instead = try connector.pageFailed(failed, body: error.body) {
              next = instead
              continue
            }
            onFetchError(error)
            failure = ExportError(
              error.message, code: error.code, retryable: error.retryable, retryAfterMs: error.retryAfterMs)
          } catch {
            failure = error
          }
          failure.message = hidden(failure.message)
          guard try heldOff(failure) else { throw failure }
          next = page
          continue
        }
        stats.pages += 1
        stats.bytes += response.bodyBytes
        stats.httpStatuses[String(response.status), default: 0] += 1
        let before = connector.counts
        do throws(ExportError) {
          next = try connector.pageEnded(
            PageResponse(
              status: response.status, contentType: response.contentType,
              headers: response.headers.map { ($0.name, $0.value) }),
            post: emit(post:), emit: emit)
          read.insert(key(page))
          // A poll (a wait before it) asks the same URL again by design.
          if let following = next, following.waitMs == 0, read.contains(key(following)) {
            throw ExportError(
              "the platform's next page is one this task already read (\(URLRedaction.redact(following.url))): its paging loops; stopping"
            )
          }
        } catch {
          // Throttling said in a 200's body (TikTok's 40100) is waited out as a 429 is,
          // when the page gave nothing yet (it used to cost the task an attempt).
          let untouched = connector.counts.records == before.records && connector.counts.badRecords == before.badRecords
          guard untouched, try heldOff(error) else { throw error }
          next = page
          continue
        }
      }
    } catch let error as FetchError {
      onFetchError(error)
      stats.bytes = progress.bytes.load(ordering: .relaxed)
      if let status = error.status { stats.httpStatuses[String(status), default: 0] += 1 }
      let code = error.kind == .sink ? "bad_export" : error.code
      return .fail(
        ErrorInfo(code: code, message: hidden(error.message)), retryable: error.retryable,
        retryAfterMs: UInt32(clamping: error.retryAfterMs ?? 0), finish())
    } catch let error as ExportError {
      stats.bytes = max(stats.bytes, progress.bytes.load(ordering: .relaxed))
      return .fail(
        ErrorInfo(code: error.code, message: hidden(error.message)), retryable: error.retryable,
        retryAfterMs: UInt32(clamping: error.retryAfterMs ?? 0), finish())
    } catch {
      return .fail(
        ErrorInfo(code: "internal", message: hidden("\(error)")), retryable: true, retryAfterMs: 0, finish())
    }
    counted()
    if let quotes = connector.rangeQuotes { stats.rangeQuotes = quotes }
    // Only a task that read all its days may say so: they replace an earlier run's.
    if let coverage = connector.coverage { builder.cover(coverage) }
    builder.settle()
    return .complete(builder.partial, finish(), bookmark: connector.bookmark, split: connector.split)
  }

  /// How often, and how long at most, a task waits out the platform's throttling of one of
  /// its pages before it gives up (and is retried later, from the start).
  static let maxThrottleWaits = 5
  static let maxThrottleWaitMs: UInt64 = 60_000

  /// The task error codes that mean the platform throttled a request.
  static func isThrottling(_ code: String) -> Bool { code == "throttled" || code == "http_429" }

  /// Sleeps in slices, so a cancelled task does not sleep on.
  func sleep(ms: UInt64, cancel: CancellationFlag) throws(ExportError) {
    var left = ms
    while left > 0 {
      if cancel.isCancelled { throw ExportError("cancelled while throttled", code: "cancelled", retryable: true) }
      let slice = min(left, 100)
      Thread.sleep(forTimeInterval: Double(slice) / 1000)
      left -= slice
    }
  }

  /// The hosts a request of kind `C` may go to, its redirects included: its platform's and
  /// those the operator allows; nil for a kind that names none (an export file).
  func hosts<C: Connector>(_ type: C.Type) -> [BoundCredential.HostRule]? {
    C.hosts.isEmpty ? nil : C.hosts.compactMap(BoundCredential.HostRule.init) + allowedHosts
  }

  /// Why a request of kind `C` may not go to `url`, or nil when it may: an API kind goes
  /// only to its platform's hosts and those the operator allows. Checked on every page
  /// (a `next` link is the platform's word, not the spec's), before anything connects.
  func reach<C: Connector>(_ type: C.Type, _ url: String) -> String? {
    guard let rules = hosts(C.self) else { return nil }
    guard let target = FetchURL(url) else { return "the URL cannot be read: refusing to fetch it" }
    if rules.contains(where: { $0.matches(target) }) { return nil }
    let allowed = rules.map(\.description).joined(separator: ", ")
    return
      "\(C.kind) sources reach only \(allowed) (add hosts with haat worker --allow-host); refusing \(target.scheme)://\(target.authority)"
  }

  /// The named credential, read and bound to its hosts, if this worker has it and may send
  /// it to `url`; otherwise why not. Nothing is fetched before this says yes.
  func bind(credential name: String, for url: String, as scheme: AuthScheme = .bearer) -> Result<
    BoundCredential, HaatError
  > {
    guard let configured = credentials[name] else {
      let known = credentials.keys.sorted()
      return .failure(
        HaatError(
          .badRequest,
          "this worker has no credential named \"\(name)\" (it has \(known.isEmpty ? "none" : known.joined(separator: ", "))); start it with --credential \(name)=env:VARIABLE@host"
        ))
    }
    let bound: BoundCredential
    switch configured.bind(as: scheme) {
    case .success(let value): bound = value
    case .failure(let error): return .failure(error)
    }
    guard let target = FetchURL(url), bound.allows(target) else {
      let scheme = FetchURL(url)?.scheme ?? ""
      let host = FetchURL(url)?.authority ?? "an unreadable URL"
      // "Over plain HTTP" only when that is what stands in the way: the host would do over https.
      let secure = FetchURL(url.replacingOccurrences(of: "http://", with: "https://", options: .anchored))
      let plain = scheme == "http" && secure.map(bound.allows) == true ? " over plain HTTP" : ""
      return .failure(
        HaatError(
          .forbidden,
          "the credential \(name) may be sent only to \(bound.hostList); refusing to send it to \(scheme)://\(host)\(plain)"
        ))
    }
    return .success(bound)
  }
}
