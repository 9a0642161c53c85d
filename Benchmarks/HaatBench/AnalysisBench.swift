import ArgumentParser
import Foundation
import HaatAnalytics
import HaatClient
import HaatFixtures
import HaatProtocol
import HaatRecords
import HaatTesting

/// Issue 12's analysis benchmark: engagement + best_time + attribution over 1,000,000
/// generated posts and 1,000,000 orders (canonical CSV, file:// sources), Haat on 2 workers
/// against DuckDB with 2 threads in the same run, beside the I/O floor (`cat`) and Haat's
/// CSV → kernel path alone on one core.
struct Analysis: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract:
      "engagement + best_time + attribution over 1M posts and 1M orders: Haat (2 workers) against DuckDB (2 threads)."
  )

  @Option(help: "Generated posts.")
  var posts: UInt64 = 1_000_000
  @Option(help: "Generated orders.")
  var orders: UInt64 = 1_000_000
  @Option(help: "Haat workers.")
  var workers = 2
  @Option(help: "Tasks each worker runs at once (its --collect-slots): the job is CPU-bound, so one per core.")
  var slots = 1
  @Option(
    help:
      "The posts export's byte ranges (the source's split_bytes); by default one range per worker. 0 reads it as one task."
  )
  var splitBytes: UInt64?
  @Option(help: "The Python with duckdb (scripts/install-deps analysis makes .build/analysis-venv).")
  var python = ".build/analysis-venv/bin/python"
  @Option(help: "Measured repetitions; the best is reported.")
  var repeats = 2
  @Option(help: "Where to write the exports (a temporary directory by default, removed after).")
  var directory: String?
  @Flag(help: "Measure only the CSV → kernel path (for a profiler), per file and report.")
  var kernelsOnly = false

  func run() async throws {
    let folder = directory ?? NSTemporaryDirectory() + "haat-analysis-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { if directory == nil { try? FileManager.default.removeItem(atPath: folder) } }
    let postsPath = folder + "/posts.csv"
    let postsBytes = try write(postsPath, header: PostsGenerator.header, rows: 0..<posts) {
      PostsGenerator(seed: 12, accounts: 20).row($0)
    }
    // Orders in four files, as a store's exports come (an orders source is read whole:
    // byte ranges split posts exports only).
    let ordersPaths = (0..<4).map { folder + "/orders-\($0).csv" }
    var ordersBytes: UInt64 = 0
    for (index, path) in ordersPaths.enumerated() {
      let share = orders / 4
      let rows = UInt64(index) * share..<(index == 3 ? orders : UInt64(index + 1) * share)
      ordersBytes += try write(path, header: OrdersRows.header, rows: rows, OrdersRows.row)
    }
    let files = [postsPath] + ordersPaths
    let bytes = postsBytes + ordersBytes
    say(
      "analysis: \(posts) posts (\(postsBytes / 1_000_000) MB) and \(orders) orders (\(ordersBytes / 1_000_000) MB) of canonical CSV; reports engagement, best_time, attribution; \(ProcessInfo.processInfo.activeProcessorCount) cores; best of \(repeats)"
    )

    if kernelsOnly {
      // HAAT_BENCH_KERNELS="posts:best_time,engagement" times one combination alone (to profile it).
      let only = ProcessInfo.processInfo.environment["HAAT_BENCH_KERNELS"]?.split(
        separator: ":", omittingEmptySubsequences: false)
      for (path, kind) in [(postsPath, "posts"), (ordersPaths[0], "orders")] where only.map({ $0[0] == kind }) ?? true {
        let combinations =
          only.map { [$0.count > 1 ? $0[1].split(separator: ",").map(String.init) : []] } ?? [
            ["engagement"], ["best_time"], ["attribution"], [], ["engagement", "best_time", "attribution"],
          ]
        for reports in combinations {
          // The thread's CPU time beside the wall: on a shared host the wall moves with
          // the neighbours, the CPU time much less.
          var cpu = Double.infinity
          let seconds = try best {
            let started = threadCPUSeconds()
            let wall = try timed {
              if kind == "posts" {
                _ = try feed(CanonicalExportConnector.self, kind: kind, path, reports: reports)
              } else {
                _ = try feed(TableExportConnector<OrdersExport>.self, kind: kind, path, reports: reports)
              }
            }
            cpu = min(cpu, threadCPUSeconds() - started)
            return wall
          }
          say("\(kind) \(reports): \(String(format: "%.3f", seconds)) s, CPU \(String(format: "%.3f", cpu)) s")
        }
      }
      return
    }
    let floor = try best { try timed { try cat(files) } }
    let (kernelSeconds, kernelRows) = try kernelPath(postsPath, ordersPaths)
    var haat = Double.infinity
    var report = Report()
    for _ in 0..<repeats {
      let (result, seconds) = try await measure(postsPath, ordersPaths, folder: folder)
      guard result.job.state == "succeeded", result.report.summary.rows == posts + orders else {
        throw BenchError(
          "the Haat job read \(result.report.summary.rows) rows of \(posts + orders) (\(result.job.state))")
      }
      if seconds < haat { (haat, report) = (seconds, result.report) }
    }
    let duck = try duckdb(postsPath, folder + "/orders-*.csv")
    var rows = [
      ["I/O floor (cat, page cache)", String(format: "%.2f", floor), format(Double(bytes) / floor / 1e6), "—", "—"],
      [
        "Haat CSV → kernels, 1 core, in process", String(format: "%.2f", kernelSeconds),
        format(Double(bytes) / kernelSeconds / 1e6), format(Double(kernelRows) / kernelSeconds), "—",
      ],
      [
        "Haat, \(workers) workers, submit → report", String(format: "%.2f", haat), format(Double(bytes) / haat / 1e6),
        format(Double(posts + orders) / haat), String(format: "%.2f", haat / max(duck.seconds, 1e-9)),
      ],
    ]
    rows.append([
      "DuckDB \(duck.version), 2 threads", String(format: "%.2f", duck.seconds),
      format(Double(bytes) / duck.seconds / 1e6), format(Double(posts + orders) / duck.seconds), "1.00",
    ])
    say(table(["run", "wall s", "MB/s", "rows/s", "× DuckDB"], rows))
    say(
      "per core: Haat's CSV → kernel path \(format(Double(bytes) / kernelSeconds / 1e6)) MB/s; DuckDB \(format(Double(bytes) / duck.seconds / 2 / 1e6)) MB/s per thread"
    )
    // The figures both computed must agree, or the timing compares different work.
    let haatPosts = report.engagement.total.posts
    let haatOrders = report.attribution.rows.reduce(UInt64(0)) { $0 + $1.orders }
    say("check: posts \(haatPosts) (DuckDB \(duck.posts)), orders \(haatOrders) (DuckDB \(duck.orders))")
    if haatPosts != duck.posts || haatOrders != duck.orders {
      throw BenchError("Haat and DuckDB counted different rows")
    }
  }

  func best(_ body: () throws -> Double) throws -> Double {
    var best = Double.infinity
    for _ in 0..<repeats { best = min(best, try body()) }
    return best
  }

  func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
  }

  func timed(_ body: () throws -> Void) throws -> Double {
    let started = ContinuousClock.now
    try body()
    return (ContinuousClock.now - started).seconds
  }

  func write(_ path: String, header: String, rows: Range<UInt64>, _ row: (UInt64) -> String) throws -> UInt64 {
    // HAAT_BENCH_REUSE=1 keeps the files an earlier run wrote in --directory (to profile a read alone).
    if ProcessInfo.processInfo.environment["HAAT_BENCH_REUSE"] != nil,
      let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? UInt64
    {
      return size
    }
    guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path)
    else { throw BenchError("cannot write \(path)") }
    defer { try? handle.close() }
    var buffer = Array(header.utf8)
    var written: UInt64 = 0
    for index in rows {
      buffer += row(index).utf8
      if buffer.count >= 4 << 20 {
        try handle.write(contentsOf: buffer)
        written += UInt64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
      }
    }
    try handle.write(contentsOf: buffer)
    return written + UInt64(buffer.count)
  }

  func cat(_ paths: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", "cat \"$@\" > /dev/null", "cat"] + paths
    try process.run()
    process.waitUntilExit()
  }

  /// Every file through its canonical connector into the three reports' kernels, on this
  /// thread: the worker's path without the network, the protocol or the coordinator.
  func kernelPath(_ postsPath: String, _ ordersPaths: [String]) throws -> (Double, UInt64) {
    var seconds = Double.infinity
    var rows: UInt64 = 0
    for _ in 0..<repeats {
      var total: UInt64 = 0
      let time = try timed {
        total = try feed(CanonicalExportConnector.self, kind: "posts", postsPath)
        for path in ordersPaths { total += try feed(TableExportConnector<OrdersExport>.self, kind: "orders", path) }
      }
      seconds = min(seconds, time)
      rows = total
    }
    return (seconds, rows)
  }

  func feed<C: Connector>(
    _ type: C.Type, kind: String, _ path: String,
    reports: [String] = ["engagement", "best_time", "attribution"]
  ) throws -> UInt64 {
    var task = TaskSpec()
    task.source.kind = kind
    task.source.url = "file://" + path
    task.reports = reports
    var builder = PartialBuilder(reports: task.reports)
    var connector = C(task: task, limits: ReadLimits())
    guard let handle = FileHandle(forReadingAtPath: path) else { throw BenchError("cannot read \(path)") }
    defer { try? handle.close() }
    try connector.pageStarted(status: 200, contentType: "text/csv")
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
      try chunk.withUnsafeBytes { bytes in
        try connector.feed(bytes, post: { builder.add(post: $0) }, emit: { builder.add($0) })
      }
    }
    _ = try connector.pageEnded(
      PageResponse(status: 200, contentType: "text/csv"), post: { builder.add(post: $0) }, emit: { builder.add($0) })
    let building = ContinuousClock.now
    builder.settle()
    let partial = builder.partial
    let built = ContinuousClock.now - building
    if ProcessInfo.processInfo.environment["HAAT_BENCH_PARTIAL"] != nil {
      // What the partial costs: the time to build it from the kernels, its size in binary (as
      // workers send and the store keeps it), the time to write and read it, to read it into
      // kernels, and to merge it into kernels that hold one already (as the coordinator's
      // EarlyReduce does).
      let started = ContinuousClock.now
      let bytes: [UInt8] = try partial.serializedBytes()
      let encoded = ContinuousClock.now
      if let path = ProcessInfo.processInfo.environment["HAAT_BENCH_PARTIAL_FILE"] {
        try Data(bytes).write(to: URL(fileURLWithPath: "\(path).\(kind).\(reports.joined(separator: "+"))"))
      }
      let read = try Partial(serializedBytes: bytes)
      let decoded = ContinuousClock.now
      var merger = PartialMerger()
      merger.merge(read)
      let first = ContinuousClock.now
      merger.merge(read)
      let merged = ContinuousClock.now
      var report = Report()
      try merger.finish(reports, into: &report)
      let finished = ContinuousClock.now
      let stored = try report.serializedData()
      let times = [
        encoded - started, decoded - encoded, first - decoded, merged - first, finished - merged,
        ContinuousClock.now - finished,
      ].map { String(format: "%.3f", $0.seconds) }
      say(
        "partial \(reports): built from kernels in \(String(format: "%.3f", built.seconds)) s, \(bytes.count) bytes in binary, write \(times[0]) s, read \(times[1]) s, into kernels \(times[2]) s, merged into more \(times[3]) s; report: finish \(times[4]) s, write \(times[5]) s (\(stored.count) bytes)"
      )
    }
    return connector.counts.records
  }

  /// One job over both files on a fresh cluster: its result and the wall time from submit
  /// to the job's end.
  func measure(_ postsPath: String, _ ordersPaths: [String], folder: String) async throws -> (Haat_V1_Result, Double) {
    var options = LocalCluster.Options()
    options.workers = workers
    options.collectSlots = slots
    options.logLevel = ProcessInfo.processInfo.environment["HAAT_BENCH_LOG"] ?? "warning"
    options.leaseMs = 60_000
    options.workerArguments = ["--file-root", folder]
    let cluster = try await LocalCluster.start(options)
    do {
      try await cluster.waitForWorkers(workers)
      let client = try await cluster.client()
      var spec = JobSpec()
      spec.name = "analysis"
      spec.reports = ["engagement", "best_time", "attribution"]
      var posts = Source()
      posts.url = "file://\(postsPath)"
      // One range per worker, rounded up to a MiB, unless told: each range ships a whole
      // best_time grid for the coordinator to merge, and the orders files fill the gaps
      // (two per worker measured 8–15 % slower, 2026-12-01).
      let size = (try? FileManager.default.attributesOfItem(atPath: postsPath)[.size] as? UInt64) ?? 0
      posts.splitBytes = splitBytes ?? (((size / UInt64(max(workers, 1))) >> 20) + 1) << 20
      spec.sources.append(posts)
      for path in ordersPaths {
        var source = Source()
        source.url = "file://\(path)"
        source.kind = "orders"
        source.platform = "web"
        spec.sources.append(source)
      }
      let started = ContinuousClock.now
      let submitted = Int64(Date().timeIntervalSince1970 * 1000)
      let job = try await client.submit(spec).job
      for try await event in client.watch(job) where event.final { break }
      let seconds = (ContinuousClock.now - started).seconds
      let result = try await client.result(job)
      if ProcessInfo.processInfo.environment["HAAT_BENCH_TASKS"] != nil {
        // Where the job's time went: each task's worker, rows, duration and when it ended.
        let detail = try await client.job(job, tasks: true)
        let first = submitted
        say("job: submitted +0 ms, report +\(Int(seconds * 1000)) ms")
        for task in detail.tasks.sorted(by: { $0.updatedMs < $1.updatedMs }) {
          say(
            "task \(task.index) \(task.worker) rows \(task.stats.rows) took \(task.stats.durationMs) ms, ended +\(task.updatedMs - first) ms"
          )
        }
        if ProcessInfo.processInfo.environment["HAAT_BENCH_LOG"] != nil { say(cluster.logs()) }
      }
      await client.close()
      await cluster.stop()
      return (result, seconds)
    } catch {
      say(cluster.logs())
      await cluster.stop()
      throw error
    }
  }

  /// DuckDB over the same files: scripts/analysis/bench-duckdb.py prints its best wall time
  /// and the rows it counted, as JSON.
  func duckdb(_ postsPath: String, _ ordersGlob: String) throws -> (
    seconds: Double, posts: UInt64, orders: UInt64, version: String
  ) {
    guard FileManager.default.isExecutableFile(atPath: python) else {
      throw BenchError("\(python) is missing: scripts/install-deps analysis installs DuckDB there")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = [
      "scripts/analysis/bench-duckdb.py", "--posts", postsPath, "--orders", ordersGlob, "--threads", "2",
      "--repeats", String(repeats),
    ]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0,
      let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
      let seconds = json["seconds"] as? Double, let posts = json["posts"] as? Int, let orders = json["orders"] as? Int
    else { throw BenchError("bench-duckdb.py failed: \(String(decoding: data, as: UTF8.self))") }
    return (seconds, UInt64(posts), UInt64(orders), json["version"] as? String ?? "?")
  }
}

/// Generated canonical orders: 40 % with UTM tags (mixed case, URL-encoded), some with
/// click ids, some with a referrer only, the rest direct; one store, two currencies.
enum OrdersRows {
  static let header = "id,created_at,customer,total,currency,landing_site,referring_site\n"
  static let landings = [
    "/products/tee?utm_source=Facebook&utm_medium=paid_social&utm_campaign=eid%20sale",
    "/?utm_source=instagram&utm_medium=social", "/collections/all?fbclid=IwAR0abc", "/?gclid=Cj0KCQ",
    "/products/kurta?utm_source=tiktok&utm_medium=cpc", "/", "", "/products/tee",
  ]
  static let referrers = [
    "", "https://l.facebook.com/", "https://www.google.com/", "", "https://www.tiktok.com/", "", "",
    "https://l.instagram.com/",
  ]

  static func row(_ index: UInt64) -> String {
    var state = (index &+ 1) &* 0x9E37_79B9_7F4A_7C15 ^ 99
    func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    let day = 1 + next() % 28
    let hour = next() % 24
    let cents = 500 + next() % 50_000
    let currency = next() % 5 == 0 ? "USD" : "BDT"
    let customer = next() % 10 == 0 ? "" : "c\(next() % 300_000)"
    let landing = landings[Int(next() % UInt64(landings.count))]
    let referrer = referrers[Int(next() % UInt64(referrers.count))]
    let dd = day < 10 ? "0\(day)" : "\(day)"
    let hh = hour < 10 ? "0\(hour)" : "\(hour)"
    let fraction = cents % 100 < 10 ? "0\(cents % 100)" : "\(cents % 100)"
    return
      "o\(index),2026-05-\(dd)T\(hh):15:00+06:00,\(customer),\(cents / 100).\(fraction),\(currency),\(landing),\(referrer)\n"
  }
}
