import HaatCore
import HaatFetch
import HaatProtocol
import HaatRecords
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import HaatWorker

/// How a worker gives its slots back: a wave of no-op assigns read at once is answered in
/// chunks (results, then their credit, flushed), not in one burst after the whole wave, so
/// the coordinator commits and claims for the first while the worker works on the rest.
@Suite struct CreditTests {
  @Test func aWaveOfAssignsGivesItsSlotsBackInChunks() throws {
    let loop = EmbeddedEventLoop()
    let channel = EmbeddedChannel(loop: loop)
    let threads = NIOThreadPool(numberOfThreads: 1)
    threads.start()
    defer { try? threads.syncShutdownGracefully() }
    var config = WorkerConfig(
      name: "w1", coordinators: [Endpoint(host: "127.0.0.1", port: 1)],
      credential: Credential(tokenID: "t", secret: "s", role: .worker))
    config.slots = [.collect: 128]
    let runtime = WorkerRuntime(
      loop: loop, config: config, fetcher: Fetcher(), threads: threads, logger: Logger(label: "test"))
    runtime.channel = channel
    defer { runtime.done.succeed() }  // the runtime's end, which a worker process waits for
    let wave = 100
    for index in 0..<wave {
      var assign = Haat_V1_Assign()
      assign.task = "\(index + 1)"
      assign.attempt = 1
      assign.job = "1"
      assign.pool = Pool.collect.rawValue
      assign.spec.source.kind = SourceKind.noop.name
      runtime.receive(Envelope(.assign(assign)))
    }
    // Before the read is over, every full chunk is out: its results, then its credit.
    var sent: [Envelope] = []
    while let envelope = try channel.readOutbound(as: Envelope.self) { sent.append(envelope) }
    let chunk = WorkerRuntime.creditChunk
    #expect(sent.count == wave / chunk * (chunk + 1))
    for (index, envelope) in sent.enumerated() {
      if (index + 1) % (chunk + 1) == 0 {
        guard case .credit(let credit)? = envelope.body else {
          Issue.record("envelope \(index) is not a credit: \(envelope)")
          return
        }
        #expect(credit.pool == Pool.collect.rawValue && credit.free == UInt32(chunk))
      } else {
        guard case .complete? = envelope.body else {
          Issue.record("envelope \(index) is not a complete: \(envelope)")
          return
        }
      }
    }
    // The read ends: the rest of the results and, once the loop turns, their credit.
    runtime.readComplete()
    loop.run()
    var rest: [Envelope] = []
    while let envelope = try channel.readOutbound(as: Envelope.self) { rest.append(envelope) }
    let completes = rest.filter { if case .complete? = $0.body { true } else { false } }
    let credits = rest.compactMap { if case .credit(let credit)? = $0.body { credit.free } else { nil } }
    #expect(completes.count == wave % chunk && credits == [UInt32(wave % chunk)])
  }
}
