import Foundation
import HaatClient
import HaatCore
import HaatFixtures
import HaatProtocol
import HaatTesting
import Testing

/// One export split into byte ranges read by several workers gives the report one task
/// reading it whole gives: over `file://` and over HTTP, with captions over several lines.
@Suite("Byte range cluster", .serialized)
struct ByteRangeClusterTests {
  @Test func aSplitExportReportsAsTheWholeDoes() async throws {
    let directory = NSTemporaryDirectory() + "haat-ranges-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    // About 4.5 MB: five ranges of 1 MiB.
    let generator = PostsGenerator(seed: 3, accounts: 30, multiline: true)
    var text = PostsGenerator.header
    var rows: UInt64 = 0
    while text.utf8.count < 4_500_000 {
      text += generator.row(rows)
      rows += 1
    }
    let path = directory + "/export.csv"
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))

    let server = try await FixtureServer.start(root: directory)
    defer { Task { try? await server.stop() } }
    var options = LocalCluster.Options.fast(workers: 2)
    // One slot each: the ranges go to both workers.
    options.collectSlots = 1
    options.workerArguments = ["--file-root", directory]
    let cluster = try await LocalCluster.start(options)
    do {
      let client = try await cluster.client()
      func run(_ url: String, split: UInt64) async throws -> (Haat_V1_Result, Haat_V1_Job) {
        var source = Source()
        source.url = url
        source.platform = "facebook"
        source.splitBytes = split
        let job = try await client.submit(spec("ranges", [source])).job
        let result = try await finish(client, job)
        return (result, try await client.job(job, tasks: true))
      }
      let (whole, _) = try await run("file://\(path)", split: 0)
      #expect(whole.report.summary.rows == rows)
      #expect(whole.report.summary.badRows == 0)
      for url in ["file://\(path)", "\(server.baseURL)/files/export.csv"] {
        let (split, job) = try await run(url, split: 1 << 20)
        #expect(split.job.state == "succeeded", "\(url)")
        // The plan task, then one task per range, on both workers.
        #expect(job.tasks.count == 6, "\(url)")
        #expect(Set(job.tasks.dropFirst().map(\.worker)).count == 2, "\(url)")
        #expect(split.report.engagement == whole.report.engagement, "\(url)")
        #expect(split.report.summary.rows == rows)
        #expect(split.report.summary.badRows == 0)
      }
      // `haat submit` says the one task it was planned into adds the ranges (it said "1 task").
      let specPath = directory + "/split.yaml"
      try "name: split\nsources:\n  - url: file://\(path)\n    platform: facebook\n    split_bytes: 1MiB\n"
        .write(toFile: specPath, atomically: true, encoding: .utf8)
      let submitted = try await HaatClusterTests.run(
        cluster.binary,
        ["submit", specPath, "--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory])
      #expect(submitted.status == 0, "\(submitted.output)")
      #expect(
        submitted.output.contains(
          "accepted (1 task; a source with split_bytes adds a task per byte range when it runs)"),
        "\(submitted.output)")
      // A server that ignores Range: the plan task reads the export whole.
      let (ignored, job) = try await run("\(server.baseURL)/files/export.csv?ranges=0", split: 1 << 20)
      #expect(job.tasks.count == 1)
      #expect(ignored.report.engagement == whole.report.engagement)
      await client.close()
      await cluster.stop()
    } catch {
      print(cluster.logs())
      await cluster.stop()
      throw error
    }
  }
}

/// Reviews and conversation exports through a real cluster: read, counted, bad rows
/// reported with their source, row and reason.
@Suite("Reviews and messages cluster", .serialized)
struct TableExportClusterTests {
  /// A cluster of one worker reading `files` (name → text) from a directory of their own.
  static func withFiles(
    _ files: [String: String], _ body: (LocalCluster, _ directory: String) async throws -> Void
  ) async throws {
    let directory = NSTemporaryDirectory() + "haat-tables-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    for (name, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: directory + "/" + name)) }
    var options = LocalCluster.Options.fast(workers: 1)
    options.workerArguments = ["--file-root", directory]
    try await withCluster(options) { cluster, _ in try await body(cluster, directory) }
  }

  @Test func reviewsAndMessagesAreReadAndTheirBadRowsReported() async throws {
    let files = [
      "reviews.csv":
        "title,rating,review_date,product_id,curated\nA,5,2025-03-02 10:12:00 UTC,1,ok\nB,9,2025-03-02,1,ok\n",
      "dms.ndjson": #"""
      {"conversation":"t_1","direction":"inbound","at":"2024-01-15T10:29:00+0000"}
      {"conversation":"t_1","direction":"outbound","at":"1705314600"}
      """#,
    ]
    try await Self.withFiles(files) { cluster, directory in
      let client = try await cluster.client()
      var reviews = Source()
      reviews.kind = "reviews"
      reviews.name = "reviews"
      reviews.url = "file://\(directory)/reviews.csv"
      var messages = Source()
      messages.kind = "messages"
      messages.name = "dms"
      messages.platform = "messenger"
      messages.url = "file://\(directory)/dms.ndjson"
      let job = try await client.submit(spec("tables", [reviews, messages])).job
      let result = try await finish(client, job)
      #expect(result.job.state == "succeeded")
      #expect(result.report.summary.rows == 3)
      #expect(result.report.summary.badRows == 1)
      let error = try #require(result.report.summary.rowErrors.first)
      #expect(
        error.source == "reviews" && error.row == 2 && error.column == "rating" && error.message == "out of range")
      // The job named no report: it gets the one its reviews feed.
      #expect(result.report.reviews.total.reviews == 1 && result.report.reviews.total.stars == [0, 0, 0, 0, 1])
      #expect(!result.report.hasEngagement)
    }
  }

  /// A job whose report could not be made (its sums passed their range) has no section to
  /// print: `haat result --report` says why it ended and exits 3, where it said the job had
  /// not computed the report its spec names.
  @Test func aSectionOfAFailedJobSaysWhyItFailed() async throws {
    let ads =
      "platform,account,date,ad,impressions\nfacebook,E,2026-03-02,a,18446744073709551615\nfacebook,F,2026-03-02,a,1\n"
    try await Self.withFiles(["ads.csv": ads]) { cluster, directory in
      let client = try await cluster.client()
      var source = Source()
      source.kind = "ad_insights"
      source.url = "file://\(directory)/ads.csv"
      var overflowing = spec("overflow", [source])
      overflowing.reports = ["ads"]
      let job = try await client.submit(overflowing).job
      let result = try await finish(client, job)
      await client.close()
      #expect(result.job.state == "failed" && result.job.error.contains("overflow"), "\(result.job)")
      let common = ["--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory]
      for wait in [[], ["--wait"]] {
        let section = try await run(cluster.binary, ["result", job, "--report", "ads"] + wait + common)
        #expect(section.status == 3, "\(section.output)")
        #expect(
          section.output.contains("job \(job) ended failed: overflow") && !section.output.contains("did not compute"),
          "\(section.output)")
      }
    }
  }
}
