import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatStore
import Hummingbird
import NIOCore

/// The dashboard on the admin port: a cluster page (workers, queue, jobs with progress)
/// and a job page (its tasks and its report's tables and charts), both read-only and
/// polling a JSON API every second. The pages load nothing from elsewhere; a strict
/// Content-Security-Policy allows only their own script and style, and charts come in as
/// images, so text from exports (account names, captions) can never run as script.
enum Dashboard {
  /// What `/api/cluster` answers.
  struct Cluster: Codable {
    struct Worker: Codable {
      var id, host, state: String
      var busy, slots, leases: Int
      var done, failed, rssBytes: UInt64
      var heartbeatAgoMs: Int64
    }
    struct Queue: Codable {
      var pool: String
      var ready: Int
      var oldestSeconds: Double
    }
    struct Job: Codable {
      var id, name, state: String
      var total, done, dead, cancelled, leased, ready, scheduled: UInt32
      var createdMs: Int64
    }
    var at: Int64
    var workers: [Worker]
    var queue: [Queue]
    var jobs: [Job]
  }

  /// What `/api/jobs/ID` answers.
  struct JobPage: Codable {
    struct Task: Codable {
      var id: String
      var index: UInt32
      var source, state, worker: String
      var attempt: UInt32
      var error: String
    }
    struct Table: Codable {
      var name: String
      var columns: [String]
      var rows: [[String]]
      var numeric: [Int]
      var totalLast: Bool
      var notes: [String]
    }
    struct Chart: Codable {
      var name, svg: String
    }
    var job: Cluster.Job
    var error: String
    var tasks: [Task]
    var tasksShown: Int
    var tables: [Table]
    var charts: [Chart]
    var summary: String
  }

  static func cluster(core: CoordinatorCore) async throws -> Cluster {
    let (workers, nowMs) = try await core.loop.submit { (core.workerList().workers, core.nowMs) }.get()
    let queue = (try? await core.store.readyQueue(nowMs: nowMs)) ?? [:]
    var jobs = try await core.store.jobs(state: .running, before: nil, limit: 50, nowMs: nowMs)
    jobs += try await core.store.jobs(state: .queued, before: nil, limit: 20, nowMs: nowMs)
    let open = Set(jobs.map(\.id))
    jobs += try await core.store.jobs(state: nil, before: nil, limit: 20, nowMs: nowMs).filter { !open.contains($0.id) }
    return Cluster(
      at: nowMs,
      workers: workers.map { worker in
        Cluster.Worker(
          id: worker.id, host: worker.host, state: worker.state,
          busy: worker.pools.reduce(0) { $0 + Int($1.busy) }, slots: worker.pools.reduce(0) { $0 + Int($1.slots) },
          leases: Int(worker.leases), done: worker.tasksDone, failed: worker.tasksFailed, rssBytes: worker.rssBytes,
          heartbeatAgoMs: max(0, nowMs - worker.lastHeartbeatMs))
      },
      queue: Pool.allCases.map { pool in
        let depth = queue[pool]
        return Cluster.Queue(
          pool: pool.rawValue, ready: depth?.ready ?? 0,
          oldestSeconds: depth.map { max(0, Double(nowMs - $0.oldestReadyMs) / 1000) } ?? 0)
      },
      jobs: jobs.map(job))
  }

  static func job(_ record: JobRecord) -> Cluster.Job {
    let counts = record.counts
    return Cluster.Job(
      id: record.id.description, name: record.name, state: record.state.rawValue, total: UInt32(counts.total),
      done: UInt32(counts.done), dead: UInt32(counts.dead), cancelled: UInt32(counts.cancelled),
      leased: UInt32(counts.leased), ready: UInt32(counts.ready), scheduled: UInt32(counts.scheduled),
      createdMs: record.createdMs)
  }

  static let tasksShown = 500
  /// The most rows of a report's table, and blocks of its chart, a job page carries.
  static let rowsShown = 1_000
  static let chartBlocks = 20

  static func jobPage(_ id: JobID, core: CoordinatorCore, cache: DashboardCache) async throws -> JobPage? {
    let nowMs = try await core.loop.submit { core.nowMs }.get()
    guard let record = try await core.store.job(id, tasks: false, nowMs: nowMs) else { return nil }
    let tasks = try await core.store.tasks(of: id, after: nil, limit: tasksShown, nowMs: nowMs)
    var page = JobPage(
      job: job(record), error: record.error,
      tasks: tasks.map { task in
        JobPage.Task(
          id: task.id.description, index: UInt32(clamping: task.index), source: task.source,
          state: task.state.rawValue, worker: task.worker, attempt: task.attempt,
          error: task.lastError.map { "\($0.code): \($0.message)" } ?? "")
      }, tasksShown: tasksShown, tables: [], charts: [], summary: "")
    if record.state.isFinal {
      // A finished job's report part is made once while it stays finished as it was (its
      // state and finish time): read and drawn again every second a page was open, a big
      // report cost half a core per browser tab (found by a tester).
      let version = "\(record.state.rawValue) \(record.finishedMs)"
      let part: ReportPart?
      if let kept = await cache.finished("job \(id)", version: version) {
        part = kept
      } else {
        part = try await reportPart(id, core: core)
        if let part { await cache.keep("job \(id)", version: version, part) }
      }
      if let part { (page.tables, page.charts, page.summary) = (part.tables, part.charts, part.summary) }
    }
    return page
  }

  /// What a finished job's page shows of its report: its tables and charts, bounded, and a
  /// summary line. nil when it has no stored report.
  struct ReportPart: Sendable {
    var tables: [JobPage.Table] = []
    var charts: [JobPage.Chart] = []
    var summary = ""
  }

  static func reportPart(_ id: JobID, core: CoordinatorCore) async throws -> ReportPart? {
    guard let data = try await core.store.report(of: id), let report = try? JobReducer.storedReport(data) else {
      return nil
    }
    var part = ReportPart()
    // Bounded: the page polls this every second, and a report of 50,000 accounts drew
    // 794 MB of chart per request. The CLI gives all of it (`--format csv`, `--svg`).
    for kernel in Reports.all {
      if let table = kernel.table(of: report) {
        var notes = table.notes
        if table.rows.count > rowsShown {
          notes.append(
            "(the first \(rowsShown) of \(table.rows.count) rows; every row: haat result \(id) --format csv)")
        }
        part.tables.append(
          JobPage.Table(
            name: kernel.name, columns: table.columns, rows: Array(table.rows.prefix(rowsShown)),
            numeric: table.numeric.sorted(), totalLast: table.totalLast && table.rows.count <= rowsShown,
            notes: notes))
      }
      if let svg = kernel.svg(of: report, limit: chartBlocks) {
        part.charts.append(JobPage.Chart(name: kernel.name, svg: svg))
      }
    }
    let summary = report.summary
    part.summary =
      "\(ReportRendering.group(summary.rows)) records from \(summary.sourcesOk) of \(summary.sources) sources, "
      + "\(ReportRendering.group(summary.badRows)) bad row\(summary.badRows == 1 ? "" : "s"), "
      + "\(ReportRendering.bytes(summary.bytes)) read"
    return part
  }

  static func encoded(_ value: some Encodable) throws -> Data {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    return try encoder.encode(value)
  }

  static func json(_ data: Data) -> Response {
    var headers = securityHeaders
    headers[.contentType] = "application/json; charset=utf-8"
    headers[.cacheControl] = "no-store"
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
  }

  static func asset(_ text: String, type: String) -> Response {
    var headers = securityHeaders
    headers[.contentType] = type
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
  }

  static var securityHeaders: HTTPFields {
    var headers = HTTPFields()
    headers[.contentSecurityPolicy] =
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    headers[.xContentTypeOptions] = "nosniff"
    return headers
  }

  static func page(title: String, script: String) -> String {
    """
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
    <title>\(title)</title><link rel="stylesheet" href="/dashboard.css"></head>
    <body data-page="\(script)">
    <header><a href="/">Haat</a> <span id="status">loading…</span></header>
    <main id="main"></main>
    <script src="/dashboard.js"></script>
    </body></html>
    """
  }
}
