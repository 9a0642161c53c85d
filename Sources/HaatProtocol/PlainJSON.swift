import Foundation
import NIOCore
import SwiftProtobuf

/// A reader of the plain JSON protobuf writes. Every method returns nil (or false) at the
/// first byte it does not expect; the reader is then abandoned.
struct PlainJSON {
  let bytes: UnsafeRawBufferPointer
  /// The buffer `bytes` are the readable bytes of: nested messages are decoded from slices.
  let line: ByteBuffer
  var at = 0

  init(_ bytes: UnsafeRawBufferPointer, line: ByteBuffer) {
    self.bytes = bytes
    self.line = line
  }

  mutating func envelope() -> Envelope? {
    var envelope = Envelope()
    var seen: UInt8 = 0
    guard take(UInt8(ascii: "{")) else { return nil }
    repeat {
      guard let key = key() else { return nil }
      if matches(key, "id"), mark(&seen, 1), let id = string() {
        envelope.id = id
      } else if matches(key, "reply_to"), mark(&seen, 2), let replyTo = string() {
        envelope.replyTo = replyTo
      } else if matches(key, "assign"), mark(&seen, 4), let assign = assign() {
        envelope.body = .assign(assign)
      } else if matches(key, "ack"), mark(&seen, 4), let ack = ack() {
        envelope.body = .ack(ack)
      } else if matches(key, "complete"), mark(&seen, 4), let complete = complete() {
        envelope.body = .complete(complete)
      } else {
        return nil
      }
    } while take(UInt8(ascii: ","))
    guard take(UInt8(ascii: "}")), at == bytes.count, envelope.body != nil else { return nil }
    return envelope
  }

  mutating func ack() -> Haat_V1_Ack? {
    var ack = Haat_V1_Ack()
    var seen: UInt8 = 0
    guard take(UInt8(ascii: "{")) else { return nil }
    if take(UInt8(ascii: "}")) { return ack }
    repeat {
      guard let key = key() else { return nil }
      if matches(key, "task"), mark(&seen, 1), let task = string() {
        ack.task = task
      } else if matches(key, "attempt"), mark(&seen, 2), let attempt = uint32() {
        ack.attempt = attempt
      } else if matches(key, "accepted"), mark(&seen, 4), let accepted = bool() {
        ack.accepted = accepted
      } else if matches(key, "reason"), mark(&seen, 8), let reason = string() {
        ack.reason = reason
      } else {
        return nil
      }
    } while take(UInt8(ascii: ","))
    return take(UInt8(ascii: "}")) ? ack : nil
  }

  mutating func assign() -> Haat_V1_Assign? {
    var assign = Haat_V1_Assign()
    var seen: UInt8 = 0
    guard take(UInt8(ascii: "{")) else { return nil }
    if take(UInt8(ascii: "}")) { return assign }
    repeat {
      guard let key = key() else { return nil }
      if matches(key, "task"), mark(&seen, 1), let task = string() {
        assign.task = task
      } else if matches(key, "attempt"), mark(&seen, 2), let attempt = uint32() {
        assign.attempt = attempt
      } else if matches(key, "lease_expires_ms"), mark(&seen, 4), let expires = int64() {
        assign.leaseExpiresMs = expires
      } else if matches(key, "spec"), mark(&seen, 8), let spec = taskSpec() {
        assign.spec = spec
      } else if matches(key, "pool"), mark(&seen, 16), let pool = string() {
        assign.pool = pool
      } else if matches(key, "job"), mark(&seen, 32), let job = string() {
        assign.job = job
      } else {
        return nil
      }
    } while take(UInt8(ascii: ","))
    return take(UInt8(ascii: "}")) ? assign : nil
  }

  mutating func complete() -> Haat_V1_Complete? {
    var complete = Haat_V1_Complete()
    var seen: UInt16 = 0
    guard take(UInt8(ascii: "{")) else { return nil }
    if take(UInt8(ascii: "}")) { return complete }
    repeat {
      guard let key = key() else { return nil }
      if matches(key, "task"), mark(&seen, 1), let task = string() {
        complete.task = task
      } else if matches(key, "attempt"), mark(&seen, 2), let attempt = uint32() {
        complete.attempt = attempt
      } else if matches(key, "partial"), mark(&seen, 4), let partial: Partial = message() {
        complete.partial = partial
      } else if matches(key, "bookmark"), mark(&seen, 8), let bookmark = string() {
        complete.bookmark = bookmark
      } else if matches(key, "stats"), mark(&seen, 16), let stats: TaskStats = message() {
        complete.stats = stats
      } else if matches(key, "part"), mark(&seen, 32), let part = uint32() {
        complete.part = part
      } else if matches(key, "parts"), mark(&seen, 64), let parts = uint32() {
        complete.parts = parts
      } else if matches(key, "split"), mark(&seen, 128), let split: Haat_V1_Split = message() {
        complete.split = split
      } else if matches(key, "partial_binary"), mark(&seen, 256), let data = base64() {
        complete.partialBinary = data
      } else {
        return nil
      }
    } while take(UInt8(ascii: ","))
    return take(UInt8(ascii: "}")) ? complete : nil
  }

  /// A task's spec, read here when its fields are plain (the common case: every assign
  /// carries one), else by protobuf from its bytes.
  mutating func taskSpec() -> TaskSpec? {
    let start = at
    if let spec = plainTaskSpec() { return spec }
    at = start
    return message()
  }

  mutating func plainTaskSpec() -> TaskSpec? {
    var spec = TaskSpec()
    var seen: UInt16 = 0
    guard take(UInt8(ascii: "{")) else { return nil }
    if take(UInt8(ascii: "}")) { return spec }
    repeat {
      guard let key = key() else { return nil }
      if matches(key, "source"), mark(&seen, 1), let source = plainSource() {
        spec.source = source
      } else if matches(key, "reports"), mark(&seen, 2), let reports = strings() {
        spec.reports = reports
      } else if matches(key, "index"), mark(&seen, 4), let index = uint32() {
        spec.index = index
      } else if matches(key, "bookmark"), mark(&seen, 8), let bookmark = string() {
        spec.bookmark = bookmark
      } else if matches(key, "rate_key"), mark(&seen, 16), let rateKey = string() {
        spec.rateKey = rateKey
      } else if matches(key, "requests_per_second"), mark(&seen, 32), let rate = double() {
        spec.requestsPerSecond = rate
      } else if matches(key, "split_plan"), mark(&seen, 64), let splitPlan = bool() {
        spec.splitPlan = splitPlan
      } else if matches(key, "range"), mark(&seen, 128), let range: Haat_V1_ByteRange = message() {
        spec.range = range
      } else if matches(key, "window"), mark(&seen, 256), let window: Haat_V1_DateWindow = message() {
        spec.window = window
      } else {
        return nil
      }
    } while take(UInt8(ascii: ","))
    return take(UInt8(ascii: "}")) ? spec : nil
  }

  private mutating func plainSource() -> Haat_V1_Source? {
    var source = Haat_V1_Source()
    var seen: UInt16 = 0
    guard take(UInt8(ascii: "{")) else { return nil }
    if take(UInt8(ascii: "}")) { return source }
    repeat {
      guard let key = key() else { return nil }
      if matches(key, "tasks"), mark(&seen, 1 << 12), let tasks = uint32() {
        source.tasks = tasks
      } else if matches(key, "requests_per_second"), mark(&seen, 1 << 13), let rate = double() {
        source.requestsPerSecond = rate
      } else if matches(key, "incremental"), mark(&seen, 1 << 14), let incremental = bool() {
        source.incremental = incremental
      } else if matches(key, "split_bytes"), mark(&seen, 1 << 15), let bytes = int64(max: .max) {
        source.splitBytes = bytes
      } else if let field = Self.sourceStrings.firstIndex(where: { matches(key, $0) }),
        mark(&seen, UInt16(1) << UInt16(field)), let text = string()
      {
        Self.set(field, of: &source, to: text)
      } else {
        return nil
      }
    } while take(UInt8(ascii: ","))
    return take(UInt8(ascii: "}")) ? source : nil
  }

  /// A source's string fields, by their proto names, in the order `set` takes them.
  private static let sourceStrings: [StaticString] = [
    "name", "platform", "kind", "account", "url", "format", "credential", "pool", "since", "until", "timezone",
    "business_hours",
  ]

  private static func set(_ field: Int, of source: inout Haat_V1_Source, to text: String) {
    switch field {
    case 0: source.name = text
    case 1: source.platform = text
    case 2: source.kind = text
    case 3: source.account = text
    case 4: source.url = text
    case 5: source.format = text
    case 6: source.credential = text
    case 7: source.pool = text
    case 8: source.since = text
    case 9: source.until = text
    case 10: source.timezone = text
    default: source.businessHours = text
    }
  }

  mutating func strings() -> [String]? {
    guard take(UInt8(ascii: "[")) else { return nil }
    var list: [String] = []
    if take(UInt8(ascii: "]")) { return list }
    repeat {
      guard let text = string() else { return nil }
      list.append(text)
    } while take(UInt8(ascii: ","))
    return take(UInt8(ascii: "]")) ? list : nil
  }

  /// A number in JSON's own grammar (`-`, an integer without leading zeros, a fraction,
  /// an exponent), finite; protobuf's other forms (quoted, "NaN") are left to it.
  mutating func double() -> Double? {
    let start = at
    _ = take(UInt8(ascii: "-"))
    let integer = at
    guard skipDigits(), at - integer == 1 || bytes[integer] != UInt8(ascii: "0") else { return nil }
    if take(UInt8(ascii: ".")) {
      guard skipDigits() else { return nil }
    }
    if at < bytes.count, bytes[at] | 0x20 == UInt8(ascii: "e") {
      at += 1
      if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
      guard skipDigits() else { return nil }
    }
    let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
    guard let value = Double(text), value.isFinite else { return nil }
    return value
  }

  private mutating func skipDigits() -> Bool {
    let start = at
    while at < bytes.count, bytes[at] >= UInt8(ascii: "0"), bytes[at] <= UInt8(ascii: "9") { at += 1 }
    return at > start
  }

  // MARK: - Pieces

  /// Whether this key was not seen before (a repeated key is left to protobuf).
  func mark<Bits: FixedWidthInteger>(_ seen: inout Bits, _ bit: Bits) -> Bool {
    guard seen & bit == 0 else { return false }
    seen |= bit
    return true
  }

  mutating func take(_ byte: UInt8) -> Bool {
    guard at < bytes.count, bytes[at] == byte else { return false }
    at += 1
    return true
  }

  /// `"name":`, as the range of the name.
  mutating func key() -> Range<Int>? {
    guard let range = plainString(), take(UInt8(ascii: ":")) else { return nil }
    return range
  }

  func matches(_ range: Range<Int>, _ name: StaticString) -> Bool {
    guard range.count == name.utf8CodeUnitCount, let base = bytes.baseAddress else { return false }
    return memcmp(base + range.lowerBound, name.utf8Start, range.count) == 0
  }

  /// The bytes of a string without escapes or control characters, between its quotes.
  mutating func plainString() -> Range<Int>? {
    guard take(UInt8(ascii: "\"")) else { return nil }
    let start = at
    while at < bytes.count {
      let byte = bytes[at]
      if byte == UInt8(ascii: "\"") {
        at += 1
        return start..<(at - 1)
      }
      guard byte >= 0x20, byte != UInt8(ascii: "\\") else { return nil }
      at += 1
    }
    return nil
  }

  mutating func string() -> String? {
    guard let range = plainString() else { return nil }
    return String(validating: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
  }

  mutating func bool() -> Bool? {
    if word("true") { return true }
    if word("false") { return false }
    return nil
  }

  private mutating func word(_ text: StaticString) -> Bool {
    let count = text.utf8CodeUnitCount
    guard at + count <= bytes.count, let base = bytes.baseAddress, memcmp(base + at, text.utf8Start, count) == 0
    else { return false }
    at += count
    return true
  }

  /// Digits without a sign, a leading zero (but 0 itself), a fraction or an exponent.
  mutating func digits(max: UInt64) -> UInt64? {
    let start = at
    var value: UInt64 = 0
    while at < bytes.count, case let byte = bytes[at], byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
      let (times, overflow) = value.multipliedReportingOverflow(by: 10)
      let (sum, carry) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
      guard !overflow, !carry, sum <= max else { return nil }
      value = sum
      at += 1
    }
    let count = at - start
    guard count > 0, count == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
    return value
  }

  mutating func uint32() -> UInt32? { digits(max: UInt64(UInt32.max)).map { UInt32($0) } }

  /// An int64 as protobuf writes it, quoted, or bare; a negative one is left to protobuf.
  mutating func int64() -> Int64? { int64(max: UInt64(Int64.max)).map { Int64($0) } }

  /// A 64-bit integer up to `max`, quoted or bare.
  mutating func int64(max: UInt64) -> UInt64? {
    let quoted = take(UInt8(ascii: "\""))
    guard let value = digits(max: max), !quoted || take(UInt8(ascii: "\"")) else { return nil }
    return value
  }

  /// A nested message, decoded by protobuf from its own bytes. The object is found by
  /// its braces; one with an escape anywhere in it is left to the whole line's decoding
  /// (which first mends escaped surrogate pairs).
  mutating func message<M: SwiftProtobuf.Message>() -> M? {
    guard at < bytes.count, bytes[at] == UInt8(ascii: "{") else { return nil }
    // An empty one (a no-op task's partial and stats) needs no decoder.
    if at + 1 < bytes.count, bytes[at + 1] == UInt8(ascii: "}") {
      at += 2
      return M()
    }
    let start = at
    var depth = 0
    var inString = false
    while at < bytes.count {
      let byte = bytes[at]
      at += 1
      if inString {
        if byte == UInt8(ascii: "\"") { inString = false } else if byte == UInt8(ascii: "\\") { return nil }
        continue
      }
      switch byte {
      case UInt8(ascii: "\""): inString = true
      case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
      case UInt8(ascii: "}"), UInt8(ascii: "]"):
        depth -= 1
        if depth == 0 {
          guard let slice = line.getSlice(at: line.readerIndex + start, length: at - start) else { return nil }
          return try? M(jsonUTF8Bytes: ByteBufferBytes(slice), options: WireFastPath.nestedOptions)
        }
      default: break
      }
    }
    return nil
  }

  /// A bytes field in the form protobuf writes: standard base64, padded, its unused bits 0.
  mutating func base64() -> Data? {
    guard let range = plainString(), range.count % 4 == 0 else { return nil }
    return Base64.decode(UnsafeRawBufferPointer(rebasing: bytes[range]))
  }
}
