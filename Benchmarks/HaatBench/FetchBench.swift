import ArgumentParser
import Dispatch
import Foundation
import HaatFetch
import Synchronization

/// The fetch path alone — HaatFetch into a sink that discards — against the `curl` command
/// with the same concurrency, on the same local nginx, in one run: one large file, and many
/// small ones one after another and `--parallel` at a worker's pool size.
struct Fetch: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "The fetch path (HaatFetch, discarding the body) against curl, on a local nginx.")

  @Option(help: "The large file's size in bytes.")
  var largeBytes = 200_000_000
  @Option(help: "How many small files.")
  var smallFiles = 1_000
  @Option(help: "Each small file's size in bytes.")
  var smallBytes = 10_000
  @Option(help: "Fetches at once in the parallel case (a worker's collect pool: 4).")
  var parallel = 4
  @Option(help: "Measured repetitions per case; the best is reported.")
  var repeats = 3

  func run() async throws {
    let directory = NSTemporaryDirectory() + "haat-bench-fetch-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory + "/www/small", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try writeFiles(directory + "/www")
    let nginx = try Nginx.start(directory: directory)
    defer { nginx.stop() }
    let base = "http://127.0.0.1:\(nginx.port)"
    let large = base + "/large.bin"
    let small = (0..<smallFiles).map { "\(base)/small/\($0).bin" }
    say(
      "fetch: nginx on loopback; \(largeBytes / 1_000_000) MB file, \(smallFiles) × \(smallBytes / 1000) kB files; best of \(repeats); \(ProcessInfo.processInfo.activeProcessorCount) cores"
    )
    say("haat: HaatFetch (libcurl, release build) into a sink that discards; peer: curl \(curlVersion())")

    var policy = FetchPolicy()
    policy.allowPrivateNetworks = true
    let fetcher = Fetcher(policy: policy)
    var rows: [[String]] = []
    func measure(_ name: String, haat: () throws -> Void, curl: () throws -> Void) throws {
      let haatSeconds = try best { try haat() }
      let curlSeconds = try best { try curl() }
      // The ratio is Haat's throughput over curl's: ≥ 1 means Haat is as fast or faster.
      rows.append([
        name, String(format: "%.3f", curlSeconds), String(format: "%.3f", haatSeconds),
        String(format: "%.2f", curlSeconds / haatSeconds),
      ])
      say("  \(rows.last?.joined(separator: "  ") ?? "")")
    }
    try measure(
      "1 × \(largeBytes / 1_000_000) MB",
      haat: { try fetchAll([large], fetcher: fetcher, expected: UInt64(largeBytes)) },
      curl: { try runCurl([large], parallel: 1, directory: directory) })
    try measure(
      "\(smallFiles) × \(smallBytes / 1000) kB, sequential",
      haat: { try fetchAll(small, fetcher: fetcher, expected: UInt64(smallBytes) * UInt64(smallFiles)) },
      curl: { try runCurl(small, parallel: 1, directory: directory) })
    try measure(
      "\(smallFiles) × \(smallBytes / 1000) kB, \(parallel) at once",
      haat: {
        try fetchAll(
          small, fetcher: fetcher, expected: UInt64(smallBytes) * UInt64(smallFiles), parallel: parallel)
      },
      curl: { try runCurl(small, parallel: parallel, directory: directory) })
    fetcher.shutdown()
    say("\n" + table(["case", "curl s", "haat s", "ratio"], rows))
    say("ratio: curl's time over Haat's (Haat's throughput relative to curl's); target ≥ 0.9")
  }

  private func writeFiles(_ root: String) throws {
    // Bytes that do not compress, so neither side can win by compression.
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func chunk(_ count: Int) -> Data {
      var bytes = [UInt8](repeating: 0, count: count)
      for index in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        bytes[index] = UInt8(truncatingIfNeeded: state)
      }
      return Data(bytes)
    }
    let block = chunk(1 << 20)
    guard FileManager.default.createFile(atPath: root + "/large.bin", contents: nil),
      let handle = FileHandle(forWritingAtPath: root + "/large.bin")
    else { throw BenchError("cannot write \(root)/large.bin") }
    var written = 0
    while written < largeBytes {
      let piece = block.prefix(largeBytes - written)
      handle.write(piece)
      written += piece.count
    }
    try handle.close()
    for index in 0..<smallFiles {
      try chunk(smallBytes).write(to: URL(fileURLWithPath: "\(root)/small/\(index).bin"))
    }
  }

  private func best(_ body: () throws -> Void) throws -> Double {
    var seconds = Double.infinity
    for _ in 0..<max(1, repeats) {
      let started = ContinuousClock.now
      try body()
      seconds = min(seconds, (ContinuousClock.now - started).seconds)
    }
    return seconds
  }

  /// Fetches every URL, `parallel` at once (threads, as a worker's pool runs tasks), and
  /// checks every byte arrived.
  private func fetchAll(_ urls: [String], fetcher: Fetcher, expected: UInt64, parallel: Int = 1) throws {
    let total = Atomic<UInt64>(0)
    let failure = Mutex<String?>(nil)
    DispatchQueue.concurrentPerform(iterations: max(1, parallel)) { lane in
      for index in stride(from: lane, to: urls.count, by: max(1, parallel)) {
        do {
          let response = try fetcher.fetch(FetchRequest(url: urls[index])) { _ in }
          total.add(response.bodyBytes, ordering: .relaxed)
        } catch {
          failure.withLock { $0 = "\(urls[index]): \(error)" }
          return
        }
      }
    }
    if let failure = failure.withLock({ $0 }) { throw BenchError(failure) }
    guard total.load(ordering: .relaxed) == expected else {
      throw BenchError("Haat fetched \(total.load(ordering: .relaxed)) bytes, not \(expected)")
    }
  }

  /// One curl process for all the URLs (it reuses connections, as Haat does), bodies to
  /// /dev/null, `--parallel` when more than one at once.
  private func runCurl(_ urls: [String], parallel: Int, directory: String) throws {
    let config = directory + "/curl.config"
    let lines = urls.map { "url = \"\($0)\"\noutput = \"/dev/null\"\n" }.joined()
    try lines.write(toFile: config, atomically: true, encoding: .utf8)
    var arguments = ["curl", "-s", "-f", "-K", config]
    if parallel > 1 { arguments += ["--parallel", "--parallel-max", String(parallel)] }
    let status = try spawnAndWait("/usr/bin/curl", arguments)
    guard status == 0 else { throw BenchError("curl exited \(status)") }
  }

  /// posix_spawn and a blocking waitpid: Foundation's Process waits by polling, which would
  /// add tens of milliseconds to curl's time.
  private func spawnAndWait(_ path: String, _ arguments: [String]) throws -> Int32 {
    var pid: pid_t = 0
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let result = posix_spawn(&pid, path, &actions, nil, &argv, environ)
    guard result == 0 else { throw BenchError("cannot start \(path): \(String(cString: strerror(result)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
  }

  private func curlVersion() -> String {
    let process = Process()
    let pipe = Pipe()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["--version"]
    process.standardOutput = pipe
    guard (try? process.run()) != nil else { return "?" }
    process.waitUntilExit()
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return text.split(separator: " ").dropFirst().first.map(String.init) ?? "?"
  }
}

/// nginx serving a directory on loopback, as a child process with its own config.
struct Nginx {
  let process: Process
  let port: Int

  static func start(directory: String) throws -> Nginx {
    guard let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"].first(where: FileManager.default.isExecutableFile)
    else { throw BenchError("nginx is not installed (scripts/install-deps fetch installs it)") }
    for attempt in 0..<20 {
      let port = 20_000 + Int.random(in: 0..<20_000) + attempt
      let config = """
        daemon off;
        worker_processes 1;
        pid \(directory)/nginx.pid;
        error_log \(directory)/nginx-error.log;
        events { worker_connections 1024; }
        http {
          access_log off;
          sendfile on;
          tcp_nopush on;
          keepalive_requests 1000000;
          default_type application/octet-stream;
          client_body_temp_path \(directory)/tmp;
          proxy_temp_path \(directory)/tmp;
          fastcgi_temp_path \(directory)/tmp;
          uwsgi_temp_path \(directory)/tmp;
          scgi_temp_path \(directory)/tmp;
          server { listen 127.0.0.1:\(port); root \(directory)/www; }
        }
        """
      try FileManager.default.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true)
      try config.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
      let process = Process()
      process.executableURL = URL(fileURLWithPath: binary)
      process.arguments = ["-c", directory + "/nginx.conf", "-p", directory, "-e", directory + "/nginx-error.log"]
      process.standardError = FileHandle.nullDevice
      try process.run()
      // Listening, or gone because the port was taken.
      let deadline = ContinuousClock.now + .seconds(5)
      while ContinuousClock.now < deadline, process.isRunning {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        probe.arguments = ["-s", "-f", "-o", "/dev/null", "http://127.0.0.1:\(port)/small/0.bin"]
        if (try? probe.run()) != nil {
          probe.waitUntilExit()
          if probe.terminationStatus == 0 { return Nginx(process: process, port: port) }
        }
        Thread.sleep(forTimeInterval: 0.05)
      }
      if process.isRunning { process.terminate() }
    }
    throw BenchError("nginx did not start (see its error log)")
  }

  func stop() {
    if process.isRunning {
      process.terminate()
      process.waitUntilExit()
    }
  }
}
