import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatCoordinator

/// Fields that apply to some kinds only are refused on the others, naming the field.
@Suite struct PlannerFieldTests {
  func refusal(_ source: Source) -> HaatError? {
    var spec = JobSpec()
    spec.sources = [source]
    do {
      _ = try Planner.plan(spec, submittedBy: "test")
      return nil
    } catch {
      return error
    }
  }

  /// A TikTok ads source of one account with its credential, days left to the test.
  static func tiktok(credential: String = "tiktok") -> Source {
    var tiktok = Source()
    tiktok.kind = "tiktok_ads"
    tiktok.account = "6912345678901"
    tiktok.credential = credential
    return tiktok
  }

  /// A source's texts are bounded at submit: a megabyte account was accepted, and its task
  /// (the account twice, in the default name too) could never be sent to a worker.
  @Test func aSourcesTextsAreBounded() {
    var source = Source()
    source.url = "https://example.com/posts.csv"
    source.platform = "x"
    source.account = String(repeating: "a", count: 1_024)
    #expect(refusal(source) == nil)
    source.account += "a"
    #expect(refusal(source)?.field == "sources[0].account", "\(String(describing: refusal(source)))")
    source.account = "a"
    source.url = "https://example.com/" + String(repeating: "p", count: 8_200)
    #expect(refusal(source)?.field == "sources[0].url")
    #expect(refusal(source)?.message.contains("the most is 8192") == true)
  }

  /// Found by a tester: a name was counted in Swift characters, so one letter with 100,000
  /// combining accents was one character, and its schedule's name (200 kB) could not be
  /// given to `haat schedules pause` on any command line. Code points are counted.
  @Test func aJobNameIsCountedInCodePoints() {
    var spec = JobSpec()
    var source = Source()
    source.url = "https://example.com/posts.csv"
    spec.sources = [source]
    func refused(_ name: String) -> Bool {
      spec.name = name
      return (try? Planner.plan(spec, submittedBy: "test")) == nil
    }
    #expect(!refused(String(repeating: "é", count: 200)))
    #expect(refused(String(repeating: "é", count: 201)))
    #expect(!refused(String(repeating: "e\u{301}", count: 100)))
    #expect(refused("z" + String(repeating: "\u{301}", count: 200)))
  }

  /// Found by a tester: a source named `tiktok/a#2` after two unnamed sources of that
  /// account was refused as naming another source, though the spec wrote the name once.
  @Test func defaultNamesTakeNoNameTheSpecWrites() throws {
    var spec = JobSpec()
    var unnamed = Self.tiktok()
    unnamed.since = "2026-01-01"
    unnamed.until = "2026-01-02"
    var named = unnamed
    named.name = "tiktok/6912345678901#2"
    spec.sources = [unnamed, unnamed, named]
    let job = try Planner.plan(spec, submittedBy: "test")
    let names = Set(job.tasks.map(\.source))
    #expect(names == ["tiktok/6912345678901", "tiktok/6912345678901#3", "tiktok/6912345678901#2"], "\(names)")
  }

  @Test func daysAndSplitsApplyOnlyToTheirKinds() throws {
    var posts = Source()
    posts.url = "file:///exports/a.csv"
    posts.since = "2026-01-01"
    #expect(refusal(posts)?.field == "sources[0].since")
    posts.since = ""
    posts.splitBytes = 64 << 20
    #expect(refusal(posts) == nil)

    var tiktok = Self.tiktok()
    tiktok.since = "2026-01-01"
    tiktok.until = "2026-03-16"
    #expect(refusal(tiktok) == nil)
    tiktok.splitBytes = 64 << 20
    #expect(refusal(tiktok)?.field == "sources[0].split_bytes")

    // A split source plans one plan task; a 75-day TikTok source three windows.
    var spec = JobSpec()
    tiktok.splitBytes = 0
    spec.sources = [posts, tiktok]
    let job = try Planner.plan(spec, submittedBy: "test")
    let tasks = try job.tasks.map { try TaskSpec(jsonUTF8Data: $0.spec, options: WireCodec.decodingOptions) }
    #expect(tasks.map(\.splitPlan) == [true, false, false, false])
    #expect(tasks.dropFirst().map(\.window.start) == ["2026-01-01", "2026-01-31", "2026-03-02"])
    #expect(Set(tasks.dropFirst().map(\.rateKey)).count == 1, "one credential, one rate key")
    #expect(tasks.first?.rateKey == "", "an export file is not governed")
  }

  /// Fields that cannot work for a kind are refused, naming the field: an API kind without
  /// a credential (its tasks went out unauthenticated), `format` or `tasks` on an API kind,
  /// a query in an API kind's base URL (it became part of the path).
  @Test func fieldsThatCannotWorkAreRefused() throws {
    var tiktok = Self.tiktok(credential: "")
    tiktok.since = "2026-01-01"
    #expect(refusal(tiktok)?.field == "sources[0].credential")
    tiktok.credential = "tiktok"
    #expect(refusal(tiktok) == nil)
    var facebook = Source()
    facebook.kind = "facebook_posts"
    facebook.account = "1"
    facebook.credential = "meta"
    #expect(refusal(facebook) == nil)
    facebook.format = "csv"
    #expect(refusal(facebook)?.field == "sources[0].format")
    facebook.format = ""
    facebook.tasks = 5
    #expect(refusal(facebook)?.field == "sources[0].tasks")
    var shop = Source()
    shop.kind = "shopify_orders"
    shop.account = "shop"
    shop.credential = "shopify"
    shop.url = "https://shop.example.com?limit=5"
    #expect(refusal(shop)?.field == "sources[0].url")
    var posts = Source()
    posts.url = "file:///exports/a.csv?x=1"
    posts.format = "csv"
    #expect(refusal(posts) == nil, "an export's URL is its own")
  }

  /// URLs a worker refuses only when the task runs (and the task dies there) are refused
  /// at submit, naming the field: a file URL with a host or without its slashes, a port out
  /// of range, a space or control character (in the host too, which the URL parse alone
  /// refused as "not a URL", echoing the control character).
  @Test(arguments: [
    ("file://evil.example/tmp/x.csv", "file:///path"),
    ("file:tmp/x.csv", "file:///path"),
    ("http://127.0.0.1:99999/x.csv", "port 99999"),
    ("http://127.0.0.1:0/x.csv", "port 0"),
    ("file:///tmp/a b.csv", "a space"),
    ("http://exa mple.com/x.csv", "a space"),
    ("http://exa\u{1B}mple.com/x.csv", "U+001B"),
    ("file:///tmp/x\n.csv", "U+000A"),
    ("https://e.com/x\u{1B}[31m.csv", "U+001B"),
    ("javascript:alert(1)", "not javascript:"),
  ])
  func urlsAWorkerWouldRefuseAreRefusedAtSubmit(url: String, says: String) {
    var posts = Source()
    posts.url = url
    let error = refusal(posts)
    #expect(error?.field == "sources[0].url", "\(url)")
    #expect(error?.message.contains(says) == true, "\(String(describing: error))")
  }

  @Test func fileURLsAWorkerReadsAreTaken() {
    for url in ["file:///tmp/x.csv", "file://localhost/tmp/x.csv", "http://127.0.0.1:8080/x.csv"] {
      var posts = Source()
      posts.url = url
      #expect(refusal(posts) == nil, "\(url)")
    }
  }

  /// A by-day source's days: one left out and one that is no day are told apart.
  @Test func daysSayWhatIsWrong() throws {
    var tiktok = Self.tiktok()
    tiktok.until = "2026-03-01"
    #expect(
      refusal(tiktok)?.message == "is required for a source of kind tiktok_ads: the first day to collect, YYYY-MM-DD")
    tiktok.since = "2026-02-30"
    #expect(refusal(tiktok)?.message == "\"2026-02-30\" is not a day: the first day to collect, YYYY-MM-DD")
    tiktok.since = "2026-02-01"
    tiktok.until = "01/03/2026"
    let until = refusal(tiktok)
    #expect(until?.field == "sources[0].until" && until?.message.hasPrefix("\"01/03/2026\" is not a day") == true)
  }

  @Test func aTimeZoneMustBeAnIANAName() throws {
    var posts = Source()
    posts.url = "file:///exports/a.csv"
    posts.timezone = "America/New_York"
    #expect(refusal(posts) == nil)
    posts.timezone = "Eastern"
    #expect(refusal(posts)?.field == "sources[0].timezone")
    // Names of the tz database are taken, links and fixed offsets too.
    for name in ["UTC", "Etc/GMT+5", "US/Eastern", "EST", "CET", "GMT+14", "Pacific/Kiritimati"] {
      posts.timezone = name
      #expect(refusal(posts) == nil, "\(name)")
    }
    // No zone is more than 14 hours from UTC (Foundation read GMT+15; found by a tester).
    for name in ["GMT+15", "UTC-15"] {
      posts.timezone = name
      #expect(refusal(posts)?.message.contains("more than 14 hours") == true, "\(name)")
    }
    // An abbreviation can mean several zones (IST: India, Ireland, Israel), and Foundation
    // reads PST as Los Angeles, daylight saving and all: refused, naming the zone it read.
    for (name, zone) in [("PST", "America/Los_Angeles"), ("IST", "Asia/Kolkata"), ("BST", "Europe/London")] {
      posts.timezone = name
      let refused = refusal(posts)
      #expect(refused?.field == "sources[0].timezone", "\(name)")
      #expect(
        refused?.message.contains("abbreviation") == true && refused?.message.contains(zone) == true,
        "\(refused?.message ?? name)")
    }
  }

  @Test func businessHoursAreCheckedAtSubmit() throws {
    var messages = Source()
    messages.kind = "messages"
    messages.url = "file:///exports/dms.ndjson"
    messages.businessHours = "Sat-Thu 10:00-20:00"
    #expect(refusal(messages) == nil)
    messages.businessHours = "weekdays 9 to 5"
    let refused = refusal(messages)
    #expect(refused?.field == "sources[0].business_hours")
    #expect(refused?.message.contains("Sat-Thu 10:00-20:00") == true)
  }

  @Test func aByDaySourceWithoutUntilReadsThroughToday() throws {
    var meta = Source()
    meta.kind = "meta_ads"
    meta.account = "act_1"
    meta.credential = "meta"
    meta.since = "2026-01-01"
    var spec = JobSpec()
    spec.sources = [meta]
    let job = try Planner.plan(spec, submittedBy: "test")
    let tasks = try job.tasks.map { try TaskSpec(jsonUTF8Data: $0.spec, options: WireCodec.decodingOptions) }
    let today = Int((Date().timeIntervalSince1970 / 86_400).rounded(.down))
    #expect(tasks.count == (today - 20_454) / 30 + 1, "windows of 30 days from 2026-01-01 (day 20454)")
    #expect(tasks.allSatisfy { !$0.source.until.isEmpty }, "each task carries the run's last day")
    let stored = try JobSpec(jsonUTF8Data: job.spec, options: WireCodec.decodingOptions)
    #expect(stored.sources[0].until.isEmpty, "the job (and a schedule) keeps `until` open")
    meta.since = "2999-01-01"
    #expect(refusal(meta)?.field == "sources[0].until")
  }
}
