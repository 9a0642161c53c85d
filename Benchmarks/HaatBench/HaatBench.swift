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
    subcommands: [
      Dispatch.self, Latency.self, Stream.self, Fetch.self, Ranges.self, Analysis.self, Swarm.self, StoreBench.self,
    ])
}

/// End-to-end no-op task throughput: submit → assign → complete → accepted, through the
/// durable SQLite store, with 1, 2 and 4 worker processes on loopback; and beanstalkd with
/// its binlog on the same machine in the same run.
struct Dispatch: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "No-op task throughput, Haat vs beanstalkd (binlog).")

  @Option(help: "Tasks per measured run.")
  var tasks = 50_000
  @Option(help: "1-task jobs per measured run of the single shape.")
  var singleJobs = 10_000
  @Option(help: "Tasks per job (the run submits tasks/job-size jobs).")
  var jobSize = 5_000
  @Option(help: "Worker counts to measure, comma-separated.")
  var workers = "1,2,4"
  /// A worker's credit is its window, as a pipelined consumer's depth is beanstalkd's. At
  /// `full` each task waits for two fsynced commits (its claim, its result), so the window
  /// must cover the rate × that chain, and a wider one makes fewer, larger commits: 128 held
  /// one worker to about 24k tasks/s where 1,024 gave 31–37k and 4,096 30–42k on the same
  /// host (2026-12-02); beanstalkd's consumer gained nothing from going deeper than 100
  /// (docs/benchmarks.md).
  @Option(help: "Credit (slots) per Haat worker: how many tasks it may hold at once.")
  var slots = 4_096
  @Option(
    help:
      "Haat stores to measure, comma-separated: full and normal (SQLite durability), postgres (the server HAAT_POSTGRES_URL names; `make bench-dispatch` starts one). Default: all three when HAAT_POSTGRES_URL is set."
  )
  var durability =
    ProcessInfo.processInfo.environment["HAAT_POSTGRES_URL"] == nil ? "full,normal" : "full,normal,postgres"
  @Option(help: "Measured repetitions per configuration; the best is reported.")
  var repeats = 2
  @Option(help: "Commands in flight per pipelined beanstalkd consumer.")
  var depth = 100

  func run() async throws {
    let workerCounts = workers.split(separator: ",").compactMap { Int($0) }
    let modes = durability.split(separator: ",").map(String.init)
    let binary = try HaatBinary.path()
    say(
      "dispatch: \(tasks) no-op tasks per run (submit → assign → complete → accepted), loopback, \(ProcessInfo.processInfo.activeProcessorCount) cores"
    )
    say(
      "peer: beanstalkd 1.12 -b (binlog, fsync ≤ 50 ms), a producer pipelining puts 256 deep and one consumer thread per worker, either a round trip per reserve and per delete (plain) or \(depth) commands in flight (pipelined)"
    )
    say(
      "haat: \(binary), \(slots) slots per worker; jobs of \(jobSize) tasks (batched), or \(singleJobs) 1-task jobs with 256 submits in flight (single)"
    )
    say("best of \(repeats) runs each; ratios are against pipelined beanstalkd\n")
    var rows: [[String]] = []
    for count in workerCounts {
      var plain = 0.0
      var pipelined = 0.0
      for _ in 0..<repeats {
        plain = max(plain, try runBeanstalkd(workers: count, tasks: tasks))
        pipelined = max(pipelined, try runBeanstalkd(workers: count, tasks: tasks, depth: depth))
      }
      var cells = [String(count), format(plain), format(pipelined)]
      for mode in modes {
        var batched = 0.0
        var single = 0.0
        var cost = (batched: Cost.none, single: Cost.none)
        for _ in 0..<repeats {
          let run = try await runHaat(workers: count, durability: mode, singles: false)
          batched = max(batched, run.rate)
          cost.batched = cost.batched.least(run.cost)
          let singles = try await runHaat(workers: count, durability: mode, singles: true)
          single = max(single, singles.rate)
          cost.single = cost.single.least(singles.cost)
        }
        // CPU per task moves much less than the rate with a shared host's neighbours: what
        // a change to the per-task work is measured by.
        for (shape, cost) in [("batched", cost.batched), ("single", cost.single)] {
          say(
            "  workers=\(count) \(mode) \(shape): CPU per task \(String(format: "%.1f", cost.coordinator)) µs coordinator, \(String(format: "%.1f", cost.workers)) µs workers (least of \(repeats))"
          )
        }
        cells += [
          format(batched), String(format: "%.2f", batched / pipelined), format(single),
          String(format: "%.2f", single / pipelined),
        ]
      }
      rows.append(cells)
      say("  workers=\(count): " + cells.dropFirst().joined(separator: "  "))
    }
    var header = ["workers", "beanstalkd", "pipelined"]
    for mode in modes { header += ["haat \(mode) batched", "ratio", "haat \(mode) single", "ratio"] }
    say("\n" + table(header, rows))
    say(
      "tasks/s. SQLite full fsyncs every group commit; normal survives a process crash, not a power loss; postgres is PostgreSQL from apt on loopback, as configured by initdb (fsync and synchronous_commit on)."
    )
  }

  /// The CPU seconds the coordinator and the workers have used so far.
  func cpu(_ cluster: LocalCluster) -> (Double, Double) {
    let workers = (1...max(1, cluster.options.workers)).compactMap { cluster.worker("worker-\($0)")?.cpuSeconds }
    return (cluster.coordinator?.cpuSeconds ?? 0, workers.reduce(0, +))
  }

  /// `body`'s rate, with the cluster's CPU per task over it.
  func measured(_ cluster: LocalCluster, tasks: Int, _ body: () async throws -> Double) async rethrows -> (
    rate: Double, cost: Cost
  ) {
    let before = cpu(cluster)
    let rate = try await body()
    return (rate, Cost(before, cpu(cluster), tasks: tasks))
  }

  /// CPU µs per task, across the coordinator's threads and across the workers.
  struct Cost {
    var coordinator: Double
    var workers: Double

    static let none = Cost(coordinator: .infinity, workers: .infinity)

    func least(_ other: Cost) -> Cost {
      Cost(coordinator: min(coordinator, other.coordinator), workers: min(workers, other.workers))
    }
  }

  func runHaat(workers: Int, durability: String, singles: Bool) async throws -> (rate: Double, cost: Cost) {
    var options = LocalCluster.Options()
    options.workers = workers
    options.durability = durability == "postgres" ? "full" : durability
    if durability == "postgres" { options.coordinatorArguments = try postgresStore() }
    options.collectSlots = slots
    options.logLevel = "warning"
    let cluster = try await LocalCluster.start(options)
    do {
      if singles {
        try await cluster.waitForWorkers(workers)
        let run = try await measured(cluster, tasks: singleJobs) {
          try runHaatSingles(cluster: cluster, tasks: singleJobs)
        }
        await cluster.stop()
        return run
      }
      let client = try await cluster.client()
      var spec = JobSpec()
      spec.name = "bench"
      var source = Source()
      source.kind = "noop"
      source.tasks = UInt32(jobSize)
      spec.sources = [source]
      let jobs = max(1, tasks / jobSize)
      let run = try await measured(cluster, tasks: jobs * jobSize) {
        let started = ContinuousClock.now
        var ids: [String] = []
        for _ in 0..<jobs { ids.append(try await client.submit(spec).job) }
        for id in ids {
          for try await event in client.watch(id) where event.final {
            guard event.state == "succeeded" else { throw BenchError("job \(id) ended \(event.state)") }
            break
          }
        }
        return Double(jobs * jobSize) / (ContinuousClock.now - started).seconds
      }
      await client.close()
      await cluster.stop()
      return run
    } catch {
      say(cluster.logs())
      await cluster.stop()
      throw error
    }
  }
}

extension Dispatch.Cost {
  /// Between two readings of `cpu`, over `tasks` tasks.
  init(_ before: (Double, Double), _ after: (Double, Double), tasks: Int) {
    coordinator = (after.0 - before.0) / Double(tasks) * 1e6
    workers = (after.1 - before.1) / Double(tasks) * 1e6
  }
}

/// Latency at a light load: 1-task no-op jobs submitted at a steady rate to a worker with
/// free credit, durable `full`; beside beanstalkd's put → reserve at the same rate.
struct Latency: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Paced submit → accepted and submit → assign latency, Haat vs beanstalkd (binlog).")

  @Option(help: "Jobs per second.")
  var rate = 200.0
  @Option(help: "Jobs to submit.")
  var count = 4_000
  @Option(help: "Haat store durability.")
  var durability = "full"

  func run() async throws {
    say(
      "latency: \(count) 1-task no-op jobs at \(Int(rate))/s, one worker with free credit (the benchmark's own, to see assign exactly), durability \(durability); beanstalkd 1.12 -b put → reserve at the same rate\n"
    )
    let peer = percentiles(try beanstalkdLatency(rate: rate, count: count))
    var options = LocalCluster.Options()
    options.workers = 0
    options.durability = durability
    options.logLevel = "warning"
    let cluster = try await LocalCluster.start(options)
    let haat: (accepted: [Double], assigned: [Double])
    do {
      haat = try haatLatency(cluster: cluster, rate: rate, count: count)
      await cluster.stop()
    } catch {
      say(cluster.logs())
      await cluster.stop()
      throw error
    }
    let accepted = percentiles(haat.accepted)
    let assigned = percentiles(haat.assigned)
    func row(_ name: String, _ value: (p50: Double, p99: Double, max: Double), _ n: Int) -> [String] {
      [
        name, String(format: "%.2f", value.p50), String(format: "%.2f", value.p99), String(format: "%.2f", value.max),
        String(n),
      ]
    }
    say(
      table(
        ["ms", "p50", "p99", "max", "n"],
        [
          row("beanstalkd put → reserve", peer, count),
          row("haat submit → accepted", accepted, haat.accepted.count),
          row("haat submit → assign", assigned, haat.assigned.count),
        ]))
    say("target: haat submit → assign p99 < 2 ms: \(assigned.p99 < 2 ? "PASS" : "FAIL")")
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

/// `--store` for the PostgreSQL server HAAT_POSTGRES_URL names, in a schema of its own: each
/// run starts from an empty store, as SQLite's runs do.
func postgresStore() throws -> [String] {
  guard let url = ProcessInfo.processInfo.environment["HAAT_POSTGRES_URL"] else {
    throw BenchError("the postgres store needs HAAT_POSTGRES_URL (make bench-dispatch starts a server)")
  }
  let schema = "bench_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
  return ["--store", url + (url.contains("?") ? "&" : "?") + "schema=\(schema)"]
}
