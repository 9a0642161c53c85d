import ArgumentParser
import Foundation
import HaatClient
import HaatFixtures
import HaatProtocol
import HaatTesting

/// One export of at least 1 GB, read whole by one task and split into byte ranges over 1,
/// 2 and 4 workers (issue 11): every split run must give the whole run's engagement report;
/// the wall times show what splitting buys.
struct Ranges: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "A ≥ 1 GB export read whole and split into byte ranges over 1, 2 and 4 workers: same report, wall times."
  )

  @Option(help: "The export's size in bytes (at least; whole rows).")
  var bytes: UInt64 = 1_100_000_000
  @Option(help: "The ranges' size (the source's split_bytes).")
  var splitBytes: UInt64 = 64 << 20
  @Option(help: "Worker counts to split over, comma-separated.")
  var workers = "1,2,4"
  @Option(help: "Where to write the export (a temporary directory by default, removed after).")
  var directory: String?

  func run() async throws {
    let folder = directory ?? NSTemporaryDirectory() + "haat-ranges-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { if directory == nil { try? FileManager.default.removeItem(atPath: folder) } }
    let path = folder + "/export.csv"
    let (rows, size) = try write(path)
    say(
      "ranges: \(rows) generated posts, \(size / 1_000_000) MB of CSV (some captions over several lines), split_bytes \(splitBytes >> 20) MiB"
    )

    let (whole, wholeSeconds, _) = try await measure(path: path, folder: folder, workers: 1, split: 0)
    guard whole.job.state == "succeeded", whole.report.summary.rows == rows, whole.report.summary.badRows == 0 else {
      throw BenchError("the whole read did not read every row: \(whole.report.summary.rows) of \(rows)")
    }
    var lines = [
      ["whole, 1 worker", "1", String(format: "%.1f", wholeSeconds), format(Double(size) / wholeSeconds / 1e6), "—"]
    ]
    var failed = false
    for count in workers.split(separator: ",").compactMap({ Int($0) }) {
      let (result, seconds, tasks) = try await measure(path: path, folder: folder, workers: count, split: splitBytes)
      let same = result.report.engagement == whole.report.engagement && result.report.summary.rows == rows
      failed = failed || !same || result.job.state != "succeeded"
      lines.append([
        "split, \(count) worker\(count == 1 ? "" : "s")", String(tasks), String(format: "%.1f", seconds),
        format(Double(size) / seconds / 1e6), same ? "yes" : "NO",
      ])
    }
    say(table(["run", "tasks", "wall s", "MB/s", "same report"], lines))
    if failed { throw BenchError("a split run's report differs from the whole read's") }
  }

  /// Writes generated rows until the file is at least `bytes` long.
  func write(_ path: String) throws -> (rows: UInt64, bytes: UInt64) {
    guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path)
    else { throw BenchError("cannot write \(path)") }
    defer { try? handle.close() }
    let generator = PostsGenerator(seed: 7, accounts: 20, multiline: true)
    var buffer = Array(PostsGenerator.header.utf8)
    var written: UInt64 = 0
    var rows: UInt64 = 0
    while written + UInt64(buffer.count) < bytes {
      buffer += generator.row(rows).utf8
      rows += 1
      if buffer.count >= 4 << 20 {
        try handle.write(contentsOf: buffer)
        written += UInt64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
      }
    }
    try handle.write(contentsOf: buffer)
    written += UInt64(buffer.count)
    return (rows, written)
  }

  /// One job over the export on a fresh cluster of `workers`: its result, wall time from
  /// submit to the end, and task count.
  func measure(path: String, folder: String, workers: Int, split: UInt64) async throws
    -> (Haat_V1_Result, Double, Int)
  {
    var options = LocalCluster.Options()
    options.workers = workers
    options.logLevel = "warning"
    options.leaseMs = 60_000
    options.workerArguments = ["--file-root", folder]
    let cluster = try await LocalCluster.start(options)
    do {
      let client = try await cluster.client()
      var source = Source()
      source.url = "file://\(path)"
      source.platform = "facebook"
      source.splitBytes = split
      var spec = JobSpec()
      spec.name = "ranges"
      spec.sources = [source]
      let started = ContinuousClock.now
      let job = try await client.submit(spec).job
      for try await event in client.watch(job) where event.final { break }
      let seconds = (ContinuousClock.now - started).seconds
      let result = try await client.result(job)
      let tasks = try await client.job(job).counts.total
      await client.close()
      await cluster.stop()
      return (result, seconds, Int(tasks))
    } catch {
      say(cluster.logs())
      await cluster.stop()
      throw error
    }
  }
}
