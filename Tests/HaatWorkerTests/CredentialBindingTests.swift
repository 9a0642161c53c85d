import Foundation
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

/// Found by a tester: a missing file, a directory and an empty file all said "has no
/// value", naming no cause. Each says its cause now, never the variable or the path.
@Suite struct CredentialValueTests {
  static func missing(_ reference: String) throws -> String {
    let credential = try PlatformCredential(parsing: "c=\(reference)@http://127.0.0.1:1")
    guard case .failure(let error) = credential.bind() else { return "bound" }
    return error.message
  }

  @Test func eachCauseIsSaidWithoutItsPath() throws {
    let directory = NSTemporaryDirectory() + "haat-credential-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try Data(" \n".utf8).write(to: URL(fileURLWithPath: directory + "/blank"))
    try Data([0xFF, 0xFE, 0x41]).write(to: URL(fileURLWithPath: directory + "/binary"))
    try Data(" s3cret-value\n".utf8).write(to: URL(fileURLWithPath: directory + "/good"))
    let cases = [
      ("file:\(directory)/absent", "its file cannot be read (No such file or directory)"),
      ("file:\(directory)", "its file cannot be read (Is a directory)"),
      ("file:\(directory)/blank", "its file is empty"),
      ("file:\(directory)/binary", "its file is not UTF-8 text"),
      ("env:HAAT_TEST_SURELY_UNSET_VARIABLE", "its environment variable is not set"),
    ]
    for (reference, cause) in cases {
      let message = try Self.missing(reference)
      #expect(message == "the credential c has no value on this worker: \(cause)", "\(reference)")
      #expect(!message.contains(directory) && !message.contains("HAAT_TEST"), "\(message)")
    }
    #expect(try PlatformCredential(parsing: "c=file:\(directory)/good@h.example").secret() == "s3cret-value")
  }
}

/// A platform's error page that repeats the secret is redacted before the task's error
/// leaves the worker: however its bytes are percent-encoded or JSON-escaped (`\/`, as JSON
/// APIs write a slash), and where the page was cut
/// through it (redacted after the cut, all but its last bytes went out in clear).
@Suite struct SecretRedactionTests {
  static let secret = "sk-test-AbC/dEf+GhI=jk9Zq"

  @Test(arguments: [
    "your token was sk-test-AbC/dEf+GhI=jk9Zq end",
    "your token was sk-test-AbC%2FdEf%2BGhI%3Djk9Zq end",
    "your token was sk-test-AbC%2fdEf%2bGhI%3djk9Zq end",
    "your token was sk-test-AbC/dEf%2BGhI%3Djk9Zq end",
    "your token was %73%6B%2D%74%65%73%74%2D%41%62%43%2F%64%45%66%2B%47%68%49%3D%6A%6B%39%5A%71 end",
    "your token was sk-test-AbC/dEf+GhI=jk9Z…",
    "your token was sk-test-AbC/dEf+GhI=…",
    "your token was sk-test-AbC%2FdE…",
    "your token was sk-t",
    #"your token was sk-test-AbC\/dEf+GhI=jk9Zq end"#,
    #"your token was sk-test-AbC\u002fdEf\u002BGhI\u003Djk9Zq end"#,
    #"your token was \u0073k-test-AbC\/dEf+GhI=jk9Zq end"#,
    #"your token was sk-test-AbC\/dEf+G…"#,
    // Found by a tester: a gateway's cut marked with three dots, and a run of the secret
    // mid-text (a token masked at both ends), went out in clear.
    "your token was sk-test-AbC/dEf+GhI=jk9...",
    "your token was sk-test-AbC%2FdEf...",
    "your token was test-AbC/dEf+G mid",
    "your token was AbC/dEf+GhI=jk… mid",
  ])
  func everyCopyIsRedacted(text: String) {
    let redacted = PlatformCredential.redacting(text, secret: Self.secret, name: "meta")
    #expect(redacted.hasPrefix("your token was [credential meta]"), "\(redacted)")
    #expect(!redacted.contains("AbC") && !redacted.contains("sk-t"), "\(redacted)")
  }

  @Test func textWithoutTheSecretIsUnchanged() {
    // Runs of fewer than 8 bytes mid-text are left: any text shares short runs with a secret.
    for text in [
      "", "HTTP 404: not found", "sk-test is a prefix written mid-text, not cut", "…sk-…", "100% done %2F",
      "the key AbC/dEf!",
    ] {
      #expect(PlatformCredential.redacting(text, secret: Self.secret, name: "meta") == text, "\(text)")
    }
    // A secret of a space and more: "+" is a space in a query.
    #expect(PlatformCredential.redacting("a=my+pass+word", secret: "my pass word", name: "p") == "a=[credential p]")
    // JSON's escapes of a quote and a backslash, as an API's error body writes them.
    #expect(
      PlatformCredential.redacting(#"{"m":"ab\"cd\\ef"}"#, secret: #"ab"cd\ef"#, name: "j")
        == #"{"m":"[credential j]"}"#)
  }
}
