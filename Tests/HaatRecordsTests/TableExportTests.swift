import Foundation
import HaatProtocol
import Testing

@testable import HaatRecords

private func read<K: TableExportKind>(_ kind: K.Type, _ name: String, chunk: Int) throws -> (
  [CanonicalRecord], ReadCounts
) {
  var task = TaskSpec()
  task.source.kind = K.kind.name
  task.source.url = "http://fixture/\(name)"
  task.source.account = "shop"
  let (records, _, connector) = try drive(
    TableExportConnector<K>.self, task, pages: [task.source.url: CannedPage(body: Array(try fixture(name)))],
    chunk: chunk)
  return (records, connector.counts)
}

@Suite("Reviews and messages exports")
struct TableExportTests {
  @Test("Judge.me's export: stars, dates in three forms, pictures, replies, spam; bad rows with their reason")
  func judgeMe() throws {
    for chunk in [1, 3, 4096] {
      let (records, counts) = try read(ReviewsExport.self, "reviews/judgeme.csv", chunk: chunk)
      let reviews = records.compactMap { record -> ReviewRecord? in
        if case .review(let review) = record { return review }
        return nil
      }
      #expect(reviews.map(\.rating) == [5, 2, 5, 4])
      #expect(reviews.map(\.product) == ["7001", "7002", "7001", "7003"], "product_id wins over product_handle")
      #expect(reviews.map(\.media) == [2, 0, 0, 0])
      #expect(reviews.map(\.replied) == [true, false, false, false])
      #expect(reviews.map(\.status) == ["published", "published", "spam", "published"])
      #expect(reviews.allSatisfy { $0.verified == nil && $0.platform == "web" && $0.account == "shop" })
      #expect(reviews[0].createdAt == Values.Timestamp(epochSeconds: 1_740_910_320, offsetMinutes: 0))
      #expect(reviews[1].createdAt.epochSeconds == 1_785_542_400)
      #expect(reviews[3].createdAt == Values.Timestamp(epochSeconds: 1_741_274_100, offsetMinutes: 360))
      #expect(counts.records == 4 && counts.badRecords == 2)
      #expect(
        counts.problems == [
          RowProblem(row: 4, column: "rating", reason: .outOfRange),
          RowProblem(row: 5, column: "created_at", reason: .missing),
        ])
    }
  }

  @Test("a rating and a media count are whole numbers judged exactly: no rounding, no hex")
  func wholeNumbersExactly() throws {
    let csv = """
      store,rating,created_at,media
      a,0x5,2026-02-01,
      b,4.9999999999999999999,2026-02-01,
      c,5.0000000000000000000001,2026-02-01,
      d,1.0000000000000001,2026-02-01,
      e,5e0,2026-02-01,2.0
      f,+4,2026-02-01,0.2E1
      g,05.00,2026-02-01,1.0000000000000001
      h,3,2026-02-01,0x2
      i,3,2026-02-01,-0
      j,2,2026-02-01,-1

      """
    var reader = TableReader<ReviewsExport>(format: .csv, platform: "web", account: "shop", limits: ReadLimits())
    var reviews: [(String, UInt8, UInt32)] = []
    let keep: (CanonicalRecord) -> Bool = { record in
      if case .review(let review) = record { reviews.append((review.account, review.rating, review.media)) }
      return true
    }
    try Array(csv.utf8).withUnsafeBytes { chunk in
      try reader.feed(chunk, emit: keep)
      try reader.finish(emit: keep)
    }
    #expect(reviews.map(\.1) == [5, 4, 3, 3])
    #expect(reviews.map(\.2) == [2, 2, 0, 0], "0x2 is no number: read as picture URLs, none")
    #expect(
      reader.counts.problems.map { "\($0.row) \($0.column)" } == [
        "1 rating", "2 rating", "3 rating", "4 rating", "7 media", "10 media",
      ])
    #expect(
      Values.wholeNumber("1e100000") == .notWhole
        && Values.wholeNumber("0e99999") == .whole(negative: false, magnitude: 0))
    #expect(Values.wholeNumber("18446744073709551615") == .whole(negative: false, magnitude: .max))
    #expect(Values.wholeNumber("18446744073709551616") == .notWhole)
    #expect(
      Values.wholeNumber("1844674407370955161.5e1") == .whole(negative: false, magnitude: 18_446_744_073_709_551_615))
    for none in ["", ".", "e5", "5e", "5e+", "inf", "nan", "0x5", "5 ", "--5", "5.5.5"] {
      #expect(Values.wholeNumber(none) == nil, "\(none)")
    }
  }

  @Test("Yotpo's columns are matched by name")
  func yotpo() throws {
    let (records, counts) = try read(ReviewsExport.self, "reviews/yotpo.csv", chunk: 5)
    guard case .review(let first) = records.first else { throw ExportError("no review") }
    #expect(records.count == 2 && counts.badRecords == 0)
    #expect(first.rating == 5 && first.product == "P-1" && first.createdAt.epochSeconds == 1_730_557_800)
  }

  @Test("a reviews CSV without a rating column is refused, naming the names it takes")
  func missingColumn() {
    var task = TaskSpec()
    task.source.url = "http://fixture/r.csv"
    #expect {
      _ = try drive(
        TableExportConnector<ReviewsExport>.self, task,
        pages: [task.source.url: CannedPage(body: Array("title,review_date\nx,2025-01-01\n".utf8))])
    } throws: { error in
      (error as? ExportError)?.message.contains("no rating column (one of: rating, review score") == true
    }
  }

  @Test("a conversation export: Meta's +0000, WhatsApp's epoch seconds, bad lines counted with their number")
  func conversations() throws {
    for chunk in [1, 3, 4096] {
      let (records, counts) = try read(MessagesExport.self, "messages/conversations.ndjson", chunk: chunk)
      let messages = records.compactMap { record -> MessageRecord? in
        if case .message(let message) = record { return message }
        return nil
      }
      #expect(messages.map(\.direction) == [.inbound, .outbound, .inbound, .outbound])
      #expect(messages.map(\.conversation) == ["t_1234567890", "t_1234567890", "16505551234", "16505551234"])
      #expect(messages.map(\.at.epochSeconds) == [1_705_314_540, 1_705_314_600, 1_749_416_383, 1_749_416_500])
      #expect(messages[0].platform == "messenger" && messages[0].id == "m_123456" && messages[3].id == "")
      #expect(counts.records == 4 && counts.badRecords == 4)
      #expect(counts.problems.map(\.row) == [6, 7, 8, 9])
      #expect(counts.problems.map(\.reason) == [.notADirection, .invalidTimestamp, .notAnObject, .invalidJSON])
    }
  }

  @Test("loose timestamps: the forms exports write, and nothing else")
  func looseTimestamps() {
    let utc = Values.Timestamp(epochSeconds: 1_325_434_405, offsetMinutes: -300)
    #expect(Values.looseTimestamp("2012-01-01 11:13:25 -0500") == utc)
    #expect(Values.looseTimestamp("2012-01-01T11:13:25-05:00") == utc)
    #expect(Values.looseTimestamp("2012-01-01T16:13:25+0000")?.epochSeconds == utc.epochSeconds)
    #expect(Values.looseTimestamp("2012-01-01 16:13:25")?.epochSeconds == utc.epochSeconds)
    #expect(Values.looseTimestamp("2012-01-01 16:13:25.250 UTC")?.epochSeconds == utc.epochSeconds)
    #expect(Values.looseTimestamp("1325434405")?.epochSeconds == utc.epochSeconds)
    for bad in ["", "yesterday", "2012-13-01", "2012-01-01 25:00:00", "2012-01-01 10:00:00 EST", "12345678901234"] {
      #expect(Values.looseTimestamp(bad) == nil, "\(bad)")
    }
  }

  @Test(
    "media: a whole count or picture URLs; none/N/A/[] are none, a negative count is bad; control characters make a row bad, but not in the reply's text"
  )
  func reviewsMediaAndControls() throws {
    let csv = """
      id,created_at,rating,media,replied
      r1,2026-01-01,5,none,
      r2,2026-01-01,4,N/A,
      r3,2026-01-01,5,"https://cdn.x/a.jpg, https://cdn.x/b.jpg",
      r4,2026-01-01,5,2.0,
      r5,2026-01-01,3,-1,
      r6,2026-01-01,5,[],"Thanks!
      See you"
      r7\u{1B}[2J,2026-01-01,5,,

      """
    var task = TaskSpec()
    task.source.kind = "reviews"
    task.source.url = "http://fixture/reviews.csv"
    for chunk in [1, 7, 4096] {
      let (records, _, connector) = try drive(
        TableExportConnector<ReviewsExport>.self, task, pages: [task.source.url: CannedPage(body: Array(csv.utf8))],
        chunk: chunk)
      let reviews = records.compactMap { record -> ReviewRecord? in
        if case .review(let review) = record { return review }
        return nil
      }
      #expect(reviews.map(\.id) == ["r1", "r2", "r3", "r4", "r6"])
      #expect(reviews.map(\.media) == [0, 0, 2, 2, 0])
      #expect(reviews.last?.replied == true)
      #expect(
        connector.counts.problems == [
          RowProblem(row: 5, column: "media", reason: .outOfRange),
          RowProblem(row: 7, column: "id", reason: .controlCharacter),
        ])
    }
  }
}
