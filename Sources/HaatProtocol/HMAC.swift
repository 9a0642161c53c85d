import Crypto
import Foundation
import HaatCore

/// The handshake's MAC: HMAC-SHA256.
public enum HandshakeMAC {
  public static let hmacSHA256: MACFunction = { key, message in
    Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
  }

  /// A fresh nonce: `bytes` random bytes from the system CSPRNG, lowercase hex.
  public static func nonce(bytes: Int = 16) -> String {
    var generator = SystemRandomNumberGenerator()
    return Hex.encode((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
  }
}

/// A one-way key for personal data a report must tell apart but never see (a customer's
/// email): the first 16 hex digits of SHA-256 of the lowercased, trimmed text.
public enum PrivateKey {
  public static func of(_ text: String) -> String {
    let normal = text.trimmingCharacters(in: .whitespaces).lowercased()
    return Hex.encode(Array(SHA256.hash(data: Array(normal.utf8)).prefix(8)))
  }
}
