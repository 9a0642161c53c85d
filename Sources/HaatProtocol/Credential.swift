import Foundation
import HaatCore

#if canImport(Glibc)
  import Glibc
#endif

/// What a worker or client needs to authenticate: a token id and its secret, stored in a
/// credential file (JSON, mode 0600) that `haat token create` writes.
///
/// ```json
/// {"token_id": "t_3f9a…", "secret": "…", "role": "worker", "coordinator": "127.0.0.1:7420"}
/// ```
public struct Credential: Codable, Sendable, Equatable {
  public var tokenID: String
  /// The HMAC key (its UTF-8 bytes). Never logged, printed or sent.
  public var secret: String
  public var role: Role
  /// Where the coordinator that issued it listens, as a default for clients.
  public var coordinator: String?

  enum CodingKeys: String, CodingKey {
    case tokenID = "token_id"
    case secret, role, coordinator
  }

  public init(tokenID: String, secret: String, role: Role, coordinator: String? = nil) {
    self.tokenID = tokenID
    self.secret = secret
    self.role = role
    self.coordinator = coordinator
  }

  /// Reads a credential file.
  public static func load(path: String) throws -> Credential {
    guard let data = FileManager.default.contents(atPath: path) else {
      // Why, as the system says it: a file of another owner reads as well as a missing one.
      let reason = access(path, R_OK) != 0 ? String(cString: strerror(errno)) : "not a readable file"
      throw HaatError(.authFailed, "cannot read the credential file \(path): \(reason)")
    }
    do {
      return try JSONDecoder().decode(Credential.self, from: data)
    } catch {
      // `haat token create --role metrics|dashboard` writes `ID:SECRET` for the admin port.
      let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
      if text.hasPrefix("t_"), text.contains(":"), !text.contains(where: \.isWhitespace) {
        throw HaatError(
          .authFailed,
          "\(path) holds an admin-port token (ID:SECRET, of the metrics or dashboard role): the protocol needs a credential file of the read, submit, admin or worker role"
        )
      }
      throw HaatError(.authFailed, "\(path) is not a Haat credential file (JSON with token_id, secret, role)")
    }
  }

  /// Writes the credential to `path`, readable by its owner only.
  public func write(path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    var data = try encoder.encode(self)
    data.append(UInt8(ascii: "\n"))
    try SecretFile.write(data, to: path)
  }

  /// The admin port's form: one line `ID:SECRET`, sent as `Authorization: Bearer ID:SECRET`
  /// (Prometheus's `credentials_file` reads it as it is).
  public var bearer: String { "\(tokenID):\(secret)" }

  public func writeBearer(path: String) throws {
    try SecretFile.write(Data((bearer + "\n").utf8), to: path)
  }
}

extension Role: Codable {}

/// Files that hold secrets: mode 0600 from their first byte, replaced atomically.
public enum SecretFile {
  /// Writes `data` to a new file beside `path`, created with `O_CREAT|O_EXCL` and mode 0600
  /// (so no moment exists in which another user could open it), synced, then renamed over
  /// `path`.
  public static func write(_ data: Data, to path: String) throws {
    if let refusal = RegularFile.refusal(path) { throw HaatError(.badRequest, "cannot write \(path): \(refusal)") }
    let directory = (path as NSString).deletingLastPathComponent
    if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
      // A new directory for secrets is its owner's alone.
      try FileManager.default.createDirectory(
        atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
    func failure(_ what: String) -> HaatError {
      HaatError(.internal, "cannot \(what) \(path): \(String(cString: strerror(errno)))")
    }
    var temporary = ""
    var descriptor: Int32 = -1
    for _ in 0..<16 {
      temporary = path + ".tmp-" + HandshakeMAC.nonce(bytes: 6)
      descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
      if descriptor >= 0 || errno != EEXIST { break }
    }
    guard descriptor >= 0 else { throw failure("create a file beside") }
    var written = 0
    let ok = data.withUnsafeBytes { raw -> Bool in
      // The umask cannot widen 0600, but a umask of 0077 is not assumed either: set it.
      guard fchmod(descriptor, 0o600) == 0 else { return false }
      while let base = raw.baseAddress, written < raw.count {
        let count = Glibc.write(descriptor, base + written, raw.count - written)
        if count < 0, errno == EINTR { continue }
        guard count > 0 else { return false }
        written += count
      }
      return fsync(descriptor) == 0
    }
    close(descriptor)
    guard ok else {
      let error = failure("write")
      unlink(temporary)
      throw error
    }
    if rename(temporary, path) != 0 {
      let error = failure("replace")
      unlink(temporary)
      throw error
    }
  }
}
