import HaatProtocol

/// The engagement report as a table (terminal) and as CSV.
extension EngagementKernel {
  public static func table(of report: Report) -> ReportTable? {
    guard report.hasEngagement else { return nil }
    let rows = report.engagement.rows + [report.engagement.total]
    let columns = [
      "platform", "account", "media", "posts", "likes", "comments", "shares", "saves", "reach",
      "impressions", "clicks", "ER reach", "ER impr", "CTR",
    ]
    let group = ReportRendering.group
    let percent = ReportRendering.percent
    return ReportTable(
      columns: columns,
      rows: rows.map { row in
        // A count no post of the row stated is not shown as 0 (a count of none).
        let unstated = Set(row.unstated)
        func count(_ name: String, _ value: UInt64) -> String { unstated.contains(name) ? "–" : group(value) }
        return [
          row.platform, row.account, row.mediaType, group(row.posts), count("likes", row.likes),
          count("comments", row.comments), count("shares", row.shares), count("saves", row.saves),
          count("reach", row.reach), count("impressions", row.impressions), count("clicks", row.clicks),
          row.hasEngagementRateReach ? percent(row.engagementRateReach) : "–",
          row.hasEngagementRateImpressions ? percent(row.engagementRateImpressions) : "–",
          row.hasCtr ? percent(row.ctr) : "–",
        ]
      },
      numeric: Set(3..<columns.count), totalLast: true,
      csvColumns: [
        "platform", "account", "media_type", "posts", "likes", "comments", "shares", "saves", "reach",
        "impressions", "clicks", "video_views", "engagements", "engagement_rate_reach",
        "engagement_rate_impressions", "ctr", "median_rate_reach", "median_rate_impressions",
      ],
      csvRows: rows.map { row in
        let unstated = Set(row.unstated)
        func count(_ name: String, _ value: UInt64) -> String { unstated.contains(name) ? "" : String(value) }
        return [
          row.platform, row.account, row.mediaType, String(row.posts), count("likes", row.likes),
          count("comments", row.comments), count("shares", row.shares), count("saves", row.saves),
          count("reach", row.reach), count("impressions", row.impressions), count("clicks", row.clicks),
          count("video_views", row.videoViews), String(row.engagements),
          row.hasEngagementRateReach ? String(row.engagementRateReach) : "",
          row.hasEngagementRateImpressions ? String(row.engagementRateImpressions) : "",
          row.hasCtr ? String(row.ctr) : "",
          row.hasMedianRateReach ? String(row.medianRateReach) : "",
          row.hasMedianRateImpressions ? String(row.medianRateImpressions) : "",
        ]
      },
      csvText: [0, 1, 2])
  }
}
