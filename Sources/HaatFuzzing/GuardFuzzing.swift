import Foundation
import HaatFetch

#if canImport(Glibc)
  import Glibc
#endif

/// The two other URL checks of the `urls` target: the address guard and the file root.
enum GuardFuzzing {
  /// A URL's host read as an address the way the resolver reads numeric hosts (every
  /// inet_aton spelling: `0x7f.1`, `2130706433`, `0177.0.0.1`; every IPv6 form): an address
  /// that is not public must not become public through any IPv6 form that carries it.
  static func addresses(_ url: String, _ invariants: inout Invariants) {
    guard let parsed = FetchURL(url) else { return }
    var host = parsed.host
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    var hints = addrinfo()
    hints.ai_flags = AI_NUMERICHOST
    var results: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, nil, &hints, &results) == 0, let first = results else { return }
    defer { freeaddrinfo(results) }
    var entry: UnsafeMutablePointer<addrinfo>? = first
    while let current = entry, let address = current.pointee.ai_addr {
      entry = current.pointee.ai_next
      if current.pointee.ai_family == AF_INET {
        let value = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
          UInt32(bigEndian: $0.pointee.sin_addr.s_addr)
        }
        embeddings(value, host, &invariants)
      } else if current.pointee.ai_family == AF_INET6 {
        let bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
          withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) }
        }
        // Any v6 address whose low 32 bits are a non-public v4 in a carrying form is refused.
        let low = bytes[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        embeddings(low, host, &invariants)
        _ = AddressGuard.isPublic(v6: bytes)
      }
    }
  }

  /// The carrying forms of `v4` (mapped, compatible, translated, NAT64 and local NAT64,
  /// 6to4) are judged exactly as `v4` is when it is not public.
  static func embeddings(_ v4: UInt32, _ host: String, _ invariants: inout Invariants) {
    guard !AddressGuard.isPublic(v4: v4) else { return }
    let four = [UInt8(v4 >> 24), UInt8((v4 >> 16) & 0xFF), UInt8((v4 >> 8) & 0xFF), UInt8(v4 & 0xFF)]
    let forms: [(String, [UInt8])] = [
      ("::ffff:a.b.c.d", [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + four),
      ("::a.b.c.d", [UInt8](repeating: 0, count: 12) + four),
      ("::ffff:0:a.b.c.d", [UInt8](repeating: 0, count: 8) + [0xFF, 0xFF, 0, 0] + four),
      ("64:ff9b::a.b.c.d", [0x00, 0x64, 0xFF, 0x9B] + [UInt8](repeating: 0, count: 8) + four),
      ("64:ff9b:1::a.b.c.d", [0x00, 0x64, 0xFF, 0x9B, 0x00, 0x01] + [UInt8](repeating: 0, count: 6) + four),
      ("2002:a.b.c.d::", [0x20, 0x02] + four + [UInt8](repeating: 0, count: 10)),
    ]
    for (name, bytes) in forms {
      invariants.check(
        !AddressGuard.isPublic(v6: bytes), "\(host) is not public, but its \(name) form passes the guard")
    }
  }

  /// A directory tree made once per process: `root/` holds `a.csv`, `up` (a symlink to
  /// `..`) and `escape.csv` (a symlink to the secret); `outside/secret.csv` is beside it.
  static let tree: String? = {
    // One tree per user, reused by every run (the same files each time), so none pile up.
    let base = NSTemporaryDirectory() + "haat-fuzz-root-\(getuid())"
    let manager = FileManager.default
    do {
      try manager.createDirectory(atPath: base + "/root/sub", withIntermediateDirectories: true)
      try manager.createDirectory(atPath: base + "/outside", withIntermediateDirectories: true)
      try Data("id\nINSIDE\n".utf8).write(to: URL(fileURLWithPath: base + "/root/a.csv"))
      try Data("OUTSIDE-SECRET\n".utf8).write(to: URL(fileURLWithPath: base + "/outside/secret.csv"))
      try? manager.createSymbolicLink(atPath: base + "/root/up", withDestinationPath: "..")
      try? manager.createSymbolicLink(
        atPath: base + "/root/escape.csv", withDestinationPath: base + "/outside/secret.csv")
      return base
    } catch {
      return nil
    }
  }()

  static let fetcher: Fetcher? = tree.map { base in
    var policy = FetchPolicy()
    policy.fileRoots = [base + "/root"]
    return Fetcher(policy: policy)
  }

  /// `file://<root>/` followed by the input (and the input itself when it is a file://
  /// URL): whatever is read, it is never the file outside the root.
  static func fileRoot(_ text: String, _ invariants: inout Invariants) {
    guard let base = tree, let fetcher, !text.contains("\0") else { return }
    var urls = ["file://\(base)/root/" + text]
    if text.lowercased().hasPrefix("file:") { urls.append(text) }
    for url in urls {
      var body: [UInt8] = []
      do {
        _ = try fetcher.fetch(FetchRequest(url: url)) { chunk in
          if body.count < 1 << 16 { body.append(contentsOf: chunk.prefix(1 << 16)) }
        }
      } catch {
        // Refusals of every kind are fine here (too long, not found, a loop, outside).
      }
      invariants.check(
        !String(decoding: body, as: UTF8.self).contains("OUTSIDE-SECRET"),
        "\(url.debugDescription) read the file outside the root")
    }
  }
}
