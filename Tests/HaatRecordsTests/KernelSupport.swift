import Foundation
import HaatAnalytics
import HaatProtocol
import HaatRecords

/// Runs heavy synchronous work on a GCD thread, not on the cooperative pool the tests run
/// on: on 2 cores that pool has 2 threads, and two long tests holding both starved the
/// cluster tests beside them, whose 30-second waits for a coordinator then ran out unpolled.
/// Expectations stay in the test (an issue recorded off the test's task is not its).
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
  }
}

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
