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
    /// The section's field number in the message; nil for a top-level field that is not a
    /// section (`Report.job`), which is kept whole.
    var section: Int?
    var bytes: ArraySlice<UInt8>
    /// Its share of a part's JSON.
    var cost: Int
  }

  /// The parts of `message`, each at most `budget` bytes of JSON; nil when one field of a
  /// section alone is over it (`largest` then says how large it is). One part when it fits.
  public static func cut<M: Message>(_ message: M, budget: Int) throws -> (parts: [M]?, largest: Int) {
    let bytes: [UInt8] = try message.serializedBytes()
    var sections = SectionFields()
    try message.traverse(visitor: &sections)
    sections.numbers.subtract(sections.repeated)
    var elements: [Element] = []
    var counts: [Int: Int] = [:]
    for field in try fields(of: bytes[...]) { counts[field.number, default: 0] += 1 }
    for field in try fields(of: bytes[...]) {
      // A section set once is cut inside; anything else travels whole.
      if sections.numbers.contains(field.number), counts[field.number] == 1, let value = field.value {
        for inner in try fields(of: value) {
          elements.append(Element(section: field.number, bytes: inner.encoded, cost: 0))
        }
      } else {
        elements.append(Element(section: nil, bytes: field.encoded, cost: 0))
      }
    }
    let empty: [UInt8] = try M().jsonUTF8Bytes(options: WireCodec.encodingOptions)
    var largest = 0
    for index in elements.indices {
      let alone: M = try assemble(elements[index...index])
      let json: [UInt8] = try alone.jsonUTF8Bytes(options: WireCodec.encodingOptions)
      elements[index].cost = json.count - empty.count + 1
      largest = max(largest, elements[index].cost)
    }
    guard largest <= budget else { return (nil, largest) }
    var parts: [M] = []
    var start = elements.startIndex
    var used = 0
    for index in elements.indices {
      if used + elements[index].cost > budget, index > start {
        parts.append(try assemble(elements[start..<index]))
        start = index
        used = 0
      }
      used += elements[index].cost
    }
    parts.append(try assemble(elements[start...]))
    return (parts, largest)
  }

  /// The message of some elements: each section's fields framed as that section.
  static func assemble<M: Message>(_ elements: ArraySlice<Element>) throws -> M {
    var out: [UInt8] = []
    var index = elements.startIndex
    while index < elements.endIndex {
      guard let section = elements[index].section else {
        out += elements[index].bytes
        index += 1
        continue
      }
      var body: [UInt8] = []
      while index < elements.endIndex, elements[index].section == section {
        body += elements[index].bytes
        index += 1
      }
      varint(UInt64(section) << 3 | 2, into: &out)
      varint(UInt64(body.count), into: &out)
      out += body
    }
    return try M(serializedBytes: out)
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

/// The numbers of a message's fields that are messages (its sections).
private struct SectionFields: Visitor {
  var numbers: Set<Int> = []
  /// Lists of messages: their items travel whole (cutting inside one would split it in two).
  var repeated: Set<Int> = []

  mutating func visitSingularMessageField<M: Message>(value: M, fieldNumber: Int) throws {
    numbers.insert(fieldNumber)
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
