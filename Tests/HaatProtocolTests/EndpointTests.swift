import HaatProtocol
import Testing

/// Addresses as the flags and credential files write them; what is not one is refused at
/// once (a usage error), not passed on to fail as a resolver's error.
@Test func endpointsAreHostAndPort() {
  #expect(Endpoint("127.0.0.1:7420") == Endpoint(host: "127.0.0.1", port: 7420))
  #expect(Endpoint("[::1]:0") == Endpoint(host: "::1", port: 0))
  #expect(Endpoint("::1:47307") == Endpoint(host: "::1", port: 47307))
  #expect(Endpoint("coord-a.example.com:65535") == Endpoint(host: "coord-a.example.com", port: 65535))
  #expect(Endpoint("[fe80::1%eth0]:1")?.host == "fe80::1%eth0")
  for text in [
    "[]:47306", "127.0.0.1:47306,127.0.0.1:47307", ":80", "host:", "host:+80", "host:65536", "host:000065535",
    "a b:1", "host/x:1", "user@host:1", "host", "[::1]", "[::1]80",
  ] {
    #expect(Endpoint(text) == nil, "\(text)")
  }
  #expect(Endpoint.list("a:1,b:2") == [Endpoint(host: "a", port: 1), Endpoint(host: "b", port: 2)])
}
