/// Parsing of the canonical formats' values (docs/formats.md): counts, timestamps, media
/// types, trimming. Works on UTF-8 bytes so rows need no String until a value is kept.
public enum Values {
  /// The longest field a row may hold where a report reads it (as a spec's `url`).
  public static let maxFieldBytes = 8_192

  /// Why a value is bad; the raw values are the reasons reported to users.
  public enum Problem: String, Error, Sendable, Equatable {
    case missing
    case invalidTimestamp = "invalid timestamp"
    case notAnInteger = "not an integer"
    case negative
    case outOfRange = "out of range"
    case wrongFieldCount = "wrong field count"
    case unterminatedQuote = "unterminated quote"
    case invalidJSON = "invalid JSON"
    case notAnObject = "not an object"
    case notAString = "not a string"
    case tooLong = "record too long"
    /// A field a report keys or reads (an account, an id, a customer) over
    /// `Values.maxFieldBytes`: its partial could not travel (a 600 KB account name made a
    /// job whose result no client could read).
    case fieldTooLong = "field too long"
    /// A NUL or another control character in a text field (id, platform, account, …).
    case controlCharacter = "control character"
    /// A platform refused part of a request (a metric it no longer serves); the request was
    /// made again without it. Row 0: the request, not a record.
    case refusedByPlatform = "refused by the platform; asked again without it"
    case notADecimal = "not a decimal amount"
    case notADirection = "not inbound or outbound"
    /// An API handed the same object twice in one task (paging over data that moved).
    case duplicate = "a repeat of an object read earlier in this task"
    /// A row for a day the task did not ask for.
    case outsideWindow = "outside the days asked for"
  }

  /// Whether text bytes hold a C0 control character other than tab, or DEL.
  @inline(__always)
  public static func hasControl(_ bytes: some Sequence<UInt8>) -> Bool {
    bytes.contains(where: isControl)
  }

  @inline(__always)
  static func isControl(_ byte: UInt8) -> Bool { (byte < 0x20 && byte != 0x09) || byte == 0x7F }

  /// Whether a word's bytes may hold a control: a byte below 0x20 (a tab too) or DEL. A
  /// byte below `n` (≤ 0x80) sets its high bit in `(x − n…) & ~x & 0x80…`; a borrow only
  /// marks bytes above one that is, so "any" is exact. DEL is a zero of `x ^ 0x7F…`.
  @inline(__always)
  static func mayHoldControl(_ word: UInt64) -> Bool {
    let ones: UInt64 = 0x0101_0101_0101_0101
    @inline(__always) func below(_ x: UInt64, _ n: UInt64) -> UInt64 {
      (x &- ones &* n) & ~x & 0x8080_8080_8080_8080
    }
    return below(word, 0x20) | below(word ^ (ones &* 0x7F), 1) != 0
  }

  /// `hasControl` over a field's bytes, eight at a time: every field of every row of a
  /// table export is checked (a byte at a time, a fourteenth of reading an orders export).
  @inline(__always)
  public static func hasControl(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var index = 0
    if let base = bytes.baseAddress {
      while index + 8 <= bytes.count {
        let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self))
        if mayHoldControl(word) {
          // A tab, or a control: the word's bytes decide.
          for offset in index..<(index + 8) where isControl(bytes[offset]) { return true }
        }
        index += 8
      }
    }
    while index < bytes.count {
      if isControl(bytes[index]) { return true }
      index += 1
    }
    return false
  }

  /// `hasControl` over a field of `count` bytes (at most 8) held in the low bytes of `word`
  /// (`CSVRecord.word`): most of a row's text fields are shorter than a word.
  @inline(__always)
  public static func hasControl(word: UInt64, count: Int) -> Bool {
    // Bytes past the field read as spaces, which are no control.
    let kept: UInt64 = count >= 8 ? ~0 : (1 << UInt64(8 * count)) &- 1
    guard mayHoldControl((word & kept) | (0x2020_2020_2020_2020 & ~kept)) else { return false }
    // A tab, or a control: the bytes decide.
    for index in 0..<min(count, 8) where isControl(UInt8(truncatingIfNeeded: word >> UInt64(8 * index))) {
      return true
    }
    return false
  }

  /// `count` over a field of `count` bytes (at most 8) held in the low bytes of `word`, when
  /// it is plain digits or empty (eight digits at a time, as simdjson reads them); nil
  /// otherwise, for `count(_:)` to read and judge.
  @inline(__always)
  public static func count(word: UInt64, count: Int) -> Result<UInt64?, Problem>? {
    guard count > 0 else { return .success(nil) }
    guard count <= 8 else { return nil }
    // The digits moved to the word's top, '0's before them: "754" reads as "00000754".
    let digits = (word << UInt64(8 * (8 - count))) | (0x3030_3030_3030_3030 >> UInt64(8 * count))
    let high: UInt64 = 0xF0F0_F0F0_F0F0_F0F0
    // Every byte 0x30...0x39: its high nibble is 3, and still 3 after adding 6 (a carry
    // out of a byte only comes from one that is not a digit).
    guard (digits & high) | (((digits &+ 0x0606_0606_0606_0606) & high) >> 4) == 0x3333_3333_3333_3333 else {
      return nil
    }
    var value = digits &- 0x3030_3030_3030_3030
    value = value &* 10 &+ (value >> 8)
    let pairs: UInt64 = 0x0000_00FF_0000_00FF
    value = ((value & pairs) &* 0x000F_4240_0000_0064 &+ ((value >> 16) & pairs) &* 0x0000_2710_0000_0001) >> 32
    return .success(UInt64(UInt32(truncatingIfNeeded: value)))
  }

  @inline(__always)
  static func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

  /// The bytes without leading and trailing spaces and tabs.
  @inline(__always)
  public static func trimmed(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    var start = 0
    var end = bytes.count
    while start < end, isBlank(bytes[start]) { start += 1 }
    while end > start, isBlank(bytes[end - 1]) { end -= 1 }
    return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
  }

  /// A count written as text: nil for empty (unknown), else the value or the problem.
  /// Plain ASCII digits, or digits grouped by commas in threes; a leading "-" is `negative`.
  public static func count(_ raw: UnsafeRawBufferPointer) -> Result<UInt64?, Problem> {
    let text = trimmed(raw)
    if text.isEmpty { return .success(nil) }
    // Plain digits, at most 19 of them, cannot pass UInt64.max: no checks per digit.
    if text.count <= 19 {
      var value: UInt64 = 0
      var plain = true
      for byte in text {
        let digit = byte &- UInt8(ascii: "0")
        if digit > 9 {
          plain = false
          break
        }
        value = value &* 10 &+ UInt64(digit)
      }
      if plain { return .success(value) }
    }
    var index = 0
    let negative = text[0] == UInt8(ascii: "-")
    if negative { index = 1 }
    guard index < text.count else { return .failure(.notAnInteger) }
    var value: UInt64 = 0
    var overflow = false
    var groupDigits = 0
    var sawComma = false
    while index < text.count {
      let byte = text[index]
      if byte == UInt8(ascii: ",") {
        // The first group has 1 to 3 digits, every later one exactly 3.
        if sawComma ? groupDigits != 3 : (groupDigits == 0 || groupDigits > 3) {
          return .failure(.notAnInteger)
        }
        sawComma = true
        groupDigits = 0
      } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
        groupDigits += 1
        let (times, o1) = value.multipliedReportingOverflow(by: 10)
        let (plus, o2) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
        if o1 || o2 { overflow = true }
        value = plus
      } else {
        return .failure(.notAnInteger)
      }
      index += 1
    }
    if sawComma && groupDigits != 3 { return .failure(.notAnInteger) }
    if groupDigits == 0 { return .failure(.notAnInteger) }
    if negative { return .failure(.negative) }
    if overflow { return .failure(.outOfRange) }
    return .success(value)
  }

  /// A parsed RFC 3339 timestamp with offset.
  public struct Timestamp: Sendable, Equatable {
    /// Seconds since the Unix epoch (UTC).
    public var epochSeconds: Int64
    /// The writer's UTC offset in minutes.
    public var offsetMinutes: Int16

    public init(epochSeconds: Int64, offsetMinutes: Int16) {
      self.epochSeconds = epochSeconds
      self.offsetMinutes = offsetMinutes
    }
  }

  /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with real calendar checks.
  public static func timestamp(_ raw: UnsafeRawBufferPointer) -> Timestamp? {
    let count = raw.count
    guard count >= 20, let base = raw.baseAddress else { return nil }
    // Read through the pointer: every index below is checked against `count` first.
    let text = base.assumingMemoryBound(to: UInt8.self)
    @inline(__always) func digits(_ at: Int, _ length: Int) -> Int? {
      var value = 0
      for index in at..<(at + length) {
        let digit = text[index] &- UInt8(ascii: "0")
        guard digit <= 9 else { return nil }
        value = value * 10 + Int(digit)
      }
      return value
    }
    guard let year = digits(0, 4), text[4] == UInt8(ascii: "-"), let month = digits(5, 2),
      text[7] == UInt8(ascii: "-"), let day = digits(8, 2),
      text[10] == UInt8(ascii: "T") || text[10] == UInt8(ascii: "t"),
      let hour = digits(11, 2), text[13] == UInt8(ascii: ":"), let minute = digits(14, 2),
      text[16] == UInt8(ascii: ":"), let second = digits(17, 2)
    else { return nil }
    var index = 19
    if text[index] == UInt8(ascii: ".") {
      index += 1
      let start = index
      while index < count, text[index] >= UInt8(ascii: "0"), text[index] <= UInt8(ascii: "9") {
        index += 1
      }
      guard index > start else { return nil }
    }
    guard index < count else { return nil }
    var offsetMinutes = 0
    switch text[index] {
    case UInt8(ascii: "Z"), UInt8(ascii: "z"):
      guard index + 1 == count else { return nil }
    case UInt8(ascii: "+"), UInt8(ascii: "-"):
      guard index + 6 == count, let offsetHours = digits(index + 1, 2),
        text[index + 3] == UInt8(ascii: ":"), let offsetMins = digits(index + 4, 2),
        offsetHours <= 23, offsetMins <= 59
      else { return nil }
      offsetMinutes = offsetHours * 60 + offsetMins
      if text[index] == UInt8(ascii: "-") { offsetMinutes = -offsetMinutes }
    default:
      return nil
    }
    guard year >= 1, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
      hour <= 23, minute <= 59, second <= 59
    else { return nil }
    let days = daysFromCivil(year: year, month: month, day: day)
    let local = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    return Timestamp(epochSeconds: local - Int64(offsetMinutes * 60), offsetMinutes: Int16(offsetMinutes))
  }

  static func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }

  /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
  static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let monthIndex = month > 2 ? month - 3 : month + 9
    let dayOfYear = (153 * monthIndex + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }

  /// The bytes as a String (the stream's UTF-8 is validated as it arrives).
  @inline(__always)
  public static func string(_ bytes: UnsafeRawBufferPointer) -> String {
    String(decoding: bytes, as: UTF8.self)
  }
}
