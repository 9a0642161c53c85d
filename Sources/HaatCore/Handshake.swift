/// A keyed MAC, `(key, message) -> tag`; HMAC-SHA256 on the wire (supplied by HaatProtocol).
public typealias MACFunction = @Sendable (_ key: [UInt8], _ message: [UInt8]) -> [UInt8]

/// The exact bytes both sides MAC in the handshake (docs/protocol.md has a worked example).
///
/// Components are joined with "\n" so that no two different handshakes share an input;
/// names may not contain control characters, and nonces are hex.
public enum HandshakeTranscript {
  /// `"client\n" + nonce + "\n" + client_nonce + "\n" + role + "\n" + name`, UTF-8.
  public static func client(nonce: String, clientNonce: String, role: String, name: String)
    -> [UInt8]
  {
    Array("client\n\(nonce)\n\(clientNonce)\n\(role)\n\(name)".utf8)
  }

  /// `"server\n" + nonce + "\n" + client_nonce + "\n" + session`, UTF-8.
  public static func server(nonce: String, clientNonce: String, session: String) -> [UInt8] {
    Array("server\n\(nonce)\n\(clientNonce)\n\(session)".utf8)
  }
}

/// The peer names a token may be used with: one name, or every name with a prefix (one
/// pool of autoscaled workers sharing a Secret).
public enum NameScope: Sendable, Equatable, CustomStringConvertible {
  case name(String)
  case prefix(String)

  public func covers(_ name: String) -> Bool {
    switch self {
    case .name(let only): return name == only
    case .prefix(let prefix): return name.hasPrefix(prefix) && name.utf8.count > prefix.utf8.count
    }
  }

  public var description: String {
    switch self {
    case .name(let name): return "named \"\(name)\""
    case .prefix(let prefix): return "whose names start with \"\(prefix)\""
    }
  }
}

/// A token as the coordinator keeps it. The secret is the MAC key (its UTF-8 bytes).
public struct Token: Sendable, Equatable {
  public var id: String
  public var role: Role
  public var secret: String
  /// The names a session with this token may use; every worker token has one, so a
  /// token's blast radius is its own workers. Client tokens may leave it out.
  public var names: NameScope?

  public init(id: String, role: Role, secret: String, names: NameScope? = nil) {
    self.id = id
    self.role = role
    self.secret = secret
    self.names = names
  }
}

/// Who is on the other end of an established session.
public struct Peer: Sendable, Equatable {
  public var kind: PeerKind
  public var role: Role
  public var name: String
  public var tokenID: String
  public var version: UInt32
}

/// The handshake's limits.
public enum HandshakeLimits {
  /// The protocol versions this build speaks.
  public static let versions: [UInt32] = [1]
  /// Nonces carry at least this many random bits.
  public static let minNonceHexDigits = 32
  public static let maxNonceHexDigits = 128
  public static let maxNameBytes = 128

  /// Whether a peer name is acceptable: 1 to 128 bytes of UTF-8 that `DisplayText` deems
  /// safe, in Unicode NFC. Swift compares names by canonical equivalence and the store by
  /// their bytes: "é" composed and "e" + U+0301 would be one worker in memory and two in
  /// the store (leases held by one, results from the other). One form, one name.
  public static func isValidName(_ name: String) -> Bool {
    let count = name.utf8.count
    guard count >= 1, count <= maxNameBytes else { return false }
    return DisplayText.isSafeName(name) && name.precomposedStringWithCanonicalMapping.utf8.elementsEqual(name.utf8)
  }

  /// Whether a nonce is 128 to 512 bits of hex.
  public static func isValidNonce(_ nonce: String) -> Bool {
    let count = nonce.utf8.count
    guard count >= minNonceHexDigits, count <= maxNonceHexDigits, count % 2 == 0 else {
      return false
    }
    return nonce.utf8.allSatisfy { byte in
      (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
  }
}

/// The server side of the handshake: challenge out, hello in, welcome or error out.
public struct ServerHandshake: Sendable {
  /// The fields of a `hello` the rules look at.
  public struct Hello: Sendable {
    public var version: UInt32
    public var role: String
    public var name: String
    public var tokenID: String
    public var clientNonce: String
    public var mac: String

    public init(
      version: UInt32, role: String, name: String, tokenID: String, clientNonce: String,
      mac: String
    ) {
      self.version = version
      self.role = role
      self.name = name
      self.tokenID = tokenID
      self.clientNonce = clientNonce
      self.mac = mac
    }
  }

  /// What to send after a hello.
  public enum Outcome: Sendable, Equatable {
    /// Send `welcome {session, server_mac, version}`; the session is open for `peer`.
    case welcome(session: String, serverMAC: String, version: UInt32, peer: Peer)
    /// Send `error` and close.
    case reject(HaatError)
  }

  public enum State: Sendable, Equatable {
    case awaitingHello
    case established(Peer)
    case closed
  }

  public let nonce: String
  public let versions: [UInt32]
  public private(set) var state: State = .awaitingHello

  public init(nonce: String, versions: [UInt32] = HandshakeLimits.versions) {
    self.nonce = nonce
    self.versions = versions
  }

  /// Checks a hello. `token` is what the coordinator has under `hello.tokenID`, if anything.
  public mutating func receive(
    hello: Hello, token: Token?, session: String, mac: MACFunction
  ) -> Outcome {
    guard state == .awaitingHello else {
      state = .closed
      return .reject(HaatError(.unsupported, "the handshake is already over"))
    }
    let outcome = check(hello: hello, token: token, session: session, mac: mac)
    switch outcome {
    case .welcome(_, _, _, let peer): state = .established(peer)
    case .reject: state = .closed
    }
    return outcome
  }

  /// A message other than hello arrived before the handshake finished.
  public mutating func receiveOther() -> HaatError {
    state = .closed
    return HaatError(.authFailed, "the first message after the challenge must be hello")
  }

  private func check(hello: Hello, token: Token?, session: String, mac: MACFunction) -> Outcome {
    guard versions.contains(hello.version) else {
      let known = versions.map(String.init).joined(separator: ", ")
      return .reject(
        HaatError(.versionUnsupported, "protocol version \(hello.version) is not spoken here; use one of \(known)"))
    }
    guard let kind = PeerKind(rawValue: hello.role) else {
      return .reject(
        HaatError(.authFailed, "hello.role must be \"worker\" or \"client\", not \"\(hello.role)\"", field: "role"))
    }
    guard HandshakeLimits.isValidName(hello.name) else {
      return .reject(
        HaatError(
          .authFailed, "hello.name must be 1 to 128 bytes of UTF-8 in Unicode NFC, without control characters",
          field: "name"))
    }
    guard HandshakeLimits.isValidNonce(hello.clientNonce) else {
      return .reject(
        HaatError(.authFailed, "hello.client_nonce must be 32 to 128 lowercase hex digits", field: "client_nonce"))
    }
    // One message for an unknown token and a wrong MAC, so a prober learns nothing.
    let failed = HaatError(.authFailed, "authentication failed: unknown token or wrong MAC")
    guard let token, let given = Hex.decode(hello.mac) else { return .reject(failed) }
    let key = Array(token.secret.utf8)
    let expected = mac(
      key,
      HandshakeTranscript.client(
        nonce: nonce, clientNonce: hello.clientNonce, role: hello.role, name: hello.name))
    guard Hex.constantTimeEqual(expected, given) else { return .reject(failed) }
    guard token.role.peerKind == kind else {
      return .reject(
        HaatError(
          .authFailed,
          token.role.peerKind == nil
            ? "token \(token.id) has role \(token.role.rawValue), which is for the admin port, not the protocol"
            : "token \(token.id) has role \(token.role.rawValue), which cannot connect as a \(kind.rawValue)"))
    }
    // Past the MAC check the peer holds the secret, so it may learn why its name is refused.
    if token.role == .worker, token.names == nil {
      return .reject(
        HaatError(
          .authFailed,
          "worker token \(token.id) is bound to no worker name; issue one with haat token create --role worker --name NAME (or --name-prefix PREFIX)"
        ))
    }
    if let scope = token.names, !scope.covers(hello.name) {
      return .reject(
        HaatError(
          .authFailed, "token \(token.id) may be used only by peers \(scope), not \"\(hello.name)\"",
          field: "name"))
    }
    let serverMAC = mac(
      key, HandshakeTranscript.server(nonce: nonce, clientNonce: hello.clientNonce, session: session))
    let peer = Peer(
      kind: kind, role: token.role, name: hello.name, tokenID: token.id, version: hello.version)
    return .welcome(session: session, serverMAC: Hex.encode(serverMAC), version: hello.version, peer: peer)
  }
}

/// The peer side of the handshake: challenge in, hello out, welcome in.
public struct ClientHandshake: Sendable {
  /// What the peer sends in its hello.
  public struct HelloValues: Sendable, Equatable {
    public var version: UInt32
    public var role: String
    public var name: String
    public var tokenID: String
    public var clientNonce: String
    public var mac: String
  }

  public enum State: Sendable, Equatable {
    case awaitingChallenge
    case awaitingWelcome(nonce: String)
    case established(session: String)
    case failed
  }

  public let kind: PeerKind
  public let name: String
  public let tokenID: String
  private let secret: String
  public let clientNonce: String
  public let versions: [UInt32]
  public private(set) var state: State = .awaitingChallenge

  public init(
    kind: PeerKind, name: String, tokenID: String, secret: String, clientNonce: String,
    versions: [UInt32] = HandshakeLimits.versions
  ) {
    self.kind = kind
    self.name = name
    self.tokenID = tokenID
    self.secret = secret
    self.clientNonce = clientNonce
    self.versions = versions
  }

  /// Answers the server's challenge with a hello, or fails if no version is shared.
  public mutating func receive(challengeVersions: [UInt32], nonce: String, mac: MACFunction)
    -> Result<HelloValues, HaatError>
  {
    guard state == .awaitingChallenge else {
      state = .failed
      return .failure(HaatError(.unsupported, "a second challenge arrived"))
    }
    guard HandshakeLimits.isValidNonce(nonce) else {
      state = .failed
      return .failure(HaatError(.authFailed, "the server's nonce is not 128 to 512 bits of hex"))
    }
    guard let version = challengeVersions.filter(versions.contains).max() else {
      state = .failed
      return .failure(
        HaatError(.versionUnsupported, "the server speaks versions \(challengeVersions), this client \(versions)"))
    }
    let tag = mac(
      Array(secret.utf8),
      HandshakeTranscript.client(nonce: nonce, clientNonce: clientNonce, role: kind.rawValue, name: name))
    state = .awaitingWelcome(nonce: nonce)
    return .success(
      HelloValues(
        version: version, role: kind.rawValue, name: name, tokenID: tokenID,
        clientNonce: clientNonce, mac: Hex.encode(tag)))
  }

  /// Checks the server's proof; a worker must not run anything for a server that cannot
  /// prove it knows the secret.
  public mutating func receive(welcomeSession session: String, serverMAC: String, mac: MACFunction)
    -> Result<String, HaatError>
  {
    guard case .awaitingWelcome(let nonce) = state else {
      state = .failed
      return .failure(HaatError(.unsupported, "welcome arrived before the challenge"))
    }
    let expected = mac(
      Array(secret.utf8),
      HandshakeTranscript.server(nonce: nonce, clientNonce: clientNonce, session: session))
    guard let given = Hex.decode(serverMAC), Hex.constantTimeEqual(expected, given) else {
      state = .failed
      return .failure(
        HaatError(.authFailed, "the server could not prove it knows the token's secret; not trusting it"))
    }
    state = .established(session: session)
    return .success(session)
  }
}
