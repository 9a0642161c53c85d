import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatRecords
import Testing

/// Issue 10, defect 5: sums never wrap. A row whose counts would take a sum past 2^64 − 1
/// is a bad row (`out of range`); a merge that passes it fails the report, saying so.
@Suite struct OverflowTests {
  @Test func aRowThatWouldWrapASumIsABadRow() throws {
    let csv = """
      platform,account,id,created_at,media_type,likes,reach
      instagram,a,1,2026-03-01T18:30:00Z,image,18446744073709551615,100
      instagram,a,2,2026-03-01T18:31:00Z,image,7,100
      instagram,a,3,2026-03-01T18:32:00Z,image,0,100

      """
    var reader = PostsReader(format: .csv, defaultPlatform: "", defaultAccount: "")
    var builder = PartialBuilder(reports: ["engagement"])
    try Array(csv.utf8).withUnsafeBytes { try reader.feed($0, accepting: { builder.add(.post($0)) }) }
    try reader.finish(accepting: { builder.add(.post($0)) })
    #expect(reader.posts == 2)  // rows 1 and 3
    #expect(reader.badRows == 1)
    #expect(reader.problems.first?.row == 2)
    #expect(reader.problems.first?.reason == .outOfRange)
    let report = EngagementKernel(partial: builder.partial.engagement).finish()
    let image = try #require(report.rows.first { $0.mediaType == "image" })
    #expect(image.likes == 18_446_744_073_709_551_615)
    #expect(image.posts == 2)
    // 2^64 − 1 likes over 200 reach; a wrapped sum gave 6 likes and a rate of 622.5 before.
    #expect(image.engagementRateReach > 9e16)
  }

  /// Engagements (likes + comments + shares + saves) of one post can pass 2^64 − 1 too.
  @Test func aPostWhoseEngagementsWrapIsRefused() {
    var big = post(1)
    (big.likes, big.comments) = (UInt64.max, 1)
    var kernel = EngagementKernel()
    let added = kernel.add(big)
    #expect(!added)
    #expect(kernel.cells.isEmpty)
  }

  @Test func anOverflowingMergeFailsTheReport() throws {
    var one = post(1)
    one.likes = UInt64.max - 1
    var a = EngagementKernel()
    var b = EngagementKernel()
    let addedA = a.add(one)
    let addedB = b.add(one)
    #expect(addedA && addedB)
    let tasks = [a, b].enumerated().map { index, kernel in
      var partial = Partial()
      partial.engagement = kernel.partial
      return ReportReducer.TaskResult(
        task: String(index), source: "s\(index)", done: true, partial: partial, stats: nil, error: nil)
    }
    do {
      _ = try ReportReducer.reduce(job: "1", reports: ["engagement"], tasks: tasks)
      Issue.record("a wrapped report was made")
    } catch {
      #expect(error.code == .overflow)
      #expect(error.message.contains("18446744073709551615"))
    }
    // The same partials in one task's message merge (repeated keys) and overflow as well.
    var both = Partial()
    both.engagement.cells = a.partial.cells + b.partial.cells
    #expect(EngagementKernel(partial: both.engagement).overflowed)
  }

  /// The summary's row and byte counts are sums over tasks too: they do not wrap either.
  @Test func summaryCountsDoNotWrap() {
    var stats = TaskStats()
    stats.rows = UInt64.max - 1
    let tasks = (0..<2).map { index in
      ReportReducer.TaskResult(
        task: String(index), source: "s", done: true, partial: nil, stats: stats, error: nil)
    }
    #expect(throws: HaatError.self) { try ReportReducer.reduce(job: "1", reports: [], tasks: tasks) }
  }
}
