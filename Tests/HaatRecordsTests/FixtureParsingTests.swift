import Foundation
import HaatRecords
import Testing

/// The quirk fixtures and their expected parse, written by the independent Python
/// reference (scripts/gen-parser-fixtures.py).
struct Expected: Decodable {
  struct Row: Decodable {
    var platform: String
    var account: String
    var id: String
    var created_at: String
    var media_type: String
    var likes: UInt64?
    var comments: UInt64?
    var shares: UInt64?
    var saves: UInt64?
    var reach: UInt64?
    var impressions: UInt64?
    var video_views: UInt64?
    var clicks: UInt64?
    var followers_at_post: UInt64?
  }
  struct Bad: Decodable, Equatable {
    var row: UInt64
    var column: String
    var reason: String
  }
  var rows: [Row]
  var bad_rows: [Bad]
}

func fixture(_ name: String) throws -> Data {
  guard let url = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil) else {
    throw ExportError("missing fixture \(name)")
  }
  return try Data(contentsOf: url)
}

/// Parses `data` fed in pieces of `chunk` bytes.
func parse(_ data: Data, format: ExportFormat, chunk: Int, platform: String = "facebook", account: String = "fixture")
  throws -> (posts: [PostRecord], reader: PostsReader)
{
  var reader = PostsReader(format: format, defaultPlatform: platform, defaultAccount: account, maxRowProblems: 1000)
  var posts: [PostRecord] = []
  let bytes = [UInt8](data)
  var offset = 0
  repeat {
    let end = min(bytes.count, offset + chunk)
    try bytes[offset..<end].withUnsafeBytes { raw in try reader.feed(raw) { posts.append($0) } }
    offset = end
  } while offset < bytes.count
  try reader.finish { posts.append($0) }
  return (posts, reader)
}

@Suite("Canonical exports match the reference parser")
struct FixtureParsingTests {
  static let fixtures = [
    "bom-crlf.csv", "quoted-multiline.csv", "unicode.csv", "grouped-numbers.csv",
    "missing-columns.csv", "bad-rows.csv", "posts.ndjson",
  ]

  @Test(arguments: fixtures, [1, 2, 3, 7, 64, 1 << 20])
  func matchesReference(name: String, chunk: Int) throws {
    let data = try fixture(name)
    let base = name.split(separator: ".").first.map(String.init) ?? name
    let expected = try JSONDecoder().decode(Expected.self, from: try fixture("\(base).expected.json"))
    let format: ExportFormat = name.hasSuffix(".csv") ? .csv : .ndjson
    let (posts, reader) = try parse(data, format: format, chunk: chunk)

    #expect(posts.count == expected.rows.count)
    for (post, row) in zip(posts, expected.rows) {
      #expect(post.platform == row.platform)
      #expect(post.account == row.account)
      #expect(post.id == row.id)
      #expect(post.createdAt == Array(row.created_at.utf8).withUnsafeBytes { Values.timestamp($0) })
      #expect(post.mediaType.rawValue == row.media_type)
      #expect(post.likes == row.likes)
      #expect(post.comments == row.comments)
      #expect(post.shares == row.shares)
      #expect(post.saves == row.saves)
      #expect(post.reach == row.reach)
      #expect(post.impressions == row.impressions)
      #expect(post.videoViews == row.video_views)
      #expect(post.clicks == row.clicks)
      #expect(post.followersAtPost == row.followers_at_post)
    }
    let bad = reader.problems.map { Expected.Bad(row: $0.row, column: $0.column, reason: $0.reason.rawValue) }
    #expect(bad == expected.bad_rows)
    #expect(reader.badRows == UInt64(expected.bad_rows.count))
    #expect(reader.posts == UInt64(expected.rows.count))
  }

  @Test func notUTF8RejectsTheFile() throws {
    let data = Data("id,created_at\n1,2026-01-01T00:00:00Z\n\u{1}".utf8) + Data([0xC3, 0x28, 0x0A])
    #expect(throws: ExportError.self) { try parse(data, format: .csv, chunk: 5) }
  }

  @Test func headerWithoutIDRejectsTheFile() throws {
    let error = #expect(throws: ExportError.self) {
      try parse(Data("platform,created_at\nx,2026-01-01T00:00:00Z\n".utf8), format: .csv, chunk: 3)
    }
    #expect(error?.message.contains("id") == true)
  }

  @Test func recordsLongerThanTheLimitAreBadRowsNotMemory() throws {
    var text = "id,created_at,caption\n1,2026-01-01T00:00:00Z,\"" + String(repeating: "x", count: 3000) + "\"\n"
    text += "2,2026-01-01T00:00:00Z,short\n"
    var reader = PostsReader(format: .csv, maxRecordBytes: 1024)
    var posts: [PostRecord] = []
    try Array(text.utf8).withUnsafeBytes { raw in try reader.feed(raw) { posts.append($0) } }
    try reader.finish { posts.append($0) }
    #expect(posts.map(\.id) == ["2"])
    #expect(reader.problems == [RowProblem(row: 1, column: "", reason: .tooLong)])
  }

  @Test func emptyAndBOMOnlyFilesHaveNoRows() throws {
    for data in [Data(), Data([0xEF, 0xBB, 0xBF]), Data([0xEF, 0xBB])] {
      let csv = try? parse(data, format: .csv, chunk: 1)
      #expect(csv == nil || csv?.posts.isEmpty == true)
    }
    #expect(try parse(Data(), format: .ndjson, chunk: 1).posts.isEmpty)
  }
}
