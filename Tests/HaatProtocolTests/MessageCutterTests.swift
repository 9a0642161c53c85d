import Foundation
import HaatCore
import Testing

@testable import HaatProtocol

/// Large partials and reports of every report kind are cut into parts under a JSON budget,
/// and merge back into the message they were cut from: nothing lost, nothing twice.
@Suite struct MessageCutterTests {
  static func partial(cells: Int) -> Partial {
    var partial = Partial()
    partial.engagement.cells = (0..<cells).map { index in
      var cell = Haat_V1_EngagementCell()
      cell.platform = "facebook"
      cell.account = "account_\(index)"
      cell.posts = UInt64(index + 1)
      return cell
    }
    partial.reviews.cells = (0..<cells / 2).map { index in
      var cell = Haat_V1_ReviewsCell()
      cell.platform = "web"
      cell.account = "shop_\(index)"
      cell.stars = [1, 2, 3, 4, UInt64(index)]
      return cell
    }
    partial.ads.cells = (0..<cells).map { index in
      var cell = Haat_V1_AdsCell()
      cell.platform = "facebook"
      cell.account = "1"
      cell.day = "2026-11-\(10 + index % 20)"
      cell.campaign = "c\(index)"
      cell.spend = "\(index).25"
      cell.rows = 1
      return cell
    }
    partial.ads.coverage = (0..<cells / 10).map { index in
      var coverage = Haat_V1_AdsCoverage()
      coverage.platform = "facebook"
      coverage.account = "\(index)"
      coverage.first = "2026-11-01"
      coverage.last = "2026-11-30"
      return coverage
    }
    return partial
  }

  static func merged(_ parts: [Partial]) throws -> Partial {
    var whole = Partial()
    for part in parts { try whole.merge(serializedBytes: try part.serializedBytes() as [UInt8]) }
    return whole
  }

  @Test(arguments: [2_000, 16_384, 200_000])
  func everyReportsCellsArriveOnceUnderTheBudget(budget: Int) throws {
    let whole = Self.partial(cells: 1_000)
    let cut = try MessageCutter.cut(whole, budget: budget)
    let parts = try #require(cut.parts)
    #expect(parts.count > 1)
    for part in parts {
      let json: [UInt8] = try part.jsonUTF8Bytes(options: WireCodec.encodingOptions)
      #expect(json.count <= budget + 2)
    }
    #expect(try Self.merged(parts) == whole)
  }

  /// The binary cut (`complete.partial_binary`): every part's bytes under the bound, and the
  /// parts' bytes joined decode to the message again, field for field.
  @Test(arguments: [1_000, 4_096, 16_384])
  func binaryPartsJoinToTheMessage(maxBytes: Int) throws {
    var whole = Self.partial(cells: 1_000)
    whole.attribution.spend = whole.ads
    whole.attribution.overflowed = true
    let cut = try MessageCutter.cutEncoded(whole, maxBytes: maxBytes)
    let parts = try #require(cut.parts)
    #expect(parts.count > 1)
    for part in parts {
      #expect(part.count <= maxBytes)
      _ = try Partial(serializedBytes: part)
    }
    #expect(try Partial(serializedBytes: parts.flatMap { $0 }) == whole)
    #expect(try MessageCutter.cutEncoded(whole, maxBytes: 1 << 30).parts?.count == 1)
  }

  /// docs/protocol.md's `partial_binary` example, byte for byte, both ways.
  @Test func theDocumentedBinaryPartial() throws {
    var cell = Haat_V1_EngagementCell()
    cell.platform = "x"
    cell.account = "bin"
    cell.mediaType = "image"
    cell.posts = 2
    cell.likes = 7
    var partial = Partial()
    partial.engagement.cells = [cell]
    let bytes: [UInt8] = try partial.serializedBytes()
    #expect(
      bytes.map { String(format: "%02x", $0) }.joined(separator: " ")
        == "0a 15 0a 13 0a 01 78 12 03 62 69 6e 1a 05 69 6d 61 67 65 20 02 28 07")
    var complete = Haat_V1_Complete()
    complete.partialBinary = Data(bytes)
    let json = try complete.jsonString(options: WireCodec.encodingOptions)
    #expect(json == #"{"partial_binary":"ChUKEwoBeBIDYmluGgVpbWFnZSACKAc="}"#)
    let read = try Haat_V1_Complete(jsonString: json, options: WireCodec.decodingOptions)
    #expect(try Partial(serializedBytes: read.partialBinary) == partial)
  }

  @Test func aBinaryCellOverTheBoundIsNamed() throws {
    var whole = Self.partial(cells: 3)
    whole.engagement.cells[1].account = String(repeating: "x", count: 5_000)
    let cut = try MessageCutter.cutEncoded(whole, maxBytes: 4_096)
    #expect(cut.parts == nil)
    #expect(cut.largest > 5_000)
  }

  @Test func aReportIsCutAcrossItsSectionsAndTotals() throws {
    var report = Report()
    report.job = "7"
    report.summary.rows = 12
    report.summary.missing = (0..<50).map { index in
      var missing = Haat_V1_MissingSource()
      missing.source = "source \(index)"
      missing.task = "\(index)"
      return missing
    }
    report.ads.rows = (0..<300).map { index in
      var row = Haat_V1_AdsRow()
      row.platform = "tiktok"
      row.campaign = "campaign \(index)"
      row.spend = "\(index).5"
      row.cpm = Double(index) / 7
      return row
    }
    report.ads.total.spend = "45000"
    report.ads.first = "2026-01-01"
    report.reviews.total.reviews = 9
    var result = Haat_V1_Result()
    result.job.id = "7"
    result.report = report
    let parts = try #require(ResultParts.split(result, maxLineBytes: 8_192))
    #expect(parts.count > 1)
    for part in parts {
      let json: [UInt8] = try part.jsonUTF8Bytes(options: WireCodec.encodingOptions)
      #expect(json.count + 512 <= 8_192)
    }
    #expect(parts.last?.job.id == "7")
    #expect(try ResultParts.join(parts) == result)
  }

  @Test func aFieldOverTheBudgetIsSaid() throws {
    var partial = Partial()
    var cell = Haat_V1_EngagementCell()
    cell.account = String(repeating: "x", count: 5_000)
    partial.engagement.cells = [cell]
    let cut = try MessageCutter.cut(partial, budget: 1_000)
    #expect(cut.parts == nil && cut.largest > 5_000)
  }

  @Test func aMessageInsideASectionIsCutTooAndAnEmptySectionStays() throws {
    var partial = Partial()
    partial.attribution.spend.cells = (0..<2_000).map { index in
      var cell = Haat_V1_AdsCell()
      cell.platform = "facebook"
      cell.account = "\(index % 40)"
      cell.day = "2026-11-\(10 + index % 20)"
      cell.campaign = "campaign \(index)"
      cell.spend = "\(index).5"
      return cell
    }
    partial.attribution.orders = [Haat_V1_AttributionOrders.with { $0.channel = "direct" }]
    partial.reviews = Haat_V1_ReviewsPartial()  // present, empty
    let cut = try MessageCutter.cut(partial, budget: 16_384)
    let parts = try #require(cut.parts)
    #expect(parts.count > 5, "the ads cells inside attribution.spend are spread over parts")
    for part in parts {
      let json: [UInt8] = try part.jsonUTF8Bytes(options: WireCodec.encodingOptions)
      #expect(json.count <= 16_384 + 2)
    }
    let merged = try Self.merged(parts)
    #expect(merged == partial)
    #expect(merged.hasReviews)
  }
}
