import HaatProtocol

/// Splitting one export file into byte ranges read by many tasks (docs/connectors.md "Byte
/// ranges"). A record belongs to the range its first byte is in: a range skips the bytes up
/// to its first record start, and reads its last record to its end, past the range.
///
/// A record starts after a line break, but in CSV only after one outside quotes, and which
/// line breaks those are depends on every quote before them (RFC 4180: a quoted field may
/// hold line breaks; an escaped quote is two quotes, so the parity of the quotes before a
/// byte says whether it is inside quotes). A range task does not know that parity at its
/// start. It reads a little (`RangeSplitting.probeBytes`) and tries both: only the right
/// guess reads as records of the header's width with well-formed quotes. When the probe
/// cannot tell (both read well, neither does, or no whole record fits), the task counts the
/// quotes of every byte before its start instead, which is exact. NDJSON needs none of this:
/// a JSON string holds no raw line break.
public enum RangeSplitting {
  /// The least `split_bytes` a source may ask for.
  public static let minSplitBytes: UInt64 = 1 << 20
  /// The most ranges one source splits into (larger ranges when the file needs more).
  public static let maxRanges = 1_000
  /// The longest CSV header line a split carries to its ranges.
  public static let maxHeaderBytes = 64 * 1024
  /// How much a plan task reads (for the header), and a range task reads to guess its quote state.
  public static let probeBytes = 256 * 1024
  /// How much past its end a range reads at a time to finish its last record.
  public static let overreadBytes: UInt64 = 64 * 1024
  /// How much of the file before it a range reads at a time when it counts quotes.
  public static let scanBytes: UInt64 = 16 << 20

  /// The bounds [0, b1, …, size] of ranges of about `splitBytes` each, at most `maxRanges`.
  public static func bounds(size: UInt64, splitBytes: UInt64) -> [UInt64] {
    guard size > 0 else { return [0] }
    let step = max(splitBytes, 1)
    var count = size / step + (size % step == 0 ? 0 : 1)
    count = min(count, UInt64(maxRanges))
    let each = size / count + (size % count == 0 ? 0 : 1)
    var bounds: [UInt64] = [0]
    var at: UInt64 = 0
    while at < size {
      at = min(size, at + each)
      bounds.append(at)
    }
    return bounds
  }

  /// Why a plan's split is not one (nil when it is): bounds from 0 to the size, strictly
  /// increasing, at most `maxRanges` ranges, and a header within its limit.
  public static func problem(with split: Split) -> String? {
    let bounds = split.bounds
    guard bounds.count >= 2 else { return "a split needs at least two bounds (0 and the size)" }
    guard bounds.count <= maxRanges + 1 else { return "a split has \(bounds.count - 1) ranges; at most \(maxRanges)" }
    guard bounds.first == 0, bounds.last == split.size else {
      return "a split's bounds must run from 0 to its size (\(split.size))"
    }
    for index in 1..<bounds.count where bounds[index] <= bounds[index - 1] {
      return "a split's bounds must increase (bound \(index) is \(bounds[index]) after \(bounds[index - 1]))"
    }
    guard split.header.utf8.count <= maxHeaderBytes else {
      return "a split's header is over \(maxHeaderBytes) bytes"
    }
    return nil
  }

  /// The first byte in a Content-Range header ("bytes 0-99/1234" → 0), nil when it names
  /// no range of bytes.
  static func firstByte(contentRange: String) -> UInt64? {
    let text = contentRange.trimmingCharacters(in: .whitespaces)
    guard text.lowercased().hasPrefix("bytes "), let slash = text.firstIndex(of: "/") else { return nil }
    let span = text[text.index(text.startIndex, offsetBy: 6)..<slash].split(
      separator: "-", omittingEmptySubsequences: false)
    guard span.count == 2, let first = UInt64(span[0].trimmingCharacters(in: .whitespaces)),
      let last = UInt64(span[1].trimmingCharacters(in: .whitespaces)), first <= last
    else { return nil }
    return first
  }

  /// The size in a Content-Range header ("bytes 0-99/1234" → 1234), nil if unknown ("*").
  static func size(contentRange: String) -> UInt64? {
    guard let slash = contentRange.lastIndex(of: "/") else { return nil }
    return UInt64(contentRange[contentRange.index(after: slash)...].trimmingCharacters(in: .whitespaces))
  }

  /// The number of fields of a CSV line (commas outside quotes, plus one).
  static func fieldCount(_ line: String) -> Int {
    var fields = 1
    var quoted = false
    for byte in line.utf8 {
      if byte == quote {
        quoted.toggle()
      } else if byte == comma, !quoted {
        fields += 1
      }
    }
    return fields
  }

  static let quote = UInt8(ascii: "\"")
  static let comma = UInt8(ascii: ",")
  static let newline = UInt8(ascii: "\n")
  static let carriageReturn = UInt8(ascii: "\r")
}

/// Finds record starts in a stream of bytes fed in order from a known offset and quote
/// state, and passes on exactly the bytes of the records whose first byte is in a range.
struct RangeCutter {
  enum Phase: Equatable {
    /// Before the range's first record start.
    case seeking
    /// Passing on records.
    case reading
    /// Past the range's last record.
    case done
  }

  let end: UInt64
  /// CSV: line breaks inside quotes do not end records.
  let csv: Bool
  /// Offset of the next byte fed.
  private(set) var offset: UInt64
  /// Whether the next byte fed is inside quotes.
  private(set) var inQuotes: Bool
  private(set) var phase: Phase
  /// The state taken at the first byte (the byte before the range's start).
  let startsInQuotes: Bool
  /// Whether the bytes fed before the range's last byte hold an odd number of quotes.
  private(set) var oddQuotes = false

  /// Starts at `offset`, where the quote state is `inQuotes`. A range that starts at 0 reads
  /// from its first byte; any other starts one byte early, so a record starting exactly at
  /// the range's start is seen after that byte's line break.
  init(start: UInt64, end: UInt64, csv: Bool, inQuotes: Bool) {
    self.end = end
    self.csv = csv
    self.inQuotes = inQuotes
    startsInQuotes = inQuotes
    offset = start == 0 ? 0 : start - 1
    phase = start == 0 ? .reading : .seeking
  }

  /// Feeds the next bytes; `deliver` gets the pieces that belong to the range's records.
  mutating func feed(
    _ bytes: UnsafeRawBufferPointer, deliver: (UnsafeRawBufferPointer) throws(ExportError) -> Void
  ) throws(ExportError) {
    let count = bytes.count
    // The quote state at the chunk's start, and the parity of its quotes before the range's
    // last byte: one pass that serves the chain check and the reading below.
    let stateAtStart = inQuotes
    var oddBeforeLast = false
    if csv, offset + 1 < end {
      let upTo = Int(min(UInt64(count), end - 1 - offset))
      oddBeforeLast = Self.count(RangeSplitting.quote, in: UnsafeRawBufferPointer(rebasing: bytes[..<upTo])) & 1 == 1
      if oddBeforeLast { oddQuotes.toggle() }
    }
    var index = 0
    while index < count, phase != .done {
      if phase == .seeking {
        guard let lineBreak = nextBreak(bytes, from: index, upTo: count) else {
          index = count
          break
        }
        index = lineBreak + 1
        phase = offset + UInt64(index) >= end ? .done : .reading
        continue
      }
      // Reading: bytes before the last byte of the range only move the quote state; from
      // there, the first line break outside quotes ends the range's last record.
      let runStart = index
      let lastOfRange = end - 1
      if offset + UInt64(index) < lastOfRange {
        // Every quote from the chunk's start up to here moved the state once (while
        // seeking, or in this run): the state there is known from the parity counted above.
        if csv { inQuotes = stateAtStart != oddBeforeLast }
        index = Int(min(UInt64(count), lastOfRange - offset))
      }
      if index < count {
        if let lineBreak = nextBreak(bytes, from: index, upTo: count) {
          index = lineBreak + 1
          phase = .done
        } else {
          index = count
        }
      }
      try deliver(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
    }
    offset += UInt64(count)
  }

  /// How many bytes of `bytes` are `byte`, eight at a time: every byte of a range is
  /// counted (a byte at a time, this was a tenth of reading a posts range).
  static func count(_ byte: UInt8, in bytes: UnsafeRawBufferPointer) -> Int {
    var total = 0
    var index = 0
    if let base = bytes.baseAddress {
      let lows: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
      let pattern = 0x0101_0101_0101_0101 &* UInt64(byte)
      while index + 8 <= bytes.count {
        let x = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self)) ^ pattern
        // A byte's high bit is set in `nonzero` exactly when the byte of `x` is not zero
        // (no carry crosses bytes: each low seven bits plus 0x7F stays under 0x100).
        let nonzero = ((x & lows) &+ lows) | x
        total &+= (~nonzero & ~lows).nonzeroBitCount
        index += 8
      }
    }
    while index < bytes.count {
      if bytes[index] == byte { total &+= 1 }
      index += 1
    }
    return total
  }

  /// The index of the first line break outside quotes in `bytes[from..<upTo]`, moving the
  /// quote state up to it (or to `upTo`).
  private mutating func nextBreak(_ bytes: UnsafeRawBufferPointer, from: Int, upTo: Int) -> Int? {
    var index = from
    while index < upTo {
      let byte = bytes[index]
      if byte == RangeSplitting.quote, csv {
        inQuotes.toggle()
      } else if byte == RangeSplitting.newline, !inQuotes {
        return index
      }
      index += 1
    }
    return nil
  }
}

/// Guesses whether the first byte of a CSV probe is inside quotes, by reading what follows
/// under each guess (see `RangeSplitting`).
enum QuoteStateProbe {
  /// What a guess reads of the probe.
  enum Read: Equatable {
    /// A record that is not well formed: a field count other than the header's, or a quote
    /// where none may be.
    case broken
    /// No line break outside quotes in the whole probe: under this guess it is all one
    /// quoted field.
    case noRecordStart
    /// Whole, well-formed records before the probe ran out (at most `enough`).
    case records(Int)
  }

  /// Whole records that decide a guess when the other finds no record start.
  static let enough = 8

  /// The records read under one guess.
  static func wellFormedRecords(_ bytes: UnsafeRawBufferPointer, inQuotes: Bool, fields: Int) -> Read {
    var state = inQuotes
    var index = 0
    // The first record start under this guess.
    while index < bytes.count {
      let byte = bytes[index]
      index += 1
      if byte == RangeSplitting.quote {
        state.toggle()
      } else if byte == RangeSplitting.newline, !state {
        break
      }
      if index == bytes.count { return .noRecordStart }
    }
    var records = 0
    var count = 1
    var fieldStart = true
    var quoted = false
    while index < bytes.count, records < Self.enough {
      let byte = bytes[index]
      if quoted {
        if byte == RangeSplitting.quote {
          guard index + 1 < bytes.count else { return .records(records) }
          let next = bytes[index + 1]
          if next == RangeSplitting.quote {
            index += 2
            continue
          }
          guard next == RangeSplitting.comma || next == RangeSplitting.newline || next == RangeSplitting.carriageReturn
          else { return .broken }
          quoted = false
        }
      } else {
        switch byte {
        case RangeSplitting.quote:
          guard fieldStart else { return .broken }
          quoted = true
        case RangeSplitting.comma:
          count += 1
          fieldStart = true
          index += 1
          continue
        case RangeSplitting.newline:
          guard count == fields else { return .broken }
          records += 1
          count = 1
          fieldStart = true
          index += 1
          continue
        default: break
        }
      }
      fieldStart = false
      index += 1
    }
    return .records(records)
  }

  /// The quote state at the probe's first byte, when exactly one guess reads well: it reads
  /// a whole record and the other breaks, or it reads `enough` and the other finds no
  /// record start at all. The second is the common case, not the exception: in an export
  /// whose every row quotes a one-line caption, the wrong guess is inside quotes at every
  /// line break. (Taking it wrongly needs a quoted field longer than the probe holding
  /// `enough` lines that read as records; the report's quote chain would name the range.)
  static func guess(_ bytes: UnsafeRawBufferPointer, fields: Int) -> Bool? {
    let outside = wellFormedRecords(bytes, inQuotes: false, fields: fields)
    let inside = wellFormedRecords(bytes, inQuotes: true, fields: fields)
    switch (outside, inside) {
    case (.records(let good), .broken) where good > 0: return false
    case (.broken, .records(let good)) where good > 0: return true
    case (.records(let good), .noRecordStart) where good >= enough: return false
    case (.noRecordStart, .records(let good)) where good >= enough: return true
    default: return nil
    }
  }
}

extension Split {
  /// The range tasks of this split of a plan task's source: `plan` (the plan task's spec)
  /// with `split_plan` off and one range each (the file's header on every range but the
  /// first), indexed from `firstIndex`.
  public func rangeTasks(of plan: TaskSpec, firstIndex: Int) -> [TaskSpec] {
    var spec = plan
    spec.splitPlan = false
    return (0..<max(0, bounds.count - 1)).map { index in
      var range = ByteRange()
      range.start = bounds[index]
      range.end = bounds[index + 1]
      range.size = size
      if range.start > 0 { range.header = header }
      spec.range = range
      spec.index = UInt32(clamping: firstIndex + index)
      return spec
    }
  }
}
