import ArgumentParser
import Foundation
import HaatCore
import HaatStore

/// The SQLite store alone, as the coordinator drives it under a no-op load: jobs submitted,
/// tasks claimed and completed in commits of `batch`. Prints the process's CPU time per task
/// in each phase (the store's work runs on GRDB's queue, and nothing else runs here): steadier
/// than the dispatch benchmark's throughput on a shared host, so a change to the store's
/// statements can be measured on its own.
struct StoreBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "store",
    abstract: "The SQLite store's CPU per task: submit, claim, complete, finish (no network, no coordinator).")

  @Option(help: "Tasks per run.")
  var tasks = 100_000
  @Option(help: "Tasks per job.")
  var jobSize = 5_000
  @Option(help: "Ops per commit (jobs of this many tasks, claims of this many tasks, this many results).")
  var batch = 100
  @Option(help: "full or normal.")
  var durability = "full"
  @Option(help: "Measured repetitions; the best of each phase is reported.")
  var repeats = 3

  func run() async throws {
    guard let level = Durability(rawValue: durability) else { throw BenchError("no durability \(durability)") }
    var best = [Double](repeating: .infinity, count: 4)
    for _ in 0..<repeats {
      let folder = NSTemporaryDirectory() + "haat-store-bench-\(UUID().uuidString)"
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      defer { try? FileManager.default.removeItem(atPath: folder) }
      let store = try SQLiteJobStore(path: folder + "/haat.db", durability: level)
      let phases = try await measure(store)
      for index in phases.indices { best[index] = min(best[index], phases[index]) }
    }
    say(
      "store: SQLite \(durability), \(tasks) tasks in jobs of \(jobSize), \(batch) ops per commit; CPU per task, best of \(repeats)"
    )
    let names = ["submit", "claim", "complete", "finish"]
    say(table(["phase", "µs CPU per task"], names.indices.map { [names[$0], String(format: "%.2f", best[$0])] }))
  }

  /// CPU µs per task of each phase.
  func measure(_ store: SQLiteJobStore) async throws -> [Double] {
    let now: Int64 = 1_000
    let task = NewTask(pool: .collect, source: "bench", spec: Data(#"{"source":{"kind":"noop"}}"#.utf8))
    let job = NewJob(
      name: "bench", priority: 0, notBeforeMs: 0, maxAttempts: 3, retry: RetryPolicy(baseMs: 1_000, capMs: 60_000),
      reports: ["engagement"], spec: Data(#"{"name":"bench"}"#.utf8), submittedBy: "admin:bench",
      tasks: Array(repeating: task, count: jobSize))
    var phases: [Double] = []
    var cpu = processCPUSeconds()
    func lap() {
      let next = processCPUSeconds()
      phases.append((next - cpu) / Double(tasks) * 1e6)
      cpu = next
    }
    let jobs = max(1, tasks / jobSize)
    var submitted: [JobID] = []
    for start in stride(from: 0, to: jobs, by: max(1, batch / jobSize)) {
      let ops = [StoreOp](repeating: .submit(job), count: min(max(1, batch / jobSize), jobs - start))
      for case .submitted(let id, _, _) in try await store.apply(ops, nowMs: now) { submitted.append(id) }
    }
    lap()
    var claimed: [ClaimedTask] = []
    while true {
      guard
        case .claimed(let some) = try await store.apply(
          [.claim(owner: "w1", pool: .collect, limit: batch)], nowMs: now)[0],
        !some.isEmpty
      else { break }
      claimed += some
    }
    lap()
    for start in stride(from: 0, to: claimed.count, by: batch) {
      let ops = claimed[start..<min(start + batch, claimed.count)].map {
        StoreOp.complete(task: $0.task, attempt: $0.attempt, worker: "w1", partial: Data(), stats: Data(), bookmark: "")
      }
      _ = try await store.apply(ops, nowMs: now)
    }
    lap()
    for start in stride(from: 0, to: submitted.count, by: batch) {
      let ops = submitted[start..<min(start + batch, submitted.count)].map {
        StoreOp.finishJob($0, state: .succeeded, report: Data(), error: "")
      }
      _ = try await store.apply(ops, nowMs: now)
    }
    lap()
    guard claimed.count == max(1, tasks / jobSize) * jobSize else {
      throw BenchError("claimed \(claimed.count) tasks of \(tasks)")
    }
    return phases
  }

  func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
      + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
  }
}
