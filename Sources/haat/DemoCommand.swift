import ArgumentParser
import Foundation
import HaatAnalytics
import HaatClient
import HaatCore
import HaatFixtures
import HaatProtocol
import HaatTesting
import Synchronization

struct DemoCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "demo",
    abstract: "Run a whole cluster on this machine against the fixture platform server and print the report.",
    // One paragraph: the help wraps it to the terminal (its own line breaks broke lines
    // mid-sentence there, a tester).
    discussion: """
      Starts a coordinator on a temporary SQLite store, worker processes, and an HTTP server \
      that serves the bundled sample exports (thousands of posts over several platforms and \
      accounts); submits a job, shows its progress, prints the engagement and best_time \
      reports, and stops everything.
      """)

  @Option(help: "How many worker processes to start.")
  var workers = 2
  @Flag(help: "Keep the temporary directory (store and logs) for a look afterwards.")
  var keep = false

  struct ManifestEntry: Decodable {
    var file: String
    var platform: String
    var account: String
    var format: String
  }

  func validate() throws {
    guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
  }

  func run() async throws {
    // Errors as every command prints them (`haat: code: message`) with their exit code.
    try await runClient(json: false) { try await runDemo() }
  }

  private func runDemo() async throws {
    guard let samples = FixtureServer.samplesDirectory,
      let manifestData = FileManager.default.contents(atPath: samples.appendingPathComponent("manifest.json").path)
    else { throw HaatError(.notFound, "the bundled sample exports are missing from this build") }
    let manifest = try JSONDecoder().decode([ManifestEntry].self, from: manifestData)

    let directory = NSTemporaryDirectory() + "haat-demo-\(UUID().uuidString)"
    // From here on, Ctrl-C or SIGTERM stops the children and removes the directory (it holds
    // a credential and tokens): the handlers came after the cluster's start, so a signal in
    // its first moments left them behind.
    let stopper = DemoStop(directory: directory, keep: keep)
    let handlers = [(SIGINT, Int32(130)), (SIGTERM, Int32(143))].map { number, status in
      let source = DispatchSource.makeSignalSource(signal: number)
      signal(number, SIG_IGN)
      source.setEventHandler {
        printError("interrupted; stopping the cluster")
        stopper.signalled(status)
      }
      source.resume()
      return source
    }
    defer { handlers.forEach { $0.cancel() } }
    do {
      // Not intermediate directories: a TMPDIR that is not there is a mistake to report.
      try FileManager.default.createDirectory(
        atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
    } catch {
      throw HaatError(
        .unavailable,
        "cannot create the demo's directory \(directory): \(HaatError.systemReason(error)) (TMPDIR names where it goes)"
      )
    }
    let secret = directory + "/meta.secret"
    let server: FixtureServer
    let cluster: LocalCluster
    do {
      // The workers hold the fixture Graph API's token as a named credential, bound to the
      // fixture server; the coordinator and the job only ever see the name `meta`.
      try SecretFile.write(Data("fixture-meta-token".utf8), to: secret)
      server = try await FixtureServer.start()
      var options = LocalCluster.Options()
      options.directory = directory
      options.workers = workers
      options.collectSlots = 2
      options.heartbeatMs = 1_000
      // The fixture's Graph API is not Meta's host: the workers allow it by name.
      let fixture = "http://127.0.0.1:\(server.port)"
      options.workerArguments = ["--credential", "meta=file:\(secret)@\(fixture)", "--allow-host", fixture]
      do {
        cluster = try await LocalCluster.start(options)
      } catch {
        try? await server.stop()
        throw error
      }
    } catch {
      stopper.started(nil)
      try? FileManager.default.removeItem(atPath: directory)
      throw error
    }
    stopper.started(cluster)

    do {
      try await demo(cluster: cluster, server: server, manifest: manifest)
    } catch {
      // A signal's stop closed the coordinator under the job: not an error to report, and
      // the handler ends the process (exit 130 or 143) once the cluster has stopped.
      if stopper.interrupted { try? await Task.sleep(for: .seconds(30)) }
      print("\nsomething went wrong; the processes' last log lines:\n\(cluster.logs())")
      await cluster.stop(keepDirectory: keep)
      if !keep { try? FileManager.default.removeItem(atPath: directory) }
      try? await server.stop()
      throw error
    }
    await cluster.stop(keepDirectory: keep)
    // The directory is the demo's (it holds the credential file): the cluster leaves it.
    if !keep { try? FileManager.default.removeItem(atPath: directory) }
    try? await server.stop()
    let running =
      [cluster.coordinator].compactMap { $0 }.filter(\.isRunning).count
      + (1...workers).compactMap { cluster.worker("worker-\($0)") }.filter(\.isRunning).count
    print(
      running == 0
        ? "Stopped \(plural(workers, "worker")) and the coordinator cleanly."
        : "\(plural(running, "process")) did not stop.")
    if keep { print("Store and logs kept in \(cluster.directory)") }
  }

  private func demo(cluster: LocalCluster, server: FixtureServer, manifest: [ManifestEntry]) async throws {
    let platforms = Set(manifest.map(\.platform)).count
    print(
      """
      Haat demo: a coordinator, \(plural(workers, "worker process")) and the fixture platform server, all on this machine.
        store        \(cluster.dataDirectory)/haat.db (SQLite, WAL, durability full)
        coordinator  \(cluster.endpoint)
        exports      \(server.baseURL)/samples/ (\(manifest.count) files, \(platforms) platforms)
        Graph API    \(server.baseURL)/meta/v21.0 (a fixture of Meta's API: a Facebook Page, an Instagram account)

      """)
    var spec = JobSpec()
    spec.name = "demo engagement"
    spec.reports = ["engagement", "best_time"]
    // The sample server answers each export after a platform-like delay, so progress shows.
    spec.sources = manifest.enumerated().map { index, entry in
      var source = Source()
      source.name = entry.file
      source.platform = entry.platform
      source.account = entry.account
      source.format = entry.format
      source.url = "\(server.baseURL)/samples/\(entry.file)?delay_ms=\(400 + 350 * index)"
      return source
    }
    // Two sources through the platform connectors: paged API calls with the credential.
    for (kind, account) in [("facebook_posts", "dhaka_threads"), ("instagram_media", "karachi_kitchen")] {
      var source = Source()
      source.kind = kind
      source.account = account
      source.url = "\(server.baseURL)/meta/v21.0"
      source.credential = "meta"
      // The Graph API writes UTC; the best hours are the account's own.
      source.timezone = "Asia/Dhaka"
      spec.sources.append(source)
    }
    let client = try await cluster.client()
    let accepted = try await client.submit(spec)
    print(
      "Submitted job \(accepted.job) \"\(spec.name)\": \(accepted.tasks) tasks, one per export and one per Graph API account."
    )
    let result = try await waitForResult(client, job: accepted.job, showProgress: true)
    print(
      "\nEngagement by platform × account × media type (rates are ratios of sums), then the best hours to post:\n")
    print(ReportRendering.table(result.report))
    let workers = try await client.workers()
    print("Workers:")
    for worker in workers {
      print(
        "  \(worker.id): \(worker.state), \(worker.tasksDone) tasks done, \(worker.tasksFailed) failed, RSS \(ReportRendering.bytes(worker.rssBytes)), last heartbeat \(ago(worker.lastHeartbeatMs))"
      )
    }
    await client.close()
    guard result.job.state == "succeeded" else {
      throw HaatError(.internal, "the demo job ended \(result.job.state): \(result.job.error)")
    }
  }
}

/// The demo's stop on a signal: the cluster's processes signalled and waited for (they
/// write in the directory until they end: removed before, a starting coordinator made parts
/// of it again), then the directory removed. A signal before the cluster has started (its
/// processes are not known yet) stops the demo once it has.
private final class DemoStop: Sendable {
  private let state = Mutex<(cluster: LocalCluster?, status: Int32?)>((nil, nil))
  let directory: String
  let keep: Bool

  init(directory: String, keep: Bool) {
    self.directory = directory
    self.keep = keep
  }

  /// A signal came: the handler is stopping the cluster, or will once it has started.
  var interrupted: Bool { state.withLock { $0.status != nil } }

  func signalled(_ status: Int32) {
    let cluster = state.withLock { state -> LocalCluster? in
      if state.status == nil { state.status = status }
      return state.cluster
    }
    if let cluster { stop(cluster, status: status) }
  }

  /// The cluster has started (nil: it will not); stops at once if a signal came before.
  func started(_ cluster: LocalCluster?) {
    let status = state.withLock { state -> Int32? in
      state.cluster = cluster
      return state.status
    }
    if let status { stop(cluster, status: status) }
  }

  private func stop(_ cluster: LocalCluster?, status: Int32) -> Never {
    // A worker drains (finishes its tasks) before it exits, and with its coordinator gone
    // that took until its drain timeout, an orphan meanwhile: 5 s, then SIGKILL. A demo's
    // tasks are worth nothing once the demo is stopped.
    for (signal, seconds) in [(SIGTERM, 5), (SIGKILL, 5)] where cluster?.anyRunning == true {
      cluster?.signalAll(signal)
      let deadline = ContinuousClock.now + .seconds(seconds)
      while cluster?.anyRunning == true, ContinuousClock.now < deadline { usleep(50_000) }
    }
    if !keep { try? FileManager.default.removeItem(atPath: directory) }
    Foundation.exit(status)
  }
}
