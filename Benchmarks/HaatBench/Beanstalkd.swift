import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A beanstalkd server in a temporary directory with its binlog, and a minimal blocking
/// client: the peer side of the dispatch benchmark.
final class BeanstalkdServer {
  let port: Int
  let directory: String
  private let process: Process

  /// Starts beanstalkd on loopback with a binlog; `fsync` is beanstalkd's `-f` value in ms
  /// (nil = its default, at most every 50 ms).
  init(fsync: Int?) throws {
    guard
      let path = ["/usr/bin/beanstalkd", "/usr/sbin/beanstalkd", "/usr/local/bin/beanstalkd"].first(
        where: FileManager.default.isExecutableFile)
    else {
      throw BenchError("beanstalkd is not installed (make bench-dispatch installs it with apt)")
    }
    directory = NSTemporaryDirectory() + "haat-bench-beanstalkd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    port = try freePort()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments =
      ["-l", "127.0.0.1", "-p", String(port), "-b", directory] + (fsync.map { ["-f", String($0)] } ?? [])
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    self.process = process
    // Wait until it accepts connections.
    for _ in 0..<200 {
      if let connection = try? LineConnection(port: port) {
        connection.close()
        return
      }
      usleep(10_000)
    }
    throw BenchError("beanstalkd did not start")
  }

  /// beanstalkd 1.12 does not exit on SIGTERM; this throwaway server gets SIGKILL.
  func stop() {
    kill(process.processIdentifier, SIGKILL)
    while process.isRunning { usleep(5_000) }
    try? FileManager.default.removeItem(atPath: directory)
  }
}

/// One blocking TCP connection on loopback that sends text and reads lines: beanstalkd's
/// protocol, and Haat's for the benchmark's own raw client and worker.
final class LineConnection {
  private let socket: Int32
  private var buffer = [UInt8](repeating: 0, count: 1 << 16)
  private var start = 0
  private var end = 0

  init(port: Int) throws {
    socket = try connectLoopback(port: port)
  }

  func close() { Glibc.close(socket) }

  func send(_ text: String) throws {
    var bytes = Array(text.utf8)  // copied: write(2) may take it in pieces
    var offset = 0
    while offset < bytes.count {
      let written = bytes.withUnsafeMutableBytes {
        Glibc.write(socket, $0.baseAddress.map { $0 + offset }, $0.count - offset)
      }
      guard written > 0 else { throw BenchError("beanstalkd write failed") }
      offset += written
    }
  }

  /// Whether a whole line is already read (the next `line()` will not block).
  var hasLine: Bool { buffer[start..<end].contains(UInt8(ascii: "\n")) }

  /// Reads one "\r\n"- or "\n"-terminated line.
  func line() throws -> String {
    let bytes = try lineBytes()
    let text = String(decoding: bytes, as: UTF8.self)
    return text.hasSuffix("\r") ? String(text.dropLast()) : text
  }

  /// Reads one line's bytes, without its "\n".
  func lineBytes() throws -> [UInt8] {
    while true {
      if let index = buffer[start..<end].firstIndex(of: UInt8(ascii: "\n")) {
        let bytes = Array(buffer[start..<index])
        start = index + 1
        return bytes
      }
      if start > 0 {
        buffer.replaceSubrange(0..<(end - start), with: buffer[start..<end])
        end -= start
        start = 0
      }
      if end == buffer.count { buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count)) }
      let count = buffer.withUnsafeMutableBytes { Glibc.read(socket, $0.baseAddress.map { $0 + end }, $0.count - end) }
      guard count > 0 else { throw BenchError("beanstalkd closed the connection") }
      end += count
    }
  }

  /// Skips `count` body bytes and the "\r\n" after them.
  func skip(_ count: Int) throws {
    var remaining = count + 2
    while remaining > 0 {
      if start < end {
        let take = min(remaining, end - start)
        start += take
        remaining -= take
        continue
      }
      start = 0
      end = 0
      let read = buffer.withUnsafeMutableBytes { Glibc.read(socket, $0.baseAddress, $0.count) }
      guard read > 0 else { throw BenchError("beanstalkd closed the connection") }
      end = read
    }
  }
}

func connectLoopback(port: Int) throws -> Int32 {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  guard fd >= 0 else { throw BenchError("socket failed") }
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_port = in_port_t(UInt16(port).bigEndian)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  let result = withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
  }
  guard result == 0 else {
    close(fd)
    throw BenchError("connect to 127.0.0.1:\(port) failed")
  }
  var one: Int32 = 1
  setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
  return fd
}

func freePort() throws -> Int {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  defer { close(fd) }
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  let bound = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
      guard bind(fd, pointer, length) == 0 else { return -1 }
      return getsockname(fd, pointer, &length)
    }
  }
  guard bound == 0 else { throw BenchError("cannot find a free port") }
  return Int(UInt16(bigEndian: address.sin_port))
}

/// The peer run: a producer puts `tasks` jobs (pipelined), `workers` threads each consume
/// until all are gone, one round trip per `reserve` and per `delete` (`depth` 1, as most
/// clients do) or with `depth` commands in flight: pipelined `reserve-with-timeout 0`s and
/// the `delete` of every job they got, as a tuned user does. Returns tasks per second.
func runBeanstalkd(workers: Int, tasks: Int, depth: Int = 1) throws -> Double {
  let server = try BeanstalkdServer(fsync: nil)
  defer { server.stop() }
  let port = server.port
  let remaining = Locked(tasks)
  let failures = Locked(0)
  let started = Date()
  let producer = Thread {
    do {
      try produce(port: port, tasks: tasks)
    } catch {
      FileHandle.standardError.write(Data("beanstalkd producer: \(error)\n".utf8))
      failures.update { $0 += 1 }
    }
  }
  producer.start()
  let group = DispatchGroup()
  for _ in 0..<workers {
    group.enter()
    Thread {
      defer { group.leave() }
      do {
        let connection = try LineConnection(port: port)
        defer { connection.close() }
        if depth > 1 {
          try consumePipelined(connection, remaining: remaining, depth: depth)
        } else {
          try consume(connection, remaining: remaining)
        }
      } catch {
        FileHandle.standardError.write(Data("beanstalkd worker: \(error)\n".utf8))
        failures.update { $0 += 1 }
      }
    }.start()
  }
  group.wait()
  let elapsed = Date().timeIntervalSince(started)
  guard failures.value == 0 else { throw BenchError("the beanstalkd run failed") }
  return Double(tasks) / elapsed
}

/// reserve → delete, a round trip each, until no job is left.
func consume(_ connection: LineConnection, remaining: Locked<Int>) throws {
  while remaining.value > 0 {
    try connection.send("reserve-with-timeout 1\r\n")
    let reply = try connection.line()
    if reply.hasPrefix("TIMED_OUT") { continue }
    let parts = reply.split(separator: " ")
    guard parts.count == 3, parts[0] == "RESERVED", let bytes = Int(parts[2]) else {
      throw BenchError("unexpected reply \(reply)")
    }
    try connection.skip(bytes)
    try connection.send("delete \(parts[1])\r\n")
    guard try connection.line() == "DELETED" else { throw BenchError("delete failed") }
    remaining.update { $0 -= 1 }
  }
}

/// `depth` reserves in flight, and every delete sent as soon as its job is in, until no
/// job is left.
func consumePipelined(_ connection: LineConnection, remaining: Locked<Int>, depth: Int) throws {
  var reserving = 0
  var outgoing = ""
  func topUp() {
    while reserving < depth {
      outgoing += "reserve-with-timeout 0\r\n"
      reserving += 1
    }
  }
  topUp()
  try connection.send(outgoing)
  outgoing = ""
  while remaining.value > 0 {
    let reply = try connection.line()
    if reply == "DELETED" {
      remaining.update { $0 -= 1 }
    } else if reply.hasPrefix("TIMED_OUT") {
      reserving -= 1
    } else {
      let parts = reply.split(separator: " ")
      guard parts.count == 3, parts[0] == "RESERVED", let bytes = Int(parts[2]) else {
        throw BenchError("unexpected reply \(reply)")
      }
      try connection.skip(bytes)
      reserving -= 1
      outgoing += "delete \(parts[1])\r\n"
    }
    // Send what piled up once every reply that arrived is handled.
    if !connection.hasLine {
      if reserving == 0 && outgoing.isEmpty { usleep(100) }  // nothing ready yet
      topUp()
      try connection.send(outgoing)
      outgoing = ""
    }
  }
}

/// Puts `tasks` no-op jobs, pipelined in windows of 256.
func produce(port: Int, tasks: Int) throws {
  let body = "{\"kind\":\"noop\"}"
  let connection = try LineConnection(port: port)
  defer { connection.close() }
  var sent = 0
  while sent < tasks {
    let window = min(256, tasks - sent)
    var text = ""
    for _ in 0..<window { text += "put 0 0 60 \(body.utf8.count)\r\n\(body)\r\n" }
    try connection.send(text)
    for _ in 0..<window where !(try connection.line()).hasPrefix("INSERTED") {
      throw BenchError("put failed")
    }
    sent += window
  }
}

/// Paced latency: one producer puts a job every 1/rate s, one consumer blocks in `reserve`;
/// returns put → reserved, in ms, per job.
func beanstalkdLatency(rate: Double, count: Int) throws -> [Double] {
  let server = try BeanstalkdServer(fsync: nil)
  defer { server.stop() }
  let port = server.port
  let sentAt = Stamps(count)
  let reservedAt = Stamps(count)
  let consumer = Thread {
    guard let connection = try? LineConnection(port: port) else { return }
    defer { connection.close() }
    for _ in 0..<count {
      guard (try? connection.send("reserve-with-timeout 5\r\n")) != nil, let reply = try? connection.line() else {
        return
      }
      let parts = reply.split(separator: " ")
      guard parts.count == 3, parts[0] == "RESERVED", let bytes = Int(parts[2]) else { return }
      let now = monotonicNanoseconds()
      guard let body = try? connection.lineBytes(), bytes == body.count - 1 || bytes == body.count,
        let index = Int(String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
      else { return }
      reservedAt.set(index, now)
      _ = try? connection.send("delete \(parts[1])\r\n")
      _ = try? connection.line()
    }
  }
  consumer.start()
  let producer = try LineConnection(port: port)
  defer { producer.close() }
  let interval = UInt64(1e9 / rate)
  let start = monotonicNanoseconds()
  for index in 0..<count {
    sleepUntil(start + UInt64(index) * interval)
    let body = String(index)
    sentAt.set(index, monotonicNanoseconds())
    try producer.send("put 0 0 60 \(body.utf8.count)\r\n\(body)\r\n")
    guard try producer.line().hasPrefix("INSERTED") else { throw BenchError("put failed") }
  }
  let deadline = monotonicNanoseconds() + 5_000_000_000
  while reservedAt.filled < count, monotonicNanoseconds() < deadline { usleep(1_000) }
  return (0..<count).compactMap { index in
    guard let sent = sentAt[index], let reserved = reservedAt[index] else { return nil }
    return Double(reserved &- sent) / 1e6
  }
}

/// Monotonic instants written by one thread and read by another.
final class Stamps: @unchecked Sendable {
  // @unchecked: every access goes through `lock`.
  private let lock = NSLock()
  private var values: [UInt64?]
  private var count = 0
  init(_ count: Int) { values = Array(repeating: nil, count: count) }
  func set(_ index: Int, _ value: UInt64) {
    lock.withLock {
      guard values.indices.contains(index), values[index] == nil else { return }
      values[index] = value
      count += 1
    }
  }
  subscript(index: Int) -> UInt64? { lock.withLock { values.indices.contains(index) ? values[index] : nil } }
  var filled: Int { lock.withLock { count } }
}

func monotonicNanoseconds() -> UInt64 {
  var spec = timespec()
  clock_gettime(CLOCK_MONOTONIC, &spec)
  return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

func sleepUntil(_ instant: UInt64) {
  let now = monotonicNanoseconds()
  if instant > now { usleep(UInt32((instant - now) / 1_000)) }
}

struct BenchError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
