import Foundation
import HaatCore
import HaatTesting
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The deploy files run Haat as a user of its own, and the tests run as root: a socket
/// option only root may set (SO_DEBUG, which `socketOption(.tcp_nodelay)` set, at the
/// socket level) refused every session of a coordinator, worker or client run as anyone
/// else, with nothing logged. Here each runs as `nobody`, through `setpriv`.
@Suite("Unprivileged", .serialized)
struct UnprivilegedTests {
  static let nobody = "65534"
  static let setpriv = "/usr/bin/setpriv"
  static var canDropPrivileges: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: setpriv) }

  /// `arguments` of `haat`, as `nobody`.
  static func asNobody(_ binary: String, _ arguments: [String]) -> [String] {
    ["--reuid", nobody, "--regid", nobody, "--clear-groups", binary] + arguments
  }

  @Test(.enabled(if: canDropPrivileges, "needs root and setpriv to become another user"))
  func aCoordinatorWorkerAndClientRunAsAnotherUser() async throws {
    let binary = try HaatBinary.path()
    let template = FileManager.default.temporaryDirectory.appendingPathComponent("haat-nobody-XXXXXX").path
    var bytes = Array(template.utf8CString)
    guard let made = mkdtemp(&bytes) else { throw HaatError(.internal, "cannot make a temporary directory") }
    let directory = String(cString: made)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    guard chown(directory, 65_534, 65_534) == 0 else { throw HaatError(.internal, "cannot chown \(directory)") }
    let data = directory + "/data"
    let ready = directory + "/ready"
    let coordinator = try ChildProcess(
      name: "coordinator", executable: Self.setpriv,
      arguments: Self.asNobody(
        binary,
        ["coordinator", "--listen", "127.0.0.1:0", "--data-dir", data, "--ready-file", ready, "--exit-with-parent"]),
      logPath: directory + "/coordinator.log")
    defer { coordinator.signal(SIGKILL) }
    var endpoint: String?
    for _ in 0..<1_500 where endpoint == nil {
      endpoint = try? String(contentsOfFile: ready, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
      if endpoint == nil { try await Task.sleep(for: .milliseconds(20)) }
    }
    let address = try #require(endpoint, "the coordinator did not start: \(coordinator.tail())")
    let common = ["--coordinator", address, "--data-dir", data]
    let token = try await run(
      Self.setpriv,
      Self.asNobody(
        binary, ["token", "create", "--role", "worker", "--name", "w1", "--out", directory + "/worker.token"] + common))
    #expect(token.status == 0, "\(token.output)")
    let worker = try ChildProcess(
      name: "worker", executable: Self.setpriv,
      arguments: Self.asNobody(
        binary,
        [
          "worker", "--coordinator", address, "--token-file", directory + "/worker.token", "--name", "w1",
          "--exit-with-parent",
        ]),
      logPath: directory + "/worker.log")
    defer { worker.signal(SIGKILL) }
    let spec = directory + "/noop.yaml"
    try "name: unprivileged\nsources:\n  - kind: noop\n".write(toFile: spec, atomically: true, encoding: .utf8)
    guard chown(spec, 65_534, 65_534) == 0 else { throw HaatError(.internal, "cannot chown \(spec)") }
    let submitted = try await run(Self.setpriv, Self.asNobody(binary, ["submit", spec, "--wait"] + common))
    #expect(submitted.status == 0, "\(submitted.output)\n\(coordinator.tail())\n\(worker.tail())")
    // A client of another user (root, here) is served as well.
    let listed = try await run(binary, ["jobs"] + common)
    #expect(listed.status == 0 && listed.output.contains("unprivileged"), "\(listed.output)")
  }
}
