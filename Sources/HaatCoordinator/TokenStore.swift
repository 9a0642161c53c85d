import Foundation
import HaatCore
import HaatProtocol
import Logging
import Synchronization

/// The coordinator's tokens: a file of JSON lines `{"id", "role", "secret", "created_ms",
/// "label"}`, mode 0600. The coordinator re-reads it (off its loop) once a second and when a
/// hello names a token it has not seen, so `haat token create` takes effect without a restart.
public final class TokenStore: Sendable {
  struct Entry: Codable {
    var id: String
    var role: Role
    var secret: String
    var created_ms: Int64
    var label: String?
    /// The one peer name the token may be used with, or the prefix of every such name.
    var name: String?
    var name_prefix: String?

    var names: NameScope? {
      if let name { return .name(name) }
      if let name_prefix { return .prefix(name_prefix) }
      return nil
    }
  }

  public let path: String
  private let cache = Mutex<(stamp: FileStamp?, tokens: [String: Token])>((nil, [:]))

  /// What tells one version of the file from another: the file it resolves to (through
  /// symbolic links: a Kubernetes Secret is a link the kubelet re-points at a new file, and
  /// the link's own date never changes), its inode (every rewrite is a new file renamed
  /// into place), size and date.
  struct FileStamp: Equatable {
    var path: String
    var inode: UInt64
    var size: UInt64
    var modified: Date

    init?(path: String) {
      let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
      // stat(2), not FileManager's attributes: those look the owner's and group's names up
      // (the passwd and group files, or a directory service) on every call.
      var info = stat()
      guard stat(resolved, &info) == 0 else { return nil }
      self.path = resolved
      inode = UInt64(info.st_ino)
      size = UInt64(info.st_size)
      modified = Date(
        timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec) + TimeInterval(info.st_mtim.tv_nsec) / 1e9)
    }
  }

  /// Where a file with lines that are not tokens is said (the coordinator's log).
  private let logger: Logger?

  public init(path: String, logger: Logger? = nil) {
    self.logger = logger
    self.path = path
  }

  /// The token with this id, as of the last `refresh()` (no file I/O: the coordinator
  /// calls this on its event loop).
  public func cachedToken(id: String) -> Token? {
    cache.withLock { $0.tokens[id] }
  }

  /// Re-reads the file if it changed since the last read. Blocking file I/O: call it off
  /// the event loop.
  public func refresh() {
    let stamp = FileStamp(path: path)
    guard cache.withLock({ $0.stamp != stamp || stamp == nil }) else { return }
    // A file of lines none of which is a token (cut short mid-line, garbage) is not one
    // written empty on purpose: it revokes nothing either.
    guard let (tokens, unread) = Self.read(path), !(tokens.isEmpty && !unread.isEmpty) else {
      // A file gone from its path (its data directory deleted) or unreadable revokes nothing:
      // the tokens read last stay, so running jobs go on (operations.md "Disk pressure").
      // An empty file, written on purpose, does revoke every token.
      let known = cache.withLock { state in
        defer { state.stamp = nil }
        return state.stamp != nil ? state.tokens.count : nil
      }
      if let known {
        logger?.error(
          "cannot read the token file; the \(known) tokens read last stay in force until it is back",
          metadata: ["path": "\(path)"])
      }
      return
    }
    let before = cache.withLock { state in
      defer { state = (stamp, tokens) }
      return state.tokens.count
    }
    if tokens.isEmpty, before > 0 {
      logger?.warning("the token file is empty: every token is revoked", metadata: ["path": "\(path)"])
    }
    // Said once per change of the file: a hand-edited line would be ignored without a word.
    if !unread.isEmpty {
      logger?.warning(
        "the token file has lines that are not tokens; they are ignored",
        metadata: ["path": "\(path)", "lines": "\(unread.prefix(20).map(String.init).joined(separator: ","))"])
    }
  }

  /// The tokens of the file, and the numbers of its lines that are none (not JSON, or an
  /// unknown role).
  static func read(_ path: String) -> (tokens: [String: Token], unread: [Int])? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    var tokens: [String: Token] = [:]
    var unread: [Int] = []
    for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated()
    where !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
      if let entry = try? JSONDecoder().decode(Entry.self, from: Data(line)) {
        tokens[entry.id] = Token(id: entry.id, role: entry.role, secret: entry.secret, names: entry.names)
      } else {
        unread.append(index + 1)
      }
    }
    return (tokens, unread)
  }

  /// The numbers of the file's lines that are not tokens (they are ignored).
  public func unreadLines() -> [Int] { Self.read(path)?.unread ?? [] }

  /// Adds a new token with a fresh 256-bit secret and returns its credential. `deliver`
  /// runs first (to write the credential file): if it fails, no token is added.
  public func create(
    role: Role, label: String? = nil, coordinator: String? = nil, names: NameScope? = nil,
    deliver: (Credential) throws -> Void = { _ in }
  ) throws -> Credential {
    if role == .worker, names == nil {
      throw HaatError(
        .badRequest, "a worker token is issued for a worker name (--name) or a name prefix (--name-prefix)")
    }
    // Before the credential is delivered: a token file that cannot be written (a directory
    // at its path) left a credential for a token never stored.
    if let refusal = RegularFile.refusal(path) {
      throw HaatError(.badRequest, "cannot write the token file: \(refusal)")
    }
    let id = "t_" + HandshakeMAC.nonce(bytes: 8)
    let secret = HandshakeMAC.nonce(bytes: 32)
    let credential = Credential(tokenID: id, secret: secret, role: role, coordinator: coordinator)
    try deliver(credential)
    var entry = Entry(
      id: id, role: role, secret: secret, created_ms: Int64(Date().timeIntervalSince1970 * 1000),
      label: label)
    switch names {
    case .name(let name)?: entry.name = name
    case .prefix(let prefix)?: entry.name_prefix = prefix
    case nil: break
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    var existing = FileManager.default.contents(atPath: path) ?? Data()
    if let last = existing.last, last != UInt8(ascii: "\n") { existing.append(UInt8(ascii: "\n")) }
    existing.append(try encoder.encode(entry))
    existing.append(UInt8(ascii: "\n"))
    try SecretFile.write(existing, to: path)
    return credential
  }

  /// Removes a token from the file; false when no token has that id. Open sessions with it
  /// are closed by the coordinator at its next reload.
  public func revoke(id: String) throws -> Bool {
    guard let data = FileManager.default.contents(atPath: path) else { return false }
    var kept = Data()
    var found = false
    for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
      if let entry = try? JSONDecoder().decode(Entry.self, from: Data(line)), entry.id == id {
        found = true
        continue
      }
      kept.append(contentsOf: line)
      kept.append(UInt8(ascii: "\n"))
    }
    if found { try SecretFile.write(kept, to: path) }
    return found
  }

  /// Every token's id, role, names and label (never the secret).
  public func list() -> [(id: String, role: Role, names: NameScope?, label: String)] {
    guard let data = FileManager.default.contents(atPath: path) else { return [] }
    return data.split(separator: UInt8(ascii: "\n")).compactMap { line in
      guard let entry = try? JSONDecoder().decode(Entry.self, from: Data(line)) else { return nil }
      return (entry.id, entry.role, entry.names, entry.label ?? "")
    }
  }
}
