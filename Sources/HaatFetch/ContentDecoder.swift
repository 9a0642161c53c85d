import CZlib
import Foundation

/// Decodes a gzip or deflate body as it arrives, and knows at the end whether the stream
/// was whole.
///
/// libcurl's own decoding (7.88) takes a gzip stream that stops early for a whole one, so
/// an export cut short would be reported as if complete. Haat asks for gzip or deflate
/// only, turns curl's decoding off and decodes here with zlib: a stream without its end is
/// a `decompression` error, never a short report. Concatenated gzip members (valid gzip)
/// are decoded one after another.
final class ContentDecoder {
  enum Encoding: String {
    case gzip
    case deflate
  }

  let encoding: Encoding
  private var stream = z_stream()
  private var output = [UInt8](repeating: 0, count: 64 << 10)
  /// The current member reached its end, with nothing after it yet.
  private(set) var ended = false
  private var open = false

  /// nil for an identity body; throws for an encoding Haat does not decode.
  static func make(contentEncoding: String?) throws(FetchError) -> ContentDecoder? {
    let written = (contentEncoding ?? "").trimmingCharacters(in: .whitespaces)
    switch written.lowercased() {
    case "", "identity": return nil
    case "gzip", "x-gzip": return try ContentDecoder(.gzip)
    case "deflate": return try ContentDecoder(.deflate)
    default:
      // Quoted as written, never lower-cased: a server that echoes a credential here must
      // meet the worker's redaction with the credential's own bytes. Cut to 64 bytes.
      let shown = written.utf8.count <= 64 ? written : String(decoding: written.utf8.prefix(64), as: UTF8.self) + "…"
      throw FetchError(
        .decompression,
        "the server sent Content-Encoding \"\(shown)\", which Haat does not decode (it asks for gzip or deflate)",
        retryable: false)
    }
  }

  /// A `.gz` export served without a Content-Encoding: gunzipped as if it had one.
  static func gzipFile() throws(FetchError) -> ContentDecoder { try ContentDecoder(.gzip) }

  private init(_ encoding: Encoding) throws(FetchError) {
    self.encoding = encoding
    // 15 + 16: gzip only; 15: deflate as RFC 9110 means it (zlib-wrapped).
    guard czlib_inflate_init2(&stream, encoding == .gzip ? 15 + 16 : 15) == Z_OK else {
      throw FetchError(.other, "zlib could not start a stream", retryable: true)
    }
    open = true
  }

  deinit {
    if open { inflateEnd(&stream) }
  }

  /// Decodes one chunk of the body, handing every decoded piece to `sink`.
  func decode(_ input: UnsafeRawBufferPointer, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
    guard let base = input.baseAddress, input.count > 0 else { return }
    stream.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
    stream.avail_in = uInt(input.count)
    defer {
      stream.next_in = nil
      stream.avail_in = 0
    }
    while stream.avail_in > 0 {
      if ended {
        // Another gzip member follows the one that ended.
        guard encoding == .gzip, inflateReset(&stream) == Z_OK else {
          throw FetchError(
            .decompression, "the \(encoding.rawValue) body has bytes after its end", retryable: false)
        }
        ended = false
      }
      let status = output.withUnsafeMutableBytes { buffer -> Int32 in
        stream.next_out = buffer.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(buffer.count)
        return inflate(&stream, Z_NO_FLUSH)
      }
      let produced = output.count - Int(stream.avail_out)
      if produced > 0 { try output.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[..<produced])) } }
      switch status {
      case Z_STREAM_END:
        ended = true
      case Z_OK:
        continue
      case Z_BUF_ERROR where produced > 0:
        continue
      default:
        let reason = stream.msg.map { String(cString: $0) } ?? "error \(status)"
        throw FetchError(.decompression, "the \(encoding.rawValue) body does not decode: \(reason)", retryable: false)
      }
    }
  }

  /// At the end of the transfer: a stream that has not reached its end was cut short.
  func finish(bodyBytes: UInt64, wireBytes: UInt64) throws(FetchError) {
    guard ended else {
      throw FetchError(
        .decompression,
        "the \(encoding.rawValue) body stops before its end (\(wireBytes) bytes received, \(bodyBytes) decoded): the export was cut short",
        retryable: true)
    }
  }
}
