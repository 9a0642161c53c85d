import HaatCore
import HaatProtocol
import NIOCore

/// Sessions opening and closing: a worker's record, its replaced session, revoked tokens.
extension CoordinatorCore {
  /// A worker's own word on its pools, as every worker list shows it: the pools there are
  /// (`collect`, `analyze`), each once (its first entry). Names of any length, repeated
  /// without end, made the worker list too large to send until a restart.
  static func knownPools(_ pools: [Haat_V1_PoolState]) -> [Haat_V1_PoolState] {
    var seen = Set<String>()
    return pools.filter { Pool(rawValue: $0.pool) != nil && seen.insert($0.pool).inserted }
  }

  func opened(_ connection: Connection, worker: Haat_V1_WorkerInfo?) {
    loop.preconditionInEventLoop()
    connections[ObjectIdentifier(connection)] = connection
    guard connection.peer.kind == .worker else { return }
    if let previous = workerConnections[connection.name], previous !== connection {
      logger.notice("worker reconnected; closing its previous session", metadata: ["worker": "\(connection.name)"])
      // Said to the session closed, so that two processes started under one name each log
      // why they keep losing their connection.
      outbox.replyError(
        previous, to: "",
        HaatError(
          .unavailable,
          "another session connected as worker \(connection.name) (from \(connection.address)); this one is closed. Two workers may not share a name"
        ))
      outbox.close(previous)
      // Its parts of results in flight go with it, as when a session closes itself
      // (`closed` no longer sees it as the worker's): the worker sends all of them again.
      staged.drop(worker: connection.name)
    }
    workerConnections[connection.name] = connection
    let nowMs = self.nowMs
    var record = WorkerRecord(
      name: connection.name, host: Self.clipped(worker?.host ?? "", to: 255),
      pid: worker?.pid ?? 0, version: Self.clipped(worker?.version ?? "", to: 64),
      address: connection.address,
      pools: Self.knownPools(
        (worker?.pools ?? []).map { slots in
          var state = Haat_V1_PoolState()
          state.pool = slots.pool
          state.slots = slots.slots
          return state
        }), connectedMs: nowMs, lastHeartbeatMs: nowMs, lastHeartbeat: now, lastProgress: now)
    if let old = workers[connection.name] {
      record.health = old.health
      record.tasksDone = old.tasksDone
      record.tasksFailed = old.tasksFailed
    }
    workers[connection.name] = record
    logger.info("worker connected", metadata: ["worker": "\(connection.name)", "address": "\(connection.address)"])
  }

  /// Closes every session whose token is gone from the token file (`haat token revoke`),
  /// or was changed there since the session authenticated (its secret, role or the names it
  /// covers: an operator narrowing a stolen token, or replacing its secret, left the thief's
  /// open session working, a tester found): a revocation reaches open sessions, not only
  /// new ones, within the token file's reload period (a second).
  func closeRevoked(_ tokens: TokenStore) {
    loop.preconditionInEventLoop()
    for connection in connections.values where connection.open {
      let token = tokens.cachedToken(id: connection.peer.tokenID)
      let revoked = token == nil
      guard revoked || token?.role != connection.peer.role || (connection.token.map { $0 != token } ?? false)
      else { continue }
      logger.notice(
        revoked ? "token revoked; closing its session" : "token changed; closing its session",
        metadata: [
          "token": "\(connection.peer.tokenID)", "peer": "\(connection.name)", "session": "\(connection.session)",
        ])
      outbox.replyError(
        connection, to: "",
        HaatError(
          .authFailed,
          "token \(connection.peer.tokenID) was \(revoked ? "revoked" : "changed in the token file"); the session is closed"
        ))
      outbox.close(connection)
    }
  }

  func closed(_ connection: Connection) {
    loop.preconditionInEventLoop()
    connection.gone.set()
    connections[ObjectIdentifier(connection)] = nil
    specPartBytes -= connection.specParts.bytes
    connection.specParts.reset()
    tailers.removeAll { $0.0 === connection }
    for job in jobs.values { job.watchers.removeAll { $0.0 === connection } }
    guard connection.peer.kind == .worker, workerConnections[connection.name] === connection else { return }
    workerConnections[connection.name] = nil
    workers[connection.name]?.connected = false
    let held = leases.count(of: connection.name)
    workers[connection.name]?.leftDrained = connection.draining && held == 0
    // Parts of results in flight go too: the worker sends all of them again.
    staged.drop(worker: connection.name)
    // Its slots are no longer busy with anything the coordinator can see.
    if let pools = workers[connection.name]?.pools {
      workers[connection.name]?.pools = pools.map {
        var pool = $0
        pool.busy = 0
        return pool
      }
    }
    // Its leases stay until they expire: the worker may come back and finish them.
    // While the coordinator stops, every session closes by its doing: nothing to warn of.
    if held > 0, accepting {
      logger.warning(
        "worker left holding leases; they are retried when they expire",
        metadata: ["worker": "\(connection.name)", "leases": "\(held)", "drained": "\(connection.draining)"])
    } else {
      logger.info("worker disconnected", metadata: ["worker": "\(connection.name)", "leases": "\(held)"])
    }
  }
}
