import Foundation
import HaatClient
import HaatCore
import HaatFixtures
import HaatProtocol
import HaatTesting
import Testing

enum WireCapture {
  static let available = FileManager.default.isExecutableFile(atPath: "/usr/bin/tcpdump") && getuid() == 0
}

/// TLS on the protocol port, checked on the wire: tcpdump captures the coordinator's port
/// while a client submits a job and reads its report. With TLS, no spec, report or token
/// crosses in clear text; without it the same capture shows the spec and the report (so
/// the check can fail). The token's secret never crosses either way.
@Suite(.enabled(if: WireCapture.available, "needs tcpdump and root (scripts/install-deps test)"))
struct TLSClusterTests {
  static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

  /// Makes a CA and certificates with scripts/dev-certs (its log inside the directory, so
  /// the caller's removal takes both).
  static func certificates(in directory: String) async throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let process = try ChildProcess(
      name: "dev-certs", executable: repository + "/scripts/dev-certs", arguments: [directory],
      logPath: directory + "/dev-certs.log")
    guard await process.wait(timeout: .seconds(30)) == 0 else {
      throw HaatError(.internal, "scripts/dev-certs failed:\n\(process.tail())")
    }
  }

  @Test(arguments: [true, false]) func nothingCrossesInClearTextWithTLS(tls: Bool) async throws {
    let certificates = NSTemporaryDirectory() + "haat-certs-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: certificates) }
    try await Self.certificates(in: certificates)
    var options = LocalCluster.Options.fast
    options.tlsDirectory = tls ? certificates : nil
    try await withCluster(options) { cluster, server in
      let pcap = cluster.directory + "/wire.pcap"
      let capture = try ChildProcess(
        name: "tcpdump", executable: "/usr/bin/tcpdump",
        arguments: [
          "-i", "lo", "-U", "--immediate-mode", "-s", "0", "-w", pcap, "tcp", "port", String(cluster.endpoint.port),
        ],
        logPath: cluster.directory + "/tcpdump.log")
      try await eventually("tcpdump listening") { capture.tail().contains("listening on") }
      let samples = try Samples.manifest()
      let canary = "wiretap-canary-\(UInt32.random(in: 0...UInt32.max))"
      var source = Samples.source(samples[0], server: server)
      source.name = canary
      let client = try await cluster.client()
      let job = try await client.submit(spec("tls \(tls)", [source])).job
      let result = try await finish(client, job)
      #expect(result.job.state == "succeeded")
      let account = try #require(result.report.engagement.rows.first?.account)
      await client.close()
      try await Task.sleep(for: .seconds(1))
      // SIGKILL: a child inherits the test runner's blocked SIGTERM/SIGINT, and tcpdump
      // never unblocks them; -U has written every packet as it came, so nothing is lost.
      capture.signal(SIGKILL)
      #expect(await capture.wait(timeout: .seconds(10)) != nil, "tcpdump did not stop")
      let wire = try Data(contentsOf: URL(fileURLWithPath: pcap))
      func seen(_ text: String) -> Bool { wire.range(of: Data(text.utf8)) != nil }
      let credential = try cluster.adminCredential()
      #expect(wire.count > 1_000, "the capture holds the session")
      #expect(!seen(credential.secret), "the token's secret crossed the wire")
      if tls {
        for text in [canary, account, "engagement", credential.tokenID, "/samples/"] {
          #expect(!seen(text), "\(text) crossed the wire in clear text")
        }
      } else {
        #expect(seen(canary) && seen(account), "the plaintext capture shows the spec and report")
      }
    }
  }

  /// A plaintext client on a TLS port is told why nothing answers, and the coordinator
  /// logs the non-TLS bytes of a raw client.
  /// A coordinator serving TLS with scripts/dev-certs' certificates (and wanting client
  /// certificates signed by their CA, with `clientCA`), no workers.
  static func withTLSCluster(
    clientCA: Bool = false, _ body: (LocalCluster, _ certificates: String) async throws -> Void
  ) async throws {
    let certificates = NSTemporaryDirectory() + "haat-certs-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: certificates) }
    try await Self.certificates(in: certificates)
    var options = LocalCluster.Options.fast
    options.tlsDirectory = certificates
    options.workers = 0
    if clientCA { options.coordinatorArguments = ["--tls-client-ca", certificates + "/ca.pem"] }
    try await withCluster(options) { cluster, _ in try await body(cluster, certificates) }
  }

  @Test func aPlaintextClientOnATLSPortIsToldToUseTLS() async throws {
    try await Self.withTLSCluster { cluster, certificates in
      do {
        let client = try await HaatClient.connect(to: cluster.endpoint, credential: try cluster.adminCredential())
        await client.close()
        Issue.record("a plaintext client got in")
      } catch let error as HaatError {
        #expect(error.code == .handshakeTimeout)
        #expect(error.message.contains("is the coordinator using TLS? try --tls"))
      }
      // Over TLS, an unknown token gets the documented auth_failed, as without it.
      do {
        let client = try await HaatClient.connect(
          to: cluster.endpoint, credential: Credential(tokenID: "t_0123456789abcdef", secret: "wrong", role: .admin),
          tls: TLSClientSettings(caPath: certificates + "/ca.pem"))
        await client.close()
        Issue.record("an unknown token got in")
      } catch let error as HaatError {
        #expect(error.code == .authFailed)
        #expect(error.message.contains("unknown token or wrong MAC"))
      }
      // A TLS client that does not trust the coordinator's CA is told so.
      do {
        let client = try await HaatClient.connect(
          to: cluster.endpoint, credential: try cluster.adminCredential(), tls: TLSClientSettings())
        await client.close()
        Issue.record("a client trusting only the system's roots got in")
      } catch let error as HaatError {
        #expect(error.message.contains("not trusted"), "\(error)")
        #expect(error.message.contains("(the coordinator at \(cluster.endpoint))"), "named: \(error)")
      }
      let (status, _) = try await run(
        "/usr/bin/python3",
        [
          "-c",
          "import socket; s=socket.create_connection(('127.0.0.1', \(cluster.endpoint.port))); s.sendall(b'{\"id\":\"1\"}\\n'); s.recv(10)",
        ])
      #expect(status == 0)
      try await eventually("the coordinator logs the bytes") {
        (cluster.coordinator?.tail(50) ?? "").contains("not TLS")
          && (cluster.coordinator?.tail(50) ?? "").contains("{\\\"id\\\":\\\"1\\\"}")
      }
      // Found by a tester: the plaintext client's timeout and the TLS error of the close it
      // caused were two failures (the lockout came early); a client refusing the
      // coordinator's certificate was counted; and every plaintext probe wrote a line.
      let lines = (cluster.coordinator?.tail(2_000) ?? "").split(separator: "\n")
      #expect(lines.filter { $0.contains("handshake failed") }.count == 3, "\(lines.joined(separator: "\n"))")
      #expect(lines.contains { $0.contains("the client ended the TLS handshake") && $0.contains("not counted") })
      let (flood, _) = try await run(
        "/usr/bin/python3",
        [
          "-c",
          "import socket\nfor _ in range(30):\n  s=socket.create_connection(('127.0.0.1', \(cluster.endpoint.port))); s.sendall(b'X'*48+b'\\n'); s.recv(10); s.close()",
        ])
      #expect(flood == 0)
      try await Task.sleep(for: .milliseconds(500))
      let after = (cluster.coordinator?.tail(2_000) ?? "").split(separator: "\n")
      #expect(after.filter { $0.contains("127.0.0.1") && $0.contains("not TLS to the TLS port") }.count <= 5)
    }
  }

  /// A connection that never starts TLS is closed at the handshake's deadline, as a
  /// plaintext port closes one: the error written to it waited behind the TLS handshake
  /// that never came, and the close waited for that write, so about a thousand idle
  /// sockets held the coordinator's handshake slots for good and locked everyone out.
  @Test func aConnectionThatNeverStartsTLSIsClosed() async throws {
    try await Self.withTLSCluster { cluster, _ in
      let (status, output) = try await run(
        "/usr/bin/python3",
        [
          "-c",
          """
          import socket, time
          s = socket.create_connection(('127.0.0.1', \(cluster.endpoint.port)))
          s.settimeout(30)
          start = time.monotonic()
          try:
              data = s.recv(100)
          except ConnectionResetError:
              data = b''
          print(round(time.monotonic() - start, 1), len(data))
          """,
        ])
      #expect(status == 0, "\(output)")
      let fields = output.split(separator: " ")
      let seconds = try #require(fields.first.flatMap { Double($0) }, "\(output)")
      #expect(seconds < 20, "closed after \(seconds) s, the handshake's deadline is 5 s")
      #expect(fields.last?.hasPrefix("0") == true, "\(output)")
    }
  }

  /// Mutual TLS: a client without a certificate is told the coordinator wants one (an
  /// auth failure, exit 5), not handed a raw TLS alert; with the client certificate it gets in.
  @Test func aClientWithoutACertificateIsToldMutualTLSWantsOne() async throws {
    try await Self.withTLSCluster(clientCA: true) { cluster, certificates in
      let common = [
        "--coordinator", cluster.endpoint.description, "--data-dir", cluster.dataDirectory, "--tls-ca",
        certificates + "/ca.pem",
      ]
      let without = try await run(cluster.binary, ["jobs"] + common)
      #expect(without.status == 5, "\(without.output)")
      #expect(without.output.contains("wants a client certificate"), "\(without.output)")
      // The refusal is the coordinator's to log too (it logged nothing), as any failed
      // handshake; its start says client certificates are asked for.
      try await eventually("the coordinator logs the refused TLS handshake") {
        (cluster.coordinator?.tail(200) ?? "").contains("the TLS handshake failed")
      }
      #expect((cluster.coordinator?.tail(200) ?? "").contains(#""tls":"mutual""#))
      let with = try await run(
        cluster.binary,
        ["jobs"] + common + ["--tls-cert", certificates + "/client.pem", "--tls-key", certificates + "/client.key"])
      #expect(with.status == 0, "\(with.output)")
    }
  }
}

/// A certificate outside its dates is refused where it is loaded, saying when it expired:
/// peers would only say they do not trust it.
@Suite struct TLSCertificateDatesTests {
  @Test func aCertificateOutsideItsDatesIsRefusedAtStart() async throws {
    let certificates = NSTemporaryDirectory() + "haat-certs-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: certificates) }
    try await TLSClusterTests.certificates(in: certificates)
    let path = certificates + "/server.pem"
    let chain = try TLSFiles.certificates(path, "--tls-cert")
    try TLSFiles.current(chain, path, "--tls-cert")
    #expect(throws: HaatError.self) { try TLSFiles.current(chain, path, "--tls-cert", now: Date() + 400 * 86_400) }
    do {
      try TLSFiles.current(chain, path, "--tls-cert", now: Date() + 400 * 86_400)
    } catch let error as HaatError {
      #expect(error.message.contains("the certificate expired at") && error.message.contains(path), "\(error)")
    }
    do {
      try TLSFiles.current(chain, path, "--tls-cert", now: Date() - 3 * 86_400)
      Issue.record("a certificate not valid yet was taken")
    } catch let error as HaatError {
      #expect(error.message.contains("is not valid until"), "\(error)")
    }
    // An intermediate that expires before the leaf (a tester's chain started the
    // coordinator, and every client failed): a 1-day certificate after the 30-day leaf.
    let short = certificates + "/short.pem"
    let openssl = Process()
    openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    openssl.arguments = [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", certificates + "/short.key", "-days", "1",
      "-subj", "/CN=intermediate", "-out", short,
    ]
    openssl.standardError = FileHandle.nullDevice
    try openssl.run()
    openssl.waitUntilExit()
    let bundle = certificates + "/bundle.pem"
    try (String(contentsOfFile: path, encoding: .utf8) + String(contentsOfFile: short, encoding: .utf8))
      .write(toFile: bundle, atomically: true, encoding: .utf8)
    let both = try TLSFiles.certificates(bundle, "--tls-cert")
    #expect(both.count == 2)
    try TLSFiles.current(both, bundle, "--tls-cert")
    do {
      try TLSFiles.current(both, bundle, "--tls-cert", now: Date() + 3 * 86_400)
      Issue.record("a chain with an expired intermediate was taken")
    } catch let error as HaatError {
      #expect(error.message.contains("certificate 2 of the chain (an intermediate or its root) expired at"), "\(error)")
    }
  }
}
