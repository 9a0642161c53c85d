import Foundation
import HaatCore

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
      throw HaatError(.authFailed, "cannot read the credential file \(path)")
    }
    do {
      return try JSONDecoder().decode(Credential.self, from: data)
    } catch {
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
}

extension Role: Codable {}

/// Files that hold secrets: created with mode 0600, replaced atomically.
public enum SecretFile {
  public static func write(_ data: Data, to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
      // A new directory for secrets is its owner's alone.
      try FileManager.default.createDirectory(
        atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
    let temporary = path + ".tmp-\(getpid())"
    guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600])
    else { throw HaatError(.internal, "cannot write \(temporary)") }
    if rename(temporary, path) != 0 {
      unlink(temporary)
      throw HaatError(.internal, "cannot move \(temporary) to \(path): \(String(cString: strerror(errno)))")
    }
  }
}
