import HaatCore
import NIOConcurrencyHelpers

/// Open connections per peer address, and connections that have not finished their
/// handshake in total: past either bound a new connection is refused with `busy` at once,
/// so idle sockets cannot use up the coordinator's descriptors or memory.
final class ConnectionGate: Sendable {
  let maxPerAddress: Int
  let maxUnauthenticated: Int
  private let state = NIOLockedValueBox<(byAddress: [String: Int], unauthenticated: Int)>(([:], 0))

  init(maxPerAddress: Int, maxUnauthenticated: Int) {
    self.maxPerAddress = maxPerAddress
    self.maxUnauthenticated = maxUnauthenticated
  }

  /// Counts a new connection in, or says why not.
  func admit(_ address: String) -> HaatError? {
    state.withLockedValue { state in
      if state.byAddress[address, default: 0] >= maxPerAddress {
        return HaatError(.busy, "\(address) has \(maxPerAddress) connections open, the most one address may")
      }
      if state.unauthenticated >= maxUnauthenticated {
        return HaatError(
          .busy, "\(maxUnauthenticated) connections are still in their handshake, the most the coordinator takes")
      }
      state.byAddress[address, default: 0] += 1
      state.unauthenticated += 1
      return nil
    }
  }

  /// The connection finished its handshake.
  func authenticated() {
    state.withLockedValue { $0.unauthenticated -= 1 }
  }

  /// The connection closed.
  func release(_ address: String, authenticated: Bool) {
    state.withLockedValue { state in
      if !authenticated { state.unauthenticated -= 1 }
      state.byAddress[address, default: 1] -= 1
      if state.byAddress[address] == 0 { state.byAddress[address] = nil }
    }
  }
}
