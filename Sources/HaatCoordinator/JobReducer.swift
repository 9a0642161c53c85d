import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatStore
import SwiftProtobuf
import Synchronization

/// A job's end: its tasks' stored outputs reduced into the report, the job's final state
/// and, when it did not succeed, why. Pure: the coordinator reads the outputs from the
/// store and runs this off its loop.
enum JobReducer {
  struct Outcome: Sendable {
    var state: JobState
    /// The report as the store keeps it (`storedReport`).
    var report: Data
    var error: String
    /// Where the reduce's time went (decoding, merging, encoding), for the coordinator's
    /// debug log: made into text only when logged (a 1-task job's reduce is a few µs).
    var timings: (decode: Duration, merge: Duration, encode: Duration) = (.zero, .zero, .zero)
    /// How many done tasks' partials were merged as their results came in.
    var mergedEarly = 0
  }

  /// Merges exactly one partial per done task; says which sources are missing. The tasks
  /// of `merged` (their partials merged as their results came in) are not decoded again.
  static func reduce(
    _ record: JobRecord, outputs: [TaskOutput], cancelled: Bool, merged: EarlyReduce.Merged? = nil
  ) throws -> Outcome {
    try reduce(record, runs: [outputs], cancelled: cancelled, merged: merged)
  }

  /// A schedule's runs, in order: the tasks of each run merge, and a later run's results
  /// are laid over the earlier's (a lookback window it read again replaces theirs).
  static func reduce(
    _ record: JobRecord, runs: [[TaskOutput]], cancelled: Bool, merged: EarlyReduce.Merged? = nil
  ) throws -> Outcome {
    try reduce(record.id, reports: record.reports, runs: runs, cancelled: cancelled, merged: merged)
  }

  /// As above, from the job's id and the reports its spec asks for (all the reduce reads
  /// of its record).
  static func reduce(
    _ job: JobID, reports: [String], runs: [[TaskOutput]], cancelled: Bool, merged: EarlyReduce.Merged? = nil
  ) throws -> Outcome {
    var counts = TaskCounts()
    var unreadable: [String] = []
    let outputs = runs.enumerated().flatMap { run, outputs in outputs.map { (run, $0) } }
    let started = ContinuousClock.now
    let partials = decode(
      outputs.map { run, output in
        run == 0 && merged?.tasks.contains(output.task) == true ? nil : output.partial
      })
    let decoded = ContinuousClock.now
    let results = zip(outputs, partials).map { item, decoded -> ReportReducer.TaskResult in
      let (run, output) = item
      counts[output.state] += 1
      var partial: Partial?
      switch decoded {
      case .none: break
      case .partial(let read): partial = read
      // A stored partial that no longer decodes must not vanish from the report unseen.
      case .unreadable: unreadable.append(output.task.description)
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
    var state = JobRules.state(counts: counts, cancelled: cancelled, started: true)
    var error = ""
    if counts.dead > 0, let first = outputs.lazy.map(\.1).first(where: { $0.state == .dead }),
      let cause = first.lastError
    {
      error =
        "\(counts.dead) of \(counts.total) tasks are dead; first: \(first.source): \(cause.code): \(cause.message)"
    } else if !cancelled, counts.cancelled > 0,
      let first = outputs.lazy.map(\.1).first(where: { $0.state == .cancelled })
    {
      // Dead tasks discarded while the job ran: it ended partial or failed, and said
      // nothing of why (a tester).
      let cause = first.lastError.map { ": \($0.code): \($0.message)" } ?? ""
      error =
        "\(counts.cancelled) of \(counts.total) tasks were dead and discarded (haat dead discard); first: \(first.source)\(cause)"
    }
    let report: Report
    do {
      report = try ReportReducer.reduce(
        job: job.description, reports: reports, tasks: results, merged: merged?.merger)
      if !unreadable.isEmpty {
        state = .failed
        error = "internal: the stored results of tasks \(unreadable.prefix(5).joined(separator: ", ")) are unreadable"
      }
      // Byte ranges whose quotes do not chain, or that end inside a quoted field, may have
      // read records from inside one: the totals are not to be trusted, so the job did not
      // succeed.
      let misread = ReportReducer.rangeDisagreements(results)
      if state == .succeeded, let first = misread.first {
        state = .partial
        error =
          "\(misread.count) byte range\(misread.count == 1 ? "" : "s") of \(first.source) (first: \(first.column)) may be misread: the export's quotes do not agree with how \(misread.count == 1 ? "it was" : "they were") read; read the export whole (split_bytes 0)"
      }
    } catch let overflow {
      // Sums that pass 2^64 − 1 make no report: the job fails and says why.
      state = .failed
      report =
        (try? ReportReducer.reduce(job: job.description, reports: [], tasks: results))
        ?? Report.with { $0.job = job.description }
      error = "\(overflow.code.rawValue): \(overflow.message)"
    }
    let reduced = ContinuousClock.now
    // Binary, as partials are stored: a best_time report over thousands of accounts took
    // tens of milliseconds to write as JSON, on the way from the last result to the report.
    let encoded = try report.serializedData()
    let timings = (decoded - started, reduced - decoded, ContinuousClock.now - reduced)
    return Outcome(
      state: state, report: encoded, error: error, timings: timings, mergedEarly: merged?.tasks.count ?? 0)
  }

  enum Decoded: Sendable {
    /// No partial stored (empty means none: no-op tasks store none).
    case none
    case partial(Partial)
    case unreadable
  }

  /// The stored partials decoded on every core: a job's end waits for this, and a job over
  /// many large partials (best_time's sketches) spends much of its reduce decoding them.
  static func decode(_ stored: [Data?]) -> [Decoded] {
    @Sendable func one(_ data: Data?) -> Decoded {
      guard let data, !data.isEmpty else { return .none }
      do {
        return .partial(try storedPartial(data))
      } catch {
        return .unreadable
      }
    }
    // A few small partials (a 1-task job's) decode here: handing them to every core costs
    // more than decoding them.
    if stored.count <= 2 || stored.reduce(0, { $0 + ($1?.count ?? 0) }) < 64 << 10 { return stored.map(one) }
    let decoded = Mutex([Decoded](repeating: .none, count: stored.count))
    DispatchQueue.concurrentPerform(iterations: stored.count) { index in
      let read = one(stored[index])
      decoded.withLock { $0[index] = read }
    }
    return decoded.withLock { $0 }
  }

  /// A report as the store keeps it (JSON from coordinators before 2026-12-02).
  static func storedReport(_ data: Data) throws -> Report { try stored(data) }

  /// A partial as the store keeps it (JSON from coordinators before 2026-12).
  static func storedPartial(_ data: Data) throws -> Partial { try stored(data) }

  /// A message as the store keeps it: protobuf's binary encoding, or JSON as older stores
  /// kept it. A binary encoding never starts with `{` (0x7B would be field 15 as a group, a
  /// wire type proto3 never writes).
  private static func stored<M: SwiftProtobuf.Message>(_ data: Data) throws -> M {
    if data.first == UInt8(ascii: "{") {
      return try M(jsonUTF8Data: data, options: WireCodec.decodingOptions)
    }
    return try M(serializedBytes: data)
  }
}
