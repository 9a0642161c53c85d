import HaatCore
import HaatProtocol
import Synchronization

/// The coordinator's lease table, shared by the core's loop (which grants, ends and reaps
/// leases) and the session loops (which answer heartbeats): a heartbeat extends its leases
/// and is answered on its own session's loop, so it never waits behind the core's work.
/// Each operation holds the lock for one table operation; the reaper's sweep is one
/// operation, so a heartbeat either extends a lease before the sweep (and it stays) or
/// finds it gone (and is told it is revoked).
final class SharedLeases: Sendable {
  typealias Lease = LeaseTable<String>.Lease

  private let table: Mutex<LeaseTable<String>>

  init(durationNs: UInt64) {
    table = Mutex(LeaseTable(durationNs: durationNs))
  }

  var count: Int { table.withLock { $0.count } }

  subscript(task: TaskID) -> Lease? { table.withLock { $0[task] } }

  func grant(
    task: TaskID, attempt: UInt32, owner: String, now: UInt64, rate: (key: String, perSecond: Double) = ("", 0)
  ) {
    table.withLock {
      $0.grant(
        task: task, attempt: attempt, owner: owner, now: now, rateKey: rate.key, requestsPerSecond: rate.perSecond)
    }
  }

  @discardableResult
  func extend(task: TaskID, attempt: UInt32, owner: String, now: UInt64) -> Bool {
    table.withLock { $0.extend(task: task, attempt: attempt, owner: owner, now: now) }
  }

  func restore(_ lease: Lease) {
    table.withLock { $0.restore(lease) }
  }

  @discardableResult
  func remove(task: TaskID) -> Lease? {
    table.withLock { $0.remove(task: task) }
  }

  func count(of owner: String) -> Int { table.withLock { $0.count(of: owner) } }

  /// `LeaseTable.postpone`.
  func postpone(by pause: UInt64, now: UInt64) {
    table.withLock { $0.postpone(by: pause, now: now) }
  }

  /// Takes out the leases past their deadline at `now`, oldest first, except those `held`
  /// says to keep (their result is being stored): those get a full period more.
  func reap(now: UInt64, held: (TaskID) -> Bool) -> [Lease] {
    table.withLock { table in
      var taken: [Lease] = []
      for lease in table.expired(now: now) {
        if held(lease.task) {
          _ = table.extend(task: lease.task, attempt: lease.attempt, owner: lease.owner, now: now)
        } else {
          table.remove(task: lease.task)
          taken.append(lease)
        }
      }
      return taken
    }
  }

  /// A heartbeat's answer: each lease it lists is extended if `owner` holds it under that
  /// attempt, and revoked otherwise.
  func heartbeat(_ listed: [Haat_V1_LeaseProgress], owner: String, now: UInt64) -> Haat_V1_HeartbeatAck {
    var ack = Haat_V1_HeartbeatAck()
    table.withLock { table in
      for lease in listed {
        var ref = Haat_V1_TaskRef()
        ref.task = lease.task
        ref.attempt = lease.attempt
        if let task = TaskID(lease.task), table.extend(task: task, attempt: lease.attempt, owner: owner, now: now) {
          ack.extended.append(ref)
        } else {
          ack.revoked.append(ref)
        }
      }
    }
    return ack
  }
}
