import Foundation
import NIOCore
import SwiftProtobuf

/// Hand-written reading and writing of the lines that go by once per task: `assign` and
/// `ack` (read by workers), `complete` (written by workers, read by the coordinator), and
/// `accepted` (written by the coordinator, once per job).
/// Through protobuf's JSON codec these were about half a no-op worker's CPU (perf: a
/// dynamic cast and a name lookup per field of every nested message). The fast path takes
/// only the plain form protobuf itself writes (proto field names, no whitespace, strings
/// without escapes, canonical numbers and base64) and gives up on anything else, returning
/// nil; the caller then hands the line to protobuf's codec, which decides. Nested messages
/// other than these (a task's spec, a result's partial and stats) still go through
/// protobuf, as values of their own.
enum WireFastPath {
  /// The envelope on `line`, or nil when the line is not in the plain form this reads.
  static func decode(_ line: ByteBuffer) -> Envelope? {
    line.withUnsafeReadableBytes { bytes in
      var reader = PlainJSON(bytes, line: line)
      return reader.envelope()
    }
  }

  /// Options for a nested message decoded on its own: the depth it sits at (envelope, then
  /// body) is taken from the limit, so the whole line nests no deeper than protobuf allows.
  static let nestedOptions: JSONDecodingOptions = {
    var options = WireCodec.decodingOptions
    options.messageDepthLimit = WireCodec.decodingOptions.messageDepthLimit - 2
    return options
  }()

  /// Appends `envelope` as protobuf would write it (and a newline) when its body is a
  /// `complete` or an `accepted`; false, with nothing written, otherwise.
  static func encode(_ envelope: Envelope, into buffer: inout ByteBuffer) throws -> Bool {
    guard envelope.unknownFields.data.isEmpty else { return false }
    if case .accepted(let accepted)? = envelope.body {
      // A submit's answer: one per 1-task job, strings and numbers only.
      guard accepted.unknownFields.data.isEmpty else { return false }
      let outer = open(envelope, #""accepted":"#, into: &buffer)
      var members = Members(&buffer)
      members.string(#""job":"#, accepted.job, &buffer)
      members.number(#""tasks":"#, UInt64(accepted.tasks), &buffer)
      members.number(#""part":"#, UInt64(accepted.part), &buffer)
      members.string(#""schedule":"#, accepted.schedule, &buffer)
      members.close(&buffer)
      outer.close(&buffer)
      buffer.writeStaticString("\n")
      return true
    }
    guard case .complete(let complete)? = envelope.body, complete.unknownFields.data.isEmpty else { return false }
    // A nested message protobuf fails to write leaves nothing of the line behind.
    let start = buffer.writerIndex
    do {
      try write(envelope, complete, into: &buffer)
    } catch {
      buffer.moveWriterIndex(to: start)
      throw error
    }
    return true
  }

  /// The envelope's `{`, its id and reply_to, and its body's key, as protobuf orders them.
  private static func open(_ envelope: Envelope, _ body: StaticString, into buffer: inout ByteBuffer) -> Members {
    var outer = Members(&buffer)
    outer.string(#""id":"#, envelope.id, &buffer)
    outer.string(#""reply_to":"#, envelope.replyTo, &buffer)
    outer.key(body, &buffer)
    return outer
  }

  private static func write(_ envelope: Envelope, _ complete: Haat_V1_Complete, into buffer: inout ByteBuffer) throws {
    let outer = open(envelope, #""complete":"#, into: &buffer)
    var members = Members(&buffer)
    members.string(#""task":"#, complete.task, &buffer)
    members.number(#""attempt":"#, UInt64(complete.attempt), &buffer)
    if complete.hasPartial {
      members.key(#""partial":"#, &buffer)
      try writeMessage(complete.partial, into: &buffer)
    }
    members.string(#""bookmark":"#, complete.bookmark, &buffer)
    if complete.hasStats {
      members.key(#""stats":"#, &buffer)
      try writeMessage(complete.stats, into: &buffer)
    }
    members.number(#""part":"#, UInt64(complete.part), &buffer)
    members.number(#""parts":"#, UInt64(complete.parts), &buffer)
    if complete.hasSplit {
      members.key(#""split":"#, &buffer)
      try writeMessage(complete.split, into: &buffer)
    }
    if !complete.partialBinary.isEmpty {
      members.key(#""partial_binary":""#, &buffer)
      Base64.write(complete.partialBinary, into: &buffer)
      buffer.writeStaticString("\"")
    }
    members.close(&buffer)
    outer.close(&buffer)
    buffer.writeStaticString("\n")
  }

  /// A string literal escaped exactly as protobuf's JSON encoder escapes it (so a line
  /// measured through protobuf is as long written here): the two-character escapes, and
  /// `\u00XX` for the other C0 controls, DEL and the C1 controls (U+0080 to U+009F).
  static func writeString(_ text: String, into buffer: inout ByteBuffer) {
    buffer.writeStaticString("\"")
    // Most text needs no escape at all: written in one copy, not byte by byte.
    let plain =
      text.utf8.withContiguousStorageIfAvailable { bytes in
        !bytes.contains { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x7F || $0 == 0xC2 }
      } ?? false
    if plain {
      buffer.writeString(text)
      buffer.writeStaticString("\"")
      return
    }
    var afterC2 = false
    for byte in text.utf8 {
      if afterC2 {
        afterC2 = false
        if byte <= 0x9F {
          writeHexEscape(byte, into: &buffer)
        } else {
          buffer.writeInteger(UInt8(0xC2))
          buffer.writeInteger(byte)
        }
        continue
      }
      switch byte {
      case 8: buffer.writeStaticString("\\b")
      case 9: buffer.writeStaticString("\\t")
      case 10: buffer.writeStaticString("\\n")
      case 12: buffer.writeStaticString("\\f")
      case 13: buffer.writeStaticString("\\r")
      case 34: buffer.writeStaticString("\\\"")
      case 92: buffer.writeStaticString("\\\\")
      case 0...31, 127: writeHexEscape(byte, into: &buffer)
      case 0xC2: afterC2 = true
      default: buffer.writeInteger(byte)
      }
    }
    buffer.writeStaticString("\"")
  }

  private static let hexDigits = Array("0123456789ABCDEF".utf8)

  private static func writeHexEscape(_ value: UInt8, into buffer: inout ByteBuffer) {
    buffer.writeStaticString("\\u00")
    buffer.writeInteger(hexDigits[Int(value >> 4)])
    buffer.writeInteger(hexDigits[Int(value & 15)])
  }

  /// A nested message: `{}` for an empty one without asking protobuf (a no-op task's).
  private static func writeMessage<M: SwiftProtobuf.Message & Equatable>(_ message: M, into buffer: inout ByteBuffer)
    throws
  {
    if message == M() {
      buffer.writeStaticString("{}")
    } else {
      let bytes: [UInt8] = try message.jsonUTF8Bytes(options: WireCodec.encodingOptions)
      buffer.writeBytes(bytes)
    }
  }
}
