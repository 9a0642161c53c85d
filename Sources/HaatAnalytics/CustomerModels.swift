import Foundation

/// One customer's history in a model's unit of time: `x` repeat purchases (days with an
/// order after the first), `recency` from the first purchase to the last, `age` from the
/// first purchase to the end of observation (Fader, Hardie & Lee's x, t_x and T).
struct CustomerHistory: Hashable, Sendable {
  var x: Double
  var recency: Double
  var age: Double
}

/// The BG/NBD model of repeat purchases (Fader, Hardie & Lee, "Counting your customers the
/// easy way", Marketing Science 2005), fitted by maximum likelihood.
struct BGNBD: Sendable, Equatable {
  var r: Double
  var alpha: Double
  var a: Double
  var b: Double

  /// The summed log-likelihood of the histories, each with its count (customers with the
  /// same history), by the paper's equation (6), as the `lifetimes` package computes it:
  /// A₁ + A₂ + ln(e^A₃ + [x > 0] e^A₄).
  static func logLikelihood(
    r: Double, alpha: Double, a: Double, b: Double, _ histories: [(CustomerHistory, Double)]
  ) -> Double {
    let base = lgamma(r) - r * log(alpha) + lgamma(b) + lgamma(a + b) * -1
    var total = 0.0
    // The terms that depend on x alone, once per distinct x.
    var byX: [Double: Double] = [:]
    for (history, count) in histories {
      let x = history.x
      let a12: Double
      if let known = byX[x] {
        a12 = known
      } else {
        let first: Double = lgamma(r + x) + lgamma(b + x)
        let second: Double = lgamma(a + b + x)
        a12 = first - second - base
        byX[x] = a12
      }
      let a3 = -(r + x) * log(alpha + history.age)
      var value = a12 + a3
      if x > 0 {
        let a4: Double = log(a) - log(b + x - 1) - (r + x) * log(alpha + history.recency)
        let high = max(a3, a4)
        value = a12 + high + log(exp(a3 - high) + exp(a4 - high))
      }
      total += count * value
    }
    return total
  }

  /// The maximum-likelihood fit, by Nelder–Mead over the logarithms of the parameters.
  static func fit(_ histories: [(CustomerHistory, Double)]) -> (model: BGNBD, logLikelihood: Double)? {
    let objective = { (point: [Double]) -> Double in
      let (r, alpha, a, b) = (exp(point[0]), exp(point[1]), exp(point[2]), exp(point[3]))
      let value = logLikelihood(r: r, alpha: alpha, a: a, b: b, histories)
      return value.isFinite ? -value : .infinity
    }
    guard
      let best = NelderMead.minimize(objective, from: [0, 0, 0, 0], budget: NelderMead.budget(terms: histories.count))
    else { return nil }
    let model = BGNBD(r: exp(best.point[0]), alpha: exp(best.point[1]), a: exp(best.point[2]), b: exp(best.point[3]))
    return (model, -best.value)
  }

  /// The expected purchases of a customer with this history in the next `horizon` units
  /// (the paper's equation (10)).
  func expectedPurchases(_ history: CustomerHistory, horizon: Double) -> Double {
    let (x, recency, age) = (history.x, history.recency, history.age)
    let first = (a + b + x - 1) / (a - 1)
    let z = horizon / (alpha + age + horizon)
    let hyper = Hypergeometric.f21(r + x, b + x, a + b + x - 1, z)
    let second = 1 - pow((alpha + age) / (alpha + age + horizon), r + x) * hyper
    var denominator = 1.0
    if x > 0 { denominator += a / (b + x - 1) * pow((alpha + age) / (alpha + recency), r + x) }
    return first * second / denominator
  }
}

/// The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee, "RFM and CLV", Journal
/// of Marketing Research 2005; Colombo & Jiang 1999), fitted on the repeat customers.
struct GammaGamma: Sendable, Equatable {
  var p: Double
  var q: Double
  var gamma: Double

  /// Σ over customers with x purchases of mean value m (`count` customers each): ln Γ(px + q)
  /// − ln Γ(px) − ln Γ(q) + q ln γ + (px − 1) ln m + px ln x − (px + q) ln(γ + mx).
  static func logLikelihood(
    p: Double, q: Double, gamma: Double, _ customers: [(x: Double, mean: Double, count: Double)]
  ) -> Double {
    var total = 0.0
    let constant = q * log(gamma) - lgamma(q)
    for (x, mean, count) in customers {
      let px = p * x
      let gammas: Double = lgamma(px + q) - lgamma(px)
      let logs: Double = (px - 1) * log(mean) + px * log(x) - (px + q) * log(gamma + mean * x)
      total += count * (gammas + constant + logs)
    }
    return total
  }

  static func fit(_ customers: [(x: Double, mean: Double)]) -> (model: GammaGamma, logLikelihood: Double)? {
    // Customers with the same x and mean are one term, counted: a store of fixed prices has
    // a handful of terms however many customers it has.
    var counts: [Pair: Double] = [:]
    for (x, mean) in customers { counts[Pair(x: x, mean: mean), default: 0] += 1 }
    let terms = counts.sorted { ($0.key.x, $0.key.mean) < ($1.key.x, $1.key.mean) }.map {
      (x: $0.key.x, mean: $0.key.mean, count: $0.value)
    }
    let objective = { (point: [Double]) -> Double in
      let value = logLikelihood(p: exp(point[0]), q: exp(point[1]), gamma: exp(point[2]), terms)
      return value.isFinite ? -value : .infinity
    }
    guard let best = NelderMead.minimize(objective, from: [0, 0, 0], budget: NelderMead.budget(terms: terms.count))
    else { return nil }
    return (GammaGamma(p: exp(best.point[0]), q: exp(best.point[1]), gamma: exp(best.point[2])), -best.value)
  }

  struct Pair: Hashable {
    var x: Double
    var mean: Double
  }

  /// The expected spend per purchase of a customer with x purchases of mean value m
  /// (q > 1): p(γ + xm) / (px + q − 1); for x = 0, the population mean pγ / (q − 1).
  func expectedSpend(x: Double, mean: Double) -> Double {
    (p * (gamma + x * mean)) / (p * x + q - 1)
  }
}

/// Gauss's hypergeometric function ₂F₁(a, b; c; z) for 0 ≤ z < 1, by its power series.
enum Hypergeometric {
  static func f21(_ a: Double, _ b: Double, _ c: Double, _ z: Double) -> Double {
    var term = 1.0
    var sum = 1.0
    var j = 0.0
    while j < 1_000_000 {
      term *= (a + j) * (b + j) / ((c + j) * (j + 1)) * z
      sum += term
      if abs(term) <= 1e-15 * abs(sum) { break }
      j += 1
    }
    return sum
  }
}

/// The Nelder–Mead simplex method (with the standard coefficients 1, 2, ½, ½), restarted
/// from its best point until a restart no longer improves it: enough for the smooth,
/// low-dimensional likelihoods here, with no derivatives to derive.
///
/// Bounded: a likelihood's evaluation is a pass over its terms (the distinct customers), and
/// one with no maximum (every repeat customer spending the same: Gamma-Gamma's q runs off to
/// infinity) never settles, so a fit held a core for hours. A fit over `terms` terms gets at
/// most `termBudget / terms` evaluations (about a minute of one core in all); out of budget,
/// there is no fit (nil).
enum NelderMead {
  static let termBudget = 1_000_000_000

  /// The evaluations a fit over `terms` terms may make.
  static func budget(terms: Int) -> Int { termBudget / max(terms, 1) }

  static func minimize(_ f: ([Double]) -> Double, from start: [Double], step: Double = 0.5, budget: Int)
    -> (point: [Double], value: Double)?
  {
    var evaluations = 0
    func counted(_ point: [Double]) -> Double {
      evaluations += 1
      return f(point)
    }
    var best = (point: start, value: counted(start))
    guard best.value.isFinite else { return nil }
    for _ in 0..<8 {
      guard let next = run(counted, from: best.point, step: step, until: { evaluations >= budget }) else { return nil }
      let improved = best.value - next.value
      if next.value < best.value { best = next }
      if improved < 1e-10 { return best }
    }
    return best
  }

  /// One descent to a flat simplex; nil when `spent` says the budget ran out first.
  private static func run(
    _ f: ([Double]) -> Double, from start: [Double], step: Double, until spent: () -> Bool
  ) -> (point: [Double], value: Double)? {
    let n = start.count
    var simplex: [(point: [Double], value: Double)] = [(start, f(start))]
    for index in 0..<n {
      var point = start
      point[index] += step
      simplex.append((point, f(point)))
    }
    for _ in 0..<20_000 {
      guard !spent() else { return nil }
      simplex.sort { $0.value < $1.value }
      let (best, worst) = (simplex[0], simplex[n])
      if abs(worst.value - best.value) <= 1e-12 * (abs(best.value) + 1e-12) {
        let flat = (0..<n).allSatisfy { index in
          let values = simplex.map { $0.point[index] }
          return (values.max() ?? 0) - (values.min() ?? 0) < 1e-9
        }
        if flat { break }
      }
      var centroid = [Double](repeating: 0, count: n)
      for vertex in simplex.dropLast() {
        for index in 0..<n { centroid[index] += vertex.point[index] / Double(n) }
      }
      let along = { (t: Double) -> [Double] in (0..<n).map { centroid[$0] + t * (worst.point[$0] - centroid[$0]) } }
      let reflected = along(-1)
      let reflectedValue = f(reflected)
      if reflectedValue < best.value {
        let expanded = along(-2)
        let expandedValue = f(expanded)
        simplex[n] = expandedValue < reflectedValue ? (expanded, expandedValue) : (reflected, reflectedValue)
      } else if reflectedValue < simplex[n - 1].value {
        simplex[n] = (reflected, reflectedValue)
      } else {
        let contracted = reflectedValue < worst.value ? along(-0.5) : along(0.5)
        let contractedValue = f(contracted)
        if contractedValue < min(reflectedValue, worst.value) {
          simplex[n] = (contracted, contractedValue)
        } else {
          for index in 1...n {
            let point = (0..<n).map { best.point[$0] + 0.5 * (simplex[index].point[$0] - best.point[$0]) }
            simplex[index] = (point, f(point))
          }
        }
      }
    }
    simplex.sort { $0.value < $1.value }
    return simplex[0]
  }
}
