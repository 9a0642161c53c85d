#if canImport(Glibc)
  import Glibc
#endif

/// Tells public internet addresses from the ones a worker must not be steered to:
/// loopback, private, link-local, carrier-grade NAT, multicast, reserved.
public enum AddressGuard {
  /// The address as text if it is not public, nil if it is.
  static func nonPublic(_ address: UnsafePointer<sockaddr>, family: Int32) -> String? {
    switch family {
    case AF_INET:
      return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
        let value = UInt32(bigEndian: pointer.pointee.sin_addr.s_addr)
        return isPublic(v4: value) ? nil : v4Text(value)
      }
    case AF_INET6:
      return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
        let bytes = withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
        return isPublic(v6: bytes) ? nil : v6Text(bytes)
      }
    default:
      return "an address of family \(family)"
    }
  }

  public static func isPublic(v4 value: UInt32) -> Bool {
    func within(_ base: UInt32, _ bits: UInt32) -> Bool {
      let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
      return value & mask == base & mask
    }
    let blocked: [(UInt32, UInt32)] = [
      (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
      (0x0A00_0000, 8),  // 10/8
      (0x6440_0000, 10),  // 100.64/10 carrier-grade NAT
      (0x7F00_0000, 8),  // 127/8 loopback
      (0xA9FE_0000, 16),  // 169.254/16 link-local (cloud metadata lives here)
      (0xAC10_0000, 12),  // 172.16/12
      (0xC000_0000, 24),  // 192.0.0/24
      (0xC0A8_0000, 16),  // 192.168/16
      (0xC612_0000, 15),  // 198.18/15 benchmarking
      (0xE000_0000, 4),  // 224/4 multicast
      (0xF000_0000, 4),  // 240/4 reserved, broadcast
    ]
    return !blocked.contains { within($0.0, $0.1) }
  }

  public static func isPublic(v6 bytes: [UInt8]) -> Bool {
    guard bytes.count == 16 else { return false }
    if bytes[0..<15].allSatisfy({ $0 == 0 }) { return false }  // :: and ::1
    if bytes[0] & 0xFE == 0xFC { return false }  // fc00::/7 unique local
    if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return false }  // fe80::/10 link-local
    if bytes[0] == 0xFF { return false }  // multicast
    func v4(at index: Int, flipped: Bool = false) -> UInt32 {
      let value =
        UInt32(bytes[index]) << 24 | UInt32(bytes[index + 1]) << 16 | UInt32(bytes[index + 2]) << 8
        | UInt32(bytes[index + 3])
      return flipped ? ~value : value
    }
    // Forms that carry an IPv4 address are judged by that address: ::ffff:a.b.c.d (mapped),
    // ::a.b.c.d (compatible, deprecated but still routed by some stacks), ::ffff:0:a.b.c.d
    // (translated), the NAT64 prefixes 64:ff9b::/96 and 64:ff9b:1::/48, and 6to4 2002::/16.
    let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
    let compatible = bytes[0..<12].allSatisfy { $0 == 0 }
    let translated =
      bytes[0..<8].allSatisfy { $0 == 0 } && bytes[8] == 0xFF && bytes[9] == 0xFF
      && bytes[10] == 0 && bytes[11] == 0
    let nat64 = bytes[0..<12].elementsEqual([0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0])
    let localNAT64 = bytes[0..<6].elementsEqual([0x00, 0x64, 0xFF, 0x9B, 0x00, 0x01])
    if mapped || compatible || translated || nat64 || localNAT64 { return isPublic(v4: v4(at: 12)) }
    if bytes[0] == 0x20, bytes[1] == 0x02 { return isPublic(v4: v4(at: 2)) }
    // Teredo 2001:0::/32 carries a server address and an obfuscated client address.
    if bytes[0..<4].elementsEqual([0x20, 0x01, 0x00, 0x00]) {
      return isPublic(v4: v4(at: 4)) && isPublic(v4: v4(at: 12, flipped: true))
    }
    if bytes[0..<8].elementsEqual([0x01, 0, 0, 0, 0, 0, 0, 0]) { return false }  // 100::/64 discard
    if bytes[0..<4].elementsEqual([0x20, 0x01, 0x0D, 0xB8]) { return false }  // 2001:db8::/32 documentation
    return true
  }

  /// Resolves a URL's host and refuses it if any of its addresses is not public. Used when
  /// the connection itself goes to a proxy, so the socket-level check cannot see the target.
  static func checkResolved(_ url: FetchURL) throws(FetchError) {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var results: UnsafeMutablePointer<addrinfo>?
    var host = url.host
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    let status = getaddrinfo(host, String(url.port), &hints, &results)
    guard status == 0, let first = results else {
      throw FetchError(.dns, "cannot resolve \(url.host)", retryable: true)
    }
    defer { freeaddrinfo(results) }
    var entry: UnsafeMutablePointer<addrinfo>? = first
    while let current = entry {
      if let address = current.pointee.ai_addr, let refused = nonPublic(address, family: current.pointee.ai_family) {
        throw FetchError(
          .forbidden,
          "refusing to fetch \(url.host) through the proxy: it resolves to \(refused), a non-public address",
          retryable: false)
      }
      entry = current.pointee.ai_next
    }
  }

  static func v4Text(_ value: UInt32) -> String {
    "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
  }

  static func v6Text(_ bytes: [UInt8]) -> String {
    stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
      .joined(separator: ":")
  }
}
