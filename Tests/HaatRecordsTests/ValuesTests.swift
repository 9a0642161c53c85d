import Foundation
import HaatRecords
import Testing

@Suite struct ValuesTests {
  static let counts: [(String, Result<UInt64?, Values.Problem>)] = [
    ("", .success(nil)), ("  ", .success(nil)), ("0", .success(0)), ("007", .success(7)),
    ("12,345", .success(12_345)), ("1,234,567", .success(1_234_567)), (" 42\t", .success(42)),
    ("18446744073709551615", .success(UInt64.max)), ("18446744073709551616", .failure(.outOfRange)),
    ("-5", .failure(.negative)), ("-0", .failure(.negative)), ("-1,000", .failure(.negative)),
    ("lots", .failure(.notAnInteger)), ("1.5", .failure(.notAnInteger)), ("12,34", .failure(.notAnInteger)),
    ("1,2345", .failure(.notAnInteger)), (",123", .failure(.notAnInteger)), ("+5", .failure(.notAnInteger)),
    ("1e3", .failure(.notAnInteger)), ("১২", .failure(.notAnInteger)), ("-", .failure(.notAnInteger)),
    ("1234,567", .failure(.notAnInteger)), ("1,234,", .failure(.notAnInteger)),
    // At the plain-digits fast path's edge (19 digits) and past it.
    ("9999999999999999999", .success(9_999_999_999_999_999_999)), ("0000000000000000000001", .success(1)),
    ("99999999999999999999", .failure(.outOfRange)), ("12:3", .failure(.notAnInteger)),
  ]

  /// The word-at-a-time control check agrees with the byte-at-a-time one: every byte value
  /// at every place of fields of every length up to 40, among plain, UTF-8 and tab bytes.
  @Test func theWordAtATimeControlCheckAgreesWithTheBytewiseOne() {
    let fillers: [[UInt8]] = [
      Array("abcdefghij0123456789ABCDEFGHIJ-.:/?=&xyzw".utf8), Array("é☕😀".utf8), [0x09, 0x20],
    ]
    for length in 0...40 {
      for filler in fillers {
        let base = (0..<length).map { filler[$0 % filler.count] }
        #expect(base.withUnsafeBytes { Values.hasControl($0) } == Values.hasControl(base.lazy))
        for place in stride(from: 0, to: length, by: max(1, length / 7)) {
          for value in 0...255 {
            var bytes = base
            bytes[place] = UInt8(value)
            let bytewise = Values.hasControl(bytes.lazy)
            #expect(bytes.withUnsafeBytes { Values.hasControl($0) } == bytewise, "\(bytes) at \(place)")
          }
        }
      }
    }
  }

  /// A field of up to 8 bytes read as one word (`CSVRecord.word`): its count and its control
  /// check agree with the bytes' own, whatever bytes follow it in the word.
  @Test func aFieldReadAsAWordIsJudgedAsItsBytesAre() {
    var generator = SystemRandomNumberGenerator()
    func word(_ field: [UInt8], then next: [UInt8]) -> UInt64 {
      (field + next + [UInt8](repeating: 0, count: 8)).prefix(8).enumerated().reduce(UInt64(0)) {
        $0 | UInt64($1.element) << UInt64(8 * $1.offset)
      }
    }
    var fields: [[UInt8]] = Self.counts.map { Array($0.0.utf8) }.filter { $0.count <= 8 }
    for length in 0...8 {
      for _ in 0..<8 {
        fields.append((0..<length).map { _ in UInt8.random(in: 0x30...0x39, using: &generator) })
      }
      fields.append([UInt8](repeating: 0x39, count: length))
    }
    let after: [[UInt8]] = [
      [], Array(",9,\n".utf8), [0x0A, 0x00, 0x7F, 0x01, 0x0D, 0x09, 0x1F, 0xFF], Array("12345678".utf8),
    ]
    for field in fields {
      for place in [-1] + Array(field.indices) {
        for value in place < 0 ? [UInt8(0)] : (0...255).map(UInt8.init) {
          var bytes = field
          if place >= 0 { bytes[place] = value }
          let expected = bytes.withUnsafeBytes { Values.count($0) }
          for next in after {
            let (read, control) = (word(bytes, then: next), bytes.withUnsafeBytes { Values.hasControl($0) })
            if let quick = Values.count(word: read, count: bytes.count) {
              #expect(quick == expected, "\(bytes) then \(next)")
            }
            #expect(Values.hasControl(word: read, count: bytes.count) == control, "\(bytes) then \(next)")
          }
        }
      }
    }
    // Plain digits are never sent the slow way.
    for field in fields where !field.isEmpty && field.allSatisfy({ (0x30...0x39).contains($0) }) {
      #expect(Values.count(word: word(field, then: [0x2C]), count: field.count) != nil, "\(field)")
    }
  }

  @Test(arguments: counts)
  func count(text: String, expected: Result<UInt64?, Values.Problem>) {
    let result = Array(text.utf8).withUnsafeBytes { Values.count($0) }
    #expect(result == expected)
  }

  static let timestamps: [(String, Int64?)] = [
    ("2026-03-01T18:30:00+06:00", 1_772_368_200), ("2026-03-01T12:30:00Z", 1_772_368_200),
    ("2026-03-01t12:30:00.250z", 1_772_368_200), ("2026-03-01T07:00:00-05:30", 1_772_368_200),
    ("2024-02-29T00:00:00Z", 1_709_164_800), ("2026-02-29T00:00:00Z", nil), ("2026-02-30T18:00:00+06:00", nil),
    ("2026-03-01T18:30:00", nil), ("2026-03-01 18:30:00Z", nil), ("yesterday", nil),
    ("2026-03-01T24:00:00Z", nil), ("2026-03-01T23:59:60Z", nil), ("2026-03-01T12:30:00+24:00", nil),
    ("2026-03-01T12:30:00.Z", nil), ("2026-13-01T00:00:00Z", nil),
  ]

  @Test(arguments: timestamps)
  func timestamp(text: String, epoch: Int64?) {
    let parsed = Array(text.utf8).withUnsafeBytes { Values.timestamp($0) }
    #expect(parsed?.epochSeconds == epoch)
  }

  /// A post's counts are kept in one array with a mask of the known ones: a count set
  /// and cleared again is unknown, and equal posts are equal whatever was set before.
  @Test func postCountsKnownAndUnknown() {
    let at = Values.Timestamp(epochSeconds: 0, offsetMinutes: 0)
    let plain = PostRecord(platform: "x", account: "a", id: "1", createdAt: at, mediaType: .text)
    var post = plain
    for (index, field) in PostField.counts.enumerated() { post[count: field] = UInt64(index) }
    #expect(post.likes == 0 && post.comments == 1 && post.followersAtPost == 8, "zero is a known count")
    #expect(post != plain)
    post.reach = nil
    #expect(post.reach == nil && post.impressions == 5)
    for field in PostField.counts { post[count: field] = nil }
    #expect(post == plain)
    post[count: .caption] = 3
    #expect(post[count: .caption] == nil && post == plain, "a field that is not a count has none")
    post.clicks = .max
    #expect(post[count: .clicks] == .max && post != plain)
  }

  /// Media types by name in any case, with blanks around; anything else, even one byte
  /// off (a NUL where the name ends, a letter more or less), is `other`.
  @Test func mediaTypesNormalised() {
    let names: [(String, MediaType)] = [
      ("text", .text), ("Status", .text), ("IMAGE", .image), ("photo", .image), ("Picture", .image),
      ("video", .video), ("REEL", .video), ("reels", .video), ("Short", .video), ("shorts", .video),
      ("carousel", .carousel), ("CAROUSEL_ALBUM", .carousel), ("album", .carousel), ("link", .link),
      ("Article", .link), ("other", .other), (" \tvideo  ", .video),
      ("vide", .other), ("videos", .other), ("text\u{0}", .other), ("\u{0}text", .other), ("carousel_albu", .other),
      ("carousel_albums", .other), ("ímage", .other), ("", .other), ("   ", .other), ("imagE1", .other),
    ]
    for (name, type) in names {
      #expect(Array(name.utf8).withUnsafeBytes { MediaType(normalizing: $0) } == type, "\(name.debugDescription)")
    }
  }

  @Test func utf8Validator() {
    func valid(_ bytes: [UInt8], split: Int) -> Bool {
      var validator = UTF8Validator()
      let first = bytes[..<split].withUnsafeBytes { validator.feed($0) }
      let second = bytes[split...].withUnsafeBytes { validator.feed($0) }
      return first == nil && second == nil && validator.isComplete
    }
    let good = Array("আমি 👩🏽‍💻 نیا".utf8)
    for split in 0...good.count { #expect(valid(good, split: split)) }
    for bad: [UInt8] in [[0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0xFF]] {
      #expect(!valid(bad, split: 1))
    }
  }

  /// Long ASCII runs (read eight bytes at a time) with bad bytes and characters anywhere:
  /// the same verdict and offset as a byte at a time, and as Swift's own validation.
  @Test func utf8ValidatorOverLongRuns() {
    var generator = SystemRandomNumberGenerator()
    let pieces: [[UInt8]] = [
      Array("abcdefghijklmnop".utf8), Array("é".utf8), Array("😀".utf8), [0xFF], [0xC3], [0x80],
      // Whole scalars of every length, checked in place, and the bad ones beside them.
      Array("نیا €".utf8), Array("\u{10FFFF}\u{E000}\u{D7FF}".utf8), [0xED, 0xA0, 0x80], [0xE0, 0x9F, 0xBF],
      [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF], [0xC1, 0xBF], [0xE2, 0x28, 0xA1], [0xF1, 0x80, 0x41, 0x80],
    ]
    for _ in 0..<3_000 {
      var bytes: [UInt8] = []
      for _ in 0..<Int.random(in: 0..<12, using: &generator) {
        let piece = Int.random(in: 0..<10, using: &generator) < 7 ? pieces[0] : pieces.randomElement(using: &generator)!
        bytes += piece.prefix(Int.random(in: 1...piece.count, using: &generator))
      }
      var whole = UTF8Validator()
      let wholeBad = bytes.withUnsafeBytes { whole.feed($0) }
      var single = UTF8Validator()
      var singleBad: UInt64?
      for byte in bytes where singleBad == nil { singleBad = [byte].withUnsafeBytes { single.feed($0) } }
      #expect(wholeBad == singleBad, "\(bytes)")
      // Cut anywhere, as chunks are: the same verdict.
      let cut = Int.random(in: 0...bytes.count, using: &generator)
      var split = UTF8Validator()
      let splitBad =
        bytes[..<cut].withUnsafeBytes { split.feed($0) } ?? bytes[cut...].withUnsafeBytes { split.feed($0) }
      #expect(
        splitBad == singleBad && (singleBad != nil || split.isComplete == single.isComplete), "\(bytes) cut at \(cut)")
      #expect((wholeBad == nil && whole.isComplete) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
    }
  }

  @Test func jsonScanner() {
    func scan(_ text: String) -> (JSONScanner.Failure?, [String: JSONScalar]) {
      var members: [String: JSONScalar] = [:]
      let failure = Array(text.utf8).withUnsafeBytes { JSONScanner.scanObject($0) { members[$0] = $1 } }
      return (failure, members)
    }
    #expect(
      scan(#"{"a":"x\u00e9\ud83d\ude00","b":12,"c":-0,"d":1.5,"e":[1,{"f":null}],"g":true}"#).1 == [
        "a": .string("xé😀"), "b": .integer(negative: false, magnitude: 12), "c": .integer(negative: true, magnitude: 0),
        "d": .nonInteger(text: "1.5"), "e": .composite, "g": .bool(true),
      ])
    #expect(scan("[1,2]").0 == .notAnObject)
    #expect(scan("\"x\"").0 == .notAnObject)
    for bad in ["{", "{\"a\":01}", "{\"a\":NaN}", "{\"a\":1,}", "{a:1}", "{\"a\":\"\u{1}\"}", "{} x", ""] {
      #expect(scan(bad).0 == .invalid, "\(bad)")
    }
  }
}

@Suite("Plain decimals")
struct PlainDecimalTests {
  @Test("the fast path gives Foundation's value and text for every plain decimal")
  func sameAsFoundation() {
    var generator = SystemRandomNumberGenerator()
    var samples = [
      "0", "-0", "0.00", "-0.50", "12.50", "598.94", "-3", "100", "1000.000", ".5", "5.", "007.10",
      "999999999999999999", "1234567890123456.78", "12345678901234567890.5", "0.000000000000000001",
    ]
    for _ in 0..<2_000 {
      let whole = UInt64.random(in: 0...999_999_999, using: &generator)
      let cents = UInt64.random(in: 0...9_999, using: &generator)
      let sign = Bool.random(using: &generator) ? "-" : ""
      samples.append("\(sign)\(whole).\(String(format: "%04llu", cents))")
    }
    for text in samples {
      let fast = Values.decimal(text)
      let foundation = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
      #expect(fast == foundation, "\(text)")
      #expect(fast?.description == foundation?.description, "\(text): \(String(describing: fast))")
    }
    for bad in ["", "-", ".", "-.", "1e3", "12,50", "1.2.3", "--1", "+1", " 1"] {
      #expect(Values.decimal(bad) == nil, "\(bad)")
    }
  }
}
