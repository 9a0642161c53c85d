import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import Testing

@testable import HaatRecords

@Suite("Distinct sketch")
struct HyperLogLogTests {
  @Test("the hash and register of the wire spec, checked against an independent implementation")
  func hashVectors() {
    // Computed in Python from analytics.proto's description alone.
    #expect(HyperLogLog.hash("".utf8) == 0xefd0_1f60_ba99_2926)
    #expect(HyperLogLog.hash("a".utf8) == 0x82a2_a958_a9be_ce5b)
    #expect(HyperLogLog.hash("customer-42".utf8) == 0xe5c7_993d_f9de_03b9)
    var sketch = HyperLogLog()
    sketch.add("")
    #expect(sketch.message.registers == [15_348 << 6 | 6])
    // The estimator's vectors, from scripts/analysis/reference.py's (written from
    // docs/reports.md "Distinct sketch").
    #expect(abs(sketch.estimate - 1.000_024_169_164_581_7) < 1e-12)
    var customers = HyperLogLog()
    for index in 0..<42_000 { customers.add("customer-\(index)") }
    #expect(abs(customers.estimate - 42_546.039_388_565_3) < 1e-6)
  }

  @Test("estimates stay within three standard errors", arguments: [0, 1, 10, 100, 1_000, 20_000, 200_000])
  func errorBound(count: Int) {
    // Fixed key sets: a random salt made this fail about once in a hundred suite runs (3 SE
    // is no hard bound), which says nothing about a change.
    for salt in 1...3 {
      var sketch = HyperLogLog()
      for index in 0..<count {
        sketch.add("user-\(salt)-\(index)")
        if index % 3 == 0 { sketch.add("user-\(salt)-\(index)") }  // duplicates change nothing
      }
      let allowed = max(1, 3 * HyperLogLog.standardError * Double(count))
      #expect(abs(sketch.estimate - Double(count)) <= allowed, "\(sketch.estimate) for \(count), salt \(salt)")
    }
  }

  /// Where the classic estimator switched from linear counting to its raw estimate (2.5 m,
  /// 40,960) the raw one was still biased: +2 % on average at 41,000 distinct values, and
  /// most runs outside the stated ±1.625 %. Over 16 disjoint key sets, the mean error of
  /// each count must be within three standard errors of that mean.
  @Test("no bias where linear counting used to end", arguments: [30_000, 41_000, 45_000, 60_000])
  func unbiasedAcrossTheOldSwitch(count: Int) {
    let runs = 16
    var errors: [Double] = []
    for run in 0..<runs {
      var sketch = HyperLogLog()
      for index in 0..<count { sketch.add("run\(run)-customer-\(index)") }
      errors.append(sketch.estimate / Double(count) - 1)
    }
    let mean = errors.reduce(0, +) / Double(runs)
    #expect(abs(mean) <= 3 * HyperLogLog.standardError / Double(runs).squareRoot(), "mean error \(mean)")
    #expect(errors.allSatisfy { abs($0) <= 3 * HyperLogLog.standardError }, "\(errors)")
  }

  @Test("the union of any split, merged in any order through the wire, is the same sketch")
  func mergeLaw() throws {
    var generator = SystemRandomNumberGenerator()
    let values = (0..<5_000).map { "c\($0 % 3_000)" }
    var whole = HyperLogLog()
    for value in values { whole.add(value) }
    var parts = [HyperLogLog](repeating: HyperLogLog(), count: 5)
    for value in values { parts[Int.random(in: 0..<5, using: &generator)].add(value) }
    var merged = HyperLogLog()
    for part in parts.shuffled(using: &generator) { merged.merge(try #require(HyperLogLog(part.message))) }
    #expect(merged == whole)
    var bad = Haat_V1_DistinctSketch()
    bad.registers = [UInt32(1 << 14) << 6 | 1]
    #expect(HyperLogLog(bad) == nil)
    bad.registers = [3 << 6 | 52]
    #expect(HyperLogLog(bad) == nil)
  }
}

@Suite("Audience report")
struct AudienceKernelTests {
  static func order(_ customer: String, account: String) -> CanonicalRecord {
    .order(
      OrderRecord(
        platform: "shopify", account: account, id: UUID().uuidString,
        createdAt: Values.Timestamp(epochSeconds: 0, offsetMinutes: 0), customer: customer,
        total: 1, totalText: "1", currency: "USD", landingSite: "", referringSite: ""))
  }

  static func message(_ conversation: String, inbound: Bool) -> CanonicalRecord {
    .message(
      MessageRecord(
        platform: "whatsapp", account: "shop", conversation: conversation, id: UUID().uuidString,
        direction: inbound ? .inbound : .outbound, at: Values.Timestamp(epochSeconds: 0, offsetMinutes: 0)))
  }

  @Test("distinct customers per account and over all (a customer of two stores once); guests and outbound apart")
  func figures() throws {
    var records: [CanonicalRecord] = []
    for index in 0..<3_000 { records.append(Self.order("c\(index % 1_000)", account: "a")) }
    for index in 0..<500 { records.append(Self.order("c\(500 + index)", account: "b")) }  // 500 shared with a
    records += (0..<40).map { _ in Self.order("", account: "a") }
    records += (0..<300).map { Self.message("t\($0 % 120)", inbound: true) }
    records += (0..<300).map { Self.message("t\(1_000 + $0)", inbound: false) }
    var builders = [PartialBuilder(reports: ["audience"]), PartialBuilder(reports: ["audience"])]
    for (index, record) in records.enumerated() { builders[index % 2].add(record) }
    var merger = PartialMerger()
    for builder in builders { merger.merge(try Partial(jsonUTF8Data: builder.partial.jsonUTF8Data())) }
    var report = Report()
    try merger.finish(["audience"], into: &report)
    let rows = report.audience.rows
    let a = try #require(rows.first { $0.account == "a" && $0.platform == "shopify" })
    #expect(a.orders == 3_040 && a.guestOrders == 40)
    #expect(abs(Double(a.customers) - 1_000) <= 30)
    let total = report.audience.total
    #expect(abs(Double(total.customers) - 1_000) <= 30, "500 of b's customers are a's too")
    #expect(abs(Double(total.conversations) - 120) <= 4 && total.inboundMessages == 300)
    #expect(abs(report.audience.errorBound - 0.01625) < 1e-9)
    #expect(ReportRendering.table(report).contains("±1.6 %"))
  }
}

@Suite("Report text")
struct ReportTextTests {
  /// A source's URL may hold a line break (a spec's `\n`), and its error quotes it: printed
  /// raw, the missing line split in two on a terminal and in a saved report.
  @Test func missingSourcesAndBadRowsAreOneLineEach() {
    var report = Report()
    var missing = Haat_V1_MissingSource()
    missing.source = "x/new\nline"
    missing.task = "4"
    missing.error.code = "not_found"
    missing.error.message = "/tmp/files/x\n.csv does not exist\u{1B}[31m"
    report.summary.missing = [missing]
    var row = Haat_V1_RowError()
    row.source = "a\rb"
    row.row = 3
    row.message = "bad\nrow"
    report.summary.rowErrors = [row]
    let text = ReportRendering.table(report)
    let lines = text.split(separator: "\n")
    #expect(
      lines.contains {
        $0.hasPrefix("missing: x/new\\nline (task 4): not_found: /tmp/files/x\\n.csv does not exist\\e[31m")
      }, "\(text)")
    #expect(lines.contains { $0.hasPrefix("bad row: a\\rb row 3: bad\\nrow") }, "\(text)")
  }
}
