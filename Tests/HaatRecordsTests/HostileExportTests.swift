import HaatRecords
import Testing

/// Exports written to hurt the parser: every structure stays within the record limit, and
/// bytes that would corrupt a report become bad rows.
@Suite struct HostileExportTests {
  /// A record of nothing but commas is as bounded as one long field: the field list counts
  /// against the record limit too (it grew without bound before).
  @Test func aRecordOfBareCommasIsBounded() {
    let limit = 64 * 1024
    var parser = CSVParser(maxRecordBytes: limit)
    let commas = [UInt8](repeating: UInt8(ascii: ","), count: 1 << 20)
    var records: [(fields: Int, bytes: Int, problem: Values.Problem?)] = []
    let header = Array("id,created_at\n".utf8)
    header.withUnsafeBytes { chunk in
      parser.feed(chunk) { records.append(($0.count, $0.bytes.count, $0.problem)) }
    }
    for _ in 0..<16 {
      commas.withUnsafeBytes { chunk in
        parser.feed(chunk) { records.append(($0.count, $0.bytes.count, $0.problem)) }
      }
    }
    Array("\n1,2026-01-01T00:00:00Z\n".utf8).withUnsafeBytes { chunk in
      parser.feed(chunk) { records.append(($0.count, $0.bytes.count, $0.problem)) }
    }
    #expect(records.count == 3)
    #expect(records[1].problem == .tooLong)
    #expect(records[1].fields + records[1].bytes <= limit)
    // The parser goes on with the next record as if nothing happened.
    #expect(records[2].fields == 2 && records[2].problem == nil)
  }

  struct ParsedRecord: Equatable {
    /// nil for a field of an ignored column (it may keep its escapes: not compared).
    var fields: [[UInt8]?]
    var problem: Values.Problem?
  }

  /// `input` fed to a parser `chunk` bytes at a time: its records' fields and problems.
  static func parse(_ input: [UInt8], limit: Int = 1 << 20, ignored: UInt64 = 0, chunk: Int) -> [ParsedRecord] {
    var parser = CSVParser(maxRecordBytes: limit)
    parser.ignoredColumns = ignored
    var out: [ParsedRecord] = []
    let take = { (record: CSVRecord) in
      let fields = (0..<record.count).map { index in
        index < 64 && ignored & (1 << UInt64(index)) != 0 ? nil : Array(record.field(index))
      }
      out.append(ParsedRecord(fields: record.problem == nil ? fields : [], problem: record.problem))
    }
    var start = 0
    while start < input.count {
      let end = min(start + chunk, input.count)
      input[start..<end].withUnsafeBytes { parser.feed($0, take) }
      start = end
    }
    parser.finish(take)
    return out
  }

  /// A record read in place (whole in its chunk) and one the state machine copies (fed a
  /// byte at a time) are the same fields, with the same problems, for random text of
  /// quotes, commas, CR, LF and UTF-8, at every record limit.
  @Test func recordsReadInPlaceEqualRecordsCopied() {
    var generator = SystemRandomNumberGenerator()
    let alphabet: [[UInt8]] = [
      [0x61], [0x62], [0x22], [0x22], [0x2C], [0x2C], [0x0A], [0x0D], [0x0D, 0x0A], [0xC3, 0xA9], [0x20],
      // Runs longer than a word, for the eight-at-a-time scan; records of many fields (past
      // the in-place reader's first 32) come from the commas.
      Array("abcdefghijklmnopq".utf8), Array("\"quoted, with commas,\r\nand lines\"".utf8),
    ]
    for round in 0..<2_000 {
      var input: [UInt8] = []
      for _ in 0..<Int.random(in: 0..<(round % 4 == 0 ? 400 : 60), using: &generator) {
        input += alphabet.randomElement(using: &generator) ?? []
      }
      let limit = [4, 12, 1 << 20].randomElement(using: &generator) ?? 12
      let whole = Self.parse(input, limit: limit, chunk: input.count + 1)
      #expect(
        whole == Self.parse(input, limit: limit, chunk: 1), "\(String(decoding: input, as: UTF8.self).debugDescription)"
      )
    }
  }

  /// Columns the caller ignores may come with their escaped quotes still doubled when a
  /// record is read in place; every other field, the field counts and the problems are
  /// still the state machine's, for any mask.
  @Test func ignoredColumnsChangeNothingElse() {
    var generator = SystemRandomNumberGenerator()
    let alphabet: [[UInt8]] = [
      [0x61], [0x22], [0x22, 0x22], [0x2C], [0x2C], [0x0A], [0x0D, 0x0A], [0xC3, 0xA9],
      Array("\"a \"\"quote\"\" in a caption\"".utf8), Array("\"\"\"".utf8),
    ]
    for _ in 0..<2_000 {
      var input: [UInt8] = []
      for _ in 0..<Int.random(in: 0..<80, using: &generator) {
        input += alphabet.randomElement(using: &generator) ?? []
      }
      let ignored = UInt64.random(in: 0...UInt64.max, using: &generator)
      #expect(
        Self.parse(input, ignored: ignored, chunk: input.count + 1) == Self.parse(input, ignored: ignored, chunk: 1),
        "\(String(decoding: input, as: UTF8.self).debugDescription)")
    }
  }

  @Test func aRecordJustUnderTheLimitIsKept() {
    var parser = CSVParser(maxRecordBytes: 10)
    var fields: [Int] = []
    Array("a,b,c,d\n".utf8).withUnsafeBytes { chunk in parser.feed(chunk) { fields.append($0.count) } }
    #expect(fields == [4])
  }

  /// A NUL (or another control character) in a text field is a bad row with its reason,
  /// in CSV and in NDJSON, never a name in the report.
  @Test(arguments: [ExportFormat.csv, .ndjson])
  func controlCharactersInTextFieldsAreBadRows(format: ExportFormat) throws {
    let text: String
    switch format {
    case .csv:
      text = "id,created_at,account,likes\n1,2026-01-01T00:00:00Z,shop\u{0}evil,5\n2,2026-01-01T00:00:00Z,shop,7\n"
    case .ndjson:
      text = """
        {"id":"1","created_at":"2026-01-01T00:00:00Z","account":"shop\\u0000evil","likes":5}
        {"id":"2","created_at":"2026-01-01T00:00:00Z","account":"shop\\u001b[2J","likes":6}
        {"id":"3","created_at":"2026-01-01T00:00:00Z","account":"shop","likes":7}

        """
    }
    var reader = PostsReader(format: format, defaultPlatform: "x", defaultAccount: "")
    var accounts: [String] = []
    try Array(text.utf8).withUnsafeBytes { chunk in
      try reader.feed(chunk) { accounts.append($0.account) }
      try reader.finish { accounts.append($0.account) }
    }
    #expect(accounts == ["shop"])
    #expect(reader.badRows == (format == .csv ? 1 : 2))
    #expect(reader.problems.allSatisfy { $0.reason == .controlCharacter && $0.column == "account" })
  }
}

/// A line of only spaces and tabs is no record, as an empty line is none: before the header
/// it used to be taken for the header (and the file refused for lacking `id`), after it
/// it was a bad row.
@Suite struct BlankLineTests {
  static let posts = " \t\r\n\nid,created_at,likes\n  \n1,2026-01-01T00:00:00Z,5\n\t\r\n2,2026-01-01T00:00:00Z,7\n   "
  static let orders = "  \nid,created_at,total\n\t\no1,2026-01-01T00:00:00Z,10.50\n \n"

  @Test func postsSkipThem() throws {
    var reader = PostsReader(format: .csv, defaultPlatform: "x", defaultAccount: "a")
    var likes: [UInt64] = []
    try Array(Self.posts.utf8).withUnsafeBytes { chunk in
      try reader.feed(chunk) { likes.append($0.likes ?? 0) }
      try reader.finish { likes.append($0.likes ?? 0) }
    }
    #expect(likes == [5, 7])
    #expect(reader.badRows == 0)
  }

  @Test func tablesSkipThem() throws {
    var reader = TableReader<OrdersExport>(
      format: .csv, platform: "web", account: "shop",
      limits: ReadLimits())
    var ids: [String] = []
    let keep: (CanonicalRecord) -> Bool = { record in
      if case .order(let order) = record { ids.append(order.id) }
      return true
    }
    try Array(Self.orders.utf8).withUnsafeBytes { chunk in
      try reader.feed(chunk, emit: keep)
      try reader.finish(emit: keep)
    }
    #expect(ids == ["o1"])
    #expect(reader.counts.badRecords == 0)
  }
}

/// Found by a tester: a 600 KB account name (a valid record, under 1 MiB) made a job whose
/// result no client could read, and a 1 MB one killed its whole task. A field a report
/// reads is at most 8 KiB: a longer one is a bad row, and the rest of the export is read.
@Suite struct LongFieldTests {
  static let long = String(repeating: "z", count: Values.maxFieldBytes + 1)

  @Test(arguments: [ExportFormat.csv, .ndjson])
  func aPostsAccountOverTheLimitIsABadRow(format: ExportFormat) throws {
    let text =
      format == .csv
      ? "account,id,created_at,likes\n\(Self.long),1,2026-01-01T00:00:00Z,5\nsmall,2,2026-01-01T00:00:00Z,7\n"
      : "{\"account\":\"\(Self.long)\",\"id\":\"1\",\"created_at\":\"2026-01-01T00:00:00Z\"}\n{\"account\":\"small\",\"id\":\"2\",\"created_at\":\"2026-01-01T00:00:00Z\",\"likes\":7}\n"
    var reader = PostsReader(format: format, defaultPlatform: "x")
    var accounts: [String] = []
    try Array(text.utf8).withUnsafeBytes { chunk in
      try reader.feed(chunk) { accounts.append($0.account) }
      try reader.finish { accounts.append($0.account) }
    }
    #expect(accounts == ["small"])
    #expect(reader.problems.first?.reason == .fieldTooLong && reader.problems.first?.column == "account")
  }

  @Test(arguments: [ExportFormat.csv, .ndjson])
  func anOrdersCustomerOverTheLimitIsABadRow(format: ExportFormat) throws {
    let text =
      format == .csv
      ? "id,created_at,total,customer\no1,2026-01-01T00:00:00Z,10,\(Self.long)\no2,2026-01-01T00:00:00Z,12,c\n"
      : "{\"id\":\"o1\",\"created_at\":\"2026-01-01T00:00:00Z\",\"total\":\"10\",\"customer\":\"\(Self.long)\"}\n{\"id\":\"o2\",\"created_at\":\"2026-01-01T00:00:00Z\",\"total\":\"12\"}\n"
    var reader = TableReader<OrdersExport>(format: format, platform: "web", account: "shop", limits: ReadLimits())
    var ids: [String] = []
    let keep: (CanonicalRecord) -> Bool = { record in
      if case .order(let order) = record { ids.append(order.id) }
      return true
    }
    try Array(text.utf8).withUnsafeBytes { chunk in
      try reader.feed(chunk, emit: keep)
      try reader.finish(emit: keep)
    }
    #expect(ids == ["o2"])
    #expect(reader.counts.problems.first?.reason == .fieldTooLong)
  }
}

/// The line limit is the same however the chunks fall: a line of `limit` bytes (plus an
/// optional CR) passes, one byte more is too long (the split path let limit + 1 through).
@Suite struct LineSplitterLimitTests {
  @Test(arguments: [false, true])
  func theLimitHoldsAtEveryChunking(crlf: Bool) {
    let limit = 16
    for length in [limit - 1, limit, limit + 1, limit + 2] {
      let line = [UInt8](repeating: UInt8(ascii: "x"), count: length) + (crlf ? [13, 10] : [10])
      let input = line + Array("next\n".utf8) + line
      for chunk in 1...input.count {
        var splitter = LineSplitter(maxLineBytes: limit)
        var seen: [(Int, Bool)] = []
        var start = 0
        while start < input.count {
          let end = min(start + chunk, input.count)
          input[start..<end].withUnsafeBytes {
            splitter.feed($0) { _, bytes, tooLong in seen.append((bytes.count, tooLong)) }
          }
          start = end
        }
        splitter.finish { _, bytes, tooLong in seen.append((bytes.count, tooLong)) }
        let tooLong = length > limit
        #expect(seen.count == 3, "length \(length), chunk \(chunk)")
        for index in [0, 2] where index < seen.count {
          #expect(seen[index].1 == tooLong, "length \(length), chunk \(chunk): \(seen)")
          #expect(seen[index].0 == (tooLong ? 0 : length), "length \(length), chunk \(chunk): \(seen)")
        }
      }
    }
  }
}

/// A post field's column is kept in 16 bits: a header that puts one past column 65,535
/// is refused with its column, and one just inside is read.
@Suite struct FarColumnTests {
  static func read(likesAfter padding: Int) -> (likes: [UInt64], error: ExportError?) {
    let header = "id,created_at" + String(repeating: ",", count: padding) + ",likes\n"
    let row = "p1,2026-01-01T00:00:00Z" + String(repeating: ",", count: padding) + ",42\n"
    var reader = PostsReader(format: .csv, defaultPlatform: "x", defaultAccount: "a", maxRecordBytes: 1 << 20)
    var likes: [UInt64] = []
    var failure: ExportError?
    Array((header + row).utf8).withUnsafeBytes { chunk in
      do throws(ExportError) {
        try reader.feed(chunk) { likes.append($0.likes ?? 0) }
        try reader.finish { likes.append($0.likes ?? 0) }
      } catch {
        failure = error
      }
    }
    return (likes, failure)
  }

  @Test func theLastColumnInsideIsRead() {
    // likes is column index 65,534 (the 65,535th column).
    let (likes, error) = Self.read(likesAfter: 65_534 - 2)
    #expect(error == nil)
    #expect(likes == [42])
  }

  @Test func oneFurtherIsRefusedWithItsColumn() {
    let (likes, error) = Self.read(likesAfter: 65_535 - 2)
    #expect(likes.isEmpty)
    #expect(error?.message.contains("likes in column 65536") == true)
  }
}
