import Foundation
import HaatClient
import HaatCore
import HaatFixtures
import HaatProtocol
import HaatTesting
import Testing

/// Issue 9, defect 1, end to end: a submitter who controls the URLs of its sources tries
/// every way to make a worker send a secret of its machine (a platform credential, its own
/// worker token, the admin token, a local file, an environment variable) to a host the
/// secret is not bound to. The recording fixture server sees every request's Authorization.
@Suite("Exfiltration", .serialized)
struct ExfiltrationTests {
  @Test func aSubmitterCannotMakeAWorkerSendItsSecrets() async throws {
    let directory = NSTemporaryDirectory() + "haat-exfiltration-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let metaSecret = "META-SECRET-\(UUID().uuidString)"
    try SecretFile.write(Data(metaSecret.utf8), to: directory + "/meta.secret")
    try await withCluster(
      { server in
        var options = LocalCluster.Options.fast(workers: 1)
        options.directory = directory + "/cluster"
        options.workerArguments = [
          "--credential", "meta=file:\(directory)/meta.secret@http://127.0.0.1:\(server.port)",
        ]
        return options
      },
      { cluster, server in try await attack(cluster, server, directory: directory, metaSecret: metaSecret) })
  }

  /// Proxy variables in a worker's environment are not followed: without `--proxy` a fetch
  /// goes straight to its target. Set on the worker process only: set in the test process,
  /// they sent every test beside it to the proxy.
  @Test func proxyVariablesAreIgnored() async throws {
    let proxy = try await FixtureServer.start()
    defer { Task { try? await proxy.stop() } }
    let variables = ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"]
    try await withCluster(
      { _ in
        var options = LocalCluster.Options.fast(workers: 1)
        options.workerEnvironment = Dictionary(uniqueKeysWithValues: variables.map { ($0, proxy.baseURL) })
        return options
      },
      { cluster, server in
        let client = try await cluster.client()
        let samples = try Samples.manifest()
        let job = try await client.submit(spec("no proxy", samples.map { Samples.source($0, server: server) })).job
        let result = try await finish(client, job)
        await client.close()
        #expect(result.report.summary.missing.isEmpty, "\(result.report.summary.missing)")
        #expect(result.report.summary.sourcesOk == UInt32(samples.count))
        #expect(proxy.requests == 0, "the proxy was asked: \(proxy.requestedPaths)")
      })
  }

  private func attack(_ cluster: LocalCluster, _ server: FixtureServer, directory: String, metaSecret: String)
    async throws
  {
    let submitPath = directory + "/submit.token"
    let token = try ChildProcess(
      name: "token", executable: cluster.binary,
      arguments: ["token", "create", "--role", "submit", "--data-dir", cluster.dataDirectory, "--out", submitPath],
      logPath: directory + "/token.log")
    #expect(await token.wait(timeout: .seconds(30)) == 0)
    let workerSecret = try Credential.load(path: cluster.workerTokenPath).secret
    let adminSecret = try cluster.adminCredential().secret
    let submitter = try await HaatClient.connect(
      to: cluster.endpoint, credential: try Credential.load(path: submitPath), name: "attacker")
    defer { Task { await submitter.close() } }
    let sample = try #require(try Samples.manifest().first)
    let base = "http://127.0.0.1:\(server.port)/samples/\(sample.file)"
    let other = "http://localhost:\(server.port)/samples/\(sample.file)"

    func source(_ name: String, _ url: String, credential: String = "meta") -> Source {
      var source = Samples.source(sample, server: server)
      source.name = name
      source.url = url
      source.credential = credential
      return source
    }

    // A spec may only name a credential: paths and variables are refused at submit.
    for reference in [
      "file:\(cluster.workerTokenPath)", "file:\(cluster.dataDirectory)/admin.token", "env:HOME", "env:HAAT_TOKEN",
      "Bearer \(metaSecret)", "../meta",
    ] {
      await #expect(throws: HaatError.self, "credential \(reference)") {
        try await submitter.submit(spec("exfiltrate", [source("s", base + "?series=refused", credential: reference)]))
      }
    }

    // What a submitter can submit: the bound host (the one legitimate use), the same server
    // under another name, a redirect from the bound host to another, an unknown credential,
    // and file:// URLs at the worker's secrets (no file root is configured).
    let redirect =
      base + "?series=redirecting&redirect_to="
      + ((other + "?series=redirected").addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
    let sources = [
      source("bound", base + "?series=bound"),
      source("renamed", other + "?series=renamed"),
      source("redirect", redirect),
      source("unknown", base + "?series=unknown", credential: "aws"),
      // The bound host, whose error page repeats the Authorization it got.
      source("echoed", base + "?series=echoed&status=403&mirror=1"),
      source("worker-token", "file://\(cluster.workerTokenPath)"),
      source("admin-token", "file://\(cluster.dataDirectory)/admin.token", credential: ""),
    ]
    let job = try await submitter.submit(spec("exfiltrate", sources, maxAttempts: 1)).job
    let result = try await finish(submitter, job)
    var missing: [String: String] = [:]
    for source in result.report.summary.missing { missing[source.source] = source.error.code }
    #expect(missing["bound"] == nil, "\(missing)")
    #expect(missing["renamed"] == "credential", "\(missing)")
    #expect(missing["unknown"] == "credential", "\(missing)")
    #expect(missing["echoed"] == "http_403", "\(missing)")
    let echoed = result.report.summary.missing.first { $0.source == "echoed" }?.error.message ?? ""
    #expect(echoed.contains("auth was: Bearer [credential meta]"), "\(echoed)")
    #expect(missing["worker-token"] != nil, "\(missing)")
    #expect(missing["admin-token"] != nil, "\(missing)")

    // The bound host got the credential; nothing else got anything.
    #expect(server.authorizations(series: "bound").allSatisfy { $0 == "Bearer \(metaSecret)" })
    #expect(!server.authorizations(series: "bound").isEmpty)
    #expect(server.authorizations(series: "redirecting").allSatisfy { $0 == "Bearer \(metaSecret)" })
    #expect(server.authorizations(series: "redirected") == [""], "the redirect was followed, without the credential")
    for series in ["refused", "renamed", "unknown"] {
      #expect(server.authorizations(series: series).isEmpty, "\(series) was fetched")
    }
    // No secret is in a report, an error message or a log line either.
    let everything =
      [cluster.logs(), "\(result)"]
      + ["coordinator", "worker-1"].compactMap {
        try? String(contentsOfFile: "\(cluster.directory)/\($0).log", encoding: .utf8)
      }
    for text in everything {
      for (what, secret) in [
        ("platform credential", metaSecret), ("worker token", workerSecret), ("admin token", adminSecret),
      ] {
        #expect(!text.contains(secret), "the \(what) appears in output")
      }
    }
  }
}
