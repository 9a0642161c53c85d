import Foundation
import HaatCore
import HaatProtocol
import Prometheus

/// The coordinator's Prometheus metrics (swift-prometheus's registry, the swift-metrics
/// backend, used directly so every series has its HELP text: `promtool check metrics`
/// wants it). Counters move as things happen, on the loop; gauges are set from one
/// snapshot of the loop's state and the store when `/metrics` is scraped.
final class CoordinatorMetrics: Sendable {
  let registry: PrometheusCollectorRegistry

  // Counters, by what happened.
  private let dispatched: [Pool: Counter]
  private let transitions: [String: Counter]
  let leaseExpiries: Counter
  let ratePauses: Counter
  let fetchBytes: Counter
  let fetchRows: Counter
  let fetchBadRows: Counter
  private let fetchDuration: DurationHistogram
  let commitDuration: DurationHistogram
  private let commitFailures: Counter
  /// Dashboard pages (their JSON) made from the store: at most one a second per page shown.
  let dashboardPages: Counter

  init() {
    let registry = PrometheusCollectorRegistry()
    self.registry = registry
    dispatched = Dictionary(
      uniqueKeysWithValues: Pool.allCases.map { pool in
        (
          pool,
          registry.makeCounter(
            descriptor: metric(
              "haat_tasks_dispatched_total", "Attempts started: tasks claimed and assigned to a worker."),
            labels: [("pool", pool.rawValue)])
        )
      })
    transitions = Dictionary(
      uniqueKeysWithValues: ["done", "retry", "dead", "cancelled", "released", "revived"].map { outcome in
        (
          outcome,
          registry.makeCounter(
            descriptor: metric(
              "haat_task_transitions_total",
              "Task state changes committed, by where they went (done is a result accepted)."),
            labels: [("to", outcome)])
        )
      })
    leaseExpiries = registry.makeCounter(
      descriptor: metric("haat_lease_expiries_total", "Leases that ran out because their worker stopped heartbeating."))
    ratePauses = registry.makeCounter(
      descriptor: metric("haat_rate_pauses_total", "Pauses platforms asked for through a worker (throttling answers)."))
    fetchBytes = registry.makeCounter(
      descriptor: metric(
        "haat_fetch_bytes_total", "Bytes workers fetched for finished attempts, as their results report."))
    fetchRows = registry.makeCounter(
      descriptor: metric("haat_fetch_rows_total", "Records workers parsed for finished attempts."))
    fetchBadRows = registry.makeCounter(
      descriptor: metric(
        "haat_fetch_bad_rows_total", "Rows workers could not parse (reported, never dropped silently)."))
    fetchDuration = registry.makeDurationHistogram(
      descriptor: metric(
        "haat_task_duration_seconds",
        "How long finished attempts ran on their worker (fetch and parse), as the worker reports."),
      buckets: [
        .milliseconds(10), .milliseconds(50), .milliseconds(250), .seconds(1), .seconds(5), .seconds(30),
        .seconds(120), .seconds(600), .seconds(1800),
      ])
    commitDuration = registry.makeDurationHistogram(
      descriptor: metric(
        "haat_store_commit_seconds", "Store commits (one group commit of every op that arrived meanwhile), end to end."),
      buckets: [
        .microseconds(250), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
      ])
    commitFailures = registry.makeCounter(
      descriptor: metric("haat_store_commit_failures_total", "Store commits that failed (retried with backoff)."))
    dashboardPages = registry.makeCounter(
      descriptor: metric(
        "haat_dashboard_pages_made_total",
        "Dashboard pages (their JSON) read from the store; viewers share one a second per page."))
  }

  func dispatched(_ count: Int, pool: Pool) {
    dispatched[pool]?.increment(by: Int64(count))
  }

  func transition(_ transition: TaskTransition) {
    let outcome: String
    switch transition {
    case .done: outcome = "done"
    case .retry: outcome = "retry"
    case .dead: outcome = "dead"
    case .cancelled: outcome = "cancelled"
    case .released: outcome = "released"
    case .revived: outcome = "revived"
    case .leased, .refused: return
    }
    transitions[outcome]?.increment()
  }

  func commitFailed() { commitFailures.increment() }

  /// What a worker reported of an attempt it finished or failed.
  func fetched(_ stats: TaskStats) {
    fetchBytes.increment(by: Int64(clamping: stats.bytes))
    fetchRows.increment(by: Int64(clamping: stats.rows))
    fetchBadRows.increment(by: Int64(clamping: stats.badRows))
    if stats.durationMs > 0 { fetchDuration.record(.milliseconds(Int64(clamping: stats.durationMs))) }
    for (status, count) in stats.httpStatuses where count > 0 {
      // Status codes only: a hostile worker cannot mint label values.
      guard status.count == 3, let code = Int(status), (100...599).contains(code) else { continue }
      registry.makeCounter(
        descriptor: metric(
          "haat_fetch_http_responses_total",
          "HTTP responses workers got from platforms and export hosts, by status code."), labels: [("status", status)]
      ).increment(by: Int64(count))
    }
  }

  /// The state a scrape reports: set on the loop and from the store just before it is emitted.
  struct Snapshot: Sendable {
    var tasks = TaskCounts()
    var jobs = 0
    var leases = 0
    var workers: [String: Int] = [:]
    var queue: [Pool: (ready: Int, oldestReadyMs: Int64?)] = [:]
    var nowMs: Int64 = 0
    var active = true
  }

  func record(_ snapshot: Snapshot) {
    for state in TaskState.allCases {
      registry.makeGauge(
        descriptor: metric(
          "haat_tasks", "Tasks of jobs that have not ended, by state (scheduled: waiting for a retry or a start time)."),
        labels: [("state", state.rawValue)]
      ).set(Double(snapshot.tasks[state]))
    }
    registry.makeGauge(descriptor: metric("haat_jobs_open", "Jobs queued or running.")).set(Double(snapshot.jobs))
    registry.makeGauge(descriptor: metric("haat_leases", "Leases held by workers now.")).set(Double(snapshot.leases))
    for state in ["healthy", "stalled", "draining", "lost", "gone"] {
      registry.makeGauge(
        descriptor: metric("haat_workers", "Workers the coordinator knows, by health."), labels: [("state", state)]
      ).set(Double(snapshot.workers[state] ?? 0))
    }
    for pool in Pool.allCases {
      let queue = snapshot.queue[pool]
      registry.makeGauge(
        descriptor: metric(
          "haat_queue_ready_tasks", "Tasks ready to run now, waiting for a worker's credit (the queue depth)."),
        labels: [("pool", pool.rawValue)]
      ).set(Double(queue?.ready ?? 0))
      let age = queue?.oldestReadyMs.map { max(0, Double(snapshot.nowMs - $0) / 1000) } ?? 0
      registry.makeGauge(
        descriptor: metric(
          "haat_queue_oldest_ready_seconds", "How long the oldest ready task has been ready (0 when none is)."),
        labels: [("pool", pool.rawValue)]
      ).set(age)
    }
  }
}

/// A metric's name and HELP text as swift-prometheus takes them. Haat's names are written
/// whole (`haat_…_total`), so they go in as the base name, with no unit to append.
private func metric(_ name: String, _ help: String) -> MetricNameDescriptor {
  MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
}
