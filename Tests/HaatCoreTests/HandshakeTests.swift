import HaatCore
import Testing

/// A stand-in MAC for testing the state machines (the real one is HMAC-SHA256, tested in
/// HaatProtocolTests): any deterministic keyed function will do.
let toyMAC: MACFunction = { key, message in
  var state: [UInt8] = Array(repeating: 0, count: 8)
  for (index, byte) in (key + [0] + message).enumerated() { state[index % 8] = state[index % 8] &* 31 &+ byte }
  return state
}

@Suite struct HandshakeTests {
  static let nonce = "00112233445566778899aabbccddeeff"
  static let clientNonce = "ffeeddccbbaa99887766554433221100"
  static let token = Token(id: "t_1", role: .submit, secret: "s3cret")

  func hello(role: PeerKind = .client, secret: String = "s3cret", version: UInt32 = 1, name: String = "cli")
    -> ServerHandshake.Hello
  {
    var client = ClientHandshake(kind: role, name: name, tokenID: "t_1", secret: secret, clientNonce: Self.clientNonce)
    guard case .success(let values) = client.receive(challengeVersions: [1], nonce: Self.nonce, mac: toyMAC) else {
      return ServerHandshake.Hello(version: 0, role: "", name: "", tokenID: "", clientNonce: "", mac: "")
    }
    return ServerHandshake.Hello(
      version: version, role: values.role, name: values.name, tokenID: values.tokenID,
      clientNonce: values.clientNonce, mac: values.mac)
  }

  @Test func roundTrip() throws {
    var server = ServerHandshake(nonce: Self.nonce)
    var client = ClientHandshake(
      kind: .client, name: "cli", tokenID: "t_1", secret: "s3cret", clientNonce: Self.clientNonce)
    let values = try client.receive(challengeVersions: [1], nonce: Self.nonce, mac: toyMAC).get()
    let outcome = server.receive(
      hello: .init(
        version: values.version, role: values.role, name: values.name, tokenID: values.tokenID,
        clientNonce: values.clientNonce, mac: values.mac),
      token: Self.token, session: "s_1", mac: toyMAC)
    guard case .welcome(let session, let serverMAC, _, let peer) = outcome else {
      Issue.record("rejected: \(outcome)")
      return
    }
    #expect(peer.role == .submit)
    #expect(try client.receive(welcomeSession: session, serverMAC: serverMAC, mac: toyMAC).get() == "s_1")
    #expect(server.state == .established(peer))
  }

  /// A worker token covers a name or a prefix; a session may use no other name, so a second
  /// token cannot take over a worker's name (and with it its leases).
  @Test(arguments: [
    (NameScope?.some(.name("host-a")), "host-a", true),
    (.some(.name("host-a")), "host-b", false),
    (.some(.name("host-a")), "host-a2", false),
    (.some(.prefix("pod-")), "pod-7", true),
    (.some(.prefix("pod-")), "pod-", false),
    (.some(.prefix("pod-")), "host-a", false),
    (nil, "host-a", false),
  ])
  func workerTokensCoverTheirNamesOnly(scope: NameScope?, name: String, welcome: Bool) {
    var server = ServerHandshake(nonce: Self.nonce)
    let token = Token(id: "t_1", role: .worker, secret: "s3cret", names: scope)
    let outcome = server.receive(hello: hello(role: .worker, name: name), token: token, session: "s", mac: toyMAC)
    if case .welcome(_, _, _, let peer) = outcome {
      #expect(welcome)
      #expect(peer.name == name)
    } else {
      #expect(!welcome)
      guard case .reject(let error) = outcome else {
        Issue.record("neither welcomed nor rejected: \(outcome)")
        return
      }
      #expect(error.code == .authFailed)
    }
  }

  @Test(arguments: ["a\u{1B}]0;x\u{07}", "evil\u{202E}gpj.exe", "line\nbreak", "zero\u{200B}width"])
  func namesWithControlOrBidiCharactersAreRefused(name: String) {
    #expect(!HandshakeLimits.isValidName(name))
  }

  /// One name, one byte form: "é" written as "e" + U+0301 (NFD) is refused, composed kept.
  @Test func namesOutsideNFCAreRefused() {
    #expect(!HandshakeLimits.isValidName("w-cafe\u{301}"))
    #expect(!HandshakeLimits.isValidName("\u{9C7}\u{9BE}"))  // Bengali O, decomposed
    #expect(HandshakeLimits.isValidName("w-caf\u{E9}"))
    #expect(HandshakeLimits.isValidName("\u{9CB}"))
  }

  @Test(arguments: ["হাট-ঢাকা", "کراچی‌کچن", "👩‍👩‍👧 shop", "worker-1"])
  func namesInEveryScriptAreKept(name: String) {
    #expect(HandshakeLimits.isValidName(name))
  }

  @Test func wrongSecretAndUnknownTokenLookTheSame() {
    var server = ServerHandshake(nonce: Self.nonce)
    let wrong = server.receive(hello: hello(secret: "guess"), token: Self.token, session: "s", mac: toyMAC)
    var other = ServerHandshake(nonce: Self.nonce)
    let unknown = other.receive(hello: hello(), token: nil, session: "s", mac: toyMAC)
    #expect(wrong == unknown)
    #expect(wrong == .reject(HaatError(.authFailed, "authentication failed: unknown token or wrong MAC")))
    #expect(server.state == .closed)
  }

  @Test func aTokenConnectsOnlyAsItsKindOfPeer() {
    var server = ServerHandshake(nonce: Self.nonce)
    guard
      case .reject(let error) = server.receive(
        hello: hello(role: .worker), token: Self.token, session: "s", mac: toyMAC)
    else {
      Issue.record("accepted a submit token as a worker")
      return
    }
    #expect(error.code == .authFailed)
    #expect(error.message.contains("role submit"))
  }

  @Test func versionNameAndSecondHello() {
    var server = ServerHandshake(nonce: Self.nonce)
    guard
      case .reject(let error) = server.receive(hello: hello(version: 2), token: Self.token, session: "s", mac: toyMAC)
    else {
      Issue.record("accepted version 2")
      return
    }
    #expect(error.code == .versionUnsupported)
    #expect(!HandshakeLimits.isValidName("bad\nname"))
    #expect(!HandshakeLimits.isValidName(String(repeating: "x", count: 129)))
    #expect(!HandshakeLimits.isValidNonce("abc"))
    var again = ServerHandshake(nonce: Self.nonce)
    _ = again.receive(hello: hello(), token: Self.token, session: "s", mac: toyMAC)
    guard case .reject(let second) = again.receive(hello: hello(), token: Self.token, session: "s", mac: toyMAC) else {
      Issue.record("a second hello was welcomed")
      return
    }
    #expect(second.code == .unsupported)
  }

  @Test func aClientRefusesAServerWithoutTheSecret() {
    var client = ClientHandshake(
      kind: .worker, name: "w", tokenID: "t_1", secret: "s3cret", clientNonce: Self.clientNonce)
    _ = client.receive(challengeVersions: [1], nonce: Self.nonce, mac: toyMAC)
    let forged = Hex.encode(
      toyMAC(
        Array("other".utf8), HandshakeTranscript.server(nonce: Self.nonce, clientNonce: Self.clientNonce, session: "s"))
    )
    #expect(throws: HaatError.self) { try client.receive(welcomeSession: "s", serverMAC: forged, mac: toyMAC).get() }
    #expect(client.state == .failed)
    var short = ClientHandshake(
      kind: .worker, name: "w", tokenID: "t_1", secret: "s3cret", clientNonce: Self.clientNonce)
    #expect(throws: HaatError.self) { try short.receive(challengeVersions: [1], nonce: "1234", mac: toyMAC).get() }
  }

  @Test func hexAndConstantTimeCompare() {
    #expect(Hex.encode([0x00, 0xAB, 0xFF]) == "00abff")
    #expect(Hex.decode("00ABff") == [0x00, 0xAB, 0xFF])
    #expect(Hex.decode("abc") == nil)
    #expect(Hex.decode("zz") == nil)
    #expect(Hex.constantTimeEqual([1, 2], [1, 2]))
    #expect(!Hex.constantTimeEqual([1, 2], [1, 3]))
    #expect(!Hex.constantTimeEqual([1], [1, 2]))
  }

  @Test(arguments: RequestKind.allCases)
  func rolesAllowWhatTheTableSays(request: RequestKind) {
    let worker: Set<RequestKind> = [.credit, .heartbeat, .complete, .fail, .log, .drain, .rateRequest, .ratePause]
    let admin: Set<RequestKind> = [.retryDead, .discardDead, .pruneJobs, .unpause]
    let submit: Set<RequestKind> = [.submit, .cancel, .updateSchedule]
    let client = !worker.contains(request)
    #expect(Role.worker.allows(request) == worker.contains(request))
    #expect(Role.admin.allows(request) == client)
    #expect(Role.submit.allows(request) == (client && !admin.contains(request)))
    #expect(Role.read.allows(request) == (client && !admin.contains(request) && !submit.contains(request)))
  }
}
