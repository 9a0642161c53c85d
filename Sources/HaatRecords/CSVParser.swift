/// One CSV record, valid only inside the callback that receives it.
public struct CSVRecord {
  /// The bytes of all fields: back to back (a record the parser copied), or the input the
  /// record lies in (one read in place, whose fields `starts` says where they begin).
  public let bytes: UnsafeRawBufferPointer
  /// The start offset of each field in `bytes`; empty when the fields are back to back (each
  /// starts where the one before it ends).
  public let starts: UnsafeBufferPointer<Int>
  /// The end offset of each field in `bytes`.
  public let ends: UnsafeBufferPointer<Int>
  /// Set when the record could not be read whole.
  public let problem: Values.Problem?

  init(
    bytes: UnsafeRawBufferPointer, starts: UnsafeBufferPointer<Int> = UnsafeBufferPointer(start: nil, count: 0),
    ends: UnsafeBufferPointer<Int>, problem: Values.Problem?
  ) {
    self.bytes = bytes
    self.starts = starts
    self.ends = ends
    self.problem = problem
  }

  public var count: Int { ends.count }

  /// A line of only spaces and tabs: no record at all, as an empty line is none (formats.md),
  /// before the header as after it.
  public var isBlank: Bool {
    count == 1 && problem == nil && field(0).allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
  }

  /// The bytes of field `index`.
  @inline(__always)
  public func field(_ index: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: bytes[start(index)..<ends[index]])
  }

  /// Where field `index` starts in `bytes`.
  @inline(__always)
  private func start(_ index: Int) -> Int {
    starts.isEmpty ? (index == 0 ? 0 : ends[index - 1]) : starts[index]
  }

  /// Field `index`'s bytes in the low bytes of a word, and its length, when it is at most
  /// 8 bytes long and 8 bytes can be read from its start (the bytes past it are the
  /// record's next ones, to be ignored): nil otherwise.
  @inline(__always)
  public func word(_ index: Int) -> (word: UInt64, count: Int)? {
    let start = start(index)
    let count = ends[index] - start
    guard count <= 8, start + 8 <= bytes.count, let base = bytes.baseAddress else { return nil }
    return (UInt64(littleEndian: base.loadUnaligned(fromByteOffset: start, as: UInt64.self)), count)
  }

  /// A header whose names are not plain text: a CR inside a name (the file's lines end in
  /// a lone CR, classic Mac Excel, so the whole file read as its header and no row would be
  /// read at all), another control character but a quoted line break, or a byte-order mark
  /// (a file saved with two).
  /// Such a name matches no column, and its column would be skipped without a word.
  static func headerFault(_ header: CSVRecord) -> ExportError? {
    for index in 0..<header.count {
      let name = Values.trimmed(header.field(index))
      if name.contains(0x0D) {
        return ExportError(
          "the CSV header holds a carriage return: the export's lines seem to end in CR alone (an old Mac format), so no row could be read; save it with LF or CRLF line ends"
        )
      }
      // A line break inside a quoted name is CSV (an unknown column, ignored).
      if let control = name.first(where: { Values.isControl($0) && $0 != 0x0A }) {
        return ExportError(
          "the CSV header's column \(index + 1) name holds a control character (U+\(hex(control))); a header names its columns in plain text"
        )
      }
      if (0..<max(0, name.count - 2)).contains(where: {
        name[$0] == 0xEF && name[$0 + 1] == 0xBB && name[$0 + 2] == 0xBF
      }) {
        return ExportError(
          "the CSV header's column \(index + 1) name holds a byte-order mark (U+FEFF): the file seems to start with two; save it with one or none"
        )
      }
    }
    return nil
  }

  private static func hex(_ byte: UInt8) -> String {
    let digits = String(byte, radix: 16, uppercase: true)
    return String(repeating: "0", count: 4 - digits.count) + digits
  }
}

/// A streaming RFC 4180 parser over bytes, with the leniencies of docs/formats.md: records
/// end at LF or CRLF (a lone CR is data), empty lines are skipped, a quote inside an
/// unquoted field is data, and text after a closing quote is appended to the field.
///
/// Chunks may split the input anywhere (inside a quote pair, between CR and LF, inside a
/// multi-byte character). Memory is bounded by `maxRecordBytes`: every field costs its bytes
/// plus one (its delimiter), so a record of bare commas is bounded as a long field is; a
/// longer record is read to its end, reported as `record too long`, and not kept.
public struct CSVParser {
  private enum State {
    case recordStart
    /// A CR at the start of a record: an empty CRLF line, or data.
    case recordStartCR
    case fieldStart
    case unquoted
    /// A CR inside an unquoted field: the end of the record if LF follows, else data.
    case unquotedCR
    case quoted
    /// A quote inside a quoted field: an escaped quote if another follows, else the close.
    case quotedQuote
  }

  public let maxRecordBytes: Int
  /// Columns (bit i: column i, of the first 64) whose fields the caller never reads: a
  /// record read in place may give such a field with its escaped quotes still doubled, so
  /// that a caption quoting someone does not send its whole record the slow way.
  public var ignoredColumns: UInt64 = 0
  private var state = State.recordStart
  private var bytes: [UInt8] = []
  private var ends: [Int] = []
  /// Scratch for a record read in place: each field's start and end, written by position.
  private var placeStarts = [Int](repeating: 0, count: 32)
  private var placeEnds = [Int](repeating: 0, count: 32)
  private var oversized = false

  public init(maxRecordBytes: Int = 1 << 20) {
    self.maxRecordBytes = maxRecordBytes
  }

  /// Whether the input so far ends inside a quoted field (the record `finish` would end as
  /// an unterminated quote).
  public var isInsideQuotes: Bool { state == .quoted }

  /// Parses a chunk, calling `onRecord` for every record it completes.
  public mutating func feed(
    _ chunk: UnsafeRawBufferPointer, _ onRecord: (CSVRecord) throws -> Void
  ) rethrows {
    let count = chunk.count
    var index = 0
    while index < count {
      let byte = chunk[index]
      switch state {
      case .recordStart:
        if byte == UInt8(ascii: "\n") {
          index += 1
          continue
        }
        if byte == UInt8(ascii: "\r") {
          state = .recordStartCR
          index += 1
          continue
        }
        if let next = try inPlace(chunk, from: index, onRecord) {
          index = next
          continue
        }
        state = .fieldStart
        continue  // reprocess as the start of a field

      case .recordStartCR:
        if byte == UInt8(ascii: "\n") {
          state = .recordStart
          index += 1
          continue
        }
        append(UInt8(ascii: "\r"))
        state = .unquoted
        continue

      case .fieldStart:
        switch byte {
        case UInt8(ascii: "\""):
          state = .quoted
          index += 1
        case UInt8(ascii: ","):
          endField()
          index += 1
        case UInt8(ascii: "\n"):
          endField()
          try endRecord(nil, onRecord)
          index += 1
        case UInt8(ascii: "\r"):
          state = .unquotedCR
          index += 1
        default:
          state = .unquoted
        }

      case .unquoted:
        // Copy the run up to the next delimiter in one go.
        var end = index
        while end < count {
          let b = chunk[end]
          if b == UInt8(ascii: ",") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") { break }
          end += 1
        }
        if end > index { append(UnsafeRawBufferPointer(rebasing: chunk[index..<end])) }
        index = end
        guard index < count else { break }
        switch chunk[index] {
        case UInt8(ascii: ","):
          endField()
          state = .fieldStart
        case UInt8(ascii: "\n"):
          endField()
          try endRecord(nil, onRecord)
        default:
          state = .unquotedCR
        }
        index += 1

      case .unquotedCR:
        if byte == UInt8(ascii: "\n") {
          endField()
          try endRecord(nil, onRecord)
          index += 1
        } else {
          append(UInt8(ascii: "\r"))
          state = .unquoted
        }

      case .quoted:
        var end = index
        while end < count, chunk[end] != UInt8(ascii: "\"") { end += 1 }
        if end > index { append(UnsafeRawBufferPointer(rebasing: chunk[index..<end])) }
        index = end
        guard index < count else { break }
        state = .quotedQuote
        index += 1

      case .quotedQuote:
        if byte == UInt8(ascii: "\"") {
          append(UInt8(ascii: "\""))
          state = .quoted
          index += 1
        } else {
          state = .unquoted  // closed; what follows is appended until the delimiter
        }
      }
    }
  }

  /// Reads the record starting at `start` without copying it, when it is a plain one: whole
  /// in this chunk, under the size limit, ending at LF or CRLF, with no other CR outside
  /// quotes and no quoted field holding an escaped quote or followed by more text. Its
  /// fields are then the same as the state machine's. Returns the index after the record,
  /// or nil (nothing consumed: the state machine reads it).
  @inline(__always)
  private mutating func inPlace(
    _ chunk: UnsafeRawBufferPointer, from start: Int, _ onRecord: (CSVRecord) throws -> Void
  ) rethrows -> Int? {
    while true {
      let read = try placeStarts.withUnsafeMutableBufferPointer { starts in
        try placeEnds.withUnsafeMutableBufferPointer { ends in
          try Self.inPlace(chunk, from: start, maxRecordBytes, ignoredColumns, starts, ends, onRecord)
        }
      }
      guard case .moreFields = read else { return read.next }
      // A record wider than any before: room for twice as many fields, and read it again.
      placeStarts = [Int](repeating: 0, count: min(2 * placeStarts.count, maxRecordBytes))
      placeEnds = placeStarts
    }
  }

  private enum PlaceRead {
    case read(Int)
    case notPlain
    case moreFields

    var next: Int? {
      if case .read(let next) = self { return next }
      return nil
    }
  }

  /// The index of the first byte from `start` that is `a`, `b` or `c` (the count if none),
  /// eight bytes at a time: fields are short, but a caption or a timestamp is not.
  @inline(__always)
  static func first(in chunk: UnsafeRawBufferPointer, from start: Int, _ a: UInt8, _ b: UInt8, _ c: UInt8) -> Int {
    let count = chunk.count
    var index = start
    if let base = chunk.baseAddress {
      let ones: UInt64 = 0x0101_0101_0101_0101
      let highs: UInt64 = 0x8080_8080_8080_8080
      // A byte of `word` equal to `byte` becomes zero in `word ^ byte…`; the lowest zero byte
      // sets its high bit in `(x - ones) & ~x & highs` (a borrow only marks bytes above it).
      @inline(__always) func zeros(_ x: UInt64) -> UInt64 { (x &- ones) & ~x & highs }
      while index + 8 <= count {
        let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self))
        let found =
          zeros(word ^ (ones &* UInt64(a))) | zeros(word ^ (ones &* UInt64(b))) | zeros(word ^ (ones &* UInt64(c)))
        if found != 0 { return index + found.trailingZeroBitCount / 8 }
        index += 8
      }
    }
    while index < count {
      let byte = chunk[index]
      if byte == a || byte == b || byte == c { return index }
      index += 1
    }
    return count
  }

  /// The scan of `inPlace`, into `starts` and `ends` as they are (no append per field).
  @inline(__always)
  private static func inPlace(
    _ chunk: UnsafeRawBufferPointer, from start: Int, _ maxRecordBytes: Int, _ ignored: UInt64,
    _ starts: UnsafeMutableBufferPointer<Int>,
    _ ends: UnsafeMutableBufferPointer<Int>, _ onRecord: (CSVRecord) throws -> Void
  ) rethrows -> PlaceRead {
    let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
    let count = chunk.count
    var fields = 0
    var content = 0
    var index = start
    while index < count {
      // A field starts at `index`.
      // Past the record limit in fields alone the record is too long: the state machine
      // says so, and the scratch never grows past the limit.
      guard fields < starts.count else { return fields >= maxRecordBytes ? .notPlain : .moreFields }
      let begin: Int
      let end: Int
      if chunk[index] == quote {
        var close = Self.first(in: chunk, from: index + 1, quote, quote, quote)
        // An ignored column's `""` is stepped over, not unescaped.
        while fields < 64, ignored & (1 << UInt64(fields)) != 0, close + 1 < count, chunk[close + 1] == quote {
          close = Self.first(in: chunk, from: close + 2, quote, quote, quote)
        }
        guard close < count else { break }
        begin = index + 1
        end = close
        index = close + 1
      } else {
        let run = Self.first(in: chunk, from: index, comma, lf, cr)
        begin = index
        end = run
        index = run
      }
      starts[fields] = begin
      ends[fields] = end
      fields += 1
      content += end - begin
      // A delimiter must follow: a comma, LF, or CRLF.
      guard index < count else { break }
      let delimiter = chunk[index]
      if delimiter == comma {
        index += 1
        continue
      }
      var next = index + 1
      if delimiter == cr {
        guard next < count, chunk[next] == lf else { break }
        next += 1
      } else if delimiter != lf {
        break
      }
      guard content + fields <= maxRecordBytes else { break }
      try onRecord(
        CSVRecord(
          bytes: chunk, starts: UnsafeBufferPointer(rebasing: starts[..<fields]),
          ends: UnsafeBufferPointer(rebasing: ends[..<fields]), problem: nil))
      return .read(next)
    }
    return .notPlain
  }

  /// Ends the input: completes a record left open by a missing final newline.
  public mutating func finish(_ onRecord: (CSVRecord) throws -> Void) rethrows {
    switch state {
    case .recordStart:
      return
    case .recordStartCR, .unquotedCR:
      append(UInt8(ascii: "\r"))
      endField()
      try endRecord(nil, onRecord)
    case .fieldStart, .unquoted, .quotedQuote:
      endField()
      try endRecord(nil, onRecord)
    case .quoted:
      endField()
      try endRecord(.unterminatedQuote, onRecord)
    }
  }

  @inline(__always)
  private mutating func append(_ byte: UInt8) {
    guard !oversized else { return }
    if bytes.count + ends.count >= maxRecordBytes {
      oversized = true
      return
    }
    bytes.append(byte)
  }

  @inline(__always)
  private mutating func append(_ run: UnsafeRawBufferPointer) {
    guard !oversized else { return }
    if bytes.count + ends.count + run.count > maxRecordBytes {
      oversized = true
      return
    }
    bytes.append(contentsOf: run)
  }

  @inline(__always)
  private mutating func endField() {
    guard !oversized else { return }
    if bytes.count + ends.count >= maxRecordBytes {
      oversized = true
      return
    }
    ends.append(bytes.count)
  }

  private mutating func endRecord(
    _ problem: Values.Problem?, _ onRecord: (CSVRecord) throws -> Void
  ) rethrows {
    let problem = problem ?? (oversized ? .tooLong : nil)
    defer {
      // An oversized record's buffers are let go, so one bad record does not pin its size.
      bytes.removeAll(keepingCapacity: !oversized)
      ends.removeAll(keepingCapacity: !oversized)
      oversized = false
      state = .recordStart
    }
    try bytes.withUnsafeBytes { raw in
      try ends.withUnsafeBufferPointer { ends in
        try onRecord(CSVRecord(bytes: raw, ends: ends, problem: problem))
      }
    }
  }
}
