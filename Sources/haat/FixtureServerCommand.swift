import ArgumentParser
import Foundation
import HaatCore
import HaatFixtures
import HaatProtocol
import Logging
import ServiceLifecycle

struct FixtureServerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fixture-server",
    abstract:
      "Run the fixture platform server on loopback: the bundled sample exports and fixtures of the platforms' APIs, for trying Haat without the platforms.",
    discussion: """
      Routes and tokens: /samples/NAME (the bundled canonical exports); \
      /meta/v21.0/{page}/posts, /meta/v21.0/{ig-user}/media and /meta/v21.0/act_{id}/insights \
      (Meta's Graph API and ads insights; fixture-meta-token); \
      /shopify/{shop}/admin/api/2024-01/orders.json (fixture-shopify-token); \
      /tiktok/open_api/v1.3/report/integrated/get/ (fixture-tiktok-token); \
      /linkedin/rest/posts (fixture-linkedin-token); /youtube/v3/… and /youtubeanalytics/v2/reports \
      (fixture-youtube-token); /pinterest/v5/pins (fixture-pinterest-token); \
      /files/PATH (with --root); /generate/posts.csv?rows=N. docs/fixtures.md.
      """)

  @Option(help: "Serve files under this directory at /files/.")
  var root: String?
  @Option(help: "The port (0 = any free one).")
  var port = 0
  @Option(help: "Write host:port here once listening.")
  var readyFile: String?
  @Flag(help: .hidden)
  var exitWithParent = false

  func validate() throws {
    guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0 to 65535, not \(port)") }
    if let readyFile, let refusal = RegularFile.refusal(readyFile) {
      throw ValidationError("--ready-file: \(refusal)")
    }
    // As the coordinator's and worker's --file-root: an empty one served the current
    // directory, a missing one started a server with nothing at /files/.
    if let root {
      var isDirectory: ObjCBool = false
      guard !root.isEmpty else { throw ValidationError("--root must name a directory, not be empty") }
      guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw ValidationError("--root \(root) is not a directory")
      }
    }
  }

  func run() async throws {
    let server: FixtureServer
    do {
      server = try await FixtureServer.start(port: port, root: root)
    } catch {
      // As the coordinator says it (exit 6), not the socket layer's raw error.
      printError(
        HaatError(.unavailable, "cannot listen on 127.0.0.1:\(port): \(SocketFailure.describe(error))").description)
      throw ExitCode(Exit.unavailable)
    }
    if let readyFile {
      do {
        try RegularFile.write("\(server.host):\(server.port)\n", to: readyFile)
      } catch let error as HaatError {
        try? await server.stop()
        printError(error.description)
        throw ExitCode(Exit.unavailable)
      }
    }
    try? FileHandle.standardOutput.write(
      contentsOf: Data(
        "serving \(server.baseURL): exports at /samples/, Meta's Graph API at /meta/v21.0 (token fixture-meta-token); the other platforms' routes and tokens: haat fixture-server --help\n"
          .utf8))
    let logger = makeLogger("haat.fixtures", level: .warning)
    try await runServices([IdleService()], exitWithParent: exitWithParent, logger: logger)
    try await server.stop()
  }
}
