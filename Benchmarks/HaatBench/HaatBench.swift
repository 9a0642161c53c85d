import ArgumentParser
import Foundation
import HaatClient
import HaatCore
import HaatFixtures
import HaatProtocol
import HaatTesting

#if canImport(Glibc)
  import Glibc
#endif

@main
struct HaatBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "haat-bench",
    abstract: "Haat's benchmarks, side by side with their peers in one run (not part of make test).",
    subcommands: [Dispatch.self, Stream.self])
}

/// End-to-end no-op task throughput: submit → assign → complete → accepted, through the
/// durable SQLite store, with 1, 2 and 4 worker processes on loopback; and beanstalkd with
/// its binlog on the same machine in the same run.
struct Dispatch: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "No-op task throughput, Haat vs beanstalkd (binlog).")

  @Option(help: "Tasks per measured run.")
  var tasks = 50_000
  @Option(help: "Tasks per job (the run submits tasks/job-size jobs).")
  var jobSize = 5_000
  @Option(help: "Worker counts to measure, comma-separated.")
  var workers = "1,2,4"
  @Option(help: "Credit (slots) per Haat worker: how many tasks it may hold at once.")
  var slots = 128
  @Option(help: "Haat store durability modes to measure, comma-separated (full, normal).")
  var durability = "full,normal"
  @Option(help: "Measured repetitions per configuration; the best is reported.")
  var repeats = 2

  func run() async throws {
    let workerCounts = workers.split(separator: ",").compactMap { Int($0) }
    let modes = durability.split(separator: ",").map(String.init)
    let binary = try HaatBinary.path()
    say(
      "dispatch: \(tasks) no-op tasks per run (submit → assign → complete → accepted), loopback, \(ProcessInfo.processInfo.activeProcessorCount) cores"
    )
    say(
      "haat: \(binary), \(slots) slots per worker, jobs of \(jobSize) tasks; beanstalkd 1.12 -b (binlog, fsync ≤ 50 ms), one client thread per worker, pipelined puts"
    )
    say("best of \(repeats) runs each\n")
    var rows: [[String]] = []
    for count in workerCounts {
      var peer = 0.0
      for _ in 0..<repeats { peer = max(peer, try runBeanstalkd(workers: count, tasks: tasks, fsync: nil)) }
      var cells = [String(count), format(peer)]
      for mode in modes {
        var haat = 0.0
        for _ in 0..<repeats { haat = max(haat, try await runHaat(workers: count, durability: mode)) }
        cells += [format(haat), String(format: "%.2f", haat / peer)]
      }
      rows.append(cells)
      say("  workers=\(count): " + cells.dropFirst().joined(separator: "  "))
    }
    var header = ["workers", "beanstalkd -b"]
    for mode in modes { header += ["haat \(mode)", "ratio"] }
    say("\n" + table(header, rows))
    say(
      "tasks/s; ratio = haat / beanstalkd. durability full fsyncs every group commit; normal survives a process crash, not a power loss."
    )
  }

  func runHaat(workers: Int, durability: String) async throws -> Double {
    var options = LocalCluster.Options()
    options.workers = workers
    options.durability = durability
    options.collectSlots = slots
    options.logLevel = "warning"
    let cluster = try await LocalCluster.start(options)
    do {
      let client = try await cluster.client()
      var spec = JobSpec()
      spec.name = "bench"
      var source = Source()
      source.kind = "noop"
      source.tasks = UInt32(jobSize)
      spec.sources = [source]
      let jobs = max(1, tasks / jobSize)
      let started = ContinuousClock.now
      var ids: [String] = []
      for _ in 0..<jobs { ids.append(try await client.submit(spec).job) }
      for id in ids {
        for try await event in client.watch(id) where event.final {
          guard event.state == "succeeded" else { throw BenchError("job \(id) ended \(event.state)") }
          break
        }
      }
      let elapsed = ContinuousClock.now - started
      await client.close()
      await cluster.stop()
      return Double(jobs * jobSize) / elapsed.seconds
    } catch {
      say(cluster.logs())
      await cluster.stop()
      throw error
    }
  }
}

/// Streams one generated export of about 1 GiB through a worker and reports the worker's
/// peak RSS (the acceptance limit is 150 MB) and throughput.
struct Stream: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "A worker's peak memory while analysing a 1 GiB export.")

  @Option(help: "The export's size in bytes (approximate).")
  var bytes: UInt64 = 1 << 30
  @Option(help: "The peak RSS limit to check, in bytes.")
  var limit: UInt64 = 150_000_000

  func run() async throws {
    let generator = PostsGenerator(seed: 7)
    let sample = (0..<2000).reduce(0) { $0 + generator.row(UInt64($1)).utf8.count }
    let rows = bytes / UInt64(max(1, sample / 2000))
    let server = try await FixtureServer.start()
    var options = LocalCluster.Options()
    options.workers = 1
    options.logLevel = "warning"
    options.leaseMs = 60_000
    let cluster = try await LocalCluster.start(options)
    do {
      let worker = try requireValue(cluster.worker("worker-1"), "no worker")
      let before = worker.peakResidentBytes
      let client = try await cluster.client()
      var source = Source()
      source.name = "generated"
      source.platform = "facebook"
      source.account = "bench"
      source.format = "csv"
      source.url = "\(server.baseURL)/generate/posts.csv?rows=\(rows)&seed=7"
      var spec = JobSpec()
      spec.name = "stream"
      spec.sources = [source]
      say("stream: \(rows) generated rows (~\(bytes >> 20) MiB of CSV) through one worker (release build)")
      let started = ContinuousClock.now
      let job = try await client.submit(spec).job
      var peak: UInt64 = 0
      var done = false
      // Sample the worker's peak RSS while it works, and once more at the end.
      while !done {
        peak = max(peak, worker.peakResidentBytes)
        let state = try await client.job(job).state
        done = state != "running" && state != "queued"
        if !done { try await Task.sleep(for: .milliseconds(500)) }
      }
      peak = max(peak, worker.peakResidentBytes)
      let elapsed = (ContinuousClock.now - started).seconds
      let result = try await client.result(job)
      await client.close()
      await cluster.stop()
      try? await server.stop()
      let summary = result.report.summary
      say(
        "  job \(job): \(result.job.state), \(summary.rows) posts, \(summary.badRows) bad rows, \(summary.bytes) bytes in \(String(format: "%.1f", elapsed)) s (\(String(format: "%.0f", Double(summary.bytes) / elapsed / 1_000_000)) MB/s)"
      )
      say(
        "  worker peak RSS: \(peak / 1_000_000) MB at the start \(before / 1_000_000) MB; limit \(limit / 1_000_000) MB: \(peak < limit ? "PASS" : "FAIL")"
      )
      guard result.job.state == "succeeded", summary.rows == rows, summary.badRows == 0 else {
        throw BenchError("the export was not read whole: \(summary.rows) of \(rows) rows")
      }
      if peak >= limit { throw ExitCode(1) }
    } catch {
      say(cluster.logs())
      await cluster.stop()
      try? await server.stop()
      throw error
    }
  }
}

func requireValue<T>(_ value: T?, _ message: String) throws -> T {
  guard let value else { throw BenchError(message) }
  return value
}

func format(_ rate: Double) -> String { String(format: "%.0f", rate) }

func table(_ header: [String], _ rows: [[String]]) -> String {
  var widths = header.map(\.count)
  for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
  func line(_ cells: [String]) -> String {
    cells.enumerated().map { String(repeating: " ", count: widths[$0.offset] - $0.element.count) + $0.element }
      .joined(separator: "  ")
  }
  return ([line(header)] + rows.map(line)).joined(separator: "\n") + "\n"
}

extension Duration {
  var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Writes a line at once (stdout is block-buffered in a pipe; a benchmark's progress should show).
func say(_ text: String = "") {
  FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
