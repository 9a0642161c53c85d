import Foundation
import HaatProtocol
import HaatRecords
import Testing

@Suite("Shopify orders connector")
struct ShopifyOrdersConnectorTests {
  static let base = "https://dhaka-threads.myshopify.com/admin/api/2024-01"

  func task(bookmark: String = "") -> TaskSpec {
    var task = TaskSpec()
    task.source.kind = "shopify_orders"
    task.source.account = "dhaka-threads"
    task.source.url = Self.base
    task.bookmark = bookmark
    return task
  }

  @Test("orders map to canonical records; money stays decimal; utm fields are decoded; Link paging")
  func ordersAndPaging() throws {
    var connector = ShopifyOrdersConnector(task: task(), limits: ReadLimits())
    let first = try #require(try connector.firstRequest())
    #expect(first.url.hasPrefix("\(Self.base)/orders.json?status=any&limit=250&fields="))
    let next =
      "\(Self.base)/orders.json?limit=250&page_info=eyJsYXN0X2lkIjo0NTA3ODk0NjksImxhc3RfdmFsdWUiOiIyMDA4LTAxLTEwIn0"
    let pages = [
      first.url: CannedPage(
        body: Array(try fixture("shopify/orders-1.json")), contentType: "application/json",
        headers: [("link", "<\(next)>; rel=\"next\"")]),
      next: CannedPage(
        body: Array(#"{"orders":[]}"#.utf8), contentType: "application/json",
        headers: [("link", "<\(Self.base)/orders.json?limit=250&page_info=abc>; rel=\"previous\"")]),
    ]
    let (records, requests, driven) = try drive(ShopifyOrdersConnector.self, task(), pages: pages)
    #expect(requests.count == 2, "the previous link is not followed")
    let orders = records.compactMap { record -> OrderRecord? in
      if case .order(let order) = record { return order }
      return nil
    }
    // #1005 is voided: no order. #1006 was partly refunded: its revenue is what is left.
    #expect(orders.map(\.id) == ["450789469", "450789470", "450789474"])
    #expect(orders[2].totalText == "10.00" && orders[2].total == Decimal(string: "10.00"))
    let bob = orders[0]
    #expect(bob.totalText == "598.94" && bob.total == Decimal(string: "598.94"))
    #expect(bob.createdAt.offsetMinutes == -300 && bob.customer == "207119551" && bob.currency == "USD")
    #expect(bob.utm == ("Facebook", "paid social", "eid sale"))
    #expect(bob.platform == "web" && bob.account == "dhaka-threads")
    #expect(orders[1].customer == "" && orders[1].landingSite == "" && orders[1].currency == "BDT")
    #expect(
      driven.counts.problems == [
        RowProblem(row: 3, column: "created_at", reason: .missing),
        RowProblem(row: 4, column: "total_price", reason: .notADecimal),
      ])
    #expect(driven.bookmark == "2008-01-10T11:00:00-05:00 450789469", "the newest order's time, and its id")
  }

  /// Found by a tester: an order a later page handed again was counted twice, revenue and
  /// all. It is a bad row (`a repeat of an object read earlier in this task`).
  @Test func anOrderOnTwoPagesIsCountedOnce() throws {
    var connector = ShopifyOrdersConnector(task: task(), limits: ReadLimits())
    let first = try #require(try connector.firstRequest())
    let next = "\(Self.base)/orders.json?limit=250&page_info=again"
    let body = Array(try fixture("shopify/orders-1.json"))
    let pages = [
      first.url: CannedPage(
        body: body, contentType: "application/json", headers: [("link", "<\(next)>; rel=\"next\"")]),
      next: CannedPage(body: body, contentType: "application/json", headers: []),
    ]
    let (records, _, driven) = try drive(ShopifyOrdersConnector.self, task(), pages: pages)
    #expect(records.count == 3)
    #expect(driven.counts.problems.filter { $0.reason == .duplicate }.count == 3)
  }

  /// An order created at the bookmark's second after the last run is read, and the next
  /// bookmark keeps both ids: a bookmark of the time alone skipped it for good.
  @Test func aNewOrderAtTheBookmarksSecondIsRead() throws {
    func order(_ id: Int) -> String {
      #"{"id":\#(id),"created_at":"2008-01-10T11:00:00-05:00","total_price":"5.00","currency":"USD"}"#
    }
    let body = #"{"orders":[\#(order(9001)),\#(order(450789469))]}"#
    func run(_ bookmark: String) throws -> (ids: [String], bookmark: String) {
      var connector = ShopifyOrdersConnector(task: task(bookmark: bookmark), limits: ReadLimits())
      let first = try #require(try connector.firstRequest())
      let pages = [first.url: CannedPage(body: Array(body.utf8), contentType: "application/json")]
      let (records, _, driven) = try drive(ShopifyOrdersConnector.self, task(bookmark: bookmark), pages: pages)
      let ids = records.compactMap { record -> String? in
        if case .order(let order) = record { return order.id }
        return nil
      }
      return (ids, driven.bookmark)
    }
    let second = try run("2008-01-10T11:00:00-05:00 450789469")
    #expect(second.ids == ["9001"])
    #expect(second.bookmark == "2008-01-10T11:00:00-05:00 9001,450789469")
    let third = try run(second.bookmark)
    #expect(third.ids.isEmpty, "read again: \(third.ids)")
    #expect(third.bookmark == second.bookmark)
    // A bookmark of the time alone (an older Haat's) skips every order at that time.
    #expect(try run("2008-01-10T11:00:00-05:00").ids.isEmpty)
  }

  /// Found by a tester: 150 orders at one second overflowed the boundary's 100 ids, and
  /// every later run counted the other 50 again. Past the boundary, the next run starts
  /// after that second (in UTC, which `created_at_min` takes as well).
  @Test func moreAtOneSecondThanTheBoundaryHoldsAreNotCountedAgain() throws {
    let orders = (0..<150).map { index in
      #"{"id":\#(1000 + index),"created_at":"2008-01-10T11:00:00-05:00","total_price":"5.00","currency":"USD"}"#
    }
    let body = #"{"orders":[\#(orders.joined(separator: ","))]}"#
    func run(_ bookmark: String) throws -> (count: Int, bookmark: String, url: String) {
      var connector = ShopifyOrdersConnector(task: task(bookmark: bookmark), limits: ReadLimits())
      let first = try #require(try connector.firstRequest())
      let pages = [first.url: CannedPage(body: Array(body.utf8), contentType: "application/json")]
      let (records, _, driven) = try drive(ShopifyOrdersConnector.self, task(bookmark: bookmark), pages: pages)
      return (records.count, driven.bookmark, first.url)
    }
    let first = try run("")
    #expect(first.count == 150)
    #expect(first.bookmark == "2008-01-10T16:00:01Z", "the second after the newest")
    // The platform answers only orders from then on: none of these.
    let again = try run(first.bookmark)
    #expect(again.url.contains("created_at_min=2008%2D01%2D10T16%3A00%3A01Z"), "\(again.url)")
  }

  @Test("a bookmark asks for orders created since, and skips the one it was taken from")
  func bookmark() throws {
    var connector = ShopifyOrdersConnector(task: task(bookmark: "2008-01-10T11:00:00-05:00"), limits: ReadLimits())
    let first = try #require(try connector.firstRequest())
    #expect(first.url.hasSuffix("&created_at_min=2008%2D01%2D10T11%3A00%3A00%2D05%3A00"))
    let (records, _, _) = try drive(
      ShopifyOrdersConnector.self, task(bookmark: "2008-01-10T11:00:00-05:00"),
      pages: [first.url: CannedPage(body: Array(try fixture("shopify/orders-1.json")), contentType: nil)])
    #expect(records.count == 2, "the bookmark's own order is not read twice (nor the voided one)")
  }

  @Test("a refused token is token_rejected with Shopify's words; other statuses keep the fetcher's error")
  func errors() throws {
    var connector = ShopifyOrdersConnector(task: task(), limits: ReadLimits())
    let body = Array(#"{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}"#.utf8)
    let error = try #require(
      throws: ExportError.self,
      performing: { try connector.pageFailed(PageResponse(status: 401, contentType: nil), body: body) })
    #expect(error.code == "token_rejected" && !error.retryable && error.message.contains("Invalid API key"))
    #expect(try connector.pageFailed(PageResponse(status: 429, contentType: nil), body: []) == nil)
    #expect(
      ShopifyOrdersConnector.nextLink(
        #"<https://a/o.json?page_info=p>; rel="previous", <https://a/o.json?page_info=n>; rel="next""#)
        == "https://a/o.json?page_info=n")
    #expect(ShopifyOrdersConnector.nextLink(nil) == nil)
    // Found by a tester: a rel list (RFC 8288), and the next link on a second header line,
    // ended the paging after page 1 without a word.
    #expect(ShopifyOrdersConnector.nextLink(#"<https://a/o.json?page_info=n>; rel="next previous""#) != nil)
    #expect(ShopifyOrdersConnector.nextLink(#"<https://a/o.json?page_info=n>; rel="nextish""#) == nil)
    #expect(
      ShopifyOrdersConnector.nextLink(
        #"<https://a/p>; title="a, <b>; rel=next"; rel=previous, <https://a/n>; REL=Next"#)
        == "https://a/n")
    let split = PageResponse(
      status: 200, contentType: "application/json",
      headers: [("link", #"<https://a/p>; rel="previous""#), ("link", #"<https://a/n>; rel="next""#)])
    #expect(ShopifyOrdersConnector.nextLink(split.combinedHeader("link")) == "https://a/n")
  }
}
