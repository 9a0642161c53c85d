import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import Testing

@testable import HaatRecords

@Suite("Response time report")
struct ResponseTimeKernelTests {
  /// 2026-11-29 is a Sunday; 2026-11-27 a Friday.
  static func message(_ conversation: String, _ epoch: Int64, inbound: Bool, offsetMinutes: Int16 = 0)
    -> CanonicalRecord
  {
    .message(
      MessageRecord(
        platform: "whatsapp", account: "shop", conversation: conversation, id: UUID().uuidString,
        direction: inbound ? .inbound : .outbound,
        at: Values.Timestamp(epochSeconds: epoch, offsetMinutes: offsetMinutes)))
  }

  static let sunday5UTC: Int64 = 1_795_928_400  // 2026-11-29T05:00:00Z = 11:00 in Dhaka

  static func report(_ tasks: [[CanonicalRecord]], context: ReportContext = ReportContext()) throws -> Report {
    var merger = PartialMerger()
    for records in tasks.reversed() {
      var builder = PartialBuilder(reports: ["response_time"], context: context)
      for record in records { builder.add(record) }
      merger.merge(try Partial(jsonUTF8Data: builder.partial.jsonUTF8Data()))
    }
    var report = Report()
    try merger.finish(["response_time"], into: &report)
    return report
  }

  @Test("first response and resolution from the customer's first message; unanswered; zones of the writers apart")
  func conversations() throws {
    let t = Self.sunday5UTC
    let records: [CanonicalRecord] = [
      // Answered in 10 min (the answer written with another offset), resolved 2 h later.
      Self.message("a", t, inbound: true, offsetMinutes: 360), Self.message("a", t + 600, inbound: false),
      Self.message("a", t + 3_000, inbound: true), Self.message("a", t + 7_200, inbound: false),
      // Started by the business: counted from the customer's reply; answered in 2 h; the
      // customer wrote last, so not resolved.
      Self.message("b", t - 500, inbound: false), Self.message("b", t, inbound: true),
      Self.message("b", t + 7_200, inbound: false), Self.message("b", t + 7_300, inbound: true),
      // Never answered.
      Self.message("c", t + 60, inbound: true),
      // Only the business wrote: not a customer conversation.
      Self.message("d", t, inbound: false),
    ]
    let report = try Self.report([records])
    let row = try #require(report.responseTime.rows.first)
    #expect(row.hours == "all" && row.conversations == 3 && row.answered == 2 && row.unanswered == 1)
    #expect(abs(row.firstResponseP50S - 600) <= 6, "the lower median of 600 and 7,200")
    #expect(abs(row.firstResponseP90S - 600) <= 6, "rank ⌊0.9 × 1⌋ = 0")
    #expect(abs(row.shareWithin15M - 1.0 / 3) < 1e-12 && abs(row.shareWithin24H - 2.0 / 3) < 1e-12)
    #expect(row.resolved == 1 && abs(row.resolutionP50S - 7_200) <= 72)
    // Without a zone, each first message's own offset: "a" was written at +06:00.
    #expect(report.responseTime.hours.map(\.label) == ["Sun 05:00", "Sun 11:00"])
    // 600 s within the sketch's 1 %: 9.9 min; 7,200 s: 2.0 h.
    #expect(ReportRendering.table(report).contains("9.9 min") && ReportRendering.table(report).contains("2.0 h"))
  }

  @Test("inside and outside business hours, in the account's zone")
  func businessHours() throws {
    let t = Self.sunday5UTC
    let friday = t - 2 * 86_400  // Friday 11:00 in Dhaka: the shop is closed on Fridays
    let records: [CanonicalRecord] = [
      Self.message("in", t, inbound: true), Self.message("in", t + 120, inbound: false),
      Self.message("out", friday, inbound: true), Self.message("out", friday + 86_000, inbound: false),
    ]
    let context = ReportContext(timezone: "Asia/Dhaka", businessHours: "Sat-Thu 10:00-20:00")
    let rows = try Self.report([records], context: context).responseTime.rows
    #expect(rows.map(\.hours) == ["all", "inside", "outside"])
    #expect(rows[1].conversations == 1 && abs(rows[1].firstResponseP50S - 120) <= 1.2)
    #expect(rows[2].conversations == 1 && rows[2].shareWithin1H == 0 && rows[2].shareWithin24H == 1)
    #expect(rows.allSatisfy { $0.zone == "Asia/Dhaka" })
  }

  @Test("conversations spread over tasks, merged in any order, give one report")
  func mergeLaw() throws {
    var conversations: [[CanonicalRecord]] = []
    for index in 0..<200 {
      let start = Self.sunday5UTC + Int64(index * 1_337)
      var messages = [Self.message("c\(index)", start, inbound: true)]
      if index % 4 != 0 { messages.append(Self.message("c\(index)", start + Int64(index * 97), inbound: false)) }
      conversations.append(messages.shuffled())
    }
    let one = try Self.report([conversations.flatMap { $0 }])
    var tasks: [[CanonicalRecord]] = [[], [], []]
    for (index, messages) in conversations.enumerated() { tasks[index % 3] += messages }
    #expect(try Self.report(tasks) == one)
    #expect(one.responseTime.rows.first?.unanswered == 50)
  }

  @Test("business hours are read as days and times, or refused saying how to write them")
  func parsing() throws {
    let hours = try BusinessHours("Mon-Fri 09:00-17:30; Sat 10:00-14:00")
    #expect(hours == (try BusinessHours("Mon-Fri 09:00-17:30, Sat 10:00-14:00")))
    for bad in ["", "Mon-Fri", "Mon-Fri 9-17", "Funday 10:00-12:00", "Mon 12:00-10:00", "Mon 10:00-24:30"] {
      #expect(throws: HaatError.self, "\(bad)") { try BusinessHours(bad) }
    }
    _ = try BusinessHours("Sun-Sun 00:00-24:00")
    // Each refusal names the part at fault and why.
    for (bad, reason) in [
      ("Mon-Fri 22:00-06:00", "\"22:00-06:00\" ends before it starts: a range does not pass midnight"),
      ("Mon-Fri 09:00-09:00", "\"09:00-09:00\" opens for no time"),
      ("Mon, Tue 09:00-17:00", "the part \"Mon\" is not days then times"),
      ("mon-fri 09:00-17:00", "\"mon-fri\" is not a day or a range of days"),
      ("Mon-Fri 9-17", "\"9-17\" is not a time range HH:MM-HH:MM"),
      ("Mon-Tue-Wed 09:00-10:00", "\"Mon-Tue-Wed\" is not a day"),
    ] {
      do throws(HaatError) {
        _ = try BusinessHours(bad)
        Issue.record("\(bad) was taken")
      } catch {
        #expect(error.message.contains(reason), "\(bad): \(error.message)")
        #expect(error.message.contains("write days and times such as"))
      }
    }
    // Empty parts, of only spaces too, and runs of spaces and tabs are passed over.
    for same in ["Mon-Fri 09:00-17:30; ", "Mon-Fri\t09:00-17:30, ,", " ; Mon-Fri  09:00-17:30 ;\t;"] {
      #expect(try BusinessHours(same) == (try BusinessHours("Mon-Fri 09:00-17:30")), "\(same)")
    }
    // Text with no part states none; a source may write it, and its report has no split.
    for none in ["", " ", ";", " ; ,\t"] { #expect(try BusinessHours.stated(none) == nil, "\(none)") }
    #expect(throws: HaatError.self) { try BusinessHours.stated("Mon-Fri 9-17; ") }
  }
}

@Suite("Response time ties")
struct ResponseTimeTieTests {
  @Test("two inbound messages of one second in different offsets: the first read opens the conversation")
  func sameSecondInTwoOffsets() throws {
    // 2026-04-01 (a Wednesday) 22:23:40 UTC, written once in UTC (hour 70) and once as
    // 23:23:40+01:00 (hour 71).
    let epoch: Int64 = 1_775_082_220
    let utc = ResponseTimeKernelTests.message("t", epoch, inbound: true)
    let plusOne = ResponseTimeKernelTests.message("t", epoch, inbound: true, offsetMinutes: 60)
    for (records, hour) in [([utc, plusOne], UInt32(70)), ([plusOne, utc], UInt32(71))] {
      let rows = try ResponseTimeKernelTests.report([records]).responseTime.hours
      #expect(rows.map(\.hour) == [hour])
    }
  }
}
