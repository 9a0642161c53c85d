import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatStore

/// A job's end: its tasks' stored outputs reduced into the report, the job's final state
/// and, when it did not succeed, why. Pure: the coordinator reads the outputs from the
/// store and runs this off its loop.
enum JobReducer {
  struct Outcome: Sendable {
    var state: JobState
    /// The report's wire JSON.
    var report: Data
    var error: String
  }

  /// Merges exactly one partial per done task; says which sources are missing.
  static func reduce(_ record: JobRecord, outputs: [TaskOutput], cancelled: Bool) throws -> Outcome {
    try reduce(record, runs: [outputs], cancelled: cancelled)
  }

  /// A schedule's runs, in order: the tasks of each run merge, and a later run's results
  /// are laid over the earlier's (a lookback window it read again replaces theirs).
  static func reduce(_ record: JobRecord, runs: [[TaskOutput]], cancelled: Bool) throws -> Outcome {
    let job = record.id
    var counts = TaskCounts()
    var unreadable: [String] = []
    let outputs = runs.enumerated().flatMap { run, outputs in outputs.map { (run, $0) } }
    let results = outputs.map { run, output -> ReportReducer.TaskResult in
      counts[output.state] += 1
      var partial: Partial?
      // Empty means no partial (no-op tasks store none).
      if let data = output.partial, !data.isEmpty {
        // A stored partial that no longer decodes must not vanish from the report unseen.
        do {
          partial = try Partial(jsonUTF8Data: data, options: WireCodec.decodingOptions)
        } catch {
          unreadable.append(output.task.description)
        }
      }
      var result = ReportReducer.TaskResult(
        task: output.task.description, source: output.source, done: output.state == .done,
        partial: partial,
        stats: output.stats.flatMap { try? TaskStats(jsonUTF8Data: $0, options: WireCodec.decodingOptions) },
        error: output.lastError.map(ErrorInfo.init)
          ?? (output.state == .cancelled ? ErrorInfo(code: "cancelled", message: "the job was cancelled") : nil))
      result.run = run
      return result
    }
    let reports = record.reports
    var state = JobRules.state(counts: counts, cancelled: cancelled, started: true)
    var error = ""
    if counts.dead > 0, let first = outputs.lazy.map(\.1).first(where: { $0.state == .dead }),
      let cause = first.lastError
    {
      error =
        "\(counts.dead) of \(counts.total) tasks are dead; first: \(first.source): \(cause.code): \(cause.message)"
    }
    let report: Report
    do {
      report = try ReportReducer.reduce(job: job.description, reports: reports, tasks: results)
      if !unreadable.isEmpty {
        state = .failed
        error = "internal: the stored results of tasks \(unreadable.prefix(5).joined(separator: ", ")) are unreadable"
      }
    } catch let overflow {
      // Sums that pass 2^64 − 1 make no report: the job fails and says why.
      state = .failed
      report =
        (try? ReportReducer.reduce(job: job.description, reports: [], tasks: results))
        ?? Report.with { $0.job = job.description }
      error = "\(overflow.code.rawValue): \(overflow.message)"
    }
    return Outcome(state: state, report: try report.jsonUTF8Data(options: WireCodec.encodingOptions), error: error)
  }
}
