import Foundation
import HaatClient
import HaatCore
import HaatProtocol
import HaatTesting
import Testing

/// Issue 10, defect 7: a connection reset mid-request is `unavailable` (exit 6, as
/// docs/cli.md promises), never a raw NIO error and exit 1.
@Suite("Transport errors", .serialized)
struct TransportErrorTests {
  /// A fake coordinator (Python, stdlib): sends a challenge, reads the hello, then resets
  /// the connection (SO_LINGER 0); once at the handshake, once after a reply began.
  static let resetter = #"""
    import json, socket, struct, sys
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    print(server.getsockname()[1], flush=True)
    for _ in range(2):
        conn, _ = server.accept()
        conn.sendall(b'{"challenge":{"versions":[1],"nonce":"00000000000000000000000000000000"}}\n')
        conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    """#

  @Test func aResetIsUnavailable() async throws {
    let directory = NSTemporaryDirectory() + "haat-reset-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let token = directory + "/read.token"
    try #"{"token_id":"t_0000000000000000","secret":"not-a-real-secret","role":"read"}"#.write(
      toFile: token, atomically: true, encoding: .utf8)
    let fake = Process()
    fake.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    fake.arguments = ["python3", "-c", Self.resetter]
    let pipe = Pipe()
    fake.standardOutput = pipe
    try fake.run()
    defer { fake.terminate() }
    let port = String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(Int(port) != nil)
    for command in [["jobs"], ["workers"]] {
      let result = try await run(
        try HaatBinary.path(), command + ["--coordinator", "127.0.0.1:\(port)", "--token-file", token])
      #expect(result.status == 6, "\(command): exit \(result.status): \(result.output)")
      #expect(result.output.contains("unavailable"), "\(result.output)")
    }
    // Nothing listening: the system's reason, as a person reads it, not NIO's dump. On a
    // port of FreePorts' (none of this process's tests is given it again): the fake's,
    // free once it stopped, was once taken by another test's listener meanwhile.
    let unused = try FreePorts.pick(1)[0]
    let refused = try await run(
      try HaatBinary.path(), ["jobs", "--coordinator", "127.0.0.1:\(unused)", "--token-file", token])
    #expect(refused.status == 6)
    #expect(
      refused.output == "haat: unavailable: cannot reach the coordinator at 127.0.0.1:\(unused): Connection refused\n",
      "\(refused.output)")
  }

  /// A request to a coordinator that stops answering times out (it used to wait forever:
  /// the wait ignored cancellation).
  @Test func aCallToASilentCoordinatorTimesOut() async throws {
    try await withCluster(.fast(workers: 0)) { cluster, _ in
      let client = try await HaatClient.connect(
        to: cluster.endpoint, credential: try cluster.adminCredential(), name: "impatient", timeout: .seconds(1))
      let coordinator = try #require(cluster.coordinator)
      coordinator.signal(SIGSTOP)
      defer { coordinator.signal(SIGCONT) }
      // A signal is delivered asynchronously: call only once the kernel shows it stopped (a
      // thread in an fsync stops when the fsync ends, seconds on a loaded disk).
      try await eventually("the coordinator is stopped", timeout: .seconds(20)) {
        let status = (try? String(contentsOfFile: "/proc/\(coordinator.pid)/status", encoding: .utf8)) ?? ""
        return status.split(separator: "\n").contains { $0.hasPrefix("State:") && $0.contains("T (stopped)") }
      }
      let started = ContinuousClock.now
      do {
        _ = try await client.jobs()
        Issue.record("a stopped coordinator answered")
      } catch let error as HaatError {
        #expect(error.code == .unavailable)
      }
      #expect(ContinuousClock.now - started < .seconds(30))
      cluster.coordinator?.signal(SIGCONT)
      await client.close()
    }
  }
}

/// Messages a person acts on: the path that could not be written, and why a duration is
/// refused.
@Suite struct CLIMessageTests {
  /// Found by a tester: `--svg` at a directory gave Foundation's "error 512" and at a FIFO
  /// blocked for good; an empty HAAT_TOKEN_FILE read a file named "". Both exit 64 saying so,
  /// before anything connects.
  @Test func outputPathsAndAnEmptyTokenVariableAreCheckedFirst() async throws {
    let binary = try HaatBinary.path()
    let directory = NSTemporaryDirectory()
    let svg = try await run(binary, ["result", "1", "--report", "best_time", "--svg", directory])
    #expect(svg.status == 64 && svg.output.contains("--svg: \(directory) is a directory"), "\(svg.output)")
    let empty = try await run("/usr/bin/env", ["HAAT_TOKEN_FILE=", binary, "jobs"])
    #expect(empty.status == 64 && empty.output.contains("HAAT_TOKEN_FILE is set but empty"), "\(empty.output)")
    // The TLS variables alike: "--tls-ca : No such file or directory" blamed a flag not given.
    let ca = try await run("/usr/bin/env", ["HAAT_TLS_CA=", binary, "jobs"])
    #expect(ca.status == 64 && ca.output.contains("HAAT_TLS_CA is set but empty"), "\(ca.output)")
    let certificate = try await run("/usr/bin/env", ["HAAT_TLS_CERT=", "HAAT_TLS_KEY=", binary, "coordinator"])
    #expect(
      certificate.status == 64 && certificate.output.contains("HAAT_TLS_CERT is set but empty"), "\(certificate.output)"
    )
  }

  /// Found by a tester: with the token file gone (the coordinator keeps the tokens it read),
  /// `token create` wrote a new file of only its token, and every other was revoked.
  @Test func noTokenIsCreatedIntoAMissingTokenFileBesideAnAdminToken() async throws {
    let binary = try HaatBinary.path()
    let directory = NSTemporaryDirectory() + "haat-orphan-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try Data("{}".utf8).write(to: URL(fileURLWithPath: directory + "/admin.token"))
    let refused = try await run(binary, ["token", "create", "--role", "submit", "--data-dir", directory])
    #expect(refused.status != 0 && refused.output.contains("is missing, though admin.token"), "\(refused.output)")
    #expect(!FileManager.default.fileExists(atPath: directory + "/tokens"))
  }

  @Test func aTokenFileThatCannotBeWrittenIsNamed() async throws {
    let directory = NSTemporaryDirectory() + "haat-token-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let result = try await run(
      try HaatBinary.path(),
      ["token", "create", "--role", "read", "--data-dir", directory, "--out", "/proc/nope/x.token"])
    #expect(result.status == 1)
    #expect(
      result.output == "haat: cannot create the token: cannot write /proc/nope/x.token: No such file or directory\n",
      "\(result.output)")
  }

  /// A credential is written by a rename over its path, so a FIFO or a device there was
  /// replaced (as root, `--out /dev/null` left a regular file holding a secret); an empty
  /// data directory put the tokens at the file system's root.
  @Test func aTokenGoesToARegularFileInANamedDirectory() async throws {
    let directory = NSTemporaryDirectory() + "haat-token-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let fifo = directory + "/fifo"
    #expect(mkfifo(fifo, 0o600) == 0)
    let out = try await run(
      try HaatBinary.path(), ["token", "create", "--role", "read", "--data-dir", directory, "--out", fifo])
    #expect(out.status == 64, "\(out.output)")
    #expect(out.output.contains("--out: \(fifo) is not a regular file"), "\(out.output)")
    var status = stat()
    #expect(lstat(fifo, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO, "the FIFO is still one")
    // A label's line break is shown, not a line of the list of its own.
    let labelled = try await run(
      try HaatBinary.path(),
      ["token", "create", "--role", "read", "--data-dir", directory, "--label", "x\nt_forged  admin  any name"])
    #expect(labelled.status == 0, "\(labelled.output)")
    let list = try await run(try HaatBinary.path(), ["token", "list", "--data-dir", directory])
    #expect(list.output.contains("x\\nt_forged"), "\(list.output)")
    #expect(!list.output.split(separator: "\n").contains { $0.hasPrefix("t_forged") }, "\(list.output)")
    // A credential written over the token file lost every token.
    let overTokens = try await run(
      try HaatBinary.path(),
      ["token", "create", "--role", "read", "--data-dir", directory, "--out", directory + "/./tokens"])
    #expect(
      overTokens.status == 64 && overTokens.output.contains("is one of the coordinator's own files"),
      "\(overTokens.output)")
    // A FIFO as a TLS file blocked the read for ever.
    let tls = try await run(
      try HaatBinary.path(), ["jobs", "--tls-ca", fifo, "--token-file", "/nonexistent", "--coordinator", "127.0.0.1:1"])
    #expect(tls.status == 64 && tls.output.contains("is not a regular file"), "\(tls.output)")
    for arguments in [
      ["token", "create", "--role", "read"], ["token", "list"], ["token", "revoke", "t_1"], ["jobs"],
    ] {
      let empty = try await run(try HaatBinary.path(), arguments + ["--data-dir", ""])
      #expect(empty.status == 64, "\(arguments): \(empty.output)")
      #expect(empty.output.contains("--data-dir must name a directory"), "\(arguments): \(empty.output)")
    }
  }

  /// An address from the environment is blamed on the variable, not on a flag not given.
  @Test func aBadAddressNamesWhereItCameFrom() async throws {
    let file = NSTemporaryDirectory() + "haat-read-\(UUID().uuidString).token"
    defer { try? FileManager.default.removeItem(atPath: file) }
    try Credential(tokenID: "t_1", secret: String(repeating: "a", count: 64), role: .read).write(path: file)
    let result = try await run(
      "/usr/bin/env", ["HAAT_COORDINATOR=nope", try HaatBinary.path(), "jobs", "--token-file", file])
    #expect(result.status == 64)
    #expect(result.output.contains("HAAT_COORDINATOR must be host:port"), "\(result.output)")
  }

  @Test func pruningOlderThanNothingSaysSo() async throws {
    let result = try await run(
      try HaatBinary.path(), ["jobs", "prune", "--older-than", "0s", "--coordinator", "127.0.0.1:1"])
    #expect(result.status == 64)
    #expect(result.output.contains("--older-than must be more than 0"), "\(result.output)")
  }
}
