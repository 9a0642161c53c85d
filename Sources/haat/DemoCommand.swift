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
    abstract: "Run a whole cluster on this machine against bundled sample exports and print the report.",
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
    var options = LocalCluster.Options()
    options.workers = workers
    options.collectSlots = 2
    options.heartbeatMs = 1_000
    let cluster: LocalCluster
    do {
      cluster = try await LocalCluster.start(options)
    } catch {
      try? await server.stop()
      throw error
    }
    // A Ctrl-C stops the children too (they also exit on their own when this process ends).
    let interrupt = DispatchSource.makeSignalSource(signal: SIGINT)
    signal(SIGINT, SIG_IGN)
    interrupt.setEventHandler {
      printError("interrupted; stopping the cluster")
      cluster.signalAll(SIGTERM)  // and each child also exits once this process is gone
      Foundation.exit(130)
    }
    interrupt.resume()

    do {
      try await demo(cluster: cluster, server: server, manifest: manifest)
    } catch {
      print("\nsomething went wrong; the processes' last log lines:\n\(cluster.logs())")
      await cluster.stop(keepDirectory: keep)
      try? await server.stop()
      throw error
    }
    await cluster.stop(keepDirectory: keep)
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
    let accounts = Set(manifest.map(\.account)).count
    print(
      """
      Haat demo: a coordinator, \(workers) worker processes and a sample export server, all on this machine.
        store        \(cluster.dataDirectory)/haat.db (SQLite, WAL, durability full)
        coordinator  \(cluster.endpoint)
        exports      \(server.baseURL)/samples/ (\(manifest.count) files, \(platforms) platforms, \(accounts) accounts)

      """)
    var spec = JobSpec()
    spec.name = "demo engagement"
    spec.reports = [ReportName.engagement.rawValue]
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
    let client = try await cluster.client()
    let accepted = try await client.submit(spec)
    print("Submitted job \(accepted.job) \"\(spec.name)\": \(accepted.tasks) tasks, one per export.")
    let result = try await waitForResult(client, job: accepted.job, showProgress: true)
    print("\nEngagement by platform × account × media type (rates are ratios of sums):\n")
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
