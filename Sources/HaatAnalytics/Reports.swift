import HaatCore
import HaatProtocol
import HaatRecords

/// Reduces a job's task results into its report: exactly one partial per done task.
public enum ReportReducer {
  /// What the reducer needs of one task.
  public struct TaskResult: Sendable {
    public var task: String
    public var source: String
    /// Which run of a schedule the task belongs to (0 for a single job): a later run's
    /// results are laid over an earlier's (`ReportKernel.overlay`).
    public var run: Int = 0
    /// Whether the task's result was accepted.
    public var done: Bool
    public var partial: Partial?
    public var stats: TaskStats?
    /// Why a task that is not done has no result.
    public var error: ErrorInfo?

    public init(
      task: String, source: String, done: Bool, partial: Partial?, stats: TaskStats?,
      error: ErrorInfo?
    ) {
      self.task = task
      self.source = source
      self.done = done
      self.partial = partial
      self.stats = stats
      self.error = error
    }
  }

  /// The byte ranges of a CSV export whose quote state disagrees with the quotes before
  /// them (`RangeQuotes`): each such range may have read its records from inside a quoted
  /// field (an export whose quotes are not RFC 4180's). And those but the last whose
  /// records, read as CSV, ended inside a quoted field where the quote parity ended them
  /// (a quote inside an unquoted field): the next range started inside a record. Said,
  /// never silent.
  public static func rangeDisagreements(_ tasks: [TaskResult]) -> [RowError] {
    var bySource: [String: [RangeQuotes]] = [:]
    for task in tasks where task.done {
      if let quotes = task.stats?.rangeQuotes, task.stats?.hasRangeQuotes == true {
        bySource[task.source, default: []].append(quotes)
      }
    }
    var problems: [RowError] = []
    for (source, ranges) in bySource.sorted(by: { $0.key < $1.key }) {
      let sorted = ranges.sorted { $0.start < $1.start }
      var expected: Bool? = false  // the first range starts outside quotes
      var previousEnd: UInt64 = 0
      let lastEnd = sorted.last?.end
      for range in sorted {
        if range.endsInQuotes, range.end != lastEnd {
          var error = RowError()
          error.note = true
          error.source = source
          error.column = "bytes \(range.start)..<\(range.end)"
          error.message =
            "this range's last record, read as CSV, is still inside a quoted field where its quotes balance: the export has a quote inside an unquoted field (not RFC 4180), or a range started inside a quoted field longer than the 256 KiB probe whose lines read as records; this range's records and the next one's may be misread; read it whole (split_bytes 0)"
          problems.append(error)
        }
        // A gap (a range not done) leaves the state before the next one unknown.
        if range.start != previousEnd { expected = nil }
        if let expected, expected != range.startsInQuotes {
          var error = RowError()
          error.note = true
          error.source = source
          error.column = "bytes \(range.start)..<\(range.end)"
          error.message =
            "this range took its start as \(range.startsInQuotes ? "inside" : "outside") quotes, but the quotes before it say \(expected ? "inside" : "outside"): its records may be misread (a quote inside an unquoted field, not RFC 4180, or a quoted field longer than the 256 KiB probe whose lines read as records); read it whole (split_bytes 0)"
          problems.append(error)
        }
        // Judge the next range by the truth where it is known, not by this one's guess.
        expected = (expected ?? range.startsInQuotes) != range.oddQuotes
        previousEnd = range.end
      }
    }
    return problems
  }

  /// How many bad rows a report lists (all are counted).
  public static let maxRowErrors = 50

  /// Throws `overflow` when a sum passes UInt64.max. Tasks of one run merge; the runs are
  /// laid over each other in order of `run`. `merged` holds the partials of run 0's done
  /// tasks that were merged already (as their results came in); those tasks carry no
  /// `partial` here.
  public static func reduce(
    job: String, reports: [String], tasks: [TaskResult], merged: PartialMerger? = nil
  ) throws(HaatError) -> Report {
    var partials: [Int: [Partial]] = [:]
    var summary = Haat_V1_ReportSummary()
    // Lists gather locally and are set once (appending through a message copies).
    var missingSources: [Haat_V1_MissingSource] = []
    var rowErrors: [RowError] = []
    var sources: [String: Bool] = [:]
    summary.tasks = UInt32(clamping: tasks.count)
    for task in tasks {
      sources[task.source] = (sources[task.source] ?? true) && task.done
      guard task.done else {
        var missing = Haat_V1_MissingSource()
        missing.source = task.source
        missing.task = task.task
        missing.error = task.error ?? ErrorInfo(code: "cancelled", message: "the task did not run")
        missingSources.append(missing)
        continue
      }
      if let partial = task.partial { partials[task.run, default: []].append(partial) }
      if let stats = task.stats {
        var sum = EngagementKernel.Checked()
        summary.rows = sum.add(summary.rows, stats.rows)
        summary.badRows = sum.add(summary.badRows, stats.badRows)
        summary.bytes = sum.add(summary.bytes, stats.bytes)
        guard !sum.overflowed else {
          throw HaatError(.overflow, "the report's row or byte counts pass 18446744073709551615 (2^64 - 1)")
        }
        for var error in stats.rowErrors where rowErrors.count < maxRowErrors {
          error.source = task.source
          rowErrors.append(error)
        }
      }
    }
    summary.missing = missingSources
    // A disagreement of byte ranges is listed first: it is about a whole range, not a row.
    summary.rowErrors = Array((rangeDisagreements(tasks) + rowErrors).prefix(maxRowErrors))
    summary.sources = UInt32(clamping: sources.count)
    summary.sourcesOk = UInt32(clamping: sources.values.filter { $0 }.count)
    var merger = PartialMerger()
    for run in Set(partials.keys).union(merged == nil ? [] : [0]).sorted() {
      var runMerger = PartialMerger.merging(partials[run] ?? [])
      if run == 0, let merged { runMerger.merge(merged) }
      merger.overlay(runMerger)
    }
    var report = Report()
    report.job = job
    report.summary = summary
    try merger.finish(reports, into: &report)
    return report
  }
}
