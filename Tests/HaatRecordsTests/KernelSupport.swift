import Foundation
import HaatAnalytics
import HaatProtocol
import HaatRecords

/// A post at an RFC 3339 time, for the kernels that read when it was posted.
func timedPost(
  _ iso: String, platform: String = "instagram", account: String = "a", media: MediaType = .image,
  likes: UInt64?, reach: UInt64? = nil
) -> CanonicalRecord {
  var bytes = Array(iso.utf8)
  let time =
    bytes.withUnsafeMutableBytes { Values.timestamp(UnsafeRawBufferPointer($0)) }
    ?? Values.Timestamp(epochSeconds: 0, offsetMinutes: 0)
  var post = PostRecord(
    platform: platform, account: account, id: iso, createdAt: time, mediaType: media)
  post.likes = likes
  post.reach = reach
  return .post(post)
}

/// One report over the records, built as `parts` tasks would (records dealt round-robin),
/// each partial through its JSON wire form, merged in reverse and finished.
func finishedReport(
  _ name: String, of records: [CanonicalRecord], timezone: String = "", parts: Int = 1
) throws -> Report {
  var builders = (0..<parts).map { _ in PartialBuilder(reports: [name], context: ReportContext(timezone: timezone)) }
  for (index, record) in records.enumerated() { builders[index % parts].add(record) }
  var merger = PartialMerger()
  for builder in builders.reversed() {
    merger.merge(try Partial(jsonUTF8Data: builder.partial.jsonUTF8Data()))
  }
  var report = Report()
  try merger.finish([name], into: &report)
  return report
}
