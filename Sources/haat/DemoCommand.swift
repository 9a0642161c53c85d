import ArgumentParser
import Foundation
import HaatAnalytics
import HaatClient
import HaatCore
import HaatFixtures
import HaatProtocol
import HaatTesting

struct DemoCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "demo",
    abstract: "Run a whole cluster on this machine against the fixture platform server and print the report.",
    discussion: """
      Starts a coordinator on a temporary SQLite store, worker processes, and an HTTP server
      that serves the bundled sample exports (thousands of posts over several platforms and
      accounts); submits a job, shows its progress, prints the engagement report, and stops
      everything.
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

  func run() async throws {
    guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
    guard let samples = FixtureServer.samplesDirectory,
      let manifestData = FileManager.default.contents(atPath: samples.appendingPathComponent("manifest.json").path)
    else { throw HaatError(.notFound, "the bundled sample exports are missing from this build") }
    let manifest = try JSONDecoder().decode([ManifestEntry].self, from: manifestData)

    let server = try await FixtureServer.start()
    // The workers hold the fixture Graph API's token as a named credential, bound to the
    // fixture server; the coordinator and the job only ever see the name `meta`.
    let directory = NSTemporaryDirectory() + "haat-demo-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let secret = directory + "/meta.secret"
    try SecretFile.write(Data("fixture-meta-token".utf8), to: secret)
    var options = LocalCluster.Options()
    options.directory = directory
    options.workers = workers
    options.collectSlots = 2
    options.heartbeatMs = 1_000
    // The fixture's Graph API is not Meta's host: the workers allow it by name.
    let fixture = "http://127.0.0.1:\(server.port)"
    options.workerArguments = ["--credential", "meta=file:\(secret)@\(fixture)", "--allow-host", fixture]
    let cluster: LocalCluster
    do {
      cluster = try await LocalCluster.start(options)
    } catch {
      try? FileManager.default.removeItem(atPath: directory)
      try? await server.stop()
      throw error
    }
    // A Ctrl-C stops the children too (they also exit on their own when this process ends).
    let interrupt = DispatchSource.makeSignalSource(signal: SIGINT)
    signal(SIGINT, SIG_IGN)
    interrupt.setEventHandler {
      printError("interrupted; stopping the cluster")
      cluster.signalAll(SIGTERM)  // and each child also exits once this process is gone
      if !keep { try? FileManager.default.removeItem(atPath: directory) }
      Foundation.exit(130)
    }
    interrupt.resume()

    do {
      try await demo(cluster: cluster, server: server, manifest: manifest)
    } catch {
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
      running == 0 ? "Stopped \(workers) workers and the coordinator cleanly." : "\(running) processes did not stop.")
    if keep { print("Store and logs kept in \(cluster.directory)") }
  }

  private func demo(cluster: LocalCluster, server: FixtureServer, manifest: [ManifestEntry]) async throws {
    let platforms = Set(manifest.map(\.platform)).count
    print(
      """
      Haat demo: a coordinator, \(workers) worker processes and the fixture platform server, all on this machine.
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
