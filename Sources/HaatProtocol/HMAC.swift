import Crypto
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
