import CCurl
import Foundation
import HaatCore

#if canImport(Glibc)
  import Glibc
#endif

/// How one request ended: a response, or a redirect for the fetcher to check and follow.
enum TransferOutcome {
  case response(FetchResponse)
  case redirect(String)
  /// A reused connection answered with bytes that are not HTTP: most likely what an earlier
  /// response left unread (a body longer than its Content-Length), not this server's reply.
  /// Asked again once on a new connection.
  case staleConnection
}

/// One transfer's state, reached from curl's C callbacks through an unmanaged pointer.
final class Transfer {
  let policy: FetchPolicy
  let cancel: CancellationFlag?
  let onStart: ((Int, String?) throws -> Void)?
  let onBody: (UnsafeRawBufferPointer) throws -> Void

  var handle: UnsafeMutableRawPointer?
  var started = false
  var status = 0
  var contentType: String?
  var contentEncoding: String?
  /// Decodes a gzip or deflate body (made at the first body byte of a good response).
  var decoder: ContentDecoder?
  var retryAfter: String?
  var headers: [HeaderField] = []
  /// The start of a non-2xx body, for the error message.
  var errorBody: [UInt8] = []
  /// The transfer was ended at `maxErrorBodyBytes` of a non-2xx body.
  var errorBodyCut = false
  var bodyBytes: UInt64 = 0
  /// Body bytes as received, before Haat decodes gzip or deflate (after HTTP chunking).
  var wireBytes: UInt64 = 0
  var headerLines = 0
  var headerBytes = 0
  /// Set by a callback that aborted the transfer; it explains the curl error that follows.
  var failure: FetchError?
  var refusedAddress: String?
  /// The URL asked (after any redirect): its secret values are hidden in an error body.
  var url = ""
  /// The secrets of the request's credential headers (`Authorization: Bearer …`), each
  /// with the credential's name (or the header's).
  var headerSecrets: [(secret: String, name: String)] = []
  /// The URL's path ends in `.gz`: a gzip file, gunzipped when its server did not say it
  /// is encoded (a `file://`, or a server that serves it as it is).
  var gzipFile = false

  init(
    policy: FetchPolicy, cancel: CancellationFlag?, onStart: ((Int, String?) throws -> Void)?,
    onBody: @escaping (UnsafeRawBufferPointer) throws -> Void
  ) {
    self.policy = policy
    self.cancel = cancel
    self.onStart = onStart
    self.onBody = onBody
  }

  func run(_ request: FetchRequest, handle: UnsafeMutableRawPointer?, share: ShareHandle, fresh: Bool = false)
    throws(FetchError) -> TransferOutcome
  {
    guard let handle else {
      throw FetchError(.other, "curl_easy_init failed", retryable: true)
    }
    self.handle = handle
    url = request.url
    // The credential's header too: its secret is hidden before the error body is cut (a
    // tester's entity-encoded copy, cut at 200 characters, showed its first half).
    headerSecrets = request.headers.compactMap { header in
      guard let colon = header.firstIndex(of: ":"), URLSecrets.isSecretName(header[..<colon]),
        let secret = header[header.index(after: colon)...].split(separator: " ").last
      else { return nil }
      let name = request.credential.flatMap { $0.header == header ? $0.name : nil } ?? String(header[..<colon])
      return (String(secret), name)
    }
    gzipFile = (URL(string: request.url)?.path ?? request.url).lowercased().hasSuffix(".gz")
    var requestHeaders: UnsafeMutablePointer<curl_slist>?
    defer { curl_slist_free_all(requestHeaders) }
    for header in request.headers { requestHeaders = curl_slist_append(requestHeaders, header) }

    let context = Unmanaged.passUnretained(self).toOpaque()
    var setupFailed = false
    func set(_ code: CURLcode) { if code != CURLE_OK { setupFailed = true } }

    set(ccurl_easy_setopt_string(handle, CURLOPT_URL, request.url))
    set(ccurl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
    set(ccurl_easy_setopt_share(handle, share.pointer))
    // file:// is read by LocalFile; redirects are followed by the fetcher, hop by hop.
    set(ccurl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
    set(ccurl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
    // "" turns proxies off, the environment's variables included.
    set(ccurl_easy_setopt_string(handle, CURLOPT_PROXY, policy.proxy ?? ""))
    // And no host bypasses a configured proxy either (the environment's no_proxy included).
    set(ccurl_easy_setopt_string(handle, CURLOPT_NOPROXY, ""))
    if policy.proxy != nil { set(ccurl_easy_setopt_long(handle, CURLOPT_HTTPPROXYTUNNEL, 1)) }
    set(ccurl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, policy.connectTimeoutMs))
    set(ccurl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, policy.totalTimeoutMs))
    set(ccurl_easy_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1))
    set(ccurl_easy_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, policy.stallSeconds))
    if fresh { set(ccurl_easy_setopt_long(handle, CURLOPT_FRESH_CONNECT, 1)) }
    set(ccurl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1))
    set(ccurl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2))
    if let caFile = policy.caFile { set(ccurl_easy_setopt_string(handle, CURLOPT_CAINFO, caFile)) }
    // Haat decodes bodies itself (ContentDecoder), so a gzip stream cut short is an error.
    // A range asks for the identity bytes: a range of a gzip representation (RFC 9110
    // allows a server to send one) is not the export's bytes at those offsets.
    set(
      ccurl_easy_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, request.range == nil ? "gzip, deflate" : "identity"))
    set(ccurl_easy_setopt_long(handle, CURLOPT_HTTP_CONTENT_DECODING, 0))
    set(ccurl_easy_setopt_string(handle, CURLOPT_USERAGENT, policy.userAgent))
    set(ccurl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, requestHeaders))
    set(ccurl_easy_setopt_off(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(clamping: policy.maxBodyBytes)))
    if request.post {
      set(ccurl_easy_setopt_long(handle, CURLOPT_POST, 1))
      set(ccurl_easy_setopt_string(handle, CURLOPT_POSTFIELDS, ""))
    }
    if let range = request.range {
      set(ccurl_easy_setopt_string(handle, CURLOPT_RANGE, "\(range.lowerBound)-\(range.upperBound)"))
    }
    // The curl tool's receive buffer (100 KiB, against libcurl's 16 KiB default): a large
    // body in a sixth of the callbacks (measured by `haat-bench fetch`). Only a hint, so a
    // refusal is not a failure: libcurl 7.88 refuses it on a handle whose last transfer
    // failed before the response (a host that did not resolve) and kept its buffer, which
    // made every later fetch on that pooled handle fail.
    _ = ccurl_easy_setopt_long(handle, CURLOPT_BUFFERSIZE, 100 * 1024)
    set(ccurl_easy_setopt_write_function(handle, transferWrite))
    set(ccurl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, context))
    set(ccurl_easy_setopt_header_function(handle, transferHeader))
    set(ccurl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, context))
    set(ccurl_easy_setopt_long(handle, CURLOPT_NOPROGRESS, 0))
    set(ccurl_easy_setopt_xferinfo_function(handle, transferProgress))
    set(ccurl_easy_setopt_pointer(handle, CURLOPT_XFERINFODATA, context))
    set(ccurl_easy_setopt_opensocket_function(handle, transferOpenSocket))
    set(ccurl_easy_setopt_pointer(handle, CURLOPT_OPENSOCKETDATA, context))
    guard !setupFailed else {
      throw FetchError(.other, "libcurl refused an option (is it older than 7.85?)", retryable: false)
    }

    let code = curl_easy_perform(handle)

    var redirects = 0
    ccurlLong(handle, CURLINFO_REDIRECT_COUNT) { redirects = $0 }
    var connects = 0
    ccurlLong(handle, CURLINFO_NUM_CONNECTS) { connects = $0 }
    if status == 0 { ccurlLong(handle, CURLINFO_RESPONSE_CODE) { status = $0 } }

    // A transfer ended once the error body's start was kept is judged by its status.
    let cut = code == CURLE_WRITE_ERROR && errorBodyCut && failure == nil
    if code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_WEIRD_SERVER_REPLY, connects == 0, !fresh, !started {
      return .staleConnection
    }
    if code != CURLE_OK, !cut { throw error(for: code, url: request.url) }
    if (300..<400).contains(status), status != 304 {
      // Cut short, curl has not worked the redirect's URL out: resolved here, as curl would.
      let location =
        cut
        ? headers.first { $0.name == "location" }.flatMap { FetchURL.resolve($0.value, against: request.url) }
        : redirectURL(handle)
      if let location { return .redirect(location) }
    }
    // Bodies that never reached the write callback (empty 4xx, say) are judged here.
    if let failure = httpFailure() { throw failure }
    if !started, isSuccess(status) { try begin() }
    try decoder?.finish(bodyBytes: bodyBytes, wireBytes: wireBytes)
    return .response(
      FetchResponse(
        status: status, contentType: contentType, bodyBytes: bodyBytes,
        wireBytes: wireBytes, redirects: redirects,
        reusedConnection: connects == 0, headers: headers))
  }

  private func redirectURL(_ handle: UnsafeMutableRawPointer) -> String? {
    var value: UnsafeMutablePointer<CChar>?
    guard ccurl_easy_getinfo_string(handle, CURLINFO_REDIRECT_URL, &value) == CURLE_OK, let value else {
      return nil
    }
    return String(cString: value)
  }

  private func isSuccess(_ status: Int) -> Bool { (200..<300).contains(status) }

  /// Calls `onStart` once, before the first body byte of a good response.
  private func begin() throws(FetchError) {
    started = true
    do {
      try onStart?(status, contentType)
    } catch let error as FetchError {
      throw error
    } catch {
      throw FetchError(.sink, "\(error)", retryable: false)
    }
  }

  // MARK: Callbacks

  func write(_ data: UnsafeRawBufferPointer) -> Int {
    if !started {
      if status == 0, let handle { ccurlLong(handle, CURLINFO_RESPONSE_CODE) { status = $0 } }
      guard isSuccess(status) else {
        // Keep a little of an error (or redirect) body to explain the status, and read no
        // more: a hostile server streams an endless one, holding the slot for the whole
        // timeout (it was read to its end, past --max-body-bytes; found by a tester).
        let room = max(0, policy.maxErrorBodyBytes - errorBody.count)
        errorBody.append(contentsOf: data.prefix(room))
        if data.count > room {
          errorBodyCut = true
          return 0
        }
        return data.count
      }
      do {
        try begin()
        decoder = try ContentDecoder.make(contentEncoding: contentEncoding)
        // gzip's magic number first: a body its server already decoded passes as it is.
        if decoder == nil, gzipFile, data.count >= 2, data[0] == 0x1F, data[1] == 0x8B {
          decoder = try ContentDecoder.gzipFile()
        }
      } catch {
        failure = error
        return 0
      }
    }
    // libcurl decodes nothing here (HTTP_CONTENT_DECODING is off): these are the body's
    // bytes as sent, before Haat's own gzip/deflate decoding.
    wireBytes += UInt64(data.count)
    do {
      if let decoder {
        try decoder.decode(data) { try take($0) }
      } else {
        try take(data)
      }
    } catch let error as FetchError {
      failure = error
      return 0
    } catch {
      failure = FetchError(.sink, "\(error)", retryable: false)
      return 0
    }
    return data.count
  }

  /// One piece of the body as the export reader gets it: counted, bounded, handed on.
  private func take(_ data: UnsafeRawBufferPointer) throws {
    bodyBytes += UInt64(data.count)
    if bodyBytes > policy.maxBodyBytes {
      throw FetchError(.tooLarge, "the body is larger than \(policy.maxBodyBytes) bytes", retryable: false)
    }
    if bodyBytes > 1 << 20, bodyBytes / max(wireBytes, 1) > policy.maxDecompressionRatio {
      throw FetchError(
        .decompression,
        "the body expands more than \(policy.maxDecompressionRatio)× when decoded (\(bodyBytes) bytes from \(wireBytes)); refusing a decompression bomb",
        retryable: false)
    }
    try onBody(data)
  }

  /// Takes one header line; false (with `failure` set) when the headers exceed the limits.
  func header(_ line: UnsafeRawBufferPointer) -> Bool {
    headerLines += 1
    headerBytes += line.count
    guard headerLines <= policy.maxHeaderLines, headerBytes <= policy.maxHeaderBytes else {
      failure = FetchError(
        .badResponse,
        "the response has more than \(policy.maxHeaderLines) header lines or \(policy.maxHeaderBytes) header bytes",
        retryable: false)
      return false
    }
    parseHeader(line)
    return true
  }

  private func parseHeader(_ line: UnsafeRawBufferPointer) {
    // Bytes, not Foundation strings: this runs for every header line of every request.
    func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
    func text(_ bytes: Slice<UnsafeRawBufferPointer>) -> String {
      // Header values are ASCII in practice; anything else is read as Latin-1, as HTTP says.
      bytes.allSatisfy { $0 < 0x80 }
        ? String(decoding: bytes, as: UTF8.self) : String(bytes.map { Character(Unicode.Scalar($0)) })
    }
    var end = line.count
    while end > 0, isSpace(line[end - 1]) { end -= 1 }
    if line.starts(with: "HTTP/".utf8) {
      // A new response (after a redirect or a 100): forget the previous one's headers.
      let parts = line[..<end].split(separator: 0x20, maxSplits: 2)
      status = parts.count > 1 ? Int(text(parts[1])) ?? 0 : 0
      contentType = nil
      contentEncoding = nil
      retryAfter = nil
      headers = []
      return
    }
    guard let colon = line[..<end].firstIndex(of: UInt8(ascii: ":")) else { return }
    var start = colon + 1
    while start < end, isSpace(line[start]) { start += 1 }
    let name = String(text(line[..<colon]).lowercased())
    let value = text(line[start..<end])
    headers.append(HeaderField(name: name, value: value))
    switch name {
    case "content-type": contentType = value
    case "content-encoding": contentEncoding = value
    case "retry-after": retryAfter = value
    default: break
    }
  }

  func progress(downloaded: Int64) -> Int32 {
    if let cancel, cancel.isCancelled {
      failure = FetchError(.cancelled, "the transfer was cancelled", retryable: true)
      return 1
    }
    return 0
  }

  func openSocket(
    family: Int32, type: Int32, proto: Int32, address: UnsafePointer<sockaddr>, length: UInt32
  ) -> curl_socket_t {
    // Through a proxy every socket goes to the operator's proxy; targets were judged before.
    if !policy.allowPrivateNetworks, policy.proxy == nil, let refused = AddressGuard.nonPublic(address, family: family)
    {
      refusedAddress = refused
      return ccurl_socket_bad()
    }
    return socket(family, type, proto)
  }

  // MARK: Errors

  private func httpFailure() -> FetchError? {
    guard var failure = httpStatusFailure() else { return nil }
    failure.body = errorBody
    failure.headers = headers
    failure.secrets = URLRedaction.secretValues(of: url)
    return failure
  }

  private func httpStatusFailure() -> FetchError? {
    guard status >= 300 || (status > 0 && status < 200) else { return nil }
    // Its secrets hidden before the cut, so a value the cut splits is hidden whole.
    var snippet = URLRedaction.redactText(
      ErrorBodyText.readable(String(decoding: errorBody, as: UTF8.self)), values: URLRedaction.secretValues(of: url),
      credentials: headerSecrets
    )
    .replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
    if snippet.count > 200 { snippet = String(snippet.prefix(200)) + "…" }
    let detail = snippet.isEmpty ? "" : ": \(snippet)"
    let retryAfterMs = retryAfter.flatMap(RetryPolicy.retryAfterMs)
    switch status {
    case 429:
      return FetchError(
        .throttled, "HTTP 429 Too Many Requests\(detail)", retryable: true,
        retryAfterMs: retryAfterMs, status: status)
    case 408:
      return FetchError(.httpClient, "HTTP 408 Request Timeout\(detail)", retryable: true, status: status)
    case 500..<600:
      return FetchError(
        .httpServer, "HTTP \(status)\(detail)", retryable: true, retryAfterMs: retryAfterMs,
        status: status)
    default:
      return FetchError(.httpClient, "HTTP \(status)\(detail)", retryable: false, status: status)
    }
  }

  private func error(for code: CURLcode, url: String) -> FetchError {
    if let failure { return failure }
    if let httpFailure = httpFailure(), code == CURLE_WRITE_ERROR || code == CURLE_OK {
      return httpFailure
    }
    let reason = String(cString: curl_easy_strerror(code))
    let host = URLRedaction.redact(url)
    switch code {
    case CURLE_COULDNT_CONNECT where refusedAddress != nil:
      return FetchError(
        .forbidden,
        "refusing to connect to \(refusedAddress ?? "") (a non-public address) for \(host); allow private networks to permit it",
        retryable: false)
    case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
      return FetchError(.dns, "\(reason) (\(host))", retryable: true)
    case CURLE_COULDNT_CONNECT:
      return FetchError(.connect, "\(reason) (\(host))", retryable: true)
    case CURLE_OPERATION_TIMEDOUT:
      return FetchError(.timeout, "\(reason) (\(host))", retryable: true)
    case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE,
      CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return FetchError(.tls, "\(reason) (\(host))", retryable: false)
    case CURLE_SSL_CONNECT_ERROR:
      return FetchError(.tls, "\(reason) (\(host))", retryable: true)
    case CURLE_TOO_MANY_REDIRECTS:
      return FetchError(.tooManyRedirects, "more than \(policy.maxRedirects) redirects (\(host))", retryable: false)
    case CURLE_FILESIZE_EXCEEDED:
      return FetchError(.tooLarge, "the body is larger than \(policy.maxBodyBytes) bytes", retryable: false)
    case CURLE_BAD_CONTENT_ENCODING:
      return FetchError(.decompression, "\(reason) (\(host))", retryable: false)
    case CURLE_UNSUPPORTED_PROTOCOL:
      // The fetcher sends only http and https URLs: this is the reply, not the URL (libcurl
      // says so of a reply with no HTTP status line, HTTP/0.9, which it does not take).
      return FetchError(
        .badResponse, "the server's reply is not HTTP (no status line) (\(host))", retryable: false)
    case CURLE_URL_MALFORMAT:
      return FetchError(.invalidURL, "\(reason) (\(host))", retryable: false)
    case CURLE_OUT_OF_MEMORY where headerLines > 0 || status > 0:
      // curl refuses a header line over its own limit (100 KiB) this way.
      return FetchError(.badResponse, "a response header is too large (\(host))", retryable: false)
    case CURLE_WEIRD_SERVER_REPLY:
      return FetchError(.badResponse, "\(reason) (\(host))", retryable: false)
    case CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2,
      CURLE_HTTP2_STREAM:
      return FetchError(.network, "\(reason) (\(host))", retryable: true)
    default:
      return FetchError(.other, "curl error \(code.rawValue): \(reason) (\(host))", retryable: true)
    }
  }
}

private func ccurlLong(_ handle: UnsafeMutableRawPointer, _ info: CURLINFO, _ body: (Int) -> Void) {
  var value = 0
  if ccurl_easy_getinfo_long(handle, info, &value) == CURLE_OK { body(value) }
}

// MARK: - C callbacks

private func transfer(_ pointer: UnsafeMutableRawPointer?) -> Transfer? {
  pointer.map { Unmanaged<Transfer>.fromOpaque($0).takeUnretainedValue() }
}

private let transferWrite: ccurl_data_callback = { data, size, count, context in
  guard let transfer = transfer(context) else { return 0 }
  return transfer.write(UnsafeRawBufferPointer(start: data, count: size * count))
}

private let transferHeader: ccurl_data_callback = { data, size, count, context in
  guard let transfer = transfer(context) else { return 0 }
  return transfer.header(UnsafeRawBufferPointer(start: data, count: size * count)) ? size * count : 0
}

private let transferProgress: ccurl_xferinfo_callback = { context, _, downloaded, _, _ in
  transfer(context)?.progress(downloaded: Int64(downloaded)) ?? 1
}

private let transferOpenSocket: ccurl_opensocket_callback = { context, _, address in
  guard let address, let transfer = transfer(context) else { return ccurl_socket_bad() }
  return transfer.openSocket(
    family: ccurl_sockaddr_family(address), type: ccurl_sockaddr_socktype(address),
    proto: ccurl_sockaddr_protocol(address), address: ccurl_sockaddr_address(address),
    length: ccurl_sockaddr_length(address))
}
