#if canImport(Glibc)
  import Glibc
#endif

/// `file://` sources, read by Haat itself rather than by libcurl, so the root check judges
/// the file the kernel actually opened: the path is percent-decoded first, the file is
/// opened, and the check reads back where that descriptor points (`/proc/self/fd/N`, with
/// every symlink and `..` resolved). Only regular files are read.
enum LocalFile {
  static let chunkBytes = 256 * 1024

  /// An absolute path without its last component ("/a/b/" → "/a", "/a" → "/"); nil at "/".
  static func parent(_ path: String) -> String? {
    var bytes = Array(path.utf8)
    while bytes.count > 1, bytes.last == UInt8(ascii: "/") { bytes.removeLast() }
    guard bytes.count > 1, let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return nil }
    return slash == 0 ? "/" : String(decoding: bytes[..<slash], as: UTF8.self)
  }

  static func read(
    _ url: String, policy: FetchPolicy, range: ClosedRange<UInt64>?, cancel: CancellationFlag?,
    onStart: ((Int, String?) throws -> Void)?, onBody: (UnsafeRawBufferPointer) throws -> Void
  ) throws(FetchError) -> FetchResponse {
    // An empty root (an unset variable in `--file-root "$DIR"`) is no root: as a prefix it
    // would hold every path.
    let roots = policy.fileRoots.filter { !$0.isEmpty }.map(resolvedRoot)
    guard !roots.isEmpty else {
      throw FetchError(.forbidden, "file:// URLs are not allowed on this worker (no --file-root)", retryable: false)
    }
    let path = try decodedPath(url)
    func inside(_ resolved: String) -> Bool {
      roots.contains { resolved == $0 || resolved.hasPrefix($0 == "/" ? "/" : $0 + "/") }
    }
    // Judged before opening too, so nothing outside the roots is even opened (a device or
    // FIFO could act on open) and its existence is not told; judged again on what opened.
    // A path that does not resolve is judged by the nearest directory above it that does:
    // `root/../../etc/nope` judged as written passed as inside, and its `not_found` told
    // that /etc/nope does not exist (found by a tester).
    var judged = path
    while true {
      if let resolved = realpath(judged, nil) {
        defer { free(resolved) }
        guard inside(String(cString: resolved)) else {
          throw FetchError(.forbidden, "\(path) is outside the allowed file roots", retryable: false)
        }
        break
      }
      guard let parent = parent(judged) else {
        throw FetchError(.forbidden, "\(path) is outside the allowed file roots", retryable: false)
      }
      judged = parent
    }
    let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
    guard descriptor >= 0 else {
      let reason = String(cString: strerror(errno))
      switch errno {
      case ENOENT, ENOTDIR:
        throw FetchError(.notFound, "\(path) does not exist (\(reason))", retryable: false)
      case EACCES, EPERM:
        throw FetchError(.forbidden, "\(path) cannot be read by this worker (\(reason))", retryable: false)
      case ENAMETOOLONG, ELOOP:
        throw FetchError(.invalidURL, "\(path) cannot be opened (\(reason))", retryable: false)
      case ENXIO:
        // A Unix socket: no file to read, as a FIFO or device is (it was `other`, retried).
        throw FetchError(.invalidURL, "\(path) is not a regular file (a socket)", retryable: false)
      default:
        throw FetchError(.other, "cannot open \(path): \(reason)", retryable: true)
      }
    }
    defer { close(descriptor) }
    guard let opened = openedPath(descriptor) else {
      throw FetchError(.forbidden, "cannot tell where \(path) leads (is /proc mounted?)", retryable: false)
    }
    guard inside(opened) else {
      throw FetchError(.forbidden, "\(path) is outside the allowed file roots", retryable: false)
    }
    var info = stat()
    guard fstat(descriptor, &info) == 0 else {
      throw FetchError(.other, "cannot stat \(path): \(String(cString: strerror(errno)))", retryable: true)
    }
    switch info.st_mode & S_IFMT {
    case S_IFREG: break
    case S_IFDIR:
      throw FetchError(.invalidURL, "\(path) is a directory, not an export file", retryable: false)
    default:
      throw FetchError(.invalidURL, "\(path) is not a regular file", retryable: false)
    }
    let size = UInt64(max(0, info.st_size))
    var offset = range?.lowerBound ?? 0
    let end = min(size, range.map { $0.upperBound &+ 1 } ?? size)
    // A range is answered as HTTP would: 206 with a Content-Range, 416 past the end.
    var headers: [HeaderField] = []
    if range != nil {
      guard offset < size else {
        var error = FetchError(
          .httpClient, "\(path) has \(size) bytes: the range from \(offset) is past its end", retryable: false,
          status: 416)
        error.headers = [HeaderField(name: "content-range", value: "bytes */\(size)")]
        throw error
      }
      headers = [HeaderField(name: "content-range", value: "bytes \(offset)-\(end - 1)/\(size)")]
    }
    let status = range == nil ? 200 : 206
    func sink(_ error: any Error) -> FetchError {
      (error as? FetchError) ?? FetchError(.sink, "\(error)", retryable: false)
    }
    do { try onStart?(status, nil) } catch { throw sink(error) }
    var total: UInt64 = 0
    /// Bytes handed on: the file's, or what a `.gz` file decodes to.
    var decoded: UInt64 = 0
    // A whole `.gz` file whose first bytes are gzip's magic number is gunzipped, bounded as
    // an HTTP body's decoding is (size and ratio).
    var decoder: ContentDecoder?
    let gzipFile = range == nil && path.lowercased().hasSuffix(".gz")
    func hand(_ piece: UnsafeRawBufferPointer) throws {
      decoded += UInt64(piece.count)
      guard decoded <= policy.maxBodyBytes else {
        throw FetchError(.tooLarge, "the body is larger than \(policy.maxBodyBytes) bytes", retryable: false)
      }
      if decoder != nil, decoded > 1 << 20, decoded / max(total, 1) > policy.maxDecompressionRatio {
        throw FetchError(
          .decompression,
          "\(path) expands more than \(policy.maxDecompressionRatio)× when decoded (\(decoded) bytes from \(total)); refusing a decompression bomb",
          retryable: false)
      }
      try onBody(piece)
    }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 16)
    defer { buffer.deallocate() }
    while offset < end {
      if let cancel, cancel.isCancelled {
        throw FetchError(.cancelled, "the transfer was cancelled", retryable: true)
      }
      let want = Int(min(UInt64(chunkBytes), end - offset))
      let count = pread(descriptor, buffer.baseAddress, want, off_t(offset))
      if count < 0 {
        if errno == EINTR { continue }
        throw FetchError(.network, "cannot read \(path): \(String(cString: strerror(errno)))", retryable: true)
      }
      if count == 0 {
        // Cut while read (`> export.csv`): what was read is a prefix, and a report of it
        // looked complete (a tester's job succeeded with a fifth of the rows).
        throw FetchError(
          .network, "\(path) shrank while it was read (\(size) bytes when opened, \(offset) read)", retryable: true)
      }
      let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
      if gzipFile, total == 0, count >= 2, chunk[0] == 0x1F, chunk[1] == 0x8B {
        decoder = try ContentDecoder.gzipFile()
      }
      total += UInt64(count)
      do {
        if let decoder { try decoder.decode(chunk, hand) } else { try hand(chunk) }
      } catch { throw sink(error) }
      offset += UInt64(count)
    }
    // Rewritten while read (grown, or cut and written again): what was read is of two
    // versions. Tried again, the task reads one.
    var after = stat()
    if fstat(descriptor, &after) == 0,
      after.st_size != info.st_size || after.st_mtim.tv_sec != info.st_mtim.tv_sec
        || after.st_mtim.tv_nsec != info.st_mtim.tv_nsec
    {
      let what =
        after.st_size == info.st_size
        ? "modified (its time changed)" : "\(size) bytes when opened, \(after.st_size) now"
      throw FetchError(.network, "\(path) changed while it was read (\(what))", retryable: true)
    }
    do {
      try decoder?.finish(bodyBytes: decoded, wireBytes: total)
    } catch {
      // A file cut short stays cut short: trying again cannot help, unlike a transfer.
      throw FetchError(.decompression, "\(path) is a gzip file cut short (\(total) bytes read)", retryable: false)
    }
    return FetchResponse(
      status: status, contentType: nil, bodyBytes: decoded, wireBytes: total, redirects: 0, reusedConnection: false,
      headers: headers)
  }

  /// The path of a `file://` URL, percent-decoded: `file:///p` or `file://localhost/p`.
  static func decodedPath(_ url: String) throws(FetchError) -> String {
    let text = Substring(url)
    guard text.lowercased().hasPrefix("file://") else {
      throw FetchError(.invalidURL, "not a file URL", retryable: false)
    }
    var rest = text.dropFirst(7)
    if rest.lowercased().hasPrefix("localhost/") { rest = rest.dropFirst(9) }
    guard rest.hasPrefix("/") else {
      throw FetchError(.invalidURL, "a file URL names no host: use file:///path", retryable: false)
    }
    if let end = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<end] }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(rest.utf8.count)
    var iterator = rest.utf8.makeIterator()
    while let byte = iterator.next() {
      guard byte == UInt8(ascii: "%") else {
        bytes.append(byte)
        continue
      }
      guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
        throw FetchError(.invalidURL, "the file URL has a bad %-escape", retryable: false)
      }
      bytes.append(high << 4 | low)
    }
    guard !bytes.contains(0) else {
      throw FetchError(.invalidURL, "the file URL's path contains a NUL byte", retryable: false)
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
  }

  /// Where an open descriptor points, every link resolved, as the kernel reports it.
  static func openedPath(_ descriptor: Int32) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = readlink("/proc/self/fd/\(descriptor)", &buffer, buffer.count - 1)
    guard count > 0 else { return nil }
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// A root with its links resolved (as `openedPath` reports paths), without a trailing "/".
  static func resolvedRoot(_ root: String) -> String {
    guard let resolved = realpath(root, nil) else { return root }
    defer { free(resolved) }
    let text = String(cString: resolved)
    return text.count > 1 && text.hasSuffix("/") ? String(text.dropLast()) : text
  }
}
