import Foundation
import HaatProtocol
import HaatTesting
import Testing

/// A schedule whose last run was cancelled: its report is of the runs that read, with no
/// source missing for the cancelled tasks (it said "0 of 1 sources" beside the records the
/// other runs read), and shows the newest run that was not cancelled.
@Suite struct CancelledRunScheduleTests {
  @Test func aCancelledLastRunMissesNoSource() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, server in
      let client = try await cluster.client()
      let sample = try #require(try Samples.manifest().first)
      var recurring = spec(
        "cancelled run", [Samples.source(sample, server: server, query: "delay_ms=1500&series=cancelled-run")])
      recurring.every = "1s"
      let first = try await finish(client, try await client.submit(recurring).job)
      #expect(first.job.state == "succeeded")
      _ = try await client.updateSchedule("cancelled run", action: "pause")
      // Every run started before the pause ends; then one more starts, and is cancelled.
      try await eventually("no run of the schedule is open") {
        try await client.job(try await client.schedules()[0].lastJob).finishedMs > 0
      }
      // A run cancelled while it reads (1.5 s); on a loaded machine one may end before its
      // cancel lands: then the next is tried.
      var cancelled: String?
      for _ in 0..<5 where cancelled == nil {
        let runs = try await client.schedules()[0].runs
        _ = try await client.updateSchedule("cancelled run", action: "resume")
        try await eventually("the next run started") { try await client.schedules()[0].runs > runs }
        _ = try await client.updateSchedule("cancelled run", action: "pause")
        let last = try await client.schedules()[0].lastJob
        if (try? await client.cancel(last)) != nil { cancelled = last }
        try await eventually("no run of the schedule is open") {
          try await client.job(try await client.schedules()[0].lastJob).finishedMs > 0
        }
      }
      let last = try #require(cancelled, "no run could be cancelled before it ended")
      try #require(try await client.job(try await client.schedules()[0].lastJob).id == last)
      let report = try await client.scheduleReport("cancelled run")
      #expect(report.report.summary.missing.isEmpty, "\(report.report.summary.missing)")
      #expect(report.report.summary.sourcesOk == report.report.summary.sources)
      let rows = report.report.summary.rows
      #expect(rows > 0 && rows % first.report.summary.rows == 0, "\(report.report.summary)")
      #expect(report.job.state == "succeeded" && report.job.id != last, "\(report.job.id) \(report.job.state)")
    }
  }
}

/// Found by a tester: `haat schedules report NAME --report R` of a schedule whose every
/// run failed printed an empty table and exited 0; `result --report` of a failed job exits
/// 3, saying why. So does this.
@Suite struct FailedScheduleReportTests {
  @Test func aScheduleWhoseRunsAllFailedExits3WithAReport() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, server in
      let client = try await cluster.client()
      var missing = Samples.source(try #require(try Samples.manifest().first), server: server)
      missing.url = "\(server.baseURL)/samples/gone.csv"
      var recurring = spec("all fail", [missing])
      recurring.every = "1h"
      #expect(try await finish(client, try await client.submit(recurring).job).job.state == "failed")
      let common = ["--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory]
      let section = try await run(
        cluster.binary, ["schedules", "report", "all fail", "--report", "engagement"] + common)
      #expect(section.status == 3, "\(section.output)")
      #expect(section.output.contains("ended failed"), "\(section.output)")
      let whole = try await run(cluster.binary, ["schedules", "report", "all fail"] + common)
      #expect(whole.status == 0 && whole.output.contains("ended failed"), "\(whole.output)")
      await client.close()
    }
  }
}
