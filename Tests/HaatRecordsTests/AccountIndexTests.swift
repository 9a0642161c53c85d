import Foundation
import HaatProtocol
import HaatRecords
import Testing

@testable import HaatAnalytics

/// The reader's account index is a hint kernels use to skip hashing: these try to make a
/// kernel trust a wrong one.
@Suite struct AccountIndexTests {
  func read(_ csv: String) throws -> [PostRecord] {
    var reader = PostsReader(format: .csv)
    var posts: [PostRecord] = []
    try Array(csv.utf8).withUnsafeBytes { bytes in try reader.feed(bytes) { posts.append($0) } }
    try reader.finish { posts.append($0) }
    return posts
  }

  @Test func equalPairsShareAnIndexAndTheInternerIsBounded() throws {
    // 5,000 pairs (past the interner's 4,096), each twice, the second time with blanks.
    var csv = "platform,account,id,created_at\n"
    for index in 0..<5_000 { csv += "instagram,acct_\(index),a\(index),2026-03-01T10:00:00Z\n" }
    for index in 0..<5_000 { csv += " instagram , acct_\(index) ,b\(index),2026-03-01T10:00:00Z\n" }
    let posts = try read(csv)
    #expect(posts.count == 10_000)
    for index in 0..<5_000 {
      let (first, second) = (posts[index], posts[5_000 + index])
      #expect(first.account == "acct_\(index)" && second.account == "acct_\(index)")
      #expect(first.platform == "instagram" && second.platform == "instagram")
      if index < 4_096 {
        #expect(first.accountIndex == Int32(index) && second.accountIndex == Int32(index))
      } else {
        #expect(first.accountIndex == -1 && second.accountIndex == -1)
      }
    }
  }

  @Test func pairsThatShareACacheLineKeepTheirOwnIndex() throws {
    // Same lengths and the same first and last bytes: the interner's cache cannot tell these
    // apart by its line, only by comparing; interleaved, each row must still get its own pair.
    var generator = SystemRandomNumberGenerator()
    var csv = "platform,account,id,created_at\n"
    var written: [String] = []
    for index in 0..<3_000 {
      let account = "a\(100 + Int.random(in: 0..<300, using: &generator))z0"
      written.append(account)
      csv += "ig,\(account),\(index),2026-03-01T10:00:00Z\n"
    }
    let posts = try read(csv)
    #expect(posts.map(\.account) == written)
    var indices: [String: Int32] = [:]
    for post in posts {
      #expect(post.platform == "ig")
      #expect(indices[post.account, default: post.accountIndex] == post.accountIndex)
      indices[post.account] = post.accountIndex
    }
    #expect(Set(indices.values).count == indices.count)
  }

  @Test func aPairIsItsBytesNotAConcatenation() throws {
    // "ab" + "c" and "a" + "bc" are different pairs; so are an empty account and the default.
    let posts = try read(
      "platform,account,id,created_at\nab,c,1,2026-03-01T10:00:00Z\na,bc,2,2026-03-01T10:00:00Z\nab,,3,2026-03-01T10:00:00Z\nab,c,4,2026-03-01T10:00:00Z\n"
    )
    #expect(posts.map(\.accountIndex) == [0, 1, 2, 0])
    #expect(posts.map(\.account) == ["c", "bc", "", "c"])
  }

  /// Kernels fed posts whose hints lie (two readers' indices for different accounts, hints
  /// past any table, hints changing while the kernel's maps grow) must equal kernels fed the
  /// same posts with no hints at all.
  @Test func kernelsNeverTrustAWrongHint() async throws {
    let rounds = try await offPool { (0..<20).map(Self.hintedAndPlain) }
    for (hinted, plain) in rounds { #expect(hinted == plain) }
  }

  /// One round's partials: posts with lying hints, and the same posts with none.
  static func hintedAndPlain(_ round: Int) -> (Partial, Partial) {
    var generator = SystemRandomNumberGenerator()
    let reports = ["engagement", "best_time", "attribution"]
    var hinted = PartialBuilder(reports: reports)
    var plain = PartialBuilder(reports: reports)
    for index in 0..<3_000 {
      var record = post(
        index, platform: ["instagram", "x", "tiktok"][Int.random(in: 0..<3, using: &generator)],
        account: "acct_\(Int.random(in: 0..<(round + 2) * 40, using: &generator))",
        media: MediaType.allCases.randomElement(using: &generator) ?? .text)
      record.createdAt = Values.Timestamp(
        epochSeconds: 1_772_368_200 + Int64.random(in: 0..<604_800, using: &generator), offsetMinutes: 0)
      record.likes = UInt64.random(in: 0..<500, using: &generator)
      record.reach = UInt64.random(in: 1..<5_000, using: &generator)
      record.clicks = UInt64.random(in: 0..<50, using: &generator)
      plain.add(.post(record))
      record.accountIndex = Int32.random(in: -1..<8, using: &generator) * Int32(round % 3 == 0 ? 1 : 500)
      hinted.add(.post(record))
    }
    return (hinted.partial, plain.partial)
  }

  /// A SlottedMap under random updates through random (often wrong) slots, and removals
  /// that move entries, holds what a plain dictionary holds.
  @Test func slottedMapEqualsADictionary() {
    var generator = SystemRandomNumberGenerator()
    var map = SlottedMap<String, Int>()
    var plain: [String: Int] = [:]
    for _ in 0..<20_000 {
      let key = "k\(Int.random(in: 0..<300, using: &generator))"
      if Int.random(in: 0..<10, using: &generator) == 0 {
        map.removeValue(forKey: key)
        plain[key] = nil
        continue
      }
      let slot = Int.random(in: -1..<400, using: &generator)
      map.update(slot: slot, matches: { $0 == key }, key: { key }, initial: { 0 }) { $0 += 1 }
      plain[key, default: 0] += 1
    }
    #expect(map.dictionary == plain)
    #expect(map.count == plain.count)
    for (key, value) in plain { #expect(map[key] == value) }
  }
}
