import Foundation
import HaatCore
import SwiftProtobuf

/// Cuts a message made of sections (a `Partial`, a `Report`: each field a report's section,
/// itself a message of lists) into messages over disjoint parts of it, each under a JSON
/// size, for lines with a limit (DESIGN.md §3 "Large results"). Each field of a section
/// (a cell, a row, a total, a number) goes to exactly one part, in order, so merging the
/// parts back as protobuf merges messages (lists concatenate, a field set once keeps its
/// value) gives the message again, whatever reports it holds: a report added later is cut
/// with no change here.
public enum MessageCutter {
  /// One field of a section, as it is encoded: its tag and value.
  struct Element {
    /// The field numbers of the messages it sits in, outermost first: empty for a top-level
    /// field that is not a section (`Report.job`), which is kept whole.
    var path: [Int]
    var bytes: ArraySlice<UInt8>
  }

  /// How deep the cutter goes: a section (1) and the messages set once inside it (2, as
  /// `Report.engagement.total` or `AttributionPartial.spend`), whose lists are cut too.
  static let maxDepth = 2

  /// The parts of `message`, each at most `budget` bytes of JSON; nil when one field of a
  /// section alone is over it (`largest` then says how large it is). One part when it fits.
  ///
  /// Elements are packed by their binary size at the JSON-to-binary ratio measured so far,
  /// and each part is measured as JSON once: a part over the budget is packed again with
  /// the higher ratio it showed. So the message is encoded as JSON about once, not once per
  /// element (a best_time partial has 20,000 cells).
  /// `encoded` is the message's binary encoding when the caller has it already.
  public static func cut<M: Message>(
    _ message: M, encoded: [UInt8]? = nil, budget: Int
  ) throws -> (parts: [M]?, largest: Int) {
    let elements = try self.elements(of: message, encoded: encoded)
    guard let first = elements.first else { return ([M()], 0) }
    var ratio = Double(try jsonSize(try assemble(elements[0...0]) as M)) / Double(max(first.bytes.count, 1))
    var parts: [M] = []
    var largest = 0
    var start = elements.startIndex
    while start < elements.endIndex {
      var end = start + 1
      var bytes = elements[start].bytes.count
      while end < elements.endIndex, Double(bytes + elements[end].bytes.count) * ratio <= Double(budget) {
        bytes += elements[end].bytes.count
        end += 1
      }
      let part: M = try assemble(elements[start..<end])
      let size = try jsonSize(part)
      largest = max(largest, end - start == 1 ? size : 0)
      // The next part starts from what this one showed, a little above it.
      let shown = Double(size) / Double(max(bytes, 1)) * 1.02
      if size <= budget {
        parts.append(part)
        start = end
        ratio = shown
      } else if end - start == 1 {
        return (nil, size)
      } else {
        ratio = max(shown, ratio * 1.1)
      }
    }
    return (parts, largest)
  }

  /// The parts of `message` in its binary encoding, each at most `maxBytes` long: the same
  /// cut as `cut`, for lines that carry a part as bytes (`complete.partial_binary`), where a
  /// part's size is known exactly without encoding it as JSON. Nil when one field of a
  /// section alone, framed, is over `maxBytes` (`largest` then says how long it is).
  public static func cutEncoded<M: Message>(
    _ message: M, encoded: [UInt8]? = nil, maxBytes: Int
  ) throws -> (parts: [[UInt8]]?, largest: Int) {
    let elements = try self.elements(of: message, encoded: encoded)
    guard !elements.isEmpty else { return ([[]], 0) }
    var parts: [[UInt8]] = []
    var start = elements.startIndex
    while start < elements.endIndex {
      var end = start
      var bytes = 0
      // The framing of the sections around the elements is a few bytes per section.
      let framing = 16 * (maxDepth + 1)
      while end < elements.endIndex, end == start || bytes + elements[end].bytes.count + framing <= maxBytes {
        bytes += elements[end].bytes.count
        end += 1
      }
      var part = frame(elements[start..<end].map { ($0.path[...], $0.bytes) }[...])
      while part.count > maxBytes, end - start > 1 {
        end -= 1
        part = frame(elements[start..<end].map { ($0.path[...], $0.bytes) }[...])
      }
      if part.count > maxBytes { return (nil, part.count) }
      parts.append(part)
      start = end
    }
    return (parts, 0)
  }

  static func jsonSize<M: Message>(_ message: M) throws -> Int {
    let json: [UInt8] = try message.jsonUTF8Bytes(options: WireCodec.encodingOptions)
    return json.count
  }

  /// The fields of `message` as elements: a message field set once (a section, or a
  /// message inside one) is opened, down to `maxDepth`; anything else travels whole, and so
  /// does an empty message (so that a section with nothing in it is still there). The
  /// message is encoded once: a field opened is read from its bytes inside the encoding.
  static func elements<M: Message>(of message: M, encoded: [UInt8]? = nil) throws -> [Element] {
    let bytes: [UInt8] = try encoded ?? message.serializedBytes()
    var shape = NestedFields(depth: 0)
    try message.traverse(visitor: &shape)
    return try elements(of: bytes[...], shape: shape)
  }

  static func elements(of bytes: ArraySlice<UInt8>, shape: NestedFields) throws -> [Element] {
    let fields = try fields(of: bytes)
    var counts: [Int: Int] = [:]
    for field in fields { counts[field.number, default: 0] += 1 }
    var elements: [Element] = []
    for field in fields {
      if counts[field.number] == 1, !shape.repeated.contains(field.number), let inner = shape.inner[field.number],
        let value = field.value
      {
        let nested = try self.elements(of: value, shape: inner)
        if !nested.isEmpty {
          elements += nested.map { Element(path: [field.number] + $0.path, bytes: $0.bytes) }
          continue
        }
      }
      elements.append(Element(path: [], bytes: field.encoded))
    }
    return elements
  }

  /// The message of some elements: each nested field framed in the messages it sits in.
  static func assemble<M: Message>(_ elements: ArraySlice<Element>) throws -> M {
    try M(serializedBytes: frame(Array(elements.map { ($0.path[...], $0.bytes) })[...]))
  }

  /// Encodes elements whose paths are relative to one message: consecutive elements under
  /// the same field are framed together as that field's message.
  static func frame(_ elements: ArraySlice<(ArraySlice<Int>, ArraySlice<UInt8>)>) -> [UInt8] {
    var out: [UInt8] = []
    var index = elements.startIndex
    while index < elements.endIndex {
      let (path, bytes) = elements[index]
      guard let field = path.first else {
        out += bytes
        index += 1
        continue
      }
      var inner: [(ArraySlice<Int>, ArraySlice<UInt8>)] = []
      while index < elements.endIndex, elements[index].0.first == field {
        inner.append((elements[index].0.dropFirst(), elements[index].1))
        index += 1
      }
      let body = frame(inner[...])
      varint(UInt64(field) << 3 | 2, into: &out)
      varint(UInt64(body.count), into: &out)
      out += body
    }
    return out
  }

  struct Field {
    var number: Int
    /// The whole field as encoded, tag included.
    var encoded: ArraySlice<UInt8>
    /// A length-delimited field's value.
    var value: ArraySlice<UInt8>?
  }

  /// The top-level fields of an encoded message, in order.
  static func fields(of bytes: ArraySlice<UInt8>) throws -> [Field] {
    var fields: [Field] = []
    var at = bytes.startIndex
    func read() throws -> UInt64 {
      var value: UInt64 = 0
      var shift: UInt64 = 0
      while true {
        guard at < bytes.endIndex, shift < 64 else { throw HaatError(.internal, "a message does not decode") }
        let byte = bytes[at]
        at += 1
        value |= UInt64(byte & 0x7F) << shift
        if byte < 0x80 { return value }
        shift += 7
      }
    }
    func skip(_ count: UInt64) throws {
      guard count <= UInt64(bytes.endIndex - at) else { throw HaatError(.internal, "a message does not decode") }
      at += Int(count)
    }
    while at < bytes.endIndex {
      let start = at
      let tag = try read()
      var value: ArraySlice<UInt8>?
      switch tag & 7 {
      case 0: _ = try read()
      case 1: try skip(8)
      case 2:
        let length = try read()
        let from = at
        try skip(length)
        value = bytes[from..<at]
      case 5: try skip(4)
      default: throw HaatError(.internal, "a message does not decode (wire type \(tag & 7))")
      }
      fields.append(Field(number: Int(tag >> 3), encoded: bytes[start..<at], value: value))
    }
    return fields
  }

  static func varint(_ value: UInt64, into out: inout [UInt8]) {
    var value = value
    while value >= 0x80 {
      out.append(UInt8(value & 0x7F) | 0x80)
      value >>= 7
    }
    out.append(UInt8(value))
  }
}

/// A message's fields that are messages set once, with their own such fields, while the
/// depth allows; lists of messages are noted (their items travel whole).
struct NestedFields: Visitor {
  /// How deep the visited message is (the message being cut is 0).
  let depth: Int
  var inner: [Int: NestedFields] = [:]
  var repeated: Set<Int> = []

  init(depth: Int) {
    self.depth = depth
  }

  mutating func visitSingularMessageField<M: Message>(value: M, fieldNumber: Int) throws {
    guard depth < MessageCutter.maxDepth else { return }
    var nested = NestedFields(depth: depth + 1)
    try value.traverse(visitor: &nested)
    inner[fieldNumber] = nested
  }
  mutating func visitRepeatedMessageField<M: Message>(value: [M], fieldNumber: Int) throws {
    repeated.insert(fieldNumber)
  }
  mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws {}
  mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws {}
  mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws {}
  mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws {}
  mutating func visitSingularStringField(value: String, fieldNumber: Int) throws {}
  mutating func visitSingularBytesField(value: Data, fieldNumber: Int) throws {}
  mutating func visitSingularEnumField<E: Enum>(value: E, fieldNumber: Int) throws {}
  mutating func visitMapField<KeyType, ValueType: MapValueType>(
    fieldType: _ProtobufMap<KeyType, ValueType>.Type, value: _ProtobufMap<KeyType, ValueType>.BaseType,
    fieldNumber: Int
  ) throws {}
  mutating func visitMapField<KeyType, ValueType>(
    fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type, value: _ProtobufEnumMap<KeyType, ValueType>.BaseType,
    fieldNumber: Int
  ) throws where ValueType.RawValue == Int {}
  mutating func visitMapField<KeyType, ValueType>(
    fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type,
    value: _ProtobufMessageMap<KeyType, ValueType>.BaseType, fieldNumber: Int
  ) throws {}
  mutating func visitUnknown(bytes: Data) throws {}
}
