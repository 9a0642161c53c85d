import Foundation
import HaatCore
import HaatProtocol
import NIOCore

/// A blocking Haat session for the benchmark's own client and worker: the handshake, then
/// envelopes as lines. Blocking threads and raw sockets keep the measuring side's own
/// overhead out of the latencies it reports.
final class RawSession: @unchecked Sendable {
  // @unchecked: one thread reads (the only state is the read buffer) and at most one
  // other writes (write(2) on the socket, no state).
  let connection: LineConnection

  init(port: Int, credential: Credential, kind: PeerKind, name: String, worker: Haat_V1_WorkerInfo? = nil) throws {
    connection = try LineConnection(port: port)
    var handshake = ClientHandshake(
      kind: kind, name: name, tokenID: credential.tokenID, secret: credential.secret,
      clientNonce: HandshakeMAC.nonce(bytes: 16))
    guard case .challenge(let challenge)? = try receive().body else { throw BenchError("no challenge") }
    let values = try handshake.receive(
      challengeVersions: challenge.versions, nonce: challenge.nonce, mac: HandshakeMAC.hmacSHA256
    ).get()
    try send(Envelope(id: "hello", .hello(Haat_V1_Hello(values, worker: worker))))
    guard case .welcome(let welcome)? = try receive().body else { throw BenchError("no welcome") }
    _ = try handshake.receive(
      welcomeSession: welcome.session, serverMAC: welcome.serverMac, mac: HandshakeMAC.hmacSHA256
    )
    .get()
  }

  func close() { connection.close() }

  func send(_ envelopes: Envelope...) throws { try send(envelopes) }

  func send(_ envelopes: [Envelope]) throws {
    var buffer = ByteBufferAllocator().buffer(capacity: 256 * envelopes.count)
    for envelope in envelopes { try WireCodec.encode(envelope, into: &buffer) }
    try connection.send(String(decoding: buffer.readableBytesView, as: UTF8.self))
  }

  func receive() throws -> Envelope {
    let bytes = try connection.lineBytes()
    return try WireCodec.decode(ByteBuffer(bytes: bytes)).get()
  }
}
