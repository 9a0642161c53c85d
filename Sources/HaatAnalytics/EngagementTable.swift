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
        // likes … clicks (the table has no video views column).
        [row.platform, row.account, row.mediaType, group(row.posts)]
          + counts(row, none: "–", shown: group).dropLast()
          + [
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
        [row.platform, row.account, row.mediaType, String(row.posts)]
          + counts(row, none: "", shown: { String($0) }) + [
            String(row.engagements),
            row.hasEngagementRateReach ? String(row.engagementRateReach) : "",
            row.hasEngagementRateImpressions ? String(row.engagementRateImpressions) : "",
            row.hasCtr ? String(row.ctr) : "",
            row.hasMedianRateReach ? String(row.medianRateReach) : "",
            row.hasMedianRateImpressions ? String(row.medianRateImpressions) : "",
          ]
      },
      csvText: [0, 1, 2])
  }

  /// The row's counts in the wire's order (likes … video_views): `none` for a count no post
  /// of the row stated, which is not a count of 0.
  static func counts(_ row: Haat_V1_EngagementRow, none: String, shown: (UInt64) -> String) -> [String] {
    let unstated = Set(row.unstated)
    let values = [
      row.likes, row.comments, row.shares, row.saves, row.reach, row.impressions, row.clicks, row.videoViews,
    ]
    return zip(Counts.named, values).map { named, value in unstated.contains(named.1) ? none : shown(value) }
  }
}
