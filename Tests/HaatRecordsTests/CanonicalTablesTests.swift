import Foundation
import HaatProtocol
import Testing

@testable import HaatRecords

@Suite("Canonical orders and ad insights exports")
struct CanonicalTablesTests {
  func read<K: TableExportKind>(_ kind: K.Type, _ name: String) throws -> ([CanonicalRecord], ReadCounts) {
    var task = TaskSpec()
    task.source.url = "http://fixture/\(name)"
    task.source.account = "shop"
    let (records, _, connector) = try drive(
      TableExportConnector<K>.self, task, pages: [task.source.url: CannedPage(body: Array(try fixture(name)))],
      chunk: 3)
    return (records, connector.counts)
  }

  @Test("NDJSON orders: an amount past a Double's 15 digits, negative too, is read as written, never rounded")
  func ndjsonAmountsAsWritten() throws {
    let lines = [
      #"{"id":"a","created_at":"2026-11-01T10:00:00Z","total":12345678901234567.89,"currency":"USD"}"#,
      #"{"id":"b","created_at":"2026-11-01T10:00:00Z","total":0.1234567890123456789,"currency":"USD"}"#,
      #"{"id":"c","created_at":"2026-11-01T10:00:00Z","total":403.34,"currency":"USD"}"#,
      #"{"id":"d","created_at":"2026-11-01T10:00:00Z","total":19.5e1,"currency":"USD"}"#,
      #"{"id":"e","created_at":"2026-11-01T10:00:00Z","total":"7.25","currency":"USD"}"#,
      // Foundation reads this one as the integer 1.
      #"{"id":"f","created_at":"2026-11-01T10:00:00Z","total":1.0000000000000000001,"currency":"USD"}"#,
      // Of duplicate keys the first is read, whichever form the second has.
      #"{"id":"g","created_at":"2026-11-01T10:00:00Z","total":5,"total":1.0000000000000000001,"currency":"USD"}"#,
      // Negative integers are Doubles to Foundation: past 15 digits they were rounded
      // (h) or written with an exponent and refused (i).
      #"{"id":"h","created_at":"2026-11-01T10:00:00Z","total":-9007199254740993,"currency":"USD"}"#,
      #"{"id":"i","created_at":"2026-11-01T10:00:00Z","total":-18446744073709551615,"currency":"USD"}"#,
      #"{"id":"j","created_at":"2026-11-01T10:00:00Z","total":-999999999999999,"currency":"USD"}"#,
      #"{"id":"k","created_at":"2026-11-01T10:00:00Z","total":-5,"currency":"USD"}"#,
    ]
    var reader = TableReader<OrdersExport>(format: .ndjson, platform: "web", account: "shop", limits: ReadLimits())
    var totals: [String: String] = [:]
    let keep: (CanonicalRecord) -> Bool = { record in
      if case .order(let order) = record { totals[order.id] = order.totalText }
      return true
    }
    try Array((lines.joined(separator: "\n") + "\n").utf8).withUnsafeBytes { chunk in
      try reader.feed(chunk, emit: keep)
      try reader.finish(emit: keep)
    }
    #expect(
      totals == [
        "a": "12345678901234567.89", "b": "0.1234567890123456789", "c": "403.34", "d": "195", "e": "7.25",
        "f": "1.0000000000000000001", "g": "5", "h": "-9007199254740993", "i": "-18446744073709551615",
        "j": "-999999999999999", "k": "-5",
      ])
    #expect(reader.counts.badRecords == 0)
  }

  @Test("NDJSON integers past 2^64 - 1 keep their digits: distinct ids, exact totals, counts out of range")
  func ndjsonIntegersPast64Bits() throws {
    let lines = [
      #"{"id":1,"created_at":"2026-05-01T10:00:00Z","total":"1","customer":18446744073709551616}"#,
      #"{"id":2,"created_at":"2026-05-01T10:00:00Z","total":"1","customer":18446744073709551617}"#,
      #"{"id":3,"created_at":"2026-05-01T10:00:00Z","total":18446744073709551616,"customer":"c"}"#,
      #"{"id":4,"created_at":"2026-05-01T10:00:00Z","total":-123456789012345678901,"customer":"c"}"#,
    ]
    var reader = TableReader<OrdersExport>(format: .ndjson, platform: "web", account: "shop", limits: ReadLimits())
    var orders: [String: (customer: String, total: String)] = [:]
    let keep: (CanonicalRecord) -> Bool = { record in
      if case .order(let order) = record { orders[order.id] = (order.customer, order.totalText) }
      return true
    }
    try Array((lines.joined(separator: "\n") + "\n").utf8).withUnsafeBytes { chunk in
      try reader.feed(chunk, emit: keep)
      try reader.finish(emit: keep)
    }
    #expect(reader.counts.badRecords == 0)
    #expect(orders["1"]?.customer == "18446744073709551616" && orders["2"]?.customer == "18446744073709551617")
    #expect(orders["3"]?.total == "18446744073709551616" && orders["4"]?.total == "-123456789012345678901")
    let insights = [
      #"{"date":"2026-05-01","ad":"a","campaign":12345678901234567890123,"impressions":1}"#,
      #"{"date":"2026-05-01","ad":"a","campaign":12345678901234567890124,"impressions":18446744073709551616}"#,
    ]
    var ads = TableReader<AdInsightsExport>(format: .ndjson, platform: "facebook", account: "1", limits: ReadLimits())
    var campaigns: [String] = []
    let take: (CanonicalRecord) -> Bool = { record in
      if case .adInsight(let insight) = record { campaigns.append(insight.campaign) }
      return true
    }
    try Array((insights.joined(separator: "\n") + "\n").utf8).withUnsafeBytes { chunk in
      try ads.feed(chunk, emit: take)
      try ads.finish(emit: take)
    }
    #expect(campaigns == ["12345678901234567890123"])
    #expect(ads.counts.problems == [RowProblem(row: 2, column: "impressions", reason: .outOfRange)])
  }

  /// A CSV order's `created_at` in strict RFC 3339 is read from its bytes, any other form
  /// from its text: the same times and the same problems as NDJSON's, which reads every
  /// one from its text.
  @Test func orderTimesReadAsTheirTextReads() throws {
    let times = [
      "2026-11-01T10:00:00Z", "2026-11-01T10:00:00.123+06:00", "2012-01-01 11:13:25 -0500", "1700000000",
      "2026-02-30T00:00:00Z", "2026-11-01T10:00:00", "2026-11-01", "  2026-11-01T10:00:00-03:30 ", "", "soon",
    ]
    func read(_ format: ExportFormat, _ body: String) throws -> [String: Values.Timestamp?] {
      var reader = TableReader<OrdersExport>(format: format, platform: "web", account: "shop", limits: ReadLimits())
      var read: [String: Values.Timestamp?] = [:]
      let keep: (CanonicalRecord) -> Bool = { record in
        if case .order(let order) = record { read[order.id] = order.createdAt }
        return true
      }
      try Array(body.utf8).withUnsafeBytes { chunk in
        try reader.feed(chunk, emit: keep)
        try reader.finish(emit: keep)
      }
      for problem in reader.counts.problems {
        #expect(problem.column == "created_at")
        read["row \(problem.row): \(problem.reason)"] = .some(nil)
      }
      return read
    }
    let csv = "id,created_at,total\n" + times.enumerated().map { "o\($0),\($1),1\n" }.joined()
    let ndjson = times.enumerated().map { #"{"id":"o\#($0)","created_at":"\#($1)","total":"1"}"# + "\n" }.joined()
    let fromBytes = try read(.csv, csv)
    #expect(fromBytes == (try read(.ndjson, ndjson)))
    #expect(fromBytes["o0"] == Values.Timestamp(epochSeconds: 1_793_527_200, offsetMinutes: 0))
    #expect(fromBytes.count == times.count)
  }

  @Test("orders: money a plain decimal, UTM decoded from the landing site, offsets kept, bad rows counted")
  func orders() throws {
    let (records, counts) = try read(OrdersExport.self, "canonical/orders.csv")
    let orders = records.compactMap { record -> OrderRecord? in
      if case .order(let order) = record { return order }
      return nil
    }
    #expect(orders.map(\.id) == ["1001", "1002"])
    #expect(orders[0].total == Decimal(string: "598.94") && orders[0].currency == "BDT")
    #expect(orders[0].utm.source == "Facebook" && orders[0].utm.campaign == "eid sale")
    #expect(orders[1].customer == "" && orders[1].createdAt.offsetMinutes == 360)
    #expect(orders.allSatisfy { $0.platform == "web" && $0.account == "shop" })
    #expect(
      counts.problems == [
        RowProblem(row: 3, column: "total", reason: .notADecimal),
        RowProblem(row: 4, column: "created_at", reason: .missing),
      ])
  }

  @Test(
    "UTM tags: the first of each name in any case, decoded, up to a fragment; none outside the query",
    arguments: [
      ("/p?utm_source=fb&UTM_MEDIUM=Paid+Social&utm_campaign=eid%20sale", "fb", "Paid Social", "eid sale"),
      ("?utm_source&utm_source=late&utm_medium=&utm_medium=x", "", "", ""),
      ("/?a=1&&utm_source=a=b&#utm_medium=frag", "a=b", "", ""),
      ("/?utm_campaign=c#x&utm_source=no", "", "", "c"), ("/#top?utm_source=x", "", "", ""),
      ("/p?utm_sourcex=1&utm_mediu=2&utm_campaign=%ZZ", "", "", "%ZZ"), ("/", "", "", ""), ("", "", "", ""),
      ("/?utm_source=caf%C3%A9&utm_medium=%FF", "café", "%FF", ""), ("/?x=1&utm_source=y&", "y", "", ""),
    ])
  func utmTags(landing: String, source: String, medium: String, campaign: String) {
    let order = OrderRecord(
      platform: "web", account: "shop", id: "1", createdAt: Values.Timestamp(epochSeconds: 0, offsetMinutes: 0),
      customer: "", total: 1, totalText: "1", currency: "USD", landingSite: landing,
      referringSite: "")
    #expect(order.utm == (source, medium, campaign), "\(landing)")
    #expect(order.utmSourceAndMedium == (source, medium), "\(landing)")
  }

  @Test("ad insights: counts as numbers or strings, money as decimals, bad days and amounts counted")
  func adInsights() throws {
    let (records, counts) = try read(AdInsightsExport.self, "canonical/ad-insights.ndjson")
    let insights = records.compactMap { record -> AdInsightRecord? in
      if case .adInsight(let insight) = record { return insight }
      return nil
    }
    #expect(insights.count == 2)
    #expect(insights[0].impressions == 10_505 && insights[0].clicks == 116 && insights[0].conversions == 12)
    #expect(insights[0].spend == Decimal(string: "76.73") && insights[0].claimedRoas == Decimal(string: "2.35"))
    #expect(insights[1].impressions == 361_324 && insights[1].clicks == nil, "grouped digits read as counts are")
    #expect(
      counts.problems == [
        RowProblem(row: 3, column: "date", reason: .invalidTimestamp),
        RowProblem(row: 4, column: "spend", reason: .notADecimal),
      ])
  }

  @Test("a plain decimal and nothing else")
  func decimals() {
    #expect(Values.decimal("598.94") == Decimal(string: "598.94") && Values.decimal("-3") == -3)
    for bad in ["12,50", "1e3", "", "-", "1.2.3", "--1", " 1", "١٢"] {
      #expect(Values.decimal(bad) == nil, "\(bad)")
      #expect(Values.decimalProblem(bad) == .notADecimal, "\(bad)")
    }
    // 38 significant digits are held exactly, however many zeros stand around them; one
    // more would be rounded away by Foundation, so such an amount is out of range.
    let widest = String(repeating: "9", count: 38)
    #expect(Values.decimal(widest)?.description == widest)
    #expect(
      Values.decimal("1" + String(repeating: "0", count: 40))?.description == "1" + String(repeating: "0", count: 40))
    #expect(Values.decimal("0." + String(repeating: "0", count: 30) + "12") != nil)
    for long in [widest + "1", "0." + String(repeating: "1", count: 40), "1234567890123456789012345678901234567891"] {
      #expect(Values.decimal(long) == nil, "\(long)")
      #expect(Values.decimalProblem(long) == .outOfRange, "\(long)")
    }
  }

  @Test("NDJSON values are trimmed as CSV cells are: the same id, total and currency in either format")
  func ndjsonValuesAreTrimmed() throws {
    let line =
      #"{"id":" o1 ","customer":" c1 ","created_at":" 2026-01-01T00:00:00Z ","total":" 12.50 ","currency":" chf "}"#
    var task = TaskSpec()
    task.source.kind = "orders"
    task.source.url = "http://fixture/orders.ndjson"
    let (records, _, connector) = try drive(
      TableExportConnector<OrdersExport>.self, task,
      pages: [task.source.url: CannedPage(body: Array((line + "\n").utf8))], chunk: 3)
    guard case .order(let order)? = records.first else {
      Issue.record("no order: \(connector.counts.problems)")
      return
    }
    #expect((order.id, order.customer, order.totalText, order.currency) == ("o1", "c1", "12.50", "chf"))
    // Two spellings of one key: the first in byte order, whatever the dictionary's order.
    for _ in 0..<20 {
      let twice = #"{"id":"lower","ID":"upper","created_at":"2026-01-01T00:00:00Z","total":"1"}"#
      let (read, _, _) = try drive(
        TableExportConnector<OrdersExport>.self, task,
        pages: [task.source.url: CannedPage(body: Array((twice + "\n").utf8))], chunk: 64)
      guard case .order(let one)? = read.first else {
        Issue.record("no order")
        return
      }
      #expect(one.id == "upper")
    }
  }
}

/// A header whose names are not plain text is refused with its reason: lines ending in CR
/// alone read as one header line and no row; a control character or a second byte-order
/// mark in a name matched no column, so the column was skipped without a word.
@Suite struct HeaderFaultTests {
  @Test(arguments: [
    (
      "platform,account,id,created_at,likes\rx,a,1,2026-01-01T00:00:00Z,5\rx,a,2,2026-01-01T00:00:00Z,6\r",
      "id,created_at,total\ro1,2026-01-01T00:00:00Z,5\r", "lines seem to end in CR alone"
    ),
    (
      "platform,account,id,created_at,li\u{0}kes\nx,a,1,2026-01-01T00:00:00Z,5\n",
      "id,created_at,to\u{0}tal\no1,2026-01-01T00:00:00Z,5\n", "name holds a control character (U+0000)"
    ),
    (
      "\u{FEFF}\u{FEFF}id,created_at,likes\n1,2026-01-01T00:00:00Z,5\n",
      "\u{FEFF}\u{FEFF}id,created_at,total\no1,2026-01-01T00:00:00Z,5\n", "column 1 name holds a byte-order mark"
    ),
  ])
  func aHeaderThatIsNotPlainTextIsRefusedWithItsReason(postsCSV: String, ordersCSV: String, says: String) throws {
    var posts = TaskSpec()
    posts.source.kind = "posts"
    posts.source.url = "http://fixture/header.csv"
    var orders = TaskSpec()
    orders.source.kind = "orders"
    orders.source.url = "http://fixture/header-orders.csv"
    for (file, run) in [
      (
        postsCSV,
        { (body: [UInt8]) throws in
          _ = try drive(
            CanonicalExportConnector.self, posts, pages: [posts.source.url: CannedPage(body: body)], chunk: 5)
        }
      ),
      (
        ordersCSV,
        { (body: [UInt8]) throws in
          _ = try drive(
            TableExportConnector<OrdersExport>.self, orders, pages: [orders.source.url: CannedPage(body: body)],
            chunk: 5)
        }
      ),
    ] {
      do {
        try run(Array(file.utf8))
        Issue.record("read: \(file.debugDescription)")
      } catch let error as ExportError {
        #expect(error.message.contains(says), "\(error.message)")
      }
    }
  }
}
