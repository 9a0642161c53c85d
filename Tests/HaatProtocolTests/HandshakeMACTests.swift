import HaatCore
import HaatProtocol
import Testing

@Suite("Handshake MAC")
struct HandshakeMACTests {
  /// The worked example in docs/protocol.md; a client in any language must get these bytes.
  @Test func workedExample() {
    let secret = "5f2c8e0a9b7d4c3e1f6a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e"
    let nonce = "00112233445566778899aabbccddeeff"
    let clientNonce = "ffeeddccbbaa99887766554433221100"
    let client = HandshakeTranscript.client(
      nonce: nonce, clientNonce: clientNonce, role: "client", name: "docs-example")
    #expect(String(decoding: client, as: UTF8.self) == "client\n\(nonce)\n\(clientNonce)\nclient\ndocs-example")
    let mac = Hex.encode(HandshakeMAC.hmacSHA256(Array(secret.utf8), client))
    let server = Hex.encode(
      HandshakeMAC.hmacSHA256(
        Array(secret.utf8),
        HandshakeTranscript.server(nonce: nonce, clientNonce: clientNonce, session: "s_0123456789abcdef")))
    #expect(mac == DocsExample.clientMAC)
    #expect(server == DocsExample.serverMAC)
  }

  /// RFC 4231 test case 2, so the MAC is HMAC-SHA256 and nothing else.
  @Test func rfc4231() {
    let tag = HandshakeMAC.hmacSHA256(Array("Jefe".utf8), Array("what do ya want for nothing?".utf8))
    #expect(Hex.encode(tag) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
  }
}

/// The values printed in docs/protocol.md's worked example.
enum DocsExample {
  static let clientMAC = "cdcde560e2d2d68a03677df3a76356cf066f54a7e59951105d9409f59d7d637e"
  static let serverMAC = "1683b753a8a49625d75ca3c993d41b3b9ec7308df5fb501753e4db77fb1e5a04"
}
