import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatCoordinator

/// The token file as the coordinator reads it, including a Kubernetes Secret's layout: the
/// file is a symbolic link that the kubelet re-points at a new directory on each update.
@Suite struct TokenStoreTests {
  @Test func aTokenFileBehindARepointedLinkIsReloaded() throws {
    let root = NSTemporaryDirectory() + "haat-tokens-\(UUID().uuidString)"
    let manager = FileManager.default
    defer { try? manager.removeItem(atPath: root) }
    for version in ["v1", "v2"] {
      try manager.createDirectory(atPath: "\(root)/..\(version)", withIntermediateDirectories: true)
    }
    let first = TokenStore(path: "\(root)/..v1/tokens")
    let old = try first.create(role: .read, label: "old")
    let second = TokenStore(path: "\(root)/..v2/tokens")
    let new = try second.create(role: .read, label: "new")
    // ..data → ..v1, tokens → ..data/tokens, as the kubelet lays a Secret out.
    try manager.createSymbolicLink(atPath: "\(root)/..data", withDestinationPath: "..v1")
    try manager.createSymbolicLink(atPath: "\(root)/tokens", withDestinationPath: "..data/tokens")
    let store = TokenStore(path: "\(root)/tokens")
    store.refresh()
    #expect(store.cachedToken(id: old.tokenID) != nil)
    #expect(store.cachedToken(id: new.tokenID) == nil)
    // The update: a new ..data link renamed over the old one (the tokens link never changes).
    try manager.createSymbolicLink(atPath: "\(root)/..data_tmp", withDestinationPath: "..v2")
    guard rename("\(root)/..data_tmp", "\(root)/..data") == 0 else {
      throw HaatError(.internal, "rename failed: \(errno)")
    }
    store.refresh()
    #expect(store.cachedToken(id: new.tokenID) != nil, "the new Secret's token is read")
    #expect(store.cachedToken(id: old.tokenID) == nil, "the old one is gone")
  }

  /// A token file that cannot be written (a directory at its path) is an error before any
  /// credential is delivered: a credential for a token never stored was left behind.
  @Test func noCredentialIsDeliveredWhenTheTokenFileCannotBeWritten() throws {
    let root = NSTemporaryDirectory() + "haat-tokens-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: root) }
    try FileManager.default.createDirectory(atPath: root + "/tokens", withIntermediateDirectories: true)
    var delivered = false
    #expect(throws: HaatError.self) {
      try TokenStore(path: root + "/tokens").create(role: .admin) { _ in delivered = true }
    }
    #expect(!delivered)
  }

  /// A line that is not a token (hand-edited, or a role this version does not know) is
  /// ignored, and said: it was ignored without a word.
  @Test func linesThatAreNotTokensAreNamed() throws {
    let path = NSTemporaryDirectory() + "haat-tokens-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: path) }
    let store = TokenStore(path: path)
    let kept = try store.create(role: .read)
    let text = try String(contentsOfFile: path, encoding: .utf8)
    try (text + "PLACEHOLDER: garbage\n\n" + text.replacingOccurrences(of: "\"read\"", with: "\"superuser\""))
      .write(toFile: path, atomically: true, encoding: .utf8)
    #expect(store.unreadLines() == [2, 4])
    store.refresh()
    #expect(store.cachedToken(id: kept.tokenID) != nil)
  }

  /// A token file gone from its path (the data directory deleted under a running
  /// coordinator) revoked every token, and running jobs stopped; an empty file still does.
  @Test func aTokenFileGoneFromItsPathRevokesNothing() throws {
    let path = NSTemporaryDirectory() + "haat-tokens-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: path) }
    let store = TokenStore(path: path)
    let kept = try store.create(role: .submit)
    store.refresh()
    try FileManager.default.removeItem(atPath: path)
    store.refresh()
    #expect(store.cachedToken(id: kept.tokenID) != nil, "a missing file revokes nothing")
    store.refresh()
    #expect(store.cachedToken(id: kept.tokenID) != nil)
    // Lines none of which is a token (garbage, a copy cut mid-line): nothing revoked.
    try Data("garbage{{\n{\"id\":\"t_0".utf8).write(to: URL(fileURLWithPath: path))
    store.refresh()
    #expect(store.cachedToken(id: kept.tokenID) != nil, "a file of no token revokes nothing")
    try Data().write(to: URL(fileURLWithPath: path))
    store.refresh()
    #expect(store.cachedToken(id: kept.tokenID) == nil, "an empty file revokes every token")
  }

  @Test func revokeRemovesOnlyThatToken() throws {
    let path = NSTemporaryDirectory() + "haat-tokens-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: path) }
    let store = TokenStore(path: path)
    let kept = try store.create(role: .read)
    let gone = try store.create(role: .metrics)
    #expect(try store.revoke(id: gone.tokenID))
    #expect(try !store.revoke(id: gone.tokenID))
    #expect(store.list().map(\.id) == [kept.tokenID])
  }
}
