/// One row of a table export (a CSV record or an NDJSON object) as text, by canonical field
/// name; a field the row leaves empty (or JSON `null`) is absent. Valid only inside the
/// call that receives it (a CSV row's fields are the bytes of the chunk being read).
public struct TableRow {
  /// CSV: the record number after the header. NDJSON: the line number.
  public var number: UInt64
  /// The schema's fields, in its order (one array shared by every row of a reader).
  let fields: [String]
  /// NDJSON: each field's text, by its position in `fields`: an array per row, not a
  /// dictionary (no hashing per field per row; a schema has about ten fields).
  var texts: [String?]
  /// CSV: each field's trimmed bytes, by position (empty: absent), made a String only when
  /// a schema asks for it: no String kept in an array per field per row (their retains
  /// and releases were a sixth of reading an orders export).
  var cells: UnsafeBufferPointer<UnsafeRawBufferPointer>?

  init(number: UInt64, fields: [String]) {
    self.init(number: number, fields: fields, texts: [String?](repeating: nil, count: fields.count))
  }

  init(number: UInt64, fields: [String], texts: [String?]) {
    self.number = number
    self.fields = fields
    self.texts = texts
  }

  init(number: UInt64, fields: [String], cells: UnsafeBufferPointer<UnsafeRawBufferPointer>) {
    self.number = number
    self.fields = fields
    self.texts = []
    self.cells = cells
  }

  /// The text at a field's position; nil where the row leaves it empty.
  @inline(__always)
  func text(at position: Int) -> String? {
    guard let cells else { return texts[position] }
    let bytes = cells[position]
    return bytes.isEmpty ? nil : Values.string(bytes)
  }

  public subscript(_ field: String) -> String? {
    // Lengths first: comparing two Strings of different lengths still costs a call.
    let length = field.utf8.count
    for index in fields.indices where fields[index].utf8.count == length && fields[index] == field {
      return text(at: index)
    }
    return nil
  }

  /// A field found once per schema (`TableSchema.field`): read by its position, with no
  /// search of the names (a tenth of reading an orders export when searched per row).
  public subscript(_ field: TableField) -> String? {
    assert(field.position < 0 || fields[field.position] == field.name, "\(field.name) is another schema's field")
    return field.position >= 0 ? text(at: field.position) : nil
  }

  /// The field's time as `Values.looseTimestamp` reads its text: nil where the row leaves
  /// the field empty, `.some(nil)` where it does not read. A CSV field in strict RFC 3339 is
  /// read from its bytes, with no String made (an order's `created_at`, per row).
  func timestamp(_ field: TableField) -> Values.Timestamp?? {
    guard field.position >= 0 else { return nil }
    if let cells {
      let bytes = cells[field.position]
      if bytes.isEmpty { return nil }
      if let strict = Values.timestamp(bytes) { return .some(strict) }
    }
    return text(at: field.position).map(Values.looseTimestamp)
  }

  /// The row is bad: `field` and why.
  public func problem(_ field: String, _ reason: Values.Problem) -> Result<CanonicalRecord?, RowProblem> {
    .failure(RowProblem(row: number, column: field, reason: reason))
  }

  /// The row is bad: `field` and why.
  public func problem(_ field: TableField, _ reason: Values.Problem) -> Result<CanonicalRecord?, RowProblem> {
    problem(field.name, reason)
  }
}

/// A schema's field with its position in the schema's rows; −1 for a field the schema
/// does not have (its rows never hold it).
public struct TableField: Sendable {
  public let name: String
  let position: Int
}

/// What a table export's columns mean for one record type: the canonical fields, each with
/// the column names exports use for it (matched in any case, the first name listed wins
/// when a file has two of them), and how a row becomes a record.
public protocol TableSchema: Sendable {
  /// Canonical field → the column names that mean it, best first.
  static var columns: [(field: String, names: [String])] { get }
  /// Fields a CSV header must have a column for.
  static var required: [String] { get }
  /// The row's record; nil for a row that carries no record of its own (a later line
  /// item of an order); or why the row is bad (its field and reason).
  static func record(_ row: TableRow, platform: String, account: String) -> Result<CanonicalRecord?, RowProblem>
  /// A field whose value, when it repeats the row just before's, makes a row one more line
  /// of that row's record (an order's later line items), skipped whatever else it carries;
  /// nil when every row stands alone.
  static var groupedBy: String? { get }
  /// Fields read as free text (a store's reply), where a line break or any control
  /// character may be: every other field holding one makes its row bad.
  static var freeText: Set<String> { get }
  /// Whether a row `record` gave no record for begins a record that is skipped whole (a
  /// voided order): its later rows (`groupedBy`) are skipped with it.
  static func startsSkippedRecord(_ row: TableRow) -> Bool
}

extension TableSchema {
  public static var groupedBy: String? { nil }
  public static var freeText: Set<String> { [] }
  public static func startsSkippedRecord(_ row: TableRow) -> Bool { false }

  /// `name` with its position in this schema's rows, for a schema to find once (in a
  /// static constant) and read each row by.
  public static func field(_ name: String) -> TableField {
    TableField(name: name, position: columns.firstIndex { $0.field == name } ?? -1)
  }
}

/// Streams a CSV or NDJSON export of any record type (reviews, messages) into canonical
/// records through its `TableSchema`: a leading BOM is skipped, UTF-8 is validated across
/// chunks, CSV columns are matched by name, NDJSON keys likewise, blank lines are skipped.
/// A row that cannot be read is counted with its number and reason, never fatal; an export
/// that cannot be read at all (not UTF-8, a CSV header without a required column) is.
/// Memory is bounded by `maxRecordBytes`. (Posts, the hot path, have their own
/// `PostsReader`, which never builds a row of strings.)
public struct TableReader<Schema: TableSchema> {
  public let format: ExportFormat
  public let platform: String
  public let account: String
  public let maxProblems: Int
  public private(set) var counts = ReadCounts()

  private var validator = UTF8Validator()
  private var head: [UInt8] = []
  private var sawStart = false
  private var csv: CSVParser
  private var lines: LineSplitter
  /// CSV: the position in `fields` each column index is read as (−1 = ignored), once the
  /// header is read.
  private var columns: [Int]?
  /// The schema's fields, in its order.
  private let fields = Schema.columns.map(\.field)
  /// `Self.names`, built once per reader rather than once per NDJSON line.
  private let columnNames = Self.names
  private var row: UInt64 = 0
  private var fatal: ExportError?
  /// CSV: the columns no field is read from (`CSVParser.ignoredColumns`).
  private var ignoredColumns: UInt64 = 0
  /// The position of `Schema.groupedBy` in a row (−1: none), and its value in the last row
  /// that began a record (or was refused as one).
  private let groupPosition = Schema.groupedBy.flatMap { name in Schema.columns.firstIndex { $0.field == name } } ?? -1
  private var lastGroup: String?
  /// Per field position: whether a control character in it makes the row bad.
  private let controlChecked = Schema.columns.map { !Schema.freeText.contains($0.field) }

  /// Lowercased column name → (field, rank among its names).
  private static var names: [String: (field: String, rank: Int)] {
    var names: [String: (String, Int)] = [:]
    for (field, aliases) in Schema.columns {
      for (rank, name) in aliases.enumerated() where names[name.lowercased()] == nil {
        names[name.lowercased()] = (field, rank)
      }
    }
    return names
  }

  public init(format: ExportFormat, platform: String, account: String, limits: ReadLimits) {
    self.format = format
    self.platform = platform
    self.account = account
    maxProblems = limits.maxProblems
    csv = CSVParser(maxRecordBytes: limits.maxRecordBytes)
    lines = LineSplitter(maxLineBytes: limits.maxRecordBytes)
  }

  public mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (CanonicalRecord) -> Bool) throws(ExportError) {
    if let fatal { throw fatal }
    if !sawStart {
      head.append(contentsOf: chunk)
      let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
      if head.count < 3, head.elementsEqual(bom.prefix(head.count)) { return }
      sawStart = true
      let rest = Array(head[(head.starts(with: bom) ? 3 : 0)...])
      head = []
      try body(rest, emit)
      return
    }
    try body(chunk, emit)
  }

  public mutating func finish(emit: (CanonicalRecord) -> Bool) throws(ExportError) {
    if let fatal { throw fatal }
    if !sawStart {
      sawStart = true
      if !head.starts(with: [0xEF, 0xBB, 0xBF]) { try body(head, emit) }
      head = []
    }
    guard validator.isComplete else {
      throw ExportError("the export is not valid UTF-8: it ends inside a character (byte \(validator.offset))")
    }
    switch format {
    case .csv:
      var parser = CSVParser(maxRecordBytes: 0)
      swap(&parser, &csv)
      defer { swap(&parser, &csv) }
      parser.finish { record in csvRecord(record, emit) }
    case .ndjson:
      var splitter = LineSplitter(maxLineBytes: 0)
      swap(&splitter, &lines)
      defer { swap(&splitter, &lines) }
      splitter.finish { number, line, tooLong in ndjsonLine(number, line, tooLong, emit) }
    }
    if let fatal { throw fatal }
  }

  private mutating func body(_ bytes: [UInt8], _ emit: (CanonicalRecord) -> Bool) throws(ExportError) {
    var thrown: ExportError?
    bytes.withUnsafeBytes { raw in
      do throws(ExportError) { try body(raw, emit) } catch { thrown = error }
    }
    if let thrown { throw thrown }
  }

  // Connectors reach a reader through `any Connector`, whose witnesses are generic: a
  // specialization for the hot schema (orders) keeps its per-row work free of runtime
  // generic lookups (a few percent of reading an orders export).
  @_specialize(where Schema == OrdersExport)
  private mutating func body(_ chunk: UnsafeRawBufferPointer, _ emit: (CanonicalRecord) -> Bool) throws(ExportError) {
    if let bad = validator.feed(chunk) {
      fatal = ExportError("the export is not valid UTF-8 (at byte \(bad))")
    }
    if let fatal { throw fatal }
    switch format {
    case .csv:
      var parser = CSVParser(maxRecordBytes: 0)
      swap(&parser, &csv)
      defer { swap(&parser, &csv) }
      parser.ignoredColumns = ignoredColumns
      parser.feed(chunk) { record in csvRecord(record, emit) }
    case .ndjson:
      var splitter = LineSplitter(maxLineBytes: 0)
      swap(&splitter, &lines)
      defer { swap(&splitter, &lines) }
      splitter.feed(chunk) { number, line, tooLong in ndjsonLine(number, line, tooLong, emit) }
    }
    if let fatal { throw fatal }
  }

  /// Whether a row repeats the group value of the record just read (or refused).
  private func continuesLastRecord(_ row: TableRow) -> Bool {
    guard groupPosition >= 0, let group = row.text(at: groupPosition) else { return false }
    return group == lastGroup
  }

  /// A row that begins a record (its callers skip one that `continuesLastRecord`).
  private mutating func take(_ row: TableRow, _ emit: (CanonicalRecord) -> Bool) {
    let group = groupPosition >= 0 ? row.text(at: groupPosition) : nil
    switch Schema.record(row, platform: platform, account: account) {
    case .success(nil):
      if Schema.startsSkippedRecord(row) { lastGroup = group }
    case .success(let record?):
      lastGroup = group
      counts.take(record, row: row.number, keep: maxProblems, emit: emit)
    case .failure(let problem):
      lastGroup = group
      counts.bad(problem, keep: maxProblems)
    }
  }

  // MARK: CSV

  private mutating func csvRecord(_ record: CSVRecord, _ emit: (CanonicalRecord) -> Bool) {
    guard fatal == nil, !record.isBlank else { return }
    guard let columns else {
      readHeader(record)
      return
    }
    row += 1
    if let reason = record.problem {
      return counts.bad(RowProblem(row: row, column: "", reason: reason), keep: maxProblems)
    }
    guard record.count == columns.count else {
      return counts.bad(RowProblem(row: row, column: "", reason: .wrongFieldCount), keep: maxProblems)
    }
    withUnsafeTemporaryAllocation(of: UnsafeRawBufferPointer.self, capacity: fields.count) { cells in
      cells.initialize(repeating: UnsafeRawBufferPointer(start: nil, count: 0))
      // Every field read is an identity or a figure: one holding a control character (a
      // NUL, an escape) is bad, as a post's text field is.
      var control: String?
      var long: String?
      for (index, position) in columns.enumerated() where position >= 0 {
        let text = Values.trimmed(record.field(index))
        if control == nil, controlChecked[position], Values.hasControl(text) { control = fields[position] }
        if long == nil, text.count > Values.maxFieldBytes { long = fields[position] }
        cells[position] = text
      }
      let values = TableRow(number: row, fields: fields, cells: UnsafeBufferPointer(cells))
      if continuesLastRecord(values) {
        // One more line of the record just read or refused: skipped whatever it holds.
      } else if let control {
        // Refused as a record's first row is: its later rows are skipped with it.
        if groupPosition >= 0 { lastGroup = values.text(at: groupPosition) }
        counts.bad(RowProblem(row: row, column: control, reason: .controlCharacter), keep: maxProblems)
      } else if let long {
        if groupPosition >= 0 { lastGroup = values.text(at: groupPosition) }
        counts.bad(RowProblem(row: row, column: long, reason: .fieldTooLong), keep: maxProblems)
      } else {
        take(values, emit)
      }
    }
  }

  private mutating func readHeader(_ record: CSVRecord) {
    if let problem = record.problem {
      fatal = ExportError("the CSV header cannot be read (\(problem.rawValue))")
      return
    }
    if let fault = CSVRecord.headerFault(record) {
      fatal = fault
      return
    }
    let names = columnNames
    var best: [String: (index: Int, rank: Int)] = [:]
    for index in 0..<record.count {
      let name = Values.string(Values.trimmed(record.field(index))).lowercased()
      guard let (field, rank) = names[name] else { continue }
      if let seen = best[field], seen.rank <= rank { continue }
      best[field] = (index, rank)
    }
    for field in Schema.required where best[field] == nil {
      let accepted = Schema.columns.first { $0.field == field }?.names.joined(separator: ", ") ?? field
      fatal = ExportError("the CSV header has no \(field) column (one of: \(accepted))")
      return
    }
    var columns = [Int](repeating: -1, count: record.count)
    for (field, chosen) in best { columns[chosen.index] = fields.firstIndex(of: field) ?? -1 }
    self.columns = columns
    for (index, position) in columns.prefix(64).enumerated() where position < 0 {
      ignoredColumns |= 1 << UInt64(index)
    }
  }

  // MARK: NDJSON

  private mutating func ndjsonLine(
    _ number: UInt64, _ line: UnsafeRawBufferPointer, _ tooLong: Bool, _ emit: (CanonicalRecord) -> Bool
  ) {
    guard fatal == nil else { return }
    if tooLong { return counts.bad(RowProblem(row: number, column: "", reason: .tooLong), keep: maxProblems) }
    if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
    guard let value = JSONValue.parse(Array(line)) else {
      return counts.bad(RowProblem(row: number, column: "", reason: .invalidJSON), keep: maxProblems)
    }
    guard let object = value.object else {
      return counts.bad(RowProblem(row: number, column: "", reason: .notAnObject), keep: maxProblems)
    }
    let names = columnNames
    var ranks: [String: (rank: Int, key: String)] = [:]
    var values = TableRow(number: number, fields: fields)
    let exact = Self.exactNumbers(line, object)
    for (key, value) in object {
      // Trimmed as a CSV cell is: " c1 " is the conversation "c1" in either format.
      guard let (field, rank) = names[key.lowercased()], let position = fields.firstIndex(of: field),
        let text = (exact[key] ?? Self.text(value))?.trimmingBlanks(), !text.isEmpty
      else { continue }
      // The better-ranked name wins; between spellings of one name (`id`, `ID`), the one
      // first in byte order, so the key read never depends on a dictionary's order.
      if let seen = ranks[field],
        seen.rank < rank || (seen.rank == rank && seen.key.utf8.lexicographicallyPrecedes(key.utf8))
      {
        continue
      }
      ranks[field] = (rank, key)
      values.texts[position] = text
    }
    if continuesLastRecord(values) { return }
    for (position, text) in values.texts.enumerated() {
      guard let text else { continue }
      let control = controlChecked[position] && Values.hasControl(text.utf8)
      guard control || text.utf8.count > Values.maxFieldBytes else { continue }
      if groupPosition >= 0 { lastGroup = values.texts[groupPosition] }
      let reason: Values.Problem = control ? .controlCharacter : .fieldTooLong
      return counts.bad(RowProblem(row: number, column: fields[position], reason: reason), keep: maxProblems)
    }
    take(values, emit)
  }

  /// The top-level numbers a Double cannot hold as written (more than 15 significant
  /// digits: an amount such as 12345678901234567.89, which Foundation reads as the integer
  /// 12345678901234568, a negative integer such as -9007199254740993, or an integer past
  /// 2^64 − 1), by key, as written: read from the
  /// line again only when a number may have had a fraction or more than 64 bits. One with
  /// an exponent keeps the Double's reading, as before.
  static func exactNumbers(_ line: UnsafeRawBufferPointer, _ object: [String: JSONValue]) -> [String: String] {
    let fraction = line.contains(UInt8(ascii: "."))
    guard
      object.values.contains(where: {
        switch $0 {
        case .number: true
        case .count: fraction
        default: false
        }
      })
    else { return [:] }
    var exact: [String: String] = [:]
    var seen = Set<String>()
    _ = JSONScanner.scanObject(line) { key, value in
      // The first of duplicate keys, as Foundation reads them.
      guard seen.insert(key).inserted else { return }
      // An integer past 64 bits (Foundation rounds it to a Double) is its digits as written.
      if case .largeInteger(let text) = value {
        exact[key] = text
        return
      }
      // A negative integer of more than 15 digits is a Double to Foundation too (only a
      // non-negative one is a count): its digits as written.
      if case .integer(negative: true, let magnitude) = value, magnitude >= 1_000_000_000_000_000 {
        exact[key] = "-\(magnitude)"
        return
      }
      guard case .nonInteger(let text) = value, !text.contains(where: { $0 == "e" || $0 == "E" }) else { return }
      let digits = text.drop { $0 == "-" || $0 == "0" || $0 == "." }.filter(\.isNumber)
      if digits.count > 15 { exact[key] = text }
    }
    return exact
  }

  /// A JSON value as a CSV cell would hold it; an array's items joined by commas.
  static func text(_ value: JSONValue) -> String? {
    switch value {
    case .null: return nil
    case .bool(let flag): return flag ? "true" : "false"
    case .count(let count): return String(count)
    case .number(let number):
      return number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    case .string(let text): return text
    case .array(let items): return items.compactMap(text).joined(separator: ",")
    case .object: return nil
    }
  }
}

extension Values {
  /// A timestamp as exports write them: RFC 3339; `YYYY-MM-DD HH:MM:SS` followed by
  /// `UTC`, `Z`, an offset `±HHMM` or `±HH:MM`, or nothing (UTC); `YYYY-MM-DDTHH:MM:SS+0000`
  /// (Meta's offset without a colon); a date alone (midnight UTC); or Unix epoch seconds
  /// (WhatsApp). Nil when it is none of these.
  public static func looseTimestamp(_ text: String) -> Timestamp? {
    // Most exports write RFC 3339: read it straight from the bytes, without the
    // normalisation below (Foundation's trimming and a String per part cost far more).
    if let strict = text.utf8.withContiguousStorageIfAvailable({ timestamp(UnsafeRawBufferPointer($0)) }),
      let strict
    {
      return strict
    }
    var text = text.trimmingCharacters(in: .whitespaces)
    if !text.isEmpty, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber), text.count <= 12,
      let seconds = Int64(text)
    {
      return Timestamp(epochSeconds: seconds, offsetMinutes: 0)
    }
    if text.count == 10 { text += "T00:00:00Z" }
    guard text.count >= 19 else { return nil }
    var chars = Array(text)
    if chars[10] == " " { chars[10] = "T" }
    var zone = String(chars[19...]).trimmingCharacters(in: .whitespaces)
    let fraction: String
    if zone.hasPrefix(".") {
      let digits = zone.dropFirst().prefix { $0.isNumber }
      fraction = "." + digits
      zone = String(zone.dropFirst(1 + digits.count)).trimmingCharacters(in: .whitespaces)
    } else {
      fraction = ""
    }
    switch zone {
    case "", "UTC", "GMT", "Z", "z": zone = "Z"
    default:
      if zone.count == 5, zone.first == "+" || zone.first == "-" {
        zone = String(zone.prefix(3)) + ":" + String(zone.suffix(2))
      }
    }
    let normal = String(chars[0..<19]) + fraction + zone
    return Array(normal.utf8).withUnsafeBytes { timestamp($0) }
  }

  /// "true", "yes", "1", "y" (any case) → true; "false", "no", "0", "n" → false; else nil.
  public static func flag(_ text: String) -> Bool? {
    switch text.lowercased() {
    case "true", "yes", "1", "y": return true
    case "false", "no", "0", "n": return false
    default: return nil
    }
  }
}
