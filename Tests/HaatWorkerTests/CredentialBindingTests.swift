import HaatCore
import HaatFetch
import HaatRecords
import Testing

@testable import HaatWorker

/// Where a worker sends a platform credential, and what it says when it will not.
@Suite struct CredentialBindingTests {
  static func runner(_ credential: String) throws -> TaskRunner {
    let parsed = try PlatformCredential(parsing: credential)
    return TaskRunner(
      fetcher: Fetcher(policy: FetchPolicy()), credentials: [parsed.name: parsed], allowedHosts: [],
      limits: ReadLimits(), gate: RateGate())
  }

  /// "Over plain HTTP" is said only when the scheme is what stands in the way; another
  /// host is named as such (it blamed plain HTTP for a host the credential was not bound to).
  @Test func theRefusalNamesWhatStandsInTheWay() throws {
    let loopback = try Self.runner("meta=env:HOME@http://127.0.0.1:47102")
    #expect((try? loopback.bind(credential: "meta", for: "http://127.0.0.1:47102/p").get()) != nil)
    guard case .failure(let otherHost) = loopback.bind(credential: "meta", for: "http://localhost:47102/p") else {
      Issue.record("sent to another host")
      return
    }
    #expect(otherHost.code == .forbidden)
    #expect(otherHost.message.hasSuffix("refusing to send it to http://localhost:47102"), "\(otherHost.message)")
    let secure = try Self.runner("meta=env:HOME@graph.example.com")
    guard case .failure(let plain) = secure.bind(credential: "meta", for: "http://graph.example.com/v1") else {
      Issue.record("sent over plain HTTP")
      return
    }
    #expect(
      plain.message.hasSuffix("refusing to send it to http://graph.example.com over plain HTTP"), "\(plain.message)")
  }
}
