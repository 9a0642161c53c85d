import Foundation
import HaatProtocol
import Testing

@testable import HaatRecords

@Suite("Shopify orders export")
struct ShopifyOrdersExportTests {
  /// The orders of a fixture file read in chunks of `chunk` bytes, and the reader's counts.
  func read(_ name: String, chunk: Int) throws -> ([OrderRecord], ReadCounts) {
    try Self.orders(Array(try fixture("shopify/\(name)")), account: "dhaka-threads", chunk: chunk)
  }

  /// The orders of `csv` read in chunks of `chunk` bytes, and the reader's counts.
  static func orders(_ csv: String, chunk: Int) throws -> ([OrderRecord], ReadCounts) {
    try orders(Array(csv.utf8), account: "", chunk: chunk)
  }

  static func orders(_ body: [UInt8], account: String, chunk: Int) throws -> ([OrderRecord], ReadCounts) {
    var task = TaskSpec()
    task.source.kind = "shopify_orders_csv"
    task.source.account = account
    task.source.url = "http://fixture/orders.csv"
    let (records, _, connector) = try drive(
      TableExportConnector<ShopifyOrdersExport>.self, task, pages: [task.source.url: CannedPage(body: body)],
      chunk: chunk)
    let orders = records.compactMap { record -> OrderRecord? in
      if case .order(let order) = record { return order }
      return nil
    }
    return (orders, connector.counts)
  }

  @Test("one order per order, not per line item; offsets kept; the email only as a one-way key; bad rows counted")
  func exportIsReadByOrder() throws {
    for chunk in [1, 3, 4096] {
      let (orders, counts) = try read("orders-export.csv", chunk: chunk)
      #expect(orders.map(\.id) == ["5001", "5002"])
      #expect(orders.map(\.totalText) == ["34.98", "1250.50"])
      #expect(orders.map(\.currency) == ["USD", "BDT"])
      #expect(orders[0].createdAt == Values.Timestamp(epochSeconds: 1_714_557_492, offsetMinutes: 0))
      #expect(orders[1].createdAt == Values.Timestamp(epochSeconds: 1_325_434_405, offsetMinutes: -300))
      #expect(orders[0].customer == "email:" + PrivateKey.of("ann@example.com"))
      #expect(!orders[0].customer.contains("@") && orders[1].customer == "")
      #expect(orders.allSatisfy { $0.platform == "web" && $0.account == "dhaka-threads" })
      #expect(counts.records == 2 && counts.badRecords == 2)
      #expect(
        counts.problems == [
          RowProblem(row: 4, column: "total", reason: .notADecimal),
          RowProblem(row: 5, column: "created_at", reason: .invalidTimestamp),
        ])
    }
  }

  @Test("revenue is net: a voided order is no order, and Refunded Amount comes off Total, exactly")
  func voidedAndRefundedOrders() throws {
    let csv = """
      Name,Email,Financial Status,Created at,Total,Refunded Amount,Currency,Lineitem name
      #1,a@x.com,voided,2026-01-01 10:00:00 -0500,10.00,,USD,Shirt
      #1,,,,,,,Hat
      #2,b@x.com,partially_refunded,2026-01-02 10:00:00 -0500,34.98,4.99,USD,Mug
      #3,c@x.com,refunded,2026-01-03 10:00:00 -0500,7.00,7.00,USD,Bag
      #4,d@x.com,paid,2026-01-04 10:00:00 -0500,9.00,0.00,USD,Cap
      #5,e@x.com,paid,2026-01-05 10:00:00 -0500,9.00,"1,50",USD,Pin
      #6,f@x.com,Voided,2026-01-06 10:00:00 -0500,3.00,,USD,Pen

      """
    for chunk in [1, 7, 4096] {
      let (orders, counts) = try Self.orders(csv, chunk: chunk)
      #expect(orders.map(\.id) == ["#2", "#3", "#4"])
      #expect(orders.map(\.totalText) == ["29.99", "0", "9.00"])
      #expect(orders.map(\.total) == [Decimal(string: "29.99"), 0, Decimal(string: "9.00")])
      #expect(counts.records == 3 && counts.badRecords == 1)
      #expect(counts.problems == [RowProblem(row: 6, column: "refunded", reason: .notADecimal)])
    }
  }

  /// Shopify repeats `Created at` on an order's later rows, not its `Financial Status`: those
  /// rows of a voided order are its line items, skipped with it. A refund whose difference
  /// would need more than 38 digits is refused, never rounded (100 − 10^−37 came out 100).
  @Test("a voided order's later rows are skipped with it; an inexact refund is a bad row")
  func voidedLineItemsAndInexactRefunds() throws {
    let csv = """
      Name,Email,Financial Status,Created at,Total,Refunded Amount,Currency,Lineitem name
      #1,x@x.com,voided,2026-03-10 10:00:00 +0000,50.00,,USD,tee
      #1,x@x.com,,2026-03-10 10:00:00 +0000,,,,hat
      #2,y@x.com,Voided,2026-03-11 10:00:00 +0000,40.00,,USD,tee
      #2,y@x.com,,2026-03-11 10:00:00 +0000,40.00,,USD,hat
      #3,a@x.com,partially_refunded,2026-05-01 10:00:00 +0000,100,0.0000000000000000000000000000000000001,USD,cap
      #4,b@x.com,partially_refunded,2026-05-01 10:00:00 +0000,66276244149000,62.248554897752841947708354595880090,USD,pin
      #5,c@x.com,partially_refunded,2026-05-01 10:00:00 +0000,100,0.000000000000000000000000000000001,USD,pen

      """
    for chunk in [1, 9, 4096] {
      let (orders, counts) = try Self.orders(csv, chunk: chunk)
      #expect(orders.map(\.id) == ["#5"])
      #expect(orders.map(\.totalText) == ["99.999999999999999999999999999999999"])
      #expect(
        counts.problems == [
          RowProblem(row: 5, column: "refunded", reason: .outOfRange),
          RowProblem(row: 6, column: "refunded", reason: .outOfRange),
        ])
    }
  }

  @Test("an order's rows are one order whichever of its columns they repeat; the next Name starts the next")
  func consecutiveRowsOfOneNameAreOneOrder() throws {
    let csv = """
      Name,Email,Financial Status,Created at,Total,Currency,Lineitem name
      #1,a@x.com,paid,2026-01-01 10:00:00 -0500,10.00,USD,Shirt
      #1,a@x.com,paid,2026-01-01 10:00:00 -0500,10.00,USD,Hat
      #1,a@x.com,,2026-01-01 10:00:00 -0500,,,Sock
      #2,b@x.com,paid,2026-01-02 10:00:00 -0500,5.00,USD,Mug
      #2,,,,,,Cup
      #3,c@x.com,paid,2026-01-03 10:00:00 -0500,x,USD,Bag
      #3,c@x.com,paid,2026-01-03 10:00:00 -0500,7.00,USD,Pin
      #4,d\u{01}@x.com,paid,2026-01-04 10:00:00 -0500,9.00,USD,Cap
      #4,d@x.com,paid,2026-01-04 10:00:00 -0500,9.00,USD,Cap

      """
    for chunk in [1, 5, 4096] {
      let (orders, counts) = try Self.orders(csv, chunk: chunk)
      #expect(orders.map(\.totalText) == ["10.00", "5.00"])
      // #3's first row is bad: its later rows are its line items, not an order of their own.
      // #4's first row holds a control character: refused, and its repeat with it.
      #expect(counts.records == 2 && counts.badRecords == 2)
      #expect(
        counts.problems == [
          RowProblem(row: 6, column: "total", reason: .notADecimal),
          RowProblem(row: 8, column: "email", reason: .controlCharacter),
        ])
    }
  }

  @Test("the newer export's header is read by name")
  func newerHeader() throws {
    let (orders, counts) = try read("orders-export-newer.csv", chunk: 11)
    #expect(orders.map(\.id) == ["6001"] && counts.badRecords == 0)
    #expect(orders.first?.createdAt.offsetMinutes == 120)
  }
}
