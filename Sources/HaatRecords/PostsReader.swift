/// A problem with one row of an export: where and why.
public struct RowProblem: Error, Sendable, Equatable {
  /// CSV: the record number after the header. NDJSON: the line number.
  public var row: UInt64
  /// The canonical field name, or "" when the whole record is to blame.
  public var column: String
  public var reason: Values.Problem
  /// The record was kept (or none is to blame): a note of what was off, not a bad row.
  public var note: Bool

  public init(row: UInt64, column: String, reason: Values.Problem, note: Bool = false) {
    self.row = row
    self.column = column
    self.reason = reason
    self.note = note
  }
}

/// A problem with a whole export or page: it cannot be read at all, or the platform said
/// why not. `code` is the task error's code (`bad_export` unless a connector classified a
/// platform error, e.g. `token_expired`, `throttled`), with whether trying again can help.
public struct ExportError: Error, Sendable, Equatable, CustomStringConvertible {
  public var message: String
  public var code: String
  public var retryable: Bool
  /// The least wait before trying again, when the platform said.
  public var retryAfterMs: UInt64?

  public init(_ message: String, code: String = "bad_export", retryable: Bool = false, retryAfterMs: UInt64? = nil) {
    self.message = message
    self.code = code
    self.retryable = retryable
    self.retryAfterMs = retryAfterMs
  }

  public var description: String { message }
}

/// Turns a canonical posts export (CSV or NDJSON), fed in chunks of any size, into
/// `PostRecord`s. Bad rows are counted and the first `maxRowProblems` kept with their row,
/// column and reason; they never stop the read. Memory does not grow with the export.
public struct PostsReader {
  public let format: ExportFormat
  public let defaultPlatform: String
  public let defaultAccount: String
  public let maxRowProblems: Int

  /// Good rows read.
  public private(set) var posts: UInt64 = 0
  /// Bad rows read.
  public private(set) var badRows: UInt64 = 0
  /// The first bad rows.
  public private(set) var problems: [RowProblem] = []
  /// Bytes fed, BOM included.
  public private(set) var bytes: UInt64 = 0
  /// CSV: the export ended inside a quoted field (its last record, an unterminated quote).
  public private(set) var endedInsideQuotes = false

  private var validator = UTF8Validator()
  /// Leading bytes held back until we know whether they are a BOM.
  private var head: [UInt8] = []
  private var sawStart = false
  private var csv: CSVParser
  private var lines: LineSplitter
  /// CSV: the header's column count, once it is read.
  private var columnCount: Int?
  private var csvRow: UInt64 = 0
  private var fatal: ExportError?
  private var accounts = AccountInterner()
  /// CSV: the column of each canonical field, by its raw value (`absent`: none). One vector,
  /// not an array: a row carries it in a register, with no retain, release or copy.
  private var fieldColumns = SIMD16<UInt16>(repeating: CSVFields.absent)
  /// CSV: the columns no post field is read from (`CSVParser.ignoredColumns`).
  private var ignoredColumns: UInt64 = 0

  /// `atFileStart`: the bytes fed start the file, so a byte-order mark there is skipped;
  /// false for a byte range inside it.
  public init(
    format: ExportFormat, defaultPlatform: String = "", defaultAccount: String = "",
    maxRecordBytes: Int = 1 << 20, maxRowProblems: Int = 20, atFileStart: Bool = true
  ) {
    sawStart = !atFileStart
    self.format = format
    self.defaultPlatform = defaultPlatform
    self.defaultAccount = defaultAccount
    self.maxRowProblems = maxRowProblems
    csv = CSVParser(maxRecordBytes: maxRecordBytes)
    lines = LineSplitter(maxLineBytes: maxRecordBytes)
  }

  /// Reads a chunk, calling `onPost` for each good row it completes.
  public mutating func feed(_ chunk: UnsafeRawBufferPointer, _ onPost: (PostRecord) -> Void) throws(ExportError) {
    try feed(
      chunk,
      accepting: { post in
        onPost(post)
        return true
      })
  }

  /// Ends the export: reads what a missing final newline left open.
  public mutating func finish(_ onPost: (PostRecord) -> Void) throws(ExportError) {
    try finish(accepting: { post in
      onPost(post)
      return true
    })
  }

  /// Reads a chunk; `onPost` may refuse a good row (false) when its counts would take a
  /// report's sums past 2^64 − 1: the row is then bad, `out of range`.
  public mutating func feed(
    _ chunk: UnsafeRawBufferPointer, accepting onPost: (PostRecord) -> Bool
  ) throws(ExportError) {
    if let fatal { throw fatal }
    bytes += UInt64(chunk.count)
    if !sawStart {
      // Hold the first bytes until a BOM can be recognised and skipped.
      head.append(contentsOf: chunk)
      let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
      if head.count < 3, head.elementsEqual(bom.prefix(head.count)) { return }
      sawStart = true
      let start = head.starts(with: bom) ? 3 : 0
      let rest = Array(head[start...])
      head = []
      try feedBody(rest, onPost)
      return
    }
    try body(chunk, onPost)
  }

  /// Ends the export, as `finish(_:)`, with rows `onPost` may refuse.
  public mutating func finish(accepting onPost: (PostRecord) -> Bool) throws(ExportError) {
    if let fatal { throw fatal }
    if !sawStart {
      sawStart = true
      let rest = head
      head = []
      // Fewer than 3 bytes that are a BOM prefix: a BOM alone is an empty file.
      if !rest.elementsEqual([0xEF, 0xBB, 0xBF].prefix(rest.count)) {
        try feedBody(rest, onPost)
      } else if rest.count < 3, !rest.isEmpty {
        try feedBody(rest, onPost)
      }
    }
    guard validator.isComplete else {
      throw fail("the export is not valid UTF-8: it ends inside a character (byte \(validator.offset))")
    }
    // The parsers are moved out while they run, so their callbacks may change `self`.
    switch format {
    case .csv:
      var parser = CSVParser(maxRecordBytes: 0)
      swap(&parser, &csv)
      defer { swap(&parser, &csv) }
      endedInsideQuotes = parser.isInsideQuotes
      parser.finish { record in csvRecord(record, onPost) }
    case .ndjson:
      var splitter = LineSplitter(maxLineBytes: 0)
      swap(&splitter, &lines)
      defer { swap(&splitter, &lines) }
      splitter.finish { number, line, tooLong in ndjsonLine(number, line, tooLong, onPost) }
    }
    if let fatal { throw fatal }
  }

  private mutating func feedBody(_ bytes: [UInt8], _ onPost: (PostRecord) -> Bool)
    throws(ExportError)
  {
    var thrown: ExportError?
    bytes.withUnsafeBytes { raw in
      do throws(ExportError) { try body(raw, onPost) } catch { thrown = error }
    }
    if let thrown { throw thrown }
  }

  private mutating func body(_ chunk: UnsafeRawBufferPointer, _ onPost: (PostRecord) -> Bool)
    throws(ExportError)
  {
    if let bad = validator.feed(chunk) {
      throw fail("the export is not valid UTF-8 (at byte \(bad))")
    }
    switch format {
    case .csv:
      var parser = CSVParser(maxRecordBytes: 0)
      swap(&parser, &csv)
      defer { swap(&parser, &csv) }
      parser.ignoredColumns = ignoredColumns
      parser.feed(chunk) { record in csvRecord(record, onPost) }
    case .ndjson:
      var splitter = LineSplitter(maxLineBytes: 0)
      swap(&splitter, &lines)
      defer { swap(&splitter, &lines) }
      splitter.feed(chunk) { number, line, tooLong in ndjsonLine(number, line, tooLong, onPost) }
    }
    if let fatal { throw fatal }
  }

  private mutating func fail(_ message: String) -> ExportError {
    let error = ExportError(message)
    fatal = error
    return error
  }

  private mutating func problem(_ row: UInt64, _ field: PostField?, _ reason: Values.Problem) {
    badRows += 1
    if problems.count < maxRowProblems {
      problems.append(RowProblem(row: row, column: field?.name ?? "", reason: reason))
    }
  }

  // MARK: CSV

  private mutating func csvRecord(_ record: CSVRecord, _ onPost: (PostRecord) -> Bool) {
    guard fatal == nil, !record.isBlank else { return }
    guard let columnCount else {
      readHeader(record)
      return
    }
    csvRow += 1
    if let reason = record.problem {
      problem(csvRow, nil, reason)
      return
    }
    guard record.count == columnCount else {
      problem(csvRow, nil, .wrongFieldCount)
      return
    }
    build(CSVFields(record: record, columns: fieldColumns), row: csvRow, onPost)
  }

  private mutating func readHeader(_ record: CSVRecord) {
    if record.problem == .unterminatedQuote {
      fatal = ExportError("the CSV header has an unterminated quote")
      return
    }
    if record.problem == .tooLong {
      fatal = ExportError("the CSV header is too long")
      return
    }
    if let fault = CSVRecord.headerFault(record) {
      fatal = fault
      return
    }
    var columns: [PostField?] = []
    var seen = Set<PostField>()
    for index in 0..<record.count {
      let name = Values.string(Values.trimmed(record.field(index))).lowercased()
      if let field = PostField.byName[name], seen.insert(field).inserted {
        columns.append(field)
      } else {
        columns.append(nil)  // unknown, or a repeat: the first occurrence wins
      }
    }
    for required in [PostField.id, .createdAt] where !seen.contains(required) {
      fatal = ExportError("the CSV header has no \(required.name) column")
      return
    }
    for (index, field) in columns.enumerated() {
      if let field {
        guard index < Int(CSVFields.absent) else {
          fatal = ExportError(
            "the CSV header puts \(field.name) in column \(index + 1): a posts export's fields must be in its first \(CSVFields.absent) columns"
          )
          return
        }
        fieldColumns[field.rawValue] = UInt16(index)
      }
      // No post keeps its caption, and unknown columns are skipped: none of them is read.
      if index < 64, field == nil || field == .caption { ignoredColumns |= 1 << UInt64(index) }
    }
    columnCount = columns.count
  }

  // MARK: NDJSON

  private mutating func ndjsonLine(
    _ number: UInt64, _ line: UnsafeRawBufferPointer, _ tooLong: Bool,
    _ onPost: (PostRecord) -> Bool
  ) {
    guard fatal == nil else { return }
    if tooLong {
      problem(number, nil, .tooLong)
      return
    }
    if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
    var snake = RawPost()
    var camel = RawPost()
    let failure = JSONScanner.scanObject(line) { key, value in
      if let field = PostField.byName[key] {
        snake.values[field.rawValue] = .json(value)
      } else if let field = PostField.byCamelName[key] {
        camel.values[field.rawValue] = .json(value)
      }
    }
    switch failure {
    case .invalid?:
      problem(number, nil, .invalidJSON)
      return
    case .notAnObject?:
      problem(number, nil, .notAnObject)
      return
    case nil:
      break
    }
    // The snake_case spelling wins, even when it is null.
    for index in snake.values.indices where snake.values[index] == nil {
      snake.values[index] = camel.values[index]
    }
    for field in PostField.allCases {
      guard case .json(let value)? = snake.values[field.rawValue] else { continue }
      switch (value, field) {
      case (.null, _): snake.values[field.rawValue] = nil
      case (.string, _): break
      case (_, .caption): snake.values[field.rawValue] = nil  // only strings are kept
      case (_, _) where !field.isCount:
        problem(number, field, .notAString)
        return
      default: break
      }
    }
    build(snake, row: number, onPost)
  }

  // MARK: Rows

  /// A field's raw value: CSV bytes or a JSON value. Absent fields are nil.
  private enum RawValue: Equatable {
    case bytes(UnsafeRawBufferPointer)
    case json(JSONScalar)

    static func == (lhs: RawValue, rhs: RawValue) -> Bool {
      switch (lhs, rhs) {
      case (.bytes(let a), .bytes(let b)): return a.elementsEqual(b)
      case (.json(let a), .json(let b)): return a == b
      default: return false
      }
    }
  }

  /// A row's raw fields, by canonical field.
  private protocol RawFields {
    func value(_ field: PostField) -> RawValue?
    /// A short field's bytes as one word (`CSVRecord.word`); nil where there is none.
    func word(_ field: PostField) -> (word: UInt64, count: Int)?
  }

  /// An NDJSON line's fields, as scanned.
  private struct RawPost: RawFields {
    var values = [RawValue?](repeating: nil, count: PostField.allCases.count)

    func value(_ field: PostField) -> RawValue? { values[field.rawValue] }
    func word(_ field: PostField) -> (word: UInt64, count: Int)? { nil }
  }

  /// A CSV record's fields, read in place: nothing is copied or allocated per row.
  private struct CSVFields: RawFields {
    let record: CSVRecord
    let columns: SIMD16<UInt16>

    static let absent = UInt16.max

    @inline(__always)
    func value(_ field: PostField) -> RawValue? {
      let column = columns[field.rawValue]
      return column == Self.absent ? nil : .bytes(record.field(Int(column)))
    }

    @inline(__always)
    func word(_ field: PostField) -> (word: UInt64, count: Int)? {
      let column = columns[field.rawValue]
      return column == Self.absent ? nil : record.word(Int(column))
    }
  }

  /// The fields that may hold no control character, in canonical order.
  private static let textFields: [PostField] = [.platform, .account, .id, .createdAt, .mediaType]

  /// Builds the post, reporting the first problem in canonical order.
  private mutating func build<Fields: RawFields>(_ raw: Fields, row: UInt64, _ onPost: (PostRecord) -> Bool) {
    func text(_ field: PostField) -> String? {
      switch raw.value(field) {
      case .bytes(let bytes)?:
        let trimmed = Values.trimmed(bytes)
        return trimmed.isEmpty ? nil : Values.string(trimmed)
      case .json(.string(let string))?:
        let trimmed = string.trimmingBlanks()
        return trimmed.isEmpty ? nil : trimmed
      default:
        return nil
      }
    }
    for field in Self.textFields {
      let control: Bool
      if let (word, count) = raw.word(field) {
        control = Values.hasControl(word: word, count: count)
      } else {
        switch raw.value(field) {
        case .bytes(let bytes)?: control = Values.hasControl(bytes)
        case .json(.string(let string))?: control = Values.hasControl(string.utf8)
        default: control = false
        }
      }
      if control { return problem(row, field, .controlCharacter) }
      if case .bytes(let bytes)? = raw.value(field), bytes.count > Values.maxFieldBytes {
        return problem(row, field, .fieldTooLong)
      }
      if case .json(.string(let string))? = raw.value(field), string.utf8.count > Values.maxFieldBytes {
        return problem(row, field, .fieldTooLong)
      }
    }
    // Interned: a known platform × account costs no new Strings.
    let (platform, account, accountIndex) = Self.withText(raw.value(.platform), or: defaultPlatform) { platform in
      Self.withText(raw.value(.account), or: defaultAccount) { account in
        accounts.intern(platform: platform, account: account)
      }
    }
    guard let id = text(.id) else { return problem(row, .id, .missing) }
    // Read from the field's own bytes: no String per row.
    let timestamp = Self.withText(raw.value(.createdAt), or: "") { $0.isEmpty ? nil : Values.timestamp($0) }
    guard let timestamp else {
      let missing = Self.withText(raw.value(.createdAt), or: "") { $0.isEmpty }
      return problem(row, .createdAt, missing ? .missing : .invalidTimestamp)
    }
    let mediaType: MediaType
    switch raw.value(.mediaType) {
    case .bytes(let bytes)?: mediaType = MediaType(normalizing: bytes)
    case .json(.string(let string))?:
      mediaType = Array(string.utf8).withUnsafeBytes { MediaType(normalizing: $0) }
    default: mediaType = .other
    }
    var post = PostRecord(
      platform: platform, account: account, id: id, createdAt: timestamp,
      mediaType: mediaType)
    post.accountIndex = accountIndex
    for field in PostField.counts {
      // Plain digits of a CSV field are read as one word; anything else as text.
      let word = raw.word(field)
      switch word.flatMap({ Values.count(word: $0.word, count: $0.count) }) ?? count(raw.value(field)) {
      case .success(let value): post[count: field] = value
      case .failure(let reason): return problem(row, field, reason)
      }
    }
    // Counts that would take a sum past 2^64 − 1 leave the row out, as a bad row.
    guard onPost(post) else { return problem(row, nil, .outOfRange) }
    posts += 1
  }

  /// The value's trimmed text as bytes, or `fallback`'s when it has none.
  private static func withText<R>(
    _ value: RawValue?, or fallback: String, _ body: (UnsafeRawBufferPointer) -> R
  ) -> R {
    switch value {
    case .bytes(let bytes)?:
      let trimmed = Values.trimmed(bytes)
      if !trimmed.isEmpty { return body(trimmed) }
    case .json(.string(let string))?:
      var trimmed = string.trimmingBlanks()
      if !trimmed.isEmpty { return trimmed.withUTF8 { body(UnsafeRawBufferPointer($0)) } }
    default:
      break
    }
    var fallback = fallback
    return fallback.withUTF8 { body(UnsafeRawBufferPointer($0)) }
  }

  private func count(_ value: RawValue?) -> Result<UInt64?, Values.Problem> {
    switch value {
    case nil, .json(.null)?: return .success(nil)
    case .bytes(let bytes)?: return Values.count(bytes)
    case .json(.string(let string))?:
      return Array(string.utf8).withUnsafeBytes { Values.count($0) }
    case .json(.integer(let negative, let magnitude))?:
      return negative ? .failure(.negative) : .success(magnitude)
    case .json(.largeInteger(let text))?:
      return .failure(text.hasPrefix("-") ? .negative : .outOfRange)
    case .json?: return .failure(.notAnInteger)
    }
  }
}

extension String {
  /// The string without leading and trailing spaces and tabs.
  func trimmingBlanks() -> String {
    let scalars = unicodeScalars
    guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
      let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" })
    else { return "" }
    return String(scalars[first...last])
  }
}
