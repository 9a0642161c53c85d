import Testing

@testable import HaatCoordinator

/// Found by a tester: a finished job's page read and drew its whole report every second it
/// was open. Its report part is kept while the job stays finished as it was.
@Suite("Dashboard cache")
struct DashboardCacheTests {
  @Test func aFinishedJobsReportPartIsKeptForItsVersionOnly() async {
    let cache = DashboardCache()
    var part = Dashboard.ReportPart()
    part.summary = "12 records"
    await cache.keep("job 1", version: "succeeded 100", part)
    #expect(await cache.finished("job 1", version: "succeeded 100")?.summary == "12 records")
    // Retried and finished again: made anew.
    #expect(await cache.finished("job 1", version: "succeeded 200") == nil)
    #expect(await cache.finished("job 2", version: "succeeded 100") == nil)
  }

  @Test func theKeptPartsAreBounded() async {
    let cache = DashboardCache()
    for job in 0...DashboardCache.maxFinished {
      await cache.keep("job \(job)", version: "v", Dashboard.ReportPart())
    }
    var kept = 0
    for job in 0...DashboardCache.maxFinished where await cache.finished("job \(job)", version: "v") != nil {
      kept += 1
    }
    #expect(kept >= 1 && kept <= DashboardCache.maxFinished)
  }
}
