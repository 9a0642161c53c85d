import Foundation
import NIOCore
import SwiftProtobuf

/// Job and task specs as protobuf's JSON, written by hand: the coordinator stores every
/// job's spec and every task's spec in this form, and through protobuf's encoder a 1-task
/// job's two took most of its planning (perf). The bytes are protobuf's own, field for
/// field; a spec with a field this does not write the same way (a non-zero double, a
/// label map, unknown fields) is written by protobuf.
public enum SpecJSON {
  public static func data(_ spec: TaskSpec) throws -> Data {
    var buffer = allocator.buffer(capacity: 512)
    guard write(spec, into: &buffer) else { return try spec.jsonUTF8Data(options: WireCodec.encodingOptions) }
    return buffer.withUnsafeReadableBytes { Data($0) }
  }

  public static func data(_ spec: JobSpec) throws -> Data {
    var buffer = allocator.buffer(capacity: 512)
    guard write(spec, into: &buffer) else { return try spec.jsonUTF8Data(options: WireCodec.encodingOptions) }
    return buffer.withUnsafeReadableBytes { Data($0) }
  }

  private static let allocator = ByteBufferAllocator()

  static func write(_ spec: TaskSpec, into buffer: inout ByteBuffer) -> Bool {
    guard spec.unknownFields.data.isEmpty, spec.requestsPerSecond == 0 else { return false }
    var object = Members(&buffer)
    if spec.hasSource {
      object.key(#""source":"#, &buffer)
      guard write(spec.source, into: &buffer) else { return false }
    }
    object.strings(#""reports":"#, spec.reports, &buffer)
    object.number(#""index":"#, UInt64(spec.index), &buffer)
    object.string(#""bookmark":"#, spec.bookmark, &buffer)
    object.string(#""rate_key":"#, spec.rateKey, &buffer)
    if spec.splitPlan { object.key(#""split_plan":true"#, &buffer) }
    if spec.hasRange {
      guard spec.range.unknownFields.data.isEmpty else { return false }
      object.key(#""range":"#, &buffer)
      var range = Members(&buffer)
      range.quoted(#""start":"#, spec.range.start, &buffer)
      range.quoted(#""end":"#, spec.range.end, &buffer)
      range.quoted(#""size":"#, spec.range.size, &buffer)
      range.string(#""header":"#, spec.range.header, &buffer)
      range.close(&buffer)
    }
    if spec.hasWindow {
      guard spec.window.unknownFields.data.isEmpty else { return false }
      object.key(#""window":"#, &buffer)
      var window = Members(&buffer)
      window.string(#""start":"#, spec.window.start, &buffer)
      window.string(#""end":"#, spec.window.end, &buffer)
      window.close(&buffer)
    }
    object.close(&buffer)
    return true
  }

  static func write(_ spec: JobSpec, into buffer: inout ByteBuffer) -> Bool {
    guard spec.unknownFields.data.isEmpty, spec.labels.isEmpty else { return false }
    var object = Members(&buffer)
    object.string(#""name":"#, spec.name, &buffer)
    if !spec.sources.isEmpty {
      object.key(#""sources":["#, &buffer)
      for (index, source) in spec.sources.enumerated() {
        if index > 0 { buffer.writeStaticString(",") }
        guard write(source, into: &buffer) else { return false }
      }
      buffer.writeStaticString("]")
    }
    object.strings(#""reports":"#, spec.reports, &buffer)
    if spec.priority != 0 {
      object.key(#""priority":"#, &buffer)
      buffer.writeString(String(spec.priority))
    }
    object.string(#""not_before":"#, spec.notBefore, &buffer)
    object.number(#""max_attempts":"#, UInt64(spec.maxAttempts), &buffer)
    object.number(#""retry_base_ms":"#, UInt64(spec.retryBaseMs), &buffer)
    object.number(#""retry_cap_ms":"#, UInt64(spec.retryCapMs), &buffer)
    object.string(#""every":"#, spec.every, &buffer)
    object.close(&buffer)
    return true
  }

  static func write(_ source: Haat_V1_Source, into buffer: inout ByteBuffer) -> Bool {
    guard source.unknownFields.data.isEmpty, source.requestsPerSecond == 0 else { return false }
    var object = Members(&buffer)
    object.string(#""name":"#, source.name, &buffer)
    object.string(#""platform":"#, source.platform, &buffer)
    object.string(#""kind":"#, source.kind, &buffer)
    object.string(#""account":"#, source.account, &buffer)
    object.string(#""url":"#, source.url, &buffer)
    object.string(#""format":"#, source.format, &buffer)
    object.string(#""credential":"#, source.credential, &buffer)
    object.string(#""pool":"#, source.pool, &buffer)
    object.number(#""tasks":"#, UInt64(source.tasks), &buffer)
    if source.incremental { object.key(#""incremental":true"#, &buffer) }
    object.quoted(#""split_bytes":"#, source.splitBytes, &buffer)
    object.string(#""since":"#, source.since, &buffer)
    object.string(#""until":"#, source.until, &buffer)
    object.string(#""timezone":"#, source.timezone, &buffer)
    object.string(#""business_hours":"#, source.businessHours, &buffer)
    object.close(&buffer)
    return true
  }
}

/// One JSON object's members, each left out at its default as protobuf leaves it out
/// (specs here, and `complete` lines in WireFastPath). The
/// buffer is passed in to each call (inout), so nested objects write in place.
struct Members {
  private var first = true

  /// Opens the object.
  init(_ buffer: inout ByteBuffer) { buffer.writeStaticString("{") }

  mutating func key(_ name: StaticString, _ buffer: inout ByteBuffer) {
    if !first { buffer.writeStaticString(",") }
    first = false
    buffer.writeStaticString(name)
  }

  mutating func string(_ name: StaticString, _ value: String, _ buffer: inout ByteBuffer) {
    guard !value.isEmpty else { return }
    key(name, &buffer)
    WireFastPath.writeString(value, into: &buffer)
  }

  mutating func strings(_ name: StaticString, _ values: [String], _ buffer: inout ByteBuffer) {
    guard !values.isEmpty else { return }
    key(name, &buffer)
    buffer.writeStaticString("[")
    for (index, value) in values.enumerated() {
      if index > 0 { buffer.writeStaticString(",") }
      WireFastPath.writeString(value, into: &buffer)
    }
    buffer.writeStaticString("]")
  }

  /// A 32-bit number, bare.
  mutating func number(_ name: StaticString, _ value: UInt64, _ buffer: inout ByteBuffer) {
    guard value != 0 else { return }
    key(name, &buffer)
    buffer.writeString(String(value))
  }

  /// A 64-bit number, quoted (protobuf's JSON for 64-bit integers).
  mutating func quoted(_ name: StaticString, _ value: UInt64, _ buffer: inout ByteBuffer) {
    guard value != 0 else { return }
    key(name, &buffer)
    buffer.writeStaticString("\"")
    buffer.writeString(String(value))
    buffer.writeStaticString("\"")
  }

  /// Closes the object.
  func close(_ buffer: inout ByteBuffer) { buffer.writeStaticString("}") }
}
