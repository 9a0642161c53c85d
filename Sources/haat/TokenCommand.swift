import ArgumentParser
import Foundation
import HaatCoordinator
import HaatCore
import HaatProtocol

struct TokenCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "token", abstract: "Create, list and revoke tokens.",
    subcommands: [Create.self, List.self, Revoke.self])

  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Create a token in the coordinator's token file and write its credential file.")

    @Option(help: "worker, submit, read, admin, metrics (scrapes /metrics) or dashboard (the admin port's pages).")
    var role: String
    @Option(help: "The coordinator's data directory (env HAAT_DATA_DIR; default: haat-data).")
    var dataDir: String?
    @Option(help: "Where to write the credential file (mode 0600; default: <data-dir>/<role>-<id>.token).")
    var out: String?
    @Option(help: "A note kept with the token.")
    var label: String?
    @Option(help: "The coordinator address to record in the credential: host:port, or several, comma-separated.")
    var coordinator: String?
    @Option(help: "The one worker (or client) name this token may be used with.")
    var name: String?
    @Option(help: "Every name this token may be used with starts with this (a pool of workers sharing one token).")
    var namePrefix: String?

    var names: NameScope? {
      if let name { return .name(name) }
      if let namePrefix { return .prefix(namePrefix) }
      return nil
    }

    func validate() throws {
      guard let role = Role(rawValue: role) else {
        throw ValidationError("--role must be worker, submit, read, admin, metrics or dashboard")
      }
      guard name == nil || namePrefix == nil else { throw ValidationError("give --name or --name-prefix, not both") }
      if role == .worker, names == nil {
        throw ValidationError(
          "a worker token is bound to the workers that may use it: give --name NAME (one worker) or --name-prefix PREFIX (a pool)"
        )
      }
      if let name, !HandshakeLimits.isValidName(name) {
        throw ValidationError(
          "--name must be 1 to 128 bytes in Unicode NFC (composed) without control or bidi characters")
      }
      if let namePrefix, namePrefix.isEmpty || !HandshakeLimits.isValidName(namePrefix) {
        throw ValidationError(
          "--name-prefix must be 1 to 127 bytes in Unicode NFC (composed) without control or bidi characters")
      }
      // An active coordinator and its standbys, as a worker's --coordinator takes them.
      if let coordinator, Endpoint.list(coordinator) == nil {
        throw ValidationError("--coordinator must be host:port[,host:port…], not \(coordinator)")
      }
      try refuseEmptyDataDirectory(dataDir)
      if let out, let refusal = RegularFile.refusal(out) { throw ValidationError("--out: \(refusal)") }
      let directory = dataDir ?? ProcessInfo.processInfo.environment["HAAT_DATA_DIR"] ?? "haat-data"
      if let out, samePath(out, in: directory, ["tokens", "haat.db", "haat.db-wal"]) {
        throw ValidationError("--out \(out) is one of the coordinator's own files")
      }
    }

    func run() throws {
      let role = Role(rawValue: role) ?? .read
      let directory = dataDir ?? ProcessInfo.processInfo.environment["HAAT_DATA_DIR"] ?? "haat-data"
      let store = TokenStore(path: directory + "/tokens")
      // A token file gone from a directory a coordinator has run in (its admin.token is
      // there): a new file would hold only this token, and the running coordinator would
      // drop every other one (a tester's next `token create` locked everyone out).
      if !FileManager.default.fileExists(atPath: store.path),
        FileManager.default.fileExists(atPath: directory + "/admin.token")
      {
        throw HaatError(
          .badRequest,
          "the token file \(store.path) is missing, though admin.token beside it says a coordinator has run here: a new file would hold only this token and revoke every other; restore the token file (from a backup, or the running coordinator's /proc/PID/fd/) first"
        )
      }
      do {
        let credential = try store.create(role: role, label: label, coordinator: coordinator, names: names) {
          credential in
          let path = out ?? "\(directory)/\(role.rawValue)-\(credential.tokenID).token"
          do {
            if role == .metrics || role == .dashboard {
              // A bearer token file, as Prometheus reads one (`credentials_file`): ID:SECRET.
              try credential.writeBearer(path: path)
            } else {
              try credential.write(path: path)
            }
          } catch {
            throw HaatError(.internal, "cannot write \(path): \(HaatError.systemReason(error))")
          }
        }
        let path = out ?? "\(directory)/\(role.rawValue)-\(credential.tokenID).token"
        // The secret is written only to the credential file, never to the terminal.
        print("created \(role.rawValue) token \(credential.tokenID); credential written to \(path)")
      } catch let error as HaatError {
        printError("cannot create the token: \(error.message)")
        throw ExitCode(Exit.failure)
      } catch {
        printError("cannot create the token: \(error.localizedDescription)")
        throw ExitCode(Exit.failure)
      }
    }
  }

  struct Revoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Revoke a token: new sessions are refused and the running coordinator closes open ones within a second."
    )
    @Argument(help: "The token's id (t_…), as `haat token list` shows it.")
    var id: String
    @Option(help: "The coordinator's data directory (env HAAT_DATA_DIR; default: haat-data).")
    var dataDir: String?

    func validate() throws {
      // As the other commands' empty ids: an unset shell variable, said as such (a tester).
      if id.trimmingCharacters(in: .whitespaces).isEmpty {
        throw ValidationError("the token id is empty: name one (t_…), as `haat token list` shows it")
      }
      try refuseEmptyDataDirectory(dataDir)
    }

    func run() throws {
      let directory = dataDir ?? ProcessInfo.processInfo.environment["HAAT_DATA_DIR"] ?? "haat-data"
      do {
        guard try TokenStore(path: directory + "/tokens").revoke(id: id) else {
          printError("no token \(DisplayText.escape(id)) in \(directory)/tokens")
          throw ExitCode(Exit.notFound)
        }
        print("revoked token \(id); open sessions with it close within a second")
      } catch let error as HaatError {
        printError("cannot revoke the token: \(error.message)")
        throw ExitCode(Exit.failure)
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List tokens (ids and roles; never secrets).")
    @Option(help: "The coordinator's data directory (env HAAT_DATA_DIR; default: haat-data).")
    var dataDir: String?

    func validate() throws { try refuseEmptyDataDirectory(dataDir) }

    func run() throws {
      let directory = dataDir ?? ProcessInfo.processInfo.environment["HAAT_DATA_DIR"] ?? "haat-data"
      let store = TokenStore(path: directory + "/tokens")
      for token in store.list() {
        let names = token.names.map { "for peers \($0)" } ?? "any name"
        // A label is anyone's text: its line breaks shown, not a forged line of the list.
        print("\(token.id)  \(token.role.rawValue)  \(names)  \(DisplayText.escape(token.label))")
      }
      let unread = store.unreadLines()
      if !unread.isEmpty {
        printError(
          "warning: \(store.path) has lines that are not tokens, ignored (the coordinator ignores them too): line \(unread.prefix(20).map(String.init).joined(separator: ", "))"
        )
      }
    }
  }
}

/// Whether `path` names one of `files` in `directory` (a credential or ready file written
/// over the token file lost every token).
func samePath(_ path: String, in directory: String, _ files: [String]) -> Bool {
  func resolved(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
  }
  let target = resolved(path)
  return files.contains { resolved(directory + "/" + $0) == target }
}

/// An empty data directory (`--data-dir "$DIR"` with DIR unset, or `HAAT_DATA_DIR=`) would put
/// the store and the tokens at the file system's root: refused, not read as the root.
func refuseEmptyDataDirectory(_ flag: String?) throws {
  if flag?.isEmpty == true { throw ValidationError("--data-dir must name a directory, not an empty string") }
  if flag == nil, ProcessInfo.processInfo.environment["HAAT_DATA_DIR"]?.isEmpty == true {
    throw ValidationError("HAAT_DATA_DIR is set but empty: name a directory, or unset it for haat-data")
  }
}
