import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatAnalytics
@testable import HaatRecords

@Suite("Attribution report")
struct AttributionKernelTests {
  static func order(
    _ total: String, currency: String = "USD", landing: String = "/", referrer: String = ""
  ) -> CanonicalRecord {
    .order(
      OrderRecord(
        platform: "shopify", account: "shop", id: UUID().uuidString,
        createdAt: Values.Timestamp(epochSeconds: 1_700_000_000, offsetMinutes: 0),
        customer: "", total: Values.decimal(total) ?? .zero, totalText: total, currency: currency,
        landingSite: landing, referringSite: referrer))
  }

  static func post(_ platform: String, clicks: UInt64?) -> CanonicalRecord {
    var post = PostRecord(
      platform: platform, account: "a", id: "p", createdAt: Values.Timestamp(epochSeconds: 0, offsetMinutes: 0),
      mediaType: .image)
    post.clicks = clicks
    return .post(post)
  }

  @Test(
    "UTM tags in any case and percent-encoded, then click ids, then the referrer, else direct",
    arguments: [
      ("/?utm_source=Face%62ook&utm_medium=paid_social", "", "facebook"),
      ("/p?UTM_SOURCE=IG", "", "instagram"),
      ("/?utm_source=google&utm_medium=CPC&gclid=x", "", "google_ads"),
      ("/?utm_source=google&utm_medium=organic", "", "search"),
      ("/?utm_medium=email", "", "email"),
      ("/?utm_source=spring+sale", "", "other"),
      ("/products/tee?fbclid=IwAR0", "", "facebook"),
      ("/?ttclid=E.C.P", "https://www.google.com/", "tiktok"),
      ("/", "https://l.instagram.com/?u=https%3A%2F%2Fshop", "instagram"),
      ("/", "https://lm.facebook.com/l.php", "facebook"),
      ("/", "https://t.co/abc", "x"),
      ("/", "https://www.google.co.uk/", "search"),
      ("/", "android-app://com.google.android.gm/", "email"),
      ("/", "https://blog.example/review", "referral"),
      ("/", "", "direct"),
      // A fragment ends the query, and a `?` inside one begins none.
      ("/?utm_source=facebook#reviews", "", "facebook"),
      ("/#top?utm_source=facebook", "", "direct"),
      ("/?ref=1#fbclid=x", "", "direct"),
      ("/?utm_source=%ZZfacebook", "", "other"),
      ("/", "//www.google.com/search?q=x", "search"),
      ("/", "google.com/search", "search"),
      ("/", "https://user@l.facebook.com:443/l.php", "facebook"),
      // A password's `:` is not a port's; the user ends at the last `@`.
      ("/", "https://user:pw@www.instagram.com/x", "instagram"),
      ("/", "https://a:b@c@pinterest.com:8443/", "pinterest"),
      ("/", "https://blog.example/out?to=https://facebook.com", "referral"),
      // Found by a tester: only spaces and tabs are trimmed (reports.md), not a no-break,
      // ideographic or zero-width space, which are part of the value.
      ("/p?utm_source=%C2%A0facebook", "", "other"),
      ("/p?utm_source=%E3%80%80facebook", "", "other"),
      ("/p?utm_source=facebook%E2%80%8B", "", "other"),
      ("/p?utm_source=%20facebook%09", "", "facebook"),
      ("", "\u{00A0}https://www.tiktok.com/", "referral"),
      // Read on bytes: a query with no path, names in any ASCII case, a name ends at its
      // first `=`, schemes and hosts in capitals, spaces and tabs around the referrer (other blanks are part of it).
      ("?fbclid=1", "", "facebook"),
      ("/?x=1&&MSCLKID=2", "", "microsoft_ads"),
      ("/?=ttclid", "", "direct"),
      ("/?fbclid_x=1", "", "direct"),
      ("/", "HTTPS://WWW.Facebook.COM/page", "facebook"),
      ("/", " \thttps://pinterest.com/pin/1 ", "pinterest"),
      ("/", " \u{00A0}https://pinterest.com/pin/1 ", "referral"),
      ("/", "mailto:someone@example.com", "referral"),
      // A domain matches whole or after a dot, never as the end of another name.
      ("/", "https://notfacebook.com/", "referral"), ("/", "https://facebook.com.example/", "referral"),
      ("/", "https://business.facebook.com/", "facebook"), ("/", "https://pin.it/x", "pinterest"),
      ("/", "https://pinterest.co.uk/", "pinterest"), ("/", "https://yandex.ru/", "search"),
      ("/", "https://x.com/", "x"), ("/", "https://box.com/", "referral"),
      // Capitals outside ASCII are lowered too: the shortcut for plain text skips no case.
      ("/?utm_source=%C3%89T%C3%89&utm_medium=Email", "", "email"),
    ])
  func channels(landing: String, referrer: String, channel: String) {
    guard case .order(let order) = Self.order("1", landing: landing, referrer: referrer) else { return }
    #expect(Channels.classify(order).channel == channel)
  }

  /// Every row of docs/reports.md's `utm_source` table, and the mediums for a source it
  /// does not name.
  @Test func everySourceOfTheTable() {
    let table: [(sources: [String], medium: String, channel: String)] = [
      (["facebook", "fb", "meta", "facebook.com", "m.facebook.com", "l.facebook.com"], "", "facebook"),
      (["instagram", "ig", "instagram.com", "l.instagram.com"], "email", "instagram"),
      (["tiktok", "tiktok.com"], "cpc", "tiktok"), (["pinterest", "pinterest.com", "pin"], "", "pinterest"),
      (["linkedin", "linkedin.com", "lnkd.in"], "", "linkedin"), (["youtube", "yt", "youtube.com"], "", "youtube"),
      (["twitter", "x", "t.co", "twitter.com", "x.com"], "", "x"),
      (["google", "google.com"], "organic", "search"), (["bing", "bing.com"], "", "search"),
      (["Google"], "Paid-Search", "google_ads"), (["bing.com"], " sem ", "microsoft_ads"),
      (["duckduckgo", "yahoo", "yandex", "baidu", "ecosia"], "cpc", "search"),
      (["email", "newsletter", "klaviyo", "mailchimp", "omnisend", "brevo"], "social", "email"),
      (["sms"], "", "sms"), (["WhatsApp"], "", "whatsapp"),
      (["spring sale", "", "googl"], "newsletter", "email"), (["other"], "SMS", "sms"),
      (["", "x.co"], "paid_social", "other_social"), (["social"], "cpc", "other"),
    ]
    for (sources, medium, channel) in table {
      for source in sources {
        #expect(Channels.utm(source: source, medium: medium) == channel, "\(source) \(medium)")
      }
    }
    #expect(Channels.utm(source: " ", medium: "\t") == nil)
  }

  /// The tags read on their bytes give the channel their decoded, trimmed, lowercased
  /// Strings give: every name of the tables in random ASCII case, beside values that must
  /// be decoded (`%`, `+`), trimmed (blanks at an end) or lowercased outside ASCII, empty
  /// values, a tag with no `=`, a tag named twice, a tag after the fragment.
  @Test func tagsReadOnBytesAsTheirStringsRead() {
    var random = SeededRandom(seed: 23)
    let names = [
      "facebook", "fb", "meta", "m.facebook.com", "l.instagram.com", "ig", "tiktok", "pin", "lnkd.in", "yt", "x",
      "t.co", "google", "google.com", "bing", "bing.com", "duckduckgo", "email", "newsletter", "klaviyo", "sms",
      "whatsapp", "cpc", "ppc", "paid", "paid_search", "paid-search", "sem", "cpm", "social", "social-media",
      "paid_social", "paid-social", "organic", "spring_sale", "googl", "",
    ]
    let odd = [
      "%20facebook", "face%62ook", "paid+social", "email%20", " sms", "sms\t", "Ému", "ÉMAIL", "email\u{0B}",
      "%ZZ", "%C3%89T%C3%89", "a%2", "+", "\u{00A0}email",
    ]
    func value() -> String {
      let name =
        random.next() % 5 == 0
        ? odd[Int(random.next() % UInt64(odd.count))] : names[Int(random.next() % UInt64(names.count))]
      return String(name.map { random.next() % 2 == 0 ? Character($0.uppercased()) : $0 })
    }
    let clicks = ["fbclid=1", "GCLID=2", "ttclid", "ref=a"]
    var checked = 0
    for _ in 0..<20_000 {
      var pairs: [String] = []
      for _ in 0..<Int(random.next() % 5) {
        switch random.next() % 6 {
        case 0: pairs.append("utm_source=\(value())")
        case 1: pairs.append("UTM_Medium=\(value())")
        case 2: pairs.append(["utm_source", "utm_medium"][Int(random.next() % 2)])
        case 3: pairs.append("utm_campaign=\(value())")
        case 4: pairs.append(clicks[Int(random.next() % UInt64(clicks.count))])
        default: pairs.append("")
        }
      }
      let fragment = random.next() % 8 == 0 ? "#utm_source=\(value())" : ""
      let landing =
        ["/", "/products/tee", ""][Int(random.next() % 3)] + (pairs.isEmpty ? "" : "?") + pairs.joined(separator: "&")
        + fragment
      let referrer = ["", "https://l.facebook.com/", "https://example.com/"][Int(random.next() % 3)]
      guard case .order(let order) = Self.order("1", landing: landing, referrer: referrer) else { continue }
      let tags = order.utmSourceAndMedium
      let expected: (String, Channels.Evidence) =
        Channels.utm(source: tags.source, medium: tags.medium).map { ($0, .utm) }
        ?? Channels.clickID(in: landing).map { ($0, .clickID) } ?? Channels.referrer(referrer).map { ($0, .referrer) }
        ?? ("direct", .none)
      let classified = Channels.classify(order)
      #expect(classified.channel == expected.0 && classified.evidence == expected.1, "\(landing) \(referrer)")
      checked += 1
    }
    #expect(checked == 20_000)
  }

  /// Orders of a few channels in currencies written in any case, interleaved, with a copy
  /// of the kernel taken and fed on the way: the cells found by the recent-cell cache are
  /// the ones a hash finds, and a copy's additions stay its own.
  @Test func ordersInterleavedOverChannelsAndCurrencies() throws {
    var random = SeededRandom(seed: 29)
    let landings = [
      "/?utm_source=facebook", "/?fbclid=1", "/", "/?utm_source=google&utm_medium=cpc", "/?utm_medium=sms",
    ]
    let currencies = ["USD", "usd", "Eur", "EUR", "BDT"]
    var kernel = AttributionKernel()
    var copies: [AttributionKernel] = []
    var expected: [String: (orders: UInt64, revenue: Decimal)] = [:]
    for round in 0..<3_000 {
      let landing = landings[Int(random.next() % UInt64(landings.count))]
      let currency = currencies[Int(random.next() % UInt64(currencies.count))]
      let cents = random.next() % 100_000
      let record = Self.order(
        "\(cents / 100).\(cents % 100 < 10 ? "0" : "")\(cents % 100)", currency: currency, landing: landing)
      guard case .order(let order) = record else { continue }
      let added = kernel.add(record)
      #expect(added)
      let key = "\(Channels.classify(order).channel) \(currency.uppercased())"
      expected[key, default: (0, .zero)].orders += 1
      expected[key, default: (0, .zero)].revenue += order.total
      if round % 700 == 0 {
        copies.append(kernel)
        var copy = kernel
        _ = copy.add(Self.order("1.00", currency: "NEW", landing: "/?utm_source=facebook"))
      }
    }
    var report = Report()
    try kernel.finish(into: &report)
    let rows = report.attribution.rows.filter { $0.orders > 0 }
    #expect(rows.count == expected.count)
    for row in rows {
      let want = expected["\(row.channel) \(row.currency)"]
      #expect(
        row.orders == want?.orders && Decimal(string: row.revenue) == want?.revenue, "\(row.channel) \(row.currency)")
    }
    #expect(!rows.contains { $0.currency == "NEW" })
    #expect(copies.count == 5)
  }

  /// The case helpers change nothing but case, and take the shortcut only for plain ASCII.
  @Test func caseHelpersMatchTheStandardLibrary() {
    for text in ["facebook", "Facebook", "USD", "usd", "Usd", "ÉTÉ", "été", "eur€", "", "A-b_C 1", "ǅ"] {
      #expect(Channels.lowercased(text) == text.lowercased(), "\(text)")
      #expect(Channels.uppercased(text) == text.uppercased(), "\(text)")
    }
  }

  @Test("orders, revenue, AOV, share per currency; conversion from link clicks; ROAS from spend, claimed apart")
  func figures() throws {
    var builder = PartialBuilder(reports: ["attribution"])
    let records: [CanonicalRecord] = [
      Self.order("30.00", landing: "/?fbclid=1"), Self.order("10.50", landing: "/?utm_source=facebook"),
      Self.order("59.50", referrer: "https://www.google.com/"), Self.order("1250.50", currency: "BDT"),
      Self.post("facebook", clicks: 150), Self.post("facebook", clicks: 50), Self.post("facebook", clicks: nil),
      .adInsight(
        AdInsightRecord(
          platform: "facebook", account: "1", date: "2026-11-01", campaign: "c", ad: "a",
          spend: Values.decimal("20.25"), impressions: 1_000, clicks: 10, conversions: 2,
          claimedRoas: Values.decimal("4"))),
    ]
    for record in records { builder.add(record) }
    var merger = PartialMerger()
    merger.merge(try Partial(jsonUTF8Data: builder.partial.jsonUTF8Data()))
    var report = Report()
    try merger.finish(["attribution"], into: &report)
    let rows = report.attribution.rows
    #expect(rows.map { "\($0.currency) \($0.channel)" } == ["BDT direct", "USD facebook", "USD search"])
    let facebook = try #require(rows.first { $0.channel == "facebook" })
    #expect(facebook.orders == 2 && facebook.revenue == "40.5" && facebook.byClickID == 1 && facebook.byUtm == 1)
    #expect(abs(facebook.aov - 20.25) < 1e-9 && abs(facebook.share - 0.405) < 1e-9)
    #expect(facebook.linkClicks == 200 && abs(facebook.conversionRate - 0.01) < 1e-12)
    // Beside another kernel that reads posts, the clicks are the same.
    var both = PartialBuilder(reports: ["engagement", "attribution"])
    for record in records { both.add(record) }
    var bothMerger = PartialMerger()
    bothMerger.merge(both.partial)
    var bothReport = Report()
    try bothMerger.finish(["engagement", "attribution"], into: &bothReport)
    #expect(bothReport.attribution.rows == rows && bothReport.engagement.total.posts == 3)
    #expect(facebook.adSpend == "20.25" && abs(facebook.roas - 2) < 1e-12 && abs(facebook.claimedRoas - 4) < 1e-12)
    let direct = try #require(rows.first { $0.currency == "BDT" })
    #expect(direct.share == 1 && !direct.hasRoas && direct.byReferrer == 0)
    #expect(report.attribution.model == "last_touch" && report.attribution.note.contains("first-touch"))
    let table = ReportRendering.table(report)
    #expect(table.contains("claimed ROAS") && table.contains("first-touch and linear"))
  }

  @Test("a platform that is not one of the seven keeps its clicks and spend on a row of its own")
  func platformsOfOtherNamesMeetNoOrders() throws {
    var builder = PartialBuilder(reports: ["attribution"])
    let records: [CanonicalRecord] = [
      Self.order("20"), Self.order("30", referrer: "https://www.google.com/"), Self.order("5", currency: ""),
      Self.order("7", landing: "/?utm_source=facebook"),
      Self.post("Direct", clicks: 40), Self.post("facebook", clicks: 70),
      .adInsight(
        AdInsightRecord(
          platform: "search", account: "1", date: "2026-05-01", campaign: "c", ad: "a", spend: Values.decimal("5"),
          impressions: nil, clicks: nil, conversions: nil, claimedRoas: Values.decimal("2"))),
    ]
    for record in records { builder.add(record) }
    var merger = PartialMerger()
    merger.merge(builder.partial)
    var report = Report()
    try merger.finish(["attribution"], into: &report)
    let rows = report.attribution.rows
    #expect(
      rows.map { "\($0.currency) \($0.channel) \($0.orders) \($0.linkClicks) \($0.adSpend)" } == [
        " direct 1 0 0", " direct 0 40 0", " search 0 0 5", "USD direct 1 0 0", "USD facebook 1 70 0",
        "USD search 1 0 0",
      ])
    #expect(rows.filter { $0.channel != "facebook" }.allSatisfy { !$0.hasRoas && $0.conversionRate == 0 })
    #expect(rows[2].hasClaimedRoas && rows.filter(\.hasClaimedRoas).count == 1)
    #expect(abs(rows[4].conversionRate - 1.0 / 70) < 1e-12)
  }

  /// Revenue adds as integers when it can (totals of up to four decimals): every mix of
  /// short, long, negative and huge totals, in any split, sums exactly as Decimal does.
  @Test("revenue is the exact Decimal sum of the totals, whatever their form")
  func revenueIsExact() throws {
    var generator = SystemRandomNumberGenerator()
    let forms: [() -> String] = [
      { "\(Int.random(in: 0..<100_000, using: &generator)).\(Int.random(in: 10..<100, using: &generator))" },
      { "\(Int.random(in: 0..<100, using: &generator))" },
      { "-\(Int.random(in: 0..<1_000, using: &generator)).5" },
      { "0.\(Int.random(in: 100_000..<999_999, using: &generator))" },  // six decimals: Decimal's path
      { "922337203685477.5807" },  // Int64.max ten-thousandths: the integer sum overflows
      { "99999999999999999999.99" },  // past 18 digits: Foundation's parser
    ]
    for _ in 0..<20 {
      let totals = (0..<200).map { _ in forms[Int.random(in: 0..<forms.count, using: &generator)]() }
      var expected = Decimal.zero
      for total in totals { expected += try #require(Values.decimal(total)) }
      var builders = (0..<3).map { _ in PartialBuilder(reports: ["attribution"]) }
      for total in totals { builders[Int.random(in: 0..<3, using: &generator)].add(Self.order(total)) }
      var merger = PartialMerger()
      for builder in builders { merger.merge(builder.partial) }
      var report = Report()
      try merger.finish(["attribution"], into: &report)
      let revenue = report.attribution.rows.reduce(Decimal.zero) { $0 + (Values.decimal($1.revenue) ?? .nan) }
      #expect(revenue == expected, "\(totals)")
    }
  }

  /// A revenue that would need more than a Decimal's 38 significant digits is never rounded:
  /// in one task the order that would round it is a bad row; merged partials whose sum
  /// would round make no report.
  @Test func revenueThatCannotBeHeldExactlyIsRefused() throws {
    let huge = "1" + String(repeating: "0", count: 37)
    var kernel = AttributionKernel()
    let first = kernel.add(Self.order(huge))
    let second = kernel.add(Self.order("0.25"))
    #expect(first)
    #expect(!second, "10^37 + 0.25 needs 40 digits")
    var builders = [PartialBuilder(reports: ["attribution"]), PartialBuilder(reports: ["attribution"])]
    builders[0].add(Self.order(huge))
    builders[1].add(Self.order("0.25"))
    var merger = PartialMerger()
    for builder in builders { merger.merge(builder.partial) }
    var report = Report()
    #expect(throws: (any Error).self) { try merger.finish(["attribution"], into: &report) }
  }

  /// 38 nines twice is 39 digits: Decimal holds it (its significand has 128 bits), but it
  /// would not read back from a partial (38 digits at most). In one task the second order
  /// is a bad row; over two tasks, or two channels of one currency, no report.
  @Test func thirtyNineDigitsAreNotExactEither() throws {
    let nines = String(repeating: "9", count: 38)
    var kernel = AttributionKernel()
    let first = kernel.add(Self.order(nines))
    let second = kernel.add(Self.order(nines))
    #expect(first)
    #expect(!second, "the sum needs 39 digits")
    for landings in [("/", "/"), ("/", "/?fbclid=1")] {
      var builders = [PartialBuilder(reports: ["attribution"]), PartialBuilder(reports: ["attribution"])]
      builders[0].add(Self.order(nines, landing: landings.0))
      builders[1].add(Self.order(nines, landing: landings.1))
      var merger = PartialMerger()
      for builder in builders { merger.merge(builder.partial) }
      var report = Report()
      #expect(throws: HaatError.self) { try merger.finish(["attribution"], into: &report) }
    }
  }

  /// Totals of up to four decimals add as integers and the rest as a Decimal: refusing an
  /// order because that Decimal part alone would grow past 38 digits, where the revenue
  /// itself does not, made one task refuse what a split over two took.
  @Test func theWholeRevenueDecidesNotItsDecimalPart() throws {
    let totals = ["123456789012345.00001", "-123456789012345", "0.0000000000000000000000000000001"]
    var kernel = AttributionKernel()
    for total in totals {
      let taken = kernel.add(Self.order(total))
      #expect(taken, "\(total)")
    }
    var builders = [PartialBuilder(reports: ["attribution"]), PartialBuilder(reports: ["attribution"])]
    builders[0].add(Self.order(totals[0]))
    builders[0].add(Self.order(totals[1]))
    builders[1].add(Self.order(totals[2]))
    var split = PartialMerger()
    for builder in builders { split.merge(builder.partial) }
    var one = PartialBuilder(reports: ["attribution"])
    for total in totals { one.add(Self.order(total)) }
    var whole = PartialMerger()
    whole.merge(one.partial)
    var (left, right) = (Report(), Report())
    try split.finish(["attribution"], into: &left)
    try whole.finish(["attribution"], into: &right)
    #expect(left.attribution.rows.map(\.revenue) == ["0.0000100000000000000000000000001"])
    #expect(left.attribution == right.attribution)
  }

  /// A ratio is the double nearest the exact sum, divided once: NSDecimalNumber's
  /// `doubleValue` made 4345.56 into 4345.5599999999995.
  @Test func ratiosStartFromTheNearestDouble() throws {
    var builder = PartialBuilder(reports: ["attribution"])
    builder.add(Self.order("4345.56"))
    var merger = PartialMerger()
    merger.merge(builder.partial)
    var report = Report()
    try merger.finish(["attribution"], into: &report)
    #expect(report.attribution.rows.map(\.aov) == [4345.56])
    for text in ["0.8499", "4345.56", "0.1", "123456789.0123456789", "-2.675"] {
      #expect(Money.double(try #require(Values.decimal(text))) == Double(text))
    }
    // A table shows sums rounded in decimal: through a double, the cents of a sum past
    // 2^53 were lost (12345678901234567.89 showed as …568.00).
    for (text, shown) in [
      ("12345678901234567.89", "12345678901234567.89"), ("12345678901234568.195", "12345678901234568.20"),
      ("99999999999999999999999999999999999999", "99999999999999999999999999999999999999.00"), ("0", "0.00"),
      ("4345.5", "4345.50"), ("-2.675", "-2.68"), ("-0.001", "0.00"), ("7", "7.00"), ("not money", "not money"),
    ] {
      #expect(Money.display(text) == shown, "\(text)")
    }
  }

  @Test("clicks go to their platform's channel whatever the order, the case, the account index, and copies on the way")
  func clicksInRunsAndInterleaved() throws {
    let platforms = ["facebook", "facebook", "Facebook", "x", "FACEBOOK", "x", "tiktok", "tiktok", "x", "facebook"]
    var kernel = AttributionKernel()
    var copies: [AttributionKernel] = []
    var expected: [String: UInt64] = [:]
    for (index, platform) in platforms.enumerated() {
      for step in 0..<(index % 3 + 1) {
        let clicks = UInt64(index * 10 + step)
        guard case .post(var post) = Self.post(platform, clicks: clicks) else { continue }
        // The reader's account index finds the cached channel; one index may come with
        // another platform (from another reader), and a hostile one is not cached.
        post.accountIndex = [0, 1, 2, 5000, -1][index % 5]
        let added = kernel.add(post: post)
        #expect(added)
        expected[platform.lowercased(), default: 0] += clicks
        // A copy shares the channels until one of them changes.
        if step == 0 { copies.append(kernel) }
      }
      if index == 4 { kernel.merge(AttributionKernel()) }
      if index == 6 { kernel.add(clicks: 1000, platform: "Pinterest") }
    }
    expected["pinterest"] = 1000
    var partial = Partial()
    kernel.write(to: &partial)
    let clicks = Dictionary(uniqueKeysWithValues: partial.attribution.channels.map { ($0.channel, $0.linkClicks) })
    #expect(clicks == expected)
    // The copies kept what they had, and can go on adding.
    guard var first = copies.first, case .post(let post) = Self.post("facebook", clicks: 5) else { return }
    let added = first.add(post: post)
    #expect(added)
    var firstPartial = Partial()
    first.write(to: &firstPartial)
    #expect(firstPartial.attribution.channels.map(\.linkClicks) == [5])
  }

  @Test("any split of the records over tasks gives the same report")
  func mergeLaw() throws {
    var generator = SystemRandomNumberGenerator()
    let landings = ["/?fbclid=1", "/?utm_source=tiktok", "/", "/?gclid=2"]
    var records: [CanonicalRecord] = (0..<300).map { index in
      Self.order(
        "\(index).\(index % 100)", currency: index % 7 == 0 ? "EUR" : "USD", landing: landings[index % 4],
        referrer: index % 5 == 0 ? "https://pinterest.com/pin/1" : "")
    }
    records += (0..<50).map { Self.post(["facebook", "tiktok", "x"][$0 % 3], clicks: UInt64($0)) }
    func report(_ parts: Int) throws -> Report {
      var builders = (0..<parts).map { _ in PartialBuilder(reports: ["attribution"]) }
      for record in records { builders[Int.random(in: 0..<parts, using: &generator)].add(record) }
      var merger = PartialMerger()
      for builder in builders.shuffled(using: &generator) { merger.merge(builder.partial) }
      var report = Report()
      try merger.finish(["attribution"], into: &report)
      return report
    }
    let one = try report(1)
    for parts in [2, 3, 7] { #expect(try report(parts) == one) }
  }

  @Test("a later run's re-read lookback days replace their ad spend; orders and clicks add; platforms in any case")
  func overlay() throws {
    func insight(_ day: String, _ spend: String) -> CanonicalRecord {
      .adInsight(
        AdInsightRecord(
          platform: "facebook", account: "1", date: day, campaign: "c", ad: "a", spend: Values.decimal(spend),
          impressions: 1, clicks: 1, conversions: nil, claimedRoas: nil))
    }
    func run(_ records: [CanonicalRecord], covering days: ClosedRange<Int>?) throws -> PartialMerger {
      var builder = PartialBuilder(reports: ["attribution"])
      for record in records { builder.add(record) }
      if let days { builder.cover(DayCoverage(platform: "facebook", account: "1", days: days)) }
      var merger = PartialMerger()
      merger.merge(try Partial(jsonUTF8Data: builder.partial.jsonUTF8Data()))
      return merger
    }
    let first = Days.number("2026-11-01") ?? 0
    var laid = try run(
      [insight("2026-11-01", "10"), insight("2026-11-02", "10"), Self.order("5", landing: "/?fbclid=1")],
      covering: first...(first + 1))
    laid.overlay(
      try run(
        [insight("2026-11-02", "12.5"), Self.order("7", landing: "/?fbclid=2"), Self.post("Facebook", clicks: 4)],
        covering: (first + 1)...(first + 1)))
    var report = Report()
    try laid.finish(["attribution"], into: &report)
    let facebook = try #require(report.attribution.rows.first { $0.channel == "facebook" })
    #expect(facebook.adSpend == "22.5", "10 + 12.5: the re-read day replaced, not 32.5")
    #expect(facebook.orders == 2 && facebook.revenue == "12" && facebook.linkClicks == 4)
  }
}
