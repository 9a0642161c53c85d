import HaatCore
import Testing

@testable import HaatCoordinator

/// Fair shares of scarce work, rotation, and pools skipped only while they are empty.
@Suite struct ClaimSchedulerTests {
  func candidate(_ name: String, _ free: Int, pool: Pool = .collect) -> ClaimScheduler.Candidate {
    ClaimScheduler.Candidate(name: name, free: [pool: free])
  }

  @Test func eachWorkerWithCreditClaimsAShare() {
    var scheduler = ClaimScheduler()
    let claims = scheduler.plan([candidate("b", 10), candidate("a", 4), candidate("c", 0)])
    // Two want work: each may take half its own credit (rounded up) in this commit.
    #expect(Set(claims.map(\.worker)) == ["a", "b"])
    #expect(claims.first { $0.worker == "a" }?.limit == 2)
    #expect(claims.first { $0.worker == "b" }?.limit == 5)
    #expect(claims.allSatisfy { $0.pool == .collect })
  }

  @Test func theFirstInLineRotates() {
    var scheduler = ClaimScheduler()
    let workers = [candidate("a", 1), candidate("b", 1), candidate("c", 1)]
    let firsts = (0..<3).map { _ in scheduler.plan(workers).first?.worker }
    #expect(Set(firsts.compactMap { $0 }) == ["a", "b", "c"])
  }

  @Test func anEmptyPoolIsSkippedUntilWorkIsMarked() {
    var scheduler = ClaimScheduler()
    let claim = scheduler.plan([candidate("a", 3)])[0]
    scheduler.claimed(claim, taken: 1)
    #expect(!scheduler.poolsWithWork.contains(.collect))
    #expect(scheduler.plan([candidate("a", 3)]).isEmpty)
    #expect(!scheduler.wants([.collect: 3]))
    scheduler.markWork(.collect)
    #expect(scheduler.wants([.collect: 3]))
    #expect(scheduler.plan([candidate("a", 3)]).count == 1)
  }

  @Test func workMarkedDuringAClaimKeepsThePoolOpen() {
    var scheduler = ClaimScheduler()
    let claim = scheduler.plan([candidate("a", 3)])[0]
    scheduler.markWork(.collect)  // a submit committed while the claim was in flight
    scheduler.claimed(claim, taken: 0)
    #expect(scheduler.poolsWithWork.contains(.collect))
  }

  @Test func aFullClaimKeepsThePoolOpen() {
    var scheduler = ClaimScheduler()
    let claim = scheduler.plan([candidate("a", 2)])[0]
    scheduler.claimed(claim, taken: claim.limit)
    #expect(scheduler.poolsWithWork.contains(.collect))
  }

  @Test func aCommitClaimsAtMostItsBoundAndTheNextStartsWithThoseLeftOut() {
    var scheduler = ClaimScheduler()
    let workers = (0..<10).map { candidate("w\($0)", 1) }
    let first = scheduler.plan(workers, maxTasks: 4)
    #expect(first.reduce(0) { $0 + $1.limit } == 4)
    // The next plan (the same workers still with credit) serves those left out first.
    let second = scheduler.plan(workers, maxTasks: 4)
    #expect(Set(first.map(\.worker)).isDisjoint(with: second.map(\.worker)))
    // Over three plans every worker got a turn.
    let third = scheduler.plan(workers, maxTasks: 4)
    #expect(Set((first + second + third).map(\.worker)).count == 10)
  }

  @Test func aBoundCutsAShareShort() {
    var scheduler = ClaimScheduler()
    let claims = scheduler.plan([candidate("a", 100)], maxTasks: 7)
    #expect(claims.map(\.limit) == [7])
  }
}
