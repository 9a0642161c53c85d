import CCurl
import Foundation
import HaatCore
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// An HTTP(S) and file client on libcurl that streams bodies to a sink.
///
/// `fetch` blocks its thread for the transfer (run it off any event loop). Easy handles are
/// pooled, each keeping its own connections, so consecutive fetches reuse them; the
/// handles share one DNS and TLS-session cache. (Not the connection cache: libcurl does not
/// support sharing connections between concurrent threads, and the lock it needs made
/// four fetch threads slower than one curl process, `haat-bench fetch`.) Call `shutdown()` before the
/// process exits so every handle is cleaned up.
public final class Fetcher: Sendable {
  public let policy: FetchPolicy
  private let share: ShareHandle
  private let idle = Mutex<[EasyHandle]>([])
  private let closed = Atomic<Bool>(false)

  /// `curl_global_init` runs once per process, before the first handle.
  private static let global: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

  public init(policy: FetchPolicy = FetchPolicy()) {
    _ = Self.global
    self.policy = policy
    share = ShareHandle()
  }

  /// Releases every pooled handle and the shared cache. Fetches after this fail.
  public func shutdown() {
    guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
    let handles = idle.withLock { handles in
      defer { handles = [] }
      return handles
    }
    for handle in handles { curl_easy_cleanup(handle.pointer) }
    share.cleanup()
  }

  /// The curl version string, e.g. "libcurl/7.88.1 OpenSSL/3.0.19 zlib/1.2.13 …".
  public static var version: String {
    _ = global
    return String(cString: curl_version())
  }

  /// Fetches `request`, calling `onStart(status, contentType)` once before the first body
  /// byte of a successful (2xx) response and `onBody` with each chunk of the decoded body.
  /// A non-2xx response, a transport error or an error thrown by the callbacks ends the
  /// transfer with a `FetchError` that says whether to retry.
  ///
  /// Redirects are followed here, one request at a time, so every hop is checked afresh:
  /// its scheme, the address guard, and whether the request's credential is bound to it
  /// (if not, the hop goes without it).
  @discardableResult
  public func fetch(
    _ request: FetchRequest,
    cancel: CancellationFlag? = nil,
    onStart: ((Int, String?) throws -> Void)? = nil,
    onBody: (UnsafeRawBufferPointer) throws -> Void
  ) throws(FetchError) -> FetchResponse {
    guard !closed.load(ordering: .acquiring) else {
      throw FetchError(.cancelled, "the fetcher is shut down", retryable: true)
    }
    if request.url.lowercased().hasPrefix("file:") {
      return try LocalFile.read(
        request.url, policy: policy, range: request.range, cancel: cancel, onStart: onStart, onBody: onBody)
    }
    let handle = takeHandle()
    defer { giveBack(handle) }
    var url = request.url
    var post = request.post
    var redirects = 0
    while true {
      guard let target = FetchURL(url), target.scheme == "http" || target.scheme == "https", !target.host.isEmpty
      else {
        throw FetchError(
          .invalidURL,
          redirects == 0
            ? "only http://, https:// and file:// URLs can be fetched: \(URLRedaction.redact(url))"
            : FetchURL(url) == nil
              ? "a redirect went to \(URLRedaction.redact(url)), which is not a URL (a space or another character a URL cannot hold?)"
              : "a redirect may go to an http:// or https:// URL only, not to \(URLRedaction.redact(url))",
          retryable: false)
      }
      // libcurl would send user info as Basic auth, reading it more leniently than anyone
      // (a backslash in the host: a tester's password went out so): never from a worker.
      // Not quoted: the lenient reading is what could leave the password in the quote.
      if URLSecrets.hasUserInfo(url) {
        throw FetchError(
          .forbidden,
          redirects == 0
            ? "refusing a URL that carries user info (user:password@); name a credential on the worker instead"
            : "refusing a redirect to a URL that carries user info (user:password@)",
          retryable: false)
      }
      if let hosts = request.hosts, !hosts.contains(where: { $0.matches(target) }) {
        // A redirect from an allowed host to another is refused as the URL would be.
        throw FetchError(
          .forbidden,
          "refusing \(target.scheme)://\(target.authority): not one of the hosts this source may reach (\(hosts.map(\.description).joined(separator: ", ")))",
          retryable: false)
      }
      if policy.proxy != nil, !policy.allowPrivateNetworks { try AddressGuard.checkResolved(target) }
      var headers = request.headers
      if let credential = request.credential, credential.allows(target) { headers.append(credential.header) }
      var hop = request
      hop.url = url
      hop.headers = headers
      hop.post = post
      var outcome = try withoutActuallyEscaping(onBody) { onBody throws(FetchError) in
        let transfer = Transfer(policy: policy, cancel: cancel, onStart: onStart, onBody: onBody)
        return try transfer.run(hop, handle: handle.pointer, share: share)
      }
      if case .staleConnection = outcome {
        // What an earlier response left on a reused connection was read as this reply (a
        // tester's server sent more than its Content-Length, and the next task died).
        if let pointer = handle.pointer { curl_easy_reset(pointer) }
        outcome = try withoutActuallyEscaping(onBody) { onBody throws(FetchError) in
          let transfer = Transfer(policy: policy, cancel: cancel, onStart: onStart, onBody: onBody)
          return try transfer.run(hop, handle: handle.pointer, share: share, fresh: true)
        }
      }
      switch outcome {
      case .staleConnection:
        throw FetchError(.badResponse, "the server's reply is not HTTP (\(URLRedaction.redact(url)))", retryable: false)
      case .response(var response):
        response.redirects = redirects
        return response
      case .redirect(let next):
        redirects += 1
        guard redirects <= policy.maxRedirects else {
          throw FetchError(
            .tooManyRedirects, "more than \(policy.maxRedirects) redirects (\(URLRedaction.redact(request.url)))",
            retryable: false)
        }
        url = next
        // As curl and browsers do for 301–303: the next hop is a GET.
        post = false
        if let pointer = handle.pointer { curl_easy_reset(pointer) }
      }
    }
  }

  private func takeHandle() -> EasyHandle {
    if let handle = idle.withLock({ $0.popLast() }) {
      curl_easy_reset(handle.pointer)  // keeps the connection cache
      return handle
    }
    return EasyHandle(pointer: curl_easy_init())
  }

  private func giveBack(_ handle: EasyHandle) {
    guard !closed.load(ordering: .acquiring) else {
      curl_easy_cleanup(handle.pointer)
      return
    }
    idle.withLock { $0.append(handle) }
  }
}

/// A curl easy handle; used by one thread at a time (the pool hands it to one fetch).
struct EasyHandle: @unchecked Sendable {
  let pointer: UnsafeMutableRawPointer?
}

/// The shared connection/DNS/TLS cache, with one mutex per kind of shared data.
final class ShareHandle: @unchecked Sendable {
  // Safe to share: curl calls the lock functions around every use of `pointer`, and the
  // mutexes live until `cleanup`, after every easy handle using the share is gone.
  let pointer: UnsafeMutableRawPointer?
  private let locks: UnsafeMutablePointer<pthread_mutex_t>
  private static let lockCount = 16

  init() {
    locks = .allocate(capacity: Self.lockCount)
    for index in 0..<Self.lockCount { pthread_mutex_init(locks + index, nil) }
    pointer = curl_share_init()
    guard let pointer else { return }
    _ = ccurl_share_setopt_userdata(pointer, UnsafeMutableRawPointer(locks))
    _ = ccurl_share_setopt_lock(pointer) { _, data, _, user in
      guard let user else { return }
      let locks = user.assumingMemoryBound(to: pthread_mutex_t.self)
      pthread_mutex_lock(locks + Int(data.rawValue % 16))
    }
    _ = ccurl_share_setopt_unlock(pointer) { _, data, user in
      guard let user else { return }
      let locks = user.assumingMemoryBound(to: pthread_mutex_t.self)
      pthread_mutex_unlock(locks + Int(data.rawValue % 16))
    }
    _ = ccurl_share_setopt_long(pointer, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_DNS.rawValue))
    _ = ccurl_share_setopt_long(pointer, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_SSL_SESSION.rawValue))
  }

  func cleanup() {
    if let pointer { curl_share_cleanup(pointer) }
    for index in 0..<Self.lockCount { pthread_mutex_destroy(locks + index) }
    locks.deallocate()
  }
}
