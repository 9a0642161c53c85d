import Foundation
import HaatAnalytics
import HaatProtocol
import Testing

@testable import HaatRecords

@Suite("Reviews report")
struct ReviewsKernelTests {
  static func review(
    _ rating: UInt8, day: Int64, media: UInt32 = 0, verified: Bool? = nil, replied: Bool = false,
    status: String = "published", account: String = "shop"
  ) -> CanonicalRecord {
    .review(
      ReviewRecord(
        platform: "web", account: account, id: "",
        createdAt: Values.Timestamp(epochSeconds: day * 86_400 + 3_600, offsetMinutes: 0),
        rating: rating, product: "p", verified: verified, media: media, replied: replied, status: status))
  }

  static func report(_ builders: [PartialBuilder]) throws -> Report {
    var merger = PartialMerger()
    for builder in builders { merger.merge(builder.partial) }
    var report = Report()
    try merger.finish(["reviews"], into: &report)
    return report
  }

  @Test("counts by star, the mean, the share of 4–5★ with its Wilson bound, media, verified, replied, per week")
  func figures() throws {
    var builder = PartialBuilder(reports: ["reviews"])
    // Ten reviews over days 0..13: 5,5,5,5,5,4,4,4,2,1 (8 positive).
    for (index, rating) in [5, 5, 5, 5, 5, 4, 4, 4, 2, 1].enumerated() {
      builder.add(
        Self.review(
          UInt8(rating), day: Int64(index == 9 ? 13 : index), media: index < 3 ? 2 : 0,
          verified: index < 4 ? true : index < 6 ? false : nil, replied: index % 2 == 0))
    }
    builder.add(Self.review(5, day: 20, status: "spam"))
    let row = try Self.report([builder]).reviews.rows[0]
    #expect(row.reviews == 10 && row.hidden == 1 && row.stars == [1, 1, 0, 3, 5])
    #expect(abs(row.meanRating - 4.0) < 1e-12)
    #expect(abs(row.sharePositive - 0.8) < 1e-12)
    // The 95 % Wilson lower bound of 8 of 10 (z = 1.96): 0.4902.
    #expect(abs(row.positiveLowerBound - 0.490_16) < 1e-4)
    #expect(abs(row.shareWithMedia - 0.3) < 1e-12 && abs(row.shareReplied - 0.5) < 1e-12)
    #expect(abs(row.shareVerified - 4.0 / 6.0) < 1e-12, "of the reviews whose flag is known")
    #expect(abs(row.perWeek - 10.0 * 7 / 14) < 1e-12 && row.first == "1970-01-01" && row.last == "1970-01-14")
  }

  @Test("merging in any order gives the one-pass report; a lone review has no pace")
  func mergeLaw() throws {
    var reviews: [CanonicalRecord] = []
    for index in 0..<40 {
      let account = index % 3 == 0 ? "a" : "b"
      reviews.append(Self.review(UInt8(1 + index % 5), day: Int64(index), account: account))
    }
    var whole = PartialBuilder(reports: ["reviews"])
    for review in reviews { whole.add(review) }
    var parts = [
      PartialBuilder(reports: ["reviews"]), PartialBuilder(reports: ["reviews"]), PartialBuilder(reports: ["reviews"]),
    ]
    for (index, review) in reviews.enumerated() { parts[index * 7 % 3].add(review) }
    let one = try Self.report([whole])
    #expect(try Self.report(parts) == one)
    #expect(try Self.report(parts.reversed() + [PartialBuilder(reports: ["reviews"])]) == one)
    var lone = PartialBuilder(reports: ["reviews"])
    lone.add(Self.review(3, day: 5))
    let row = try Self.report([lone]).reviews.total
    #expect(row.reviews == 1 && !row.hasPerWeek && row.hasMeanRating)
    #expect(ReportRendering.table(try Self.report([lone])).contains("per week"))
  }

  @Test("a review before the year 1000 writes its days with four-digit years, as formats.md does")
  func earlyYears() throws {
    var builder = PartialBuilder(reports: ["reviews"])
    // 0999-03-01 and 0001-01-01 (days before 1970-01-01).
    let days: [Int64] = [-354_591, -719_162]
    for day in days { builder.add(Self.review(5, day: day)) }
    let row = try Self.report([builder]).reviews.rows[0]
    #expect(row.first == "0001-01-01" && row.last == "0999-03-01", "\(row.first) … \(row.last)")
  }
}
