import Foundation
import HaatCore
import HaatProtocol
import Synchronization
import Testing

#if canImport(Glibc)
  import Glibc
#endif

@Suite struct SecretFileTests {
  /// No file in the credential's directory is ever readable by others, not even for a
  /// moment: a watcher stats every entry while credentials are written, with umask 0.
  @Test func noCopyOfASecretIsEverReadableByOthers() throws {
    let directory = NSTemporaryDirectory() + "haat-secret-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let previous = umask(0)
    defer { umask(previous) }

    let done = Atomic<Bool>(false)
    let exposed = Mutex<[String]>([])
    let watcher = Thread {
      while !done.load(ordering: .relaxed) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
          var info = stat()
          if stat(directory + "/" + name, &info) == 0, info.st_mode & 0o077 != 0 {
            let seen = "\(name) \(String(info.st_mode & 0o777, radix: 8))"
            exposed.withLock { if $0.count < 5, !$0.contains(seen) { $0.append(seen) } }
          }
        }
      }
    }
    watcher.start()
    for index in 0..<200 {
      let credential = Credential(tokenID: "t_\(index)", secret: "secret-\(index)", role: .worker)
      try credential.write(path: directory + "/worker.token")
    }
    done.store(true, ordering: .relaxed)
    Thread.sleep(forTimeInterval: 0.05)
    #expect(exposed.withLock { $0 }.isEmpty)
    var info = stat()
    #expect(stat(directory + "/worker.token", &info) == 0)
    #expect(info.st_mode & 0o777 == 0o600)
    // Only the credential is left: no temporary copies.
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["worker.token"])
    #expect(try Credential.load(path: directory + "/worker.token").tokenID == "t_199")
  }
}
