import HaatCore

/// Which worker claims how many tasks of which pool in the next commit.
///
/// Scarce work is spread: each worker with credit claims a fair share of it in this commit
/// (what is left goes in the next), and the first in line rotates from commit to commit.
/// A pool found empty is skipped until something may have made work in it (`markWork`);
/// the generation counter tells a claim that came back short whether work arrived since.
struct ClaimScheduler {
  /// A worker that may claim: its name and free credit per pool (credit less what claims
  /// in flight have reserved).
  struct Candidate {
    var name: String
    var free: [Pool: Int]
  }

  /// One claim to put in the commit.
  struct Claim: Equatable {
    var worker: String
    var pool: Pool
    var limit: Int
    var generation: UInt64
  }

  private(set) var poolsWithWork: Set<Pool> = Set(Pool.allCases)
  private var generation: [Pool: UInt64] = [:]
  private var rotation = 0

  /// Something may have made a task claimable in `pool`.
  mutating func markWork(_ pool: Pool) {
    poolsWithWork.insert(pool)
    generation[pool, default: 0] &+= 1
  }

  /// The claims for the next commit, given the workers that may claim, for at most
  /// `maxTasks` tasks. When that bound leaves workers out, the next plan starts with the
  /// first of them.
  mutating func plan(_ candidates: [Candidate], maxTasks: Int = .max) -> [Claim] {
    let eligible = candidates.sorted { $0.name < $1.name }
    let start = eligible.isEmpty ? 0 : rotation % eligible.count
    let ordered = eligible[start...] + eligible[..<start]
    var claims: [Claim] = []
    var budget = maxTasks
    /// Where the bound first left a worker out.
    var cut: Int?
    for pool in Pool.allCases where poolsWithWork.contains(pool) {
      let wanting = ordered.count { $0.free[pool, default: 0] > 0 }
      for (offset, candidate) in ordered.enumerated() where candidate.free[pool, default: 0] > 0 {
        guard budget > 0 else {
          cut = cut ?? start + offset
          break
        }
        let share = min(budget, (candidate.free[pool, default: 0] + wanting - 1) / wanting)
        budget -= share
        claims.append(
          Claim(worker: candidate.name, pool: pool, limit: share, generation: generation[pool, default: 0]))
      }
    }
    rotation = cut ?? start + 1
    return claims
  }

  /// A claim came back with `taken` tasks: a short one means the pool is empty, unless
  /// work was marked since the claim was planned.
  mutating func claimed(_ claim: Claim, taken: Int) {
    if taken < claim.limit, generation[claim.pool, default: 0] == claim.generation {
      poolsWithWork.remove(claim.pool)
    }
  }

  /// Whether a worker with this free credit would claim anything now.
  func wants(_ free: [Pool: Int]) -> Bool {
    free.contains { pool, credit in poolsWithWork.contains(pool) && credit > 0 }
  }
}
