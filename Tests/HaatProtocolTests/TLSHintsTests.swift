import HaatCore
import Testing

@testable import HaatProtocol

/// A failed TLS handshake is said in words, with the exit code of its kind: never
/// BoringSSL's codes with the path of the file the library was built from.
@Suite struct TLSHintsTests {
  struct Failure: Error, CustomStringConvertible {
    let description: String
  }

  static func boringSSL(_ reason: String) -> Failure {
    Failure(
      description:
        "handshakeFailed(NIOSSL.BoringSSLError.sslError([Error: 268436501 error:10000415:SSL routines:OPENSSL_internal:\(reason) at /work/main/.build/checkouts/swift-nio-ssl/Sources/CNIOBoringSSL/ssl/tls_record.cc:491]))"
    )
  }

  @Test(arguments: [
    ("SSLV3_ALERT_CERTIFICATE_EXPIRED", "has expired or is not valid yet"),
    ("UNSUPPORTED_CERTIFICATE", "must include clientAuth"),
    ("SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "must include clientAuth"),
    ("TLSV1_ALERT_UNKNOWN_CA", "signed by the CA the coordinator's --tls-client-ca names"),
    ("CERTIFICATE_VERIFY_FAILED", "be within its validity dates"),
    ("TLSV1_ALERT_CERTIFICATE_REQUIRED", "give one with --tls-cert and --tls-key"),
  ])
  func certificateRefusalsAreAuthFailures(reason: String, says: String) {
    let error = TLSHints.handshakeFailed(Self.boringSSL(reason))
    #expect(error.code == .authFailed, "\(error)")
    #expect(error.message.contains(says), "\(error)")
    #expect(!error.message.contains("/work/") && !error.message.contains("268436501"), "\(error)")
  }

  @Test func anotherFailureNamesItsReasonOnly() {
    let error = TLSHints.handshakeFailed(Self.boringSSL("TLSV1_ALERT_PROTOCOL_VERSION"))
    #expect(error.code == .unavailable)
    #expect(error.message == "the TLS handshake with the coordinator failed: TLSV1_ALERT_PROTOCOL_VERSION")
    #expect(TLSHints.reason(Failure(description: "plain words")) == "plain words")
  }

  @Test func aCertificateForAnotherNameSaysWhatItMustHold() {
    let error = TLSHints.handshakeFailed(
      Failure(
        description:
          "NIOSSLExtraError.failedToValidateHostname: Couldn't find <none> in certificate from peer"))
    #expect(error.code == .authFailed)
    #expect(!error.message.contains("<none>") && error.message.contains("subject alternative names"), "\(error)")
  }
}
