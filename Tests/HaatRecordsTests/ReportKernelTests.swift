import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatAnalytics
@testable import HaatRecords

/// The report seam: a registry of kernels that the worker, the coordinator and the CLI use
/// without naming a report.
@Suite("Report kernels")
struct ReportKernelTests {
  static func post(_ id: String, platform: String = "facebook", likes: UInt64 = 3) -> PostRecord {
    var post = PostRecord(
      platform: platform, account: "a", id: id, createdAt: Values.Timestamp(epochSeconds: 1_000, offsetMinutes: 0),
      mediaType: .image)
    post.likes = likes
    post.reach = 100
    return post
  }

  @Test("every kernel is found by its name; a job's default reports follow the records it collects")
  func registry() {
    var names = Set<String>()
    for kernel in Reports.all {
      #expect(names.insert(kernel.name).inserted, "two kernels claim \(kernel.name)")
      #expect(Reports.kernel(named: kernel.name).map { $0.name } == kernel.name)
      #expect(!kernel.records.isEmpty && !kernel.summary.isEmpty)
    }
    #expect(Reports.kernel(named: "Engagement") == nil)
    #expect(Reports.defaults(for: [.post]) == ["engagement"], "best_time is asked for by name")
    #expect(Reports.defaults(for: [.order]) == ["attribution"])
    #expect(Reports.defaults(for: [.post, .adInsight]) == ["engagement", "ads"], "clicks and spend attribute nothing")
    for name in Reports.defaults(for: [.order, .review]) {
      let reads = Reports.kernel(named: name)?.records ?? []
      #expect(!reads.isDisjoint(with: [RecordType.order, .review]), "\(name)")
    }
  }

  @Test("a record goes only to the kernels that read its type; partials merge in any order to the same report")
  func routingAndMerging() throws {
    var first = PartialBuilder(reports: ["engagement", "no-such-report"])
    let added = [first.add(.post(Self.post("1"))), first.add(.post(Self.post("2", platform: "x", likes: 5)))]
    #expect(added == [true, true])
    let order = OrderRecord(
      platform: "web", account: "shop", id: "9", createdAt: Values.Timestamp(epochSeconds: 0, offsetMinutes: 0),
      customer: "", total: 1, totalText: "1", currency: "USD", landingSite: "", referringSite: "")
    let taken = first.add(.order(order))
    #expect(taken, "a record no kernel reads is not refused")
    var second = PartialBuilder(reports: ["engagement"])
    second.add(.post(Self.post("3")))

    func report(_ partials: [Partial]) throws -> Report {
      var merger = PartialMerger()
      for partial in partials { merger.merge(partial) }
      var report = Report()
      try merger.finish(["engagement"], into: &report)
      return report
    }
    let forward = try report([first.partial, second.partial])
    let backward = try report([second.partial, first.partial, Partial()])
    #expect(forward == backward)
    #expect(forward.engagement.total.posts == 3 && forward.engagement.total.likes == 11)
    // No task fed the report: its section is there, empty.
    #expect(try report([]).engagement.total.posts == 0)
  }

  @Test("a report renders through its kernel's table, as text and as CSV")
  func rendering() throws {
    var builder = PartialBuilder(reports: ["engagement"])
    builder.add(.post(Self.post("1")))
    var merger = PartialMerger()
    merger.merge(builder.partial)
    var report = Report()
    try merger.finish(["engagement"], into: &report)
    let table = ReportRendering.table(report)
    #expect(table.contains("platform") && table.contains("facebook") && table.contains("ER reach"))
    let csv = ReportRendering.csv(report).split(separator: "\n")
    #expect(csv.first?.hasPrefix("platform,account,media_type,posts") == true && csv.count == 3)
    #expect(ReportRendering.csv(Report()).split(separator: "\n").count == 1, "no section: the header alone")
  }
}

@Suite("Terminal tables")
struct TerminalTableTests {
  /// A partial may claim any count, so a rate may be any Double: past Int's range the
  /// percentage trapped (`haat result` ended with signal 4); below one percent a negative
  /// ratio lost its sign.
  @Test func percentagesOfAnySize() {
    #expect(ReportRendering.percent(0.05432) == "5.43%")
    #expect(ReportRendering.percent(-0.005) == "-0.50%")
    #expect(ReportRendering.percent(-1.5) == "-150.00%")
    #expect(ReportRendering.percent(-0.00001) == "0.00%")
    #expect(ReportRendering.percent(1e17) == "1e+19%")
    #expect(ReportRendering.percent(-1e300) == "-1e+302%")
    #expect(ReportRendering.percent(.infinity) == "inf%")
    #expect(ReportRendering.percent(.nan) == "nan%")
  }

  @Test("a table wider than the terminal reads in panels that repeat its keys, every cell once")
  func panels() {
    let header = ["platform", "account", "media"] + (1...12).map { "measure \($0)" }
    let rows = [
      ["facebook", "chittagong_tea", "carousel"] + (1...12).map { "\($0 * 1_000_000)" },
      ["instagram", "dhaka_threads", "video"] + (1...12).map { "\($0)" },
    ]
    let table = TextTable(header: header, rightAligned: Set(3..<15))
    let text = table.render(rows, maxWidth: 100)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
    #expect(lines.allSatisfy { $0.count <= 100 }, "\(text)")
    // Each panel: a header, a rule and the two rows, keys first.
    let panels = lines.count / 4
    #expect(panels >= 2 && lines.count == panels * 4)
    #expect(lines.filter { $0.hasPrefix("platform   account") }.count == panels)
    for column in 1...12 {
      #expect(
        text.components(separatedBy: "measure \(column) ").count
          + text.components(separatedBy: "measure \(column)\n").count - 2 == 1)
    }
    #expect(text.contains("12000000") && text.contains("chittagong_tea"))
    // A cell is one line whoever wrote it: its line breaks and escapes are shown.
    let forged = TextTable(header: ["id", "host"]).render([["w1", "a\nw9  forged\u{1B}[2J"]])
    #expect(forged.split(separator: "\n").count == 3 && forged.contains(#"a\nw9  forged\e[2J"#), "\(forged)")
    // A table that fits is one panel, as before.
    let narrow = TextTable(header: ["a", "b"], rightAligned: [1])
    #expect(narrow.render([["x", "1"]], maxWidth: 100) == narrow.render([["x", "1"]]))
  }

  /// Found by a tester: columns were padded by characters, so CJK and emoji names pushed
  /// their rows past the rule; a very long name made every panel too wide; an escaped note
  /// was measured before its escapes.
  @Test func tablesAlignByTerminalColumns() {
    #expect(DisplayText.width("春のセール") == 10)
    #expect(DisplayText.width("😀 ok") == 5)
    #expect(DisplayText.width("👨‍👩‍👧") == 2)
    #expect(DisplayText.width("café") == 4)
    // Bengali's vowel signs are spacing marks, a column each (glibc's wcswidth says 11).
    #expect(DisplayText.width("বাংলা_দোকান") == 11)
    #expect(DisplayText.width("پاکستان") == 7)
    let rows = [["facebook", "春のセール春のセール", "12"], ["instagram", "dhaka 😀", "3"], ["x", "plain", "4"]]
    let text = TextTable(header: ["platform", "account", "posts"], rightAligned: [2]).render(rows, maxWidth: 100)
    let lines = text.split(separator: "\n").map(String.init)
    // Every row ends where the rule does: its numbers line up.
    let rule = DisplayText.width(lines[1])
    #expect(lines.allSatisfy { DisplayText.width($0) == rule }, "\(text)")
    let long = String(repeating: "n", count: 146)
    let cut = TextTable(header: ["platform", "account", "posts"], rightAligned: [2]).render(
      [["facebook", long, "1"]], maxWidth: 100)
    #expect(cut.split(separator: "\n").allSatisfy { DisplayText.width(String($0)) <= 100 }, "\(cut)")
    #expect(cut.contains("n…") && cut.contains("has them whole"), "\(cut)")
    // And in an SVG, a bidi override is shown, not obeyed.
    #expect(ReportRendering.xmlEscaped("a\u{202E}evil<") == "a\\u{202E}evil&lt;")
    // A tab is shown, as the terminal table shows it, not dropped (a tester).
    #expect(ReportRendering.xmlEscaped("tab\tinside") == "tab\\tinside")
    let note = ReportRendering.wrapped(String(repeating: "a\u{202E}b ", count: 30), width: 100)
    #expect(note.split(separator: "\n").allSatisfy { DisplayText.width(String($0)) <= 100 }, "\(note)")
  }

  /// A note (a kept record with something off in it) is not listed as a bad row, nor taken
  /// for one when counting those not listed (the summary said "0 bad rows" above lines
  /// that each said "bad row").
  @Test func notesAreNotBadRows() {
    var report = Report()
    report.summary.badRows = 2
    var bad = RowError()
    bad.source = "a.csv"
    bad.row = 6
    bad.column = "publishedAt"
    bad.message = "invalid timestamp"
    var note = RowError()
    note.source = "li"
    note.row = 2
    note.column = "totalShareStatistics.likeCount"
    note.message = "negative"
    note.note = true
    report.summary.rowErrors = [bad, note]
    let text = ReportRendering.table(report)
    #expect(text.contains("bad row: a.csv row 6 publishedAt: invalid timestamp\n"), "\(text)")
    #expect(text.contains("note: li row 2 totalShareStatistics.likeCount: negative\n"), "\(text)")
    #expect(text.contains("(1 more bad rows not listed)"), "\(text)")
  }

  /// The lines under a table (media_lift's verdicts, clv's fit) read at 100 columns too:
  /// broken at spaces, later lines indented, no word lost or cut.
  @Test("a note under a table is wrapped at the terminal's width")
  func notesWrap() {
    let verdict =
      "facebook ml0 image: cannot say: the 95 % CI 0.84–4.90 of geometric mean of 1 + likes includes no difference; these posts would show a lift of ×3.60 or more"
    let text = ReportRendering.wrapped(verdict, width: 100)
    let lines = text.split(separator: "\n")
    #expect(lines.count == 2 && lines.allSatisfy { $0.count <= 100 }, "\(text)")
    #expect(lines[1].hasPrefix("  ") && !lines[1].hasPrefix("   "))
    #expect(lines.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ") == verdict)
    #expect(ReportRendering.wrapped("short", width: 100) == "short\n")
    #expect(ReportRendering.wrapped("", width: 100) == "\n")
    let long = String(repeating: "x", count: 120)
    #expect(ReportRendering.wrapped("a " + long + " b", width: 100) == "a\n  \(long)\n  b\n")
  }
}

@Test func recordTypeIndicesArePlacesInAllCases() {
  #expect(RecordType.allCases.enumerated().allSatisfy { $0.offset == $0.element.index })
}
