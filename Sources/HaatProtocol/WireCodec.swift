import Foundation
import HaatCore
import NIOCore
import SwiftProtobuf

/// Encodes and decodes Envelopes as single JSON lines (protobuf's JSON mapping with the
/// proto field names, unknown fields ignored).
public enum WireCodec {
  public static let encodingOptions: JSONEncodingOptions = {
    var options = JSONEncodingOptions()
    options.preserveProtoFieldNames = true
    return options
  }()

  public static let decodingOptions: JSONDecodingOptions = {
    var options = JSONDecodingOptions()
    options.ignoreUnknownFields = true
    // Objects nest at most 32 deep, known fields or unknown (the deepest message is far
    // shallower); unknown arrays are skipped without being kept, bounded by the line.
    options.messageDepthLimit = 32
    return options
  }()

  /// Appends `envelope` as one line (JSON + "\n") to `buffer`.
  public static func encode(_ envelope: Envelope, into buffer: inout ByteBuffer) throws {
    if try WireFastPath.encode(envelope, into: &buffer) { return }
    let bytes: [UInt8] = try envelope.jsonUTF8Bytes(options: encodingOptions)
    buffer.writeBytes(bytes)
    buffer.writeInteger(UInt8(ascii: "\n"))
  }

  /// One line for `envelope`, terminator included.
  public static func line(_ envelope: Envelope) throws -> [UInt8] {
    var bytes: [UInt8] = try envelope.jsonUTF8Bytes(options: encodingOptions)
    bytes.append(UInt8(ascii: "\n"))
    return bytes
  }

  /// The longest request id (envelope.proto); a longer one is never echoed in `reply_to`.
  public static let maxIDBytes = 64

  /// Decodes one line. A line that is not a JSON Envelope is `bad_frame`; an Envelope whose
  /// body this build does not know is `unsupported` (with the id, so the reply can echo it).
  public static func decode(_ line: ByteBuffer) -> Result<Envelope, DecodeFailure> {
    if let envelope = WireFastPath.decode(line) { return .success(envelope) }
    let line = SurrogatePairs.decoded(line) ?? line
    let envelope: Envelope
    do {
      envelope = try Envelope(jsonUTF8Bytes: ByteBufferBytes(line), options: decodingOptions)
    } catch {
      // Only on this error path: look at the line as plain JSON to say what is wrong and to
      // echo the request id when there is one.
      // Lone surrogate escapes made harmless first: Foundation refuses them too, and the id
      // must still be echoed.
      let replaced = surrogatesReplaced(line.readableBytesView)
      let object = try? JSONSerialization.jsonObject(with: Data(replaced), options: [.fragmentsAllowed])
      // A line Foundation cannot read either (a number past a double's range) still has its
      // id echoed when it leads the line, as protobuf's own lines do.
      let id =
        ((object as? [String: Any])?["id"] as? String ?? (object == nil ? leadingID(line) : nil))
        .flatMap { $0.utf8.count <= maxIDBytes ? $0 : nil } ?? ""
      let message: String
      if line.readableBytesView.starts(with: [0xEF, 0xBB, 0xBF]) {
        // Foundation skips a byte-order mark, protobuf does not: named, not blamed on a type.
        message = "not an Envelope: the line starts with a byte-order mark (U+FEFF); send UTF-8 without one"
      } else if object != nil, !replaced.elementsEqual(line.readableBytesView) {
        message = "not JSON: a lone surrogate escape (\\ud800 to \\udfff without its pair)"
      } else if object == nil {
        message = "not JSON: \(describe(error))"
      } else if !(object is [String: Any]) {
        message = "not an Envelope: a line must be a JSON object"
      } else {
        message = "not an Envelope: \(describe(error)) (ids, tasks and jobs are strings, e.g. \"7\")"
      }
      return .failure(DecodeFailure(error: HaatError(.badFrame, message), replyTo: id))
    }
    guard envelope.body != nil else {
      let keys = unknownKeys(line)
      let what = keys.isEmpty ? "no message body" : "unknown message type \(keys.joined(separator: ", "))"
      return .failure(
        DecodeFailure(
          error: HaatError(.unsupported, "\(what)"), replyTo: envelope.id.utf8.count <= maxIDBytes ? envelope.id : ""))
    }
    return .success(envelope)
  }

  /// The line with every `\\uD800`–`\\uDFFF` escape written as `\\uFFFD` (for reading its id
  /// on the error path only: a valid pair was decoded before this).
  static func surrogatesReplaced(_ bytes: some Collection<UInt8>) -> [UInt8] {
    var out = Array(bytes)
    var index = 0
    while index + 5 < out.count {
      if out[index] == UInt8(ascii: "\\"), out[index + 1] == UInt8(ascii: "u"),
        out[index + 2] | 0x20 == UInt8(ascii: "d"),
        let digit = Hex.value(out[index + 3]), digit >= 8
      {
        out.replaceSubrange((index + 2)..<(index + 6), with: Array("fffd".utf8))
        index += 6
      } else {
        // A backslash escapes the next byte: `\\\\ud800` is a backslash, then text.
        index += out[index] == UInt8(ascii: "\\") ? 2 : 1
      }
    }
    return out
  }

  /// The id of a line that begins `{"id":"…"` with a plain string (no escapes), or nil.
  static func leadingID(_ line: ByteBuffer) -> String? {
    line.withUnsafeReadableBytes { bytes in
      var reader = PlainJSON(bytes, line: line)
      guard reader.take(UInt8(ascii: "{")), let key = reader.key(), reader.matches(key, "id") else { return nil }
      return reader.string()
    }
  }

  /// A line that could not be decoded: the error to answer with, and the request id if known.
  public struct DecodeFailure: Error, Sendable {
    public var error: HaatError
    public var replyTo: String
  }

  /// The top-level keys of a JSON object other than the envelope's own, for error messages;
  /// a key whose value is null is absent (protocol.md §3), as the decoder took it.
  private static func unknownKeys(_ line: ByteBuffer) -> [String] {
    guard
      let object = try? JSONSerialization.jsonObject(with: Data(line.readableBytesView))
        as? [String: Any]
    else { return [] }
    return object.filter { !($0.value is NSNull) }.keys.filter { $0 != "id" && $0 != "reply_to" && $0 != "replyTo" }
      .sorted()
  }

  private static func describe(_ error: Error) -> String {
    switch error {
    case let error as SwiftProtobuf.JSONDecodingError:
      switch error {
      case .truncated: return "the JSON ends early"
      // swift-protobuf says this of bytes (`partial_binary`) that are not base64 too.
      case .malformedString:
        return "a value that must be a string (base64, for bytes such as partial_binary) is not one"
      case .malformedNumber: return "a value that must be a number is not one"
      case .malformedBool: return "a value that must be true or false is not one"
      case .unrecognizedEnumValue: return "an enum value is not known"
      case .failure: return "a value has the wrong type or the text is not JSON"
      case .numberRange: return "a number is out of range for its field (a count past 4294967295, say)"
      // swift-protobuf says this of a number no double holds (1e400) too.
      case .invalidUTF8: return "the text is not UTF-8, or a number is out of range for a double (1e400)"
      case .malformedMap: return "a map is not a JSON object of its keys and values"
      case .illegalNull: return "a null where a value must be"
      case .unquotedMapKey: return "a map key is not a string"
      case .leadingZero: return "a number has a leading zero"
      case .trailingGarbage: return "there is text after the JSON object"
      case .conflictingOneOf: return "more than one message body"
      case .messageDepthLimit: return "objects nest deeper than 32"
      case .unknownField(let name): return "unknown field \(name)"
      default: return String(describing: error)
      }
    default:
      return String(describing: error)
    }
  }
}

extension WireCodec {
  /// A JSON string literal, escaped as protobuf's JSON encoder escapes it (one escaper for
  /// every line written by hand: WireFastPath's).
  public static func writeJSONString(_ text: String, into buffer: inout ByteBuffer) {
    WireFastPath.writeString(text, into: &buffer)
  }

  /// `text` as a JSON string literal.
  public static func jsonString(_ text: String) -> String {
    var buffer = ByteBuffer()
    writeJSONString(text, into: &buffer)
    return String(buffer: buffer)
  }
}
