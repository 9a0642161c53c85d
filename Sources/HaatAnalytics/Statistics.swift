import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014): a small, fast generator whose stream is fixed by
/// its seed, so a report's bootstrap gives the same interval every time it is finished.
struct SplitMix64: RandomNumberGenerator {
  private var state: UInt64

  init(seed: UInt64) { state = seed }

  /// A seed from text (FNV-1a 64): one stream per comparison, whatever the order of rows.
  init(seeding text: String) {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
      hash ^= UInt64(byte)
      hash &*= 0x0000_0100_0000_01b3
    }
    self.init(seed: hash)
  }

  mutating func next() -> UInt64 {
    state &+= 0x9e37_79b9_7f4a_7c15
    var z = state
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }

  /// Uniform in [0, 1).
  mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

  /// A Poisson(λ) draw: by inversion below λ = 10, else Hörmann's PTRS transformed
  /// rejection ("The transformed rejection method for generating Poisson random
  /// variables", 1993), exact at every λ.
  mutating func poisson(_ lambda: Double) -> UInt64 {
    guard lambda > 0 else { return 0 }
    if lambda < 10 {
      let limit = exp(-lambda)
      var product = uniform()
      var count: UInt64 = 0
      while product > limit {
        count += 1
        product *= uniform()
      }
      return count
    }
    let root = lambda.squareRoot()
    let logLambda = log(lambda)
    let b = 0.931 + 2.53 * root
    let a = -0.059 + 0.02483 * b
    let inverseAlpha = 1.1239 + 1.1328 / (b - 3.4)
    let vr = 0.9277 - 3.6224 / (b - 2)
    while true {
      let u = uniform() - 0.5
      let v = uniform()
      let us = 0.5 - abs(u)
      let k = ((2 * a / us + b) * u + lambda + 0.43).rounded(.down)
      if us >= 0.07 && v <= vr { return UInt64(k) }
      if k < 0 || (us < 0.013 && v > us) { continue }
      if log(v) + log(inverseAlpha) - log(a / (us * us) + b) <= -lambda + k * logLambda - lgamma(k + 1) {
        return UInt64(k)
      }
    }
  }
}

enum Statistics {
  /// z₀.₉₇₅ + z₀.₈₀: a two-sided 5 % test has 80 % power against an effect this many
  /// standard errors away.
  static let detectableEffectSEs = 1.959_963_985 + 0.841_621_234

  /// The q-quantile of sorted values, interpolated between neighbours (Hyndman & Fan's
  /// type 7, as R and NumPy default to).
  static func quantile(sorted values: [Double], _ q: Double) -> Double? {
    guard let first = values.first else { return nil }
    guard values.count > 1 else { return first }
    let position = q * Double(values.count - 1)
    let below = Int(position.rounded(.down))
    let above = min(below + 1, values.count - 1)
    let fraction = position - Double(below)
    if fraction == 0 || values[below] == values[above] { return values[below] }
    return values[below] + fraction * (values[above] - values[below])
  }

  /// Welch's unequal-variance t-test of two samples' means: t, the Welch–Satterthwaite
  /// degrees of freedom, the two-sided p-value and the standard error of the difference;
  /// nil when a side has fewer than two values or both have no spread.
  static func welch(_ first: Moments, _ second: Moments) -> (t: Double, df: Double, p: Double, se: Double)? {
    guard let v1 = first.variance, let v2 = second.variance else { return nil }
    let (n1, n2) = (Double(first.count), Double(second.count))
    let (s1, s2) = (v1 / n1, v2 / n2)
    let se = (s1 + s2).squareRoot()
    guard se > 0 else { return nil }
    let t = (first.mean - second.mean) / se
    let df = (s1 + s2) * (s1 + s2) / (s1 * s1 / (n1 - 1) + s2 * s2 / (n2 - 1))
    return (t, df, studentTwoSided(t: t, df: df), se)
  }

  /// P(|T| ≥ |t|) for Student's t with `df` degrees of freedom: I_{df/(df+t²)}(df/2, 1/2).
  static func studentTwoSided(t: Double, df: Double) -> Double {
    guard t.isFinite else { return 0 }
    return regularizedBeta(x: df / (df + t * t), a: df / 2, b: 0.5)
  }

  /// The regularized incomplete beta function I_x(a, b), by its continued fraction (Lentz's
  /// method, as in Numerical Recipes §6.4), using the symmetry I_x(a,b) = 1 − I_{1−x}(b,a)
  /// where the fraction converges slowly.
  static func regularizedBeta(x: Double, a: Double, b: Double) -> Double {
    if x <= 0 { return 0 }
    if x >= 1 { return 1 }
    let logBeta: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
    let logPowers: Double = a * log(x) + b * log(1 - x)
    let front = exp(logBeta + logPowers)
    if x < (a + 1) / (a + b + 2) { return front * betaFraction(x: x, a: a, b: b) / a }
    return 1 - front * betaFraction(x: 1 - x, a: b, b: a) / b
  }

  private static func betaFraction(x: Double, a: Double, b: Double) -> Double {
    let tiny = 1e-300
    var c = 1.0
    var d = 1 - (a + b) * x / (a + 1)
    if abs(d) < tiny { d = tiny }
    d = 1 / d
    var h = d
    for m in 1...300 {
      let m = Double(m)
      var numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
      d = 1 + numerator * d
      if abs(d) < tiny { d = tiny }
      c = 1 + numerator / c
      if abs(c) < tiny { c = tiny }
      d = 1 / d
      h *= d * c
      numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
      d = 1 + numerator * d
      if abs(d) < tiny { d = tiny }
      c = 1 + numerator / c
      if abs(c) < tiny { c = tiny }
      d = 1 / d
      let step = d * c
      h *= step
      if abs(step - 1) < 1e-15 { break }
    }
    return h
  }
}
