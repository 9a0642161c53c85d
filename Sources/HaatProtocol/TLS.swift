import Foundation
import HaatCore
import NIOCore
import NIOSSL

/// The coordinator's TLS: its certificate chain and key, and optionally a CA whose
/// certificates clients must present (mutual TLS).
public struct TLSServerSettings: Sendable {
  public var certificatePath: String
  public var keyPath: String
  public var clientCAPath: String?

  public init(certificatePath: String, keyPath: String, clientCAPath: String? = nil) {
    self.certificatePath = certificatePath
    self.keyPath = keyPath
    self.clientCAPath = clientCAPath
  }

  /// Reads the files once, at start: a bad file is a clear error then, not at the first
  /// connection.
  public func makeContext() throws -> NIOSSLContext {
    let configuration = try makeConfiguration()
    do {
      return try NIOSSLContext(configuration: configuration)
    } catch {
      throw HaatError(
        .badRequest,
        "cannot use the TLS certificate \(certificatePath) with the key \(keyPath) (is the key the certificate's own?): \(error)"
      )
    }
  }

  /// The configuration both ports serve with (the admin port builds its own context).
  public func makeConfiguration() throws -> TLSConfiguration {
    let chain = try TLSFiles.certificates(certificatePath, "--tls-cert")
    try TLSFiles.current(chain, certificatePath, "--tls-cert")
    var configuration = TLSConfiguration.makeServerConfiguration(
      certificateChain: chain.map { .certificate($0) },
      privateKey: .privateKey(try TLSFiles.key(keyPath, "--tls-key")))
    configuration.minimumTLSVersion = .tlsv12
    if let clientCAPath {
      configuration.trustRoots = .certificates(try TLSFiles.certificates(clientCAPath, "--tls-client-ca"))
      // Clients are identified by their token; the certificate only proves they hold one
      // the CA issued (their addresses are not known in advance).
      configuration.certificateVerification = .noHostnameVerification
    }
    return configuration
  }
}

/// TLS files read one at a time, so an error names the file and says what is wrong with it
/// (NIOSSL's own says `failedToLoadCertificate`, for any of them).
public enum TLSFiles {
  static func readable(_ path: String, _ flag: String) throws {
    var status = stat()
    guard stat(path, &status) == 0 else {
      throw HaatError(.badRequest, "\(flag) \(path): \(String(cString: strerror(errno)))")
    }
    guard status.st_mode & S_IFMT != S_IFDIR else { throw HaatError(.badRequest, "\(flag) \(path) is a directory") }
    // A FIFO would block the read for ever; a device is no PEM file either.
    guard status.st_mode & S_IFMT == S_IFREG else {
      throw HaatError(.badRequest, "\(flag) \(path) is not a regular file")
    }
    guard access(path, R_OK) == 0 else {
      throw HaatError(.badRequest, "\(flag) \(path) cannot be read: \(String(cString: strerror(errno)))")
    }
  }

  /// The PEM certificates in `path`; a clear error naming `flag` when it holds none.
  public static func certificates(_ path: String, _ flag: String) throws -> [NIOSSLCertificate] {
    try readable(path, flag)
    let certificates = try? NIOSSLCertificate.fromPEMFile(path)
    guard let certificates, !certificates.isEmpty else {
      throw HaatError(.badRequest, "\(flag) \(path) holds no PEM certificate")
    }
    return certificates
  }

  /// Refuses a chain with a certificate (its own, the first, or an intermediate after it)
  /// outside its validity dates: every peer would refuse it, saying only that it is not
  /// trusted (an expired intermediate was found by a tester: the coordinator started, and
  /// every client failed).
  public static func current(_ chain: [NIOSSLCertificate], _ path: String, _ flag: String, now: Date = Date()) throws {
    let format = Date.ISO8601FormatStyle()
    for (index, certificate) in chain.enumerated() {
      let (from, until) = (
        Date(timeIntervalSince1970: Double(certificate.notValidBefore)),
        Date(timeIntervalSince1970: Double(certificate.notValidAfter))
      )
      let which = index == 0 ? "the certificate" : "certificate \(index + 1) of the chain (an intermediate or its root)"
      if now > until {
        throw HaatError(.badRequest, "\(flag) \(path): \(which) expired at \(until.formatted(format)); renew it")
      }
      if now < from {
        throw HaatError(
          .badRequest,
          "\(flag) \(path): \(which) is not valid until \(from.formatted(format)) (is this clock right?)")
      }
    }
  }

  static func key(_ path: String, _ flag: String) throws -> NIOSSLPrivateKey {
    try readable(path, flag)
    guard let key = try? NIOSSLPrivateKey(file: path, format: .pem) else {
      throw HaatError(.badRequest, "\(flag) \(path) holds no unencrypted PEM private key")
    }
    return key
  }
}

/// A worker's or client's TLS: the CA that signed the coordinator's certificate (the
/// system's roots when nil), and a certificate of its own when the coordinator asks for one.
public struct TLSClientSettings: Sendable {
  public var caPath: String?
  public var certificatePath: String?
  public var keyPath: String?

  public init(caPath: String? = nil, certificatePath: String? = nil, keyPath: String? = nil) {
    self.caPath = caPath
    self.certificatePath = certificatePath
    self.keyPath = keyPath
  }

  public func makeContext() throws -> NIOSSLContext {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.minimumTLSVersion = .tlsv12
    if let caPath { configuration.trustRoots = .certificates(try TLSFiles.certificates(caPath, "--tls-ca")) }
    if let certificatePath, let keyPath {
      let chain = try TLSFiles.certificates(certificatePath, "--tls-cert")
      try TLSFiles.current(chain, certificatePath, "--tls-cert")
      configuration.certificateChain = chain.map { .certificate($0) }
      configuration.privateKey = .privateKey(try TLSFiles.key(keyPath, "--tls-key"))
    }
    do {
      return try NIOSSLContext(configuration: configuration)
    } catch {
      throw HaatError(
        .badRequest,
        "cannot use the TLS files \([caPath, certificatePath, keyPath].compactMap { $0 }.joined(separator: ", "))\(keyPath == nil ? "" : " (is the key the certificate's own?)"): \(TLSHints.reason(error))"
      )
    }
  }

  /// The handler that starts a connection's TLS to `endpoint`. The coordinator's certificate
  /// must name the host (a DNS name), or the address (an IP address SAN).
  public static func handler(context: NIOSSLContext, for endpoint: Endpoint) throws -> NIOSSLClientHandler {
    let isAddress = (try? SocketAddress(ipAddress: endpoint.host, port: 0)) != nil
    return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : endpoint.host)
  }
}

/// What a client says when a coordinator's TLS setting and its own differ.
public enum TLSHints {
  /// The coordinator speaks first; silence from a TLS port looks like this to a plaintext client.
  public static func noChallenge(afterMs: UInt32) -> HaatError {
    HaatError(
      .handshakeTimeout,
      "no challenge in \(afterMs / 1000) s: is the coordinator using TLS? try --tls (and --tls-ca); else it is not answering (stopped, or overloaded)"
    )
  }

  /// A TLS handshake that failed, said plainly: bytes that are not TLS (a plaintext
  /// coordinator's challenge), a certificate this client does not trust, or the reason the
  /// coordinator gave for refusing this client's certificate.
  public static func handshakeFailed(_ error: any Error) -> HaatError {
    let text = "\(error)"
    for (markers, code, message) in readings where markers.contains(where: text.contains) {
      return HaatError(code, message)
    }
    return HaatError(.unavailable, "the TLS handshake with the coordinator failed: \(reason(error))")
  }

  /// What a failed handshake's text means, by BoringSSL's (or NIOSSL's) names in it: first
  /// match wins.
  private static let refused = "the coordinator refused this client's certificate: "
  private static let readings: [(markers: [String], code: ErrorCode, message: String)] = [
    (
      ["WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG"], .unavailable,
      "the coordinator did not answer TLS: is it using TLS? try without --tls"
    ),
    // BoringSSL does not say which check failed: both causes are named.
    (
      ["CERTIFICATE_VERIFY_FAILED"], .authFailed,
      "the coordinator's TLS certificate is not trusted: it must be signed by the CA given with --tls-ca and be within its validity dates (see openssl x509 -noout -dates)"
    ),
    (
      ["CERTIFICATE_REQUIRED"], .authFailed,
      "the coordinator wants a client certificate (mutual TLS): give one with --tls-cert and --tls-key"
    ),
    (
      ["CERTIFICATE_EXPIRED"], .authFailed,
      refused + "it has expired or is not valid yet (see openssl x509 -noout -dates)"
    ),
    (
      ["UNSUPPORTED_CERTIFICATE"], .authFailed,
      refused + "it is not for client authentication (its extended key usage must include clientAuth)"
    ),
    (
      ["UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "CERTIFICATE_REVOKED"], .authFailed,
      refused + "it must be signed by the CA the coordinator's --tls-client-ca names"
    ),
    (
      ["failedToValidateHostname"], .authFailed,
      "the coordinator's TLS certificate does not name the address connected to: its subject alternative names must hold that IP address, or that host's DNS name"
    ),
  ]

  /// A TLS error's reason as BoringSSL names it (`SSLV3_ALERT_HANDSHAKE_FAILURE`), without
  /// the library's codes, source file and line; the error's own text when it has no such name.
  public static func reason(_ error: any Error) -> String {
    let text = "\(error)"
    guard let marker = text.range(of: "OPENSSL_internal:") else { return text }
    let name = text[marker.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
    return name.isEmpty ? text : String(name)
  }
}
