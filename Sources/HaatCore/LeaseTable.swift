/// The leases a coordinator holds in memory, with deadlines on the monotonic clock.
///
/// The store records who holds a task and under which attempt; the deadline lives only here,
/// so heartbeats cost no write and a wall-clock step can neither expire every lease nor make
/// one immortal. After a restart every stored lease is granted one full period afresh.
///
/// Inlinable: a generic type's methods called from another module run unspecialized,
/// looking up type metadata on every dictionary operation (a fifth of the coordinator loop's
/// time under a no-op load went to granting and removing leases that way).
public struct LeaseTable<Owner: Hashable & Sendable>: Sendable {
  /// One lease: a task, its attempt (the lease token), its holder and its deadline.
  public struct Lease: Sendable, Equatable {
    public var task: TaskID
    public var attempt: UInt32
    public var owner: Owner
    /// Monotonic nanoseconds.
    public var deadline: UInt64
    /// The rate key the task's requests count against (its spec's `rate_key`), empty when
    /// it makes no rate-governed request: the only key its holder may ask slots under.
    public var rateKey: String
    /// The budget its spec states for that key (`requests_per_second`): slots are spaced by
    /// it, whatever a worker's request says.
    public var requestsPerSecond: Double

    @inlinable
    public init(
      task: TaskID, attempt: UInt32, owner: Owner, deadline: UInt64, rateKey: String = "", requestsPerSecond: Double = 0
    ) {
      (self.task, self.attempt, self.owner, self.deadline) = (task, attempt, owner, deadline)
      (self.rateKey, self.requestsPerSecond) = (rateKey, requestsPerSecond)
    }
  }

  /// How long a lease lasts without an extension, in nanoseconds.
  public let durationNs: UInt64
  @usableFromInline var leases: [TaskID: Lease] = [:]
  @usableFromInline var byOwner: [Owner: Set<TaskID>] = [:]

  @inlinable
  public init(durationNs: UInt64) {
    self.durationNs = durationNs
  }

  @inlinable
  public var count: Int { leases.count }

  @inlinable
  public subscript(task: TaskID) -> Lease? { leases[task] }

  /// Records a new lease from `now`, replacing any older lease of the task.
  @inlinable
  public mutating func grant(
    task: TaskID, attempt: UInt32, owner: Owner, now: UInt64, rateKey: String = "", requestsPerSecond: Double = 0
  ) {
    remove(task: task)
    leases[task] = Lease(
      task: task, attempt: attempt, owner: owner, deadline: now &+ durationNs, rateKey: rateKey,
      requestsPerSecond: requestsPerSecond)
    byOwner[owner, default: []].insert(task)
  }

  /// Extends a lease by a full period if `owner` holds it under `attempt`; false otherwise.
  @inlinable
  public mutating func extend(task: TaskID, attempt: UInt32, owner: Owner, now: UInt64) -> Bool {
    guard var lease = leases[task], lease.attempt == attempt, lease.owner == owner else {
      return false
    }
    lease.deadline = now &+ durationNs
    leases[task] = lease
    return true
  }

  /// Puts back a lease taken out (its expiry could not be stored): with its deadline
  /// passed, the next sweep tries again.
  @inlinable
  public mutating func restore(_ lease: Lease) {
    guard leases[lease.task] == nil else { return }
    leases[lease.task] = lease
    byOwner[lease.owner, default: []].insert(lease.task)
  }

  /// Forgets a task's lease.
  @inlinable
  @discardableResult
  public mutating func remove(task: TaskID) -> Lease? {
    guard let lease = leases.removeValue(forKey: task) else { return nil }
    byOwner[lease.owner]?.remove(task)
    if byOwner[lease.owner]?.isEmpty == true { byOwner[lease.owner] = nil }
    return lease
  }

  /// Moves every deadline `pause` later, to at most a full period from `now`: time the
  /// coordinator itself did not run is not time its workers were silent.
  @inlinable
  public mutating func postpone(by pause: UInt64, now: UInt64) {
    for (task, lease) in leases {
      leases[task]?.deadline = min(lease.deadline &+ pause, now &+ durationNs)
    }
  }

  /// The leases whose deadline has passed at `now`, oldest first.
  @inlinable
  public func expired(now: UInt64) -> [Lease] {
    leases.values.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
  }

  /// The leases an owner holds.
  @inlinable
  public func leases(of owner: Owner) -> [Lease] {
    (byOwner[owner] ?? []).compactMap { leases[$0] }
  }

  /// How many leases an owner holds.
  @inlinable
  public func count(of owner: Owner) -> Int { byOwner[owner]?.count ?? 0 }
}
