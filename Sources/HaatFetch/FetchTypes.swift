import Synchronization

/// One request: a URL and extra headers. Headers may carry a credential; nothing here is
/// ever logged (use `URLRedaction` for the URL).
public struct FetchRequest: Sendable {
  public var url: String
  /// "Name: value" lines.
  public var headers: [String]
  /// Fetch only these bytes (a Range request), for byte-range tasks.
  public var range: ClosedRange<UInt64>?
  /// POST with an empty body instead of GET (an API that starts a job, its parameters in
  /// the URL's query). A redirect is followed with GET.
  public var post = false
  /// A platform credential: its header goes with each request (the first, and every
  /// redirect) whose URL it is bound to, and with no other.
  public var credential: BoundCredential?
  /// The hosts every hop may go to (a platform API's, and those the operator allows); nil
  /// for any (an export file's URL goes where it says, within the address guard).
  public var hosts: [BoundCredential.HostRule]?

  public init(
    url: String, headers: [String] = [], range: ClosedRange<UInt64>? = nil, post: Bool = false,
    credential: BoundCredential? = nil, hosts: [BoundCredential.HostRule]? = nil
  ) {
    self.url = url
    self.headers = headers
    self.range = range
    self.post = post
    self.credential = credential
    self.hosts = hosts
  }
}

/// The limits every fetch runs under.
public struct FetchPolicy: Sendable {
  public var connectTimeoutMs = 10_000
  /// The whole transfer, 0 = no limit (a stall is still caught by `stallSeconds`).
  public var totalTimeoutMs = 30 * 60 * 1000
  /// A transfer slower than 1 byte/s for this long is a timeout.
  public var stallSeconds = 60
  /// The most (decoded) body bytes a response may have.
  public var maxBodyBytes: UInt64 = 16 << 30
  /// The most decoded bytes per received byte; beyond it the body is a decompression bomb.
  public var maxDecompressionRatio: UInt64 = 200
  public var maxRedirects = 5
  /// Whether loopback, private, link-local and other non-public addresses may be reached.
  public var allowPrivateNetworks = false
  /// Directories `file://` URLs may read from; empty = no `file://` at all.
  public var fileRoots: [String] = []
  /// A CA bundle to verify servers with, instead of the system's.
  public var caFile: String?
  /// An HTTP proxy to fetch through. Without one, the proxy variables of the environment
  /// (`http_proxy`, `https_proxy`, `ALL_PROXY`) are ignored; with one, the address guard
  /// still judges every target's addresses.
  public var proxy: String?
  /// The most response header lines and header bytes a response may have.
  /// How much of an error status's body is kept, for the message and the connector.
  public var maxErrorBodyBytes = 16 * 1024
  public var maxHeaderLines = 1_000
  public var maxHeaderBytes = 256 * 1024
  public var userAgent = "haat/0.1"

  public init() {}
}

/// What a finished fetch saw.
public struct FetchResponse: Sendable, Equatable {
  public var status: Int
  public var contentType: String?
  /// Body bytes after decoding (what the sink received).
  public var bodyBytes: UInt64
  /// Bytes received off the wire for the body.
  public var wireBytes: UInt64
  public var redirects: Int
  /// Whether the transfer reused a connection.
  public var reusedConnection: Bool
  /// The final response's headers (after redirects), names lowercased, in order; bounded by
  /// `FetchPolicy.maxHeaderLines` and `maxHeaderBytes`. Connectors read paging links and
  /// rate-limit usage from them.
  public var headers: [HeaderField] = []
}

/// One response header.
public struct HeaderField: Sendable, Equatable {
  /// Lowercased.
  public var name: String
  public var value: String

  public init(name: String, value: String) {
    self.name = name
    self.value = value
  }
}

/// Why a fetch failed, and whether trying again could help.
public struct FetchError: Error, Sendable, Equatable, CustomStringConvertible {
  public enum Kind: String, Sendable {
    case invalidURL = "invalid_url"
    case forbidden
    case dns
    case connect
    case tls
    case timeout
    case network
    case httpClient = "http_4xx"
    case httpServer = "http_5xx"
    case throttled
    case tooLarge = "too_large"
    case decompression
    case tooManyRedirects = "too_many_redirects"
    case notFound = "not_found"
    /// The server answered with something that is not a usable HTTP response.
    case badResponse = "bad_response"
    case cancelled
    /// The consumer of the body refused it (a parse error, say).
    case sink
    case other
  }

  public var kind: Kind
  public var message: String
  public var retryable: Bool
  /// The server's Retry-After, in milliseconds.
  public var retryAfterMs: UInt64?
  public var status: Int?
  /// For an HTTP error status: the start of the error body (at most
  /// `FetchPolicy.maxErrorBodyBytes`, as received) and the response's headers, so a
  /// connector can read the platform's own error object and usage headers.
  public var body: [UInt8] = []
  public var headers: [HeaderField] = []
  /// The secret values of the URL that answered (a redirect's target too): a connector's
  /// message quoting `body` is shown with them hidden (`URLRedaction.redactText`).
  public var secrets: [String] = []

  public init(
    _ kind: Kind, _ message: String, retryable: Bool, retryAfterMs: UInt64? = nil,
    status: Int? = nil
  ) {
    self.kind = kind
    self.message = message
    self.retryable = retryable
    self.retryAfterMs = retryAfterMs
    self.status = status
  }

  /// The stable code for task errors: "http_404", "http_429", "timeout", ….
  public var code: String {
    if let status, kind == .httpClient || kind == .httpServer || kind == .throttled {
      return "http_\(status)"
    }
    return kind.rawValue
  }

  public var description: String { "\(code): \(message)" }
}

/// Set from any thread to stop a transfer at its next progress callback.
public final class CancellationFlag: Sendable {
  private let flag = Atomic<Bool>(false)
  public init() {}
  public func cancel() { flag.store(true, ordering: .relaxed) }
  public var isCancelled: Bool { flag.load(ordering: .relaxed) }
}
