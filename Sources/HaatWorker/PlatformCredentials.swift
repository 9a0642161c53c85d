import Foundation
import HaatCore
import HaatFetch
import HaatRecords

#if canImport(Glibc)
  import Glibc
#endif

/// A platform credential configured on a worker: a name, where its secret is read from on
/// this machine, and the hosts it may be sent to. Written on the command line as
/// `NAME=env:VARIABLE@host[,host…]` or `NAME=file:/path@host[,host…]` (the last "@" starts
/// the hosts). Specs name it (`credential: NAME`); they never name the variable or file.
public struct PlatformCredential: Sendable, Equatable {
  public enum Origin: Sendable, Equatable {
    case environment(String)
    case file(String)

    var isFile: Bool { if case .file = self { true } else { false } }
  }

  public var name: String
  public var origin: Origin
  public var hosts: [BoundCredential.HostRule]

  public init(name: String, origin: Origin, hosts: [BoundCredential.HostRule]) {
    self.name = name
    self.origin = origin
    self.hosts = hosts
  }

  /// Parses `NAME=env:VAR@hosts` or `NAME=file:/path@hosts`; the error says what is wrong.
  public init(parsing text: String) throws(HaatError) {
    func bad(_ reason: String) -> HaatError {
      HaatError(.badRequest, "--credential \(reason); write NAME=env:VARIABLE@host[,host…] or NAME=file:/path@host")
    }
    guard let equals = text.firstIndex(of: "=") else { throw bad("has no NAME=") }
    name = String(text[..<equals])
    guard Self.isValidName(name) else {
      throw bad("name \"\(name)\" must be 1 to 64 letters, digits, \"_\", \"-\" or \".\"")
    }
    let rest = text[text.index(after: equals)...]
    guard let at = rest.lastIndex(of: "@") else {
      throw bad("\(name) is bound to no host: add @host (the hosts it may be sent to)")
    }
    let reference = rest[..<at]
    if reference.hasPrefix("env:") {
      let variable = String(reference.dropFirst(4))
      guard !variable.isEmpty, variable.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || isalnum(Int32($0)) != 0 }) else {
        throw bad("\(name): \"\(variable)\" is not an environment variable name")
      }
      origin = .environment(variable)
    } else if reference.hasPrefix("file:/") {
      origin = .file(String(reference.dropFirst(5)))
    } else {
      throw bad("\(name) must be read from env:VARIABLE or file:/path")
    }
    var rules: [BoundCredential.HostRule] = []
    for host in rest[rest.index(after: at)...].split(separator: ",") {
      guard let rule = BoundCredential.HostRule(String(host.trimmingCharacters(in: .whitespaces))) else {
        throw bad(
          "\(name): \"\(host)\" is not a host, *.domain (of two labels at least: *.example.com) or http://host, with an optional :port"
        )
      }
      rules.append(rule)
    }
    guard !rules.isEmpty else { throw bad("\(name) is bound to no host") }
    hosts = rules
  }

  /// What a spec may write as `credential:`: a name, never a reference to a file or variable.
  public static func isValidName(_ name: String) -> Bool { CredentialName.isValid(name) }

  /// Reads the secret (at each use, so a rotated file takes effect) and binds it to the
  /// hosts, to be sent as `scheme` says (the platform's connector knows which).
  public func bind(as scheme: AuthScheme = .bearer) -> Result<BoundCredential, HaatError> {
    let secret: String
    switch lookUp() {
    case .success(let value): secret = value
    case .failure(let reason):
      return .failure(HaatError(.badRequest, "the credential \(name) has no value on this worker: \(reason.text)"))
    }
    guard !secret.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
      return .failure(HaatError(.badRequest, "the credential \(name) contains control characters"))
    }
    return .success(BoundCredential(name: name, header: "\(scheme.header): \(scheme.prefix)\(secret)", hosts: hosts))
  }

  /// Why a credential has no value. The variable and the file are not named: the task's
  /// error reaches whoever may read the job, and the operator knows the worker's flags.
  public struct Missing: Error, Sendable {
    public var text: String
  }

  /// The secret as the worker holds it now, or why it has none.
  public func lookUp() -> Result<String, Missing> {
    let value: String
    switch origin {
    case .environment(let variable):
      guard let set = ProcessInfo.processInfo.environment[variable] else {
        return .failure(Missing(text: "its environment variable is not set"))
      }
      value = set
    case .file(let path):
      switch Self.contents(path) {
      case .success(let bytes):
        guard let text = String(validating: bytes, as: UTF8.self) else {
          return .failure(Missing(text: "its file is not UTF-8 text"))
        }
        value = text
      case .failure(let missing): return .failure(missing)
      }
    }
    let secret = value.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !secret.isEmpty else {
      return .failure(Missing(text: "its \(origin.isFile ? "file" : "environment variable") is empty"))
    }
    return .success(secret)
  }

  /// A secret file's bytes (at most 64 KiB), or the system's reason it cannot be read
  /// (without its path). Non-blocking: a FIFO with no writer reads as empty, never hangs.
  static func contents(_ path: String) -> Result<[UInt8], Missing> {
    func failure() -> Result<[UInt8], Missing> {
      .failure(Missing(text: "its file cannot be read (\(String(cString: strerror(errno))))"))
    }
    let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard descriptor >= 0 else { return failure() }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      let count = Glibc.read(descriptor, &buffer, buffer.count)
      if count < 0, errno == EINTR { continue }
      if count < 0 { return errno == EAGAIN ? .success(bytes) : failure() }
      if count == 0 { return .success(bytes) }
      bytes += buffer[..<count]
      guard bytes.count <= 64 << 10 else { return .failure(Missing(text: "its file is over 64 KiB")) }
    }
  }

  /// The secret as the worker holds it now; nil when it has none.
  func secret() -> String? { try? lookUp().get() }

  /// `text` with the secret replaced by the credential's name: a platform may echo the
  /// request's Authorization in an error body, and a task's error travels to the
  /// coordinator, its store, logs and reports.
  func redacting(_ text: String) -> String {
    guard let secret = secret() else { return text }
    // Then any copy written in another encoding (percent-encoded twice, say) as "…".
    return URLRedaction.redactText(Self.redacting(text, secret: secret, name: name), values: [secret])
  }

  /// `text` with every copy of `secret` replaced by `[credential NAME]`: as written, or
  /// with any of its bytes percent-encoded (`%2F` or `%2f`, `+` for a space) or JSON-escaped
  /// (`\/`, `\u002F`: JSON APIs escape a slash, and an error body is JSON); a copy cut
  /// short where the text was cut (its first 4 bytes or more, then the text's end or a cut
  /// mark, "…" or "..."): error bodies are cut before they reach here, and a cut through
  /// the secret left all of it but its last bytes in clear; and any run of 8 bytes or more
  /// of it, wherever it starts and ends (a gateway that masks or cuts a token mid-text).
  static func redacting(_ text: String, secret: String, name: String) -> String {
    let secret = Array(secret.utf8)
    guard secret.count >= 4, !text.isEmpty else { return text }
    let bytes = Array(text.utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var index = 0
    while index < bytes.count {
      if let end = copy(of: secret, in: bytes, at: index) {
        out += Array("[credential \(name)]".utf8)
        index = end
      } else {
        out.append(bytes[index])
        index += 1
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// The end of the longest copy of `secret` (or of a part of it that `redacting` hides)
  /// starting at `index`, or nil.
  private static func copy(of secret: [UInt8], in bytes: [UInt8], at index: Int) -> Int? {
    let cutMarks: [[UInt8]] = [[0xE2, 0x80, 0xA6], Array("...".utf8)]
    var longest: Int?
    for start in secret.indices {
      let (end, matched) = match(secret, from: start, in: bytes, at: index)
      let whole = start == 0 && matched == secret.count
      let cut =
        start == 0 && matched >= 4
        && (end == bytes.count || cutMarks.contains { bytes[end...].starts(with: $0) })
      if whole || cut || matched >= 8, end > (longest ?? index) { longest = end }
    }
    return longest
  }

  /// How far `secret` from its byte `first` matches `bytes` from `start`, each of its bytes
  /// as written or encoded: the end of the match in `bytes`, and how many secret bytes it
  /// holds.
  private static func match(_ secret: [UInt8], from first: Int, in bytes: [UInt8], at start: Int) -> (
    end: Int, matched: Int
  ) {
    var (at, matched) = (start, 0)
    while first + matched < secret.count, at < bytes.count {
      let want = secret[first + matched]
      // An escape first: `\\` is one backslash of the secret, not two.
      if bytes[at] == 0x5C, let escaped = jsonEscape(bytes, at, want) {
        at = escaped
      } else if bytes[at] == want {
        at += 1
      } else if bytes[at] == 0x25, at + 2 < bytes.count, let high = Hex.value(bytes[at + 1]),
        let low = Hex.value(bytes[at + 2]),
        high << 4 | low == want
      {
        at += 3
      } else if bytes[at] == 0x2B, want == 0x20 {
        at += 1
      } else {
        break
      }
      matched += 1
    }
    return (at, matched)
  }

  /// Where a JSON escape of `want` at `at` ends (`\/`, `\"`, `\\`, or `\u00XX` of an ASCII
  /// byte), or nil when the escape there is of another byte.
  private static func jsonEscape(_ bytes: [UInt8], _ at: Int, _ want: UInt8) -> Int? {
    guard at + 1 < bytes.count else { return nil }
    let next = bytes[at + 1]
    if next == want, want == 0x2F || want == 0x22 || want == 0x5C { return at + 2 }
    guard next == 0x75, want < 0x80, at + 5 < bytes.count else { return nil }
    var value: UInt32 = 0
    for offset in 2...5 {
      guard let digit = Hex.value(bytes[at + offset]) else { return nil }
      value = value << 4 | UInt32(digit)
    }
    return value == want ? at + 6 : nil
  }
}
