/// Piecewise cubic Hermite interpolation with Fritsch–Carlson slopes (PCHIP, as SciPy's
/// `PchipInterpolator`): passes through every knot and never overshoots, so monotone data
/// stays monotone and a 0/1 gripper command stays inside [0, 1] when an episode is resampled.
public struct MonotoneCubicInterpolation: Sendable {
    public let x: [Double]
    public let y: [Double]
    /// Slopes at the knots.
    public let slopes: [Double]

    /// `x` strictly increasing, at least two knots, all finite.
    public init(x: [Double], y: [Double]) throws {
        guard x.count == y.count else { throw InterpolationError.lengthMismatch(x: x.count, y: y.count) }
        guard x.count >= 2 else { throw InterpolationError.tooFewKnots(x.count) }
        guard x.allSatisfy(\.isFinite), y.allSatisfy(\.isFinite) else { throw InterpolationError.nonFinite }
        for k in 1..<x.count where !(x[k] > x[k - 1]) { throw InterpolationError.notIncreasing(index: k) }
        self.x = x
        self.y = y
        slopes = Self.slopes(x: x, y: y)
    }

    static func slopes(x: [Double], y: [Double]) -> [Double] {
        let n = x.count
        let h = (0..<(n - 1)).map { x[$0 + 1] - x[$0] }
        let delta = (0..<(n - 1)).map { (y[$0 + 1] - y[$0]) / h[$0] }
        if n == 2 { return [delta[0], delta[0]] }
        var d = [Double](repeating: 0, count: n)
        for k in 1..<(n - 1) {
            // Weighted harmonic mean of the neighbouring secants; 0 at local extrema (no overshoot).
            guard delta[k - 1] * delta[k] > 0 else { continue }
            let w1 = 2 * h[k] + h[k - 1], w2 = h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])
        }
        d[0] = endSlope(h0: h[0], h1: h[1], d0: delta[0], d1: delta[1])
        d[n - 1] = endSlope(h0: h[n - 2], h1: h[n - 3], d0: delta[n - 2], d1: delta[n - 3])
        return d
    }

    /// One-sided three-point end slope, limited to keep the end interval monotone.
    static func endSlope(h0: Double, h1: Double, d0: Double, d1: Double) -> Double {
        let d = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
        if d.sign != d0.sign || d0 == 0 { return 0 }
        if d0.sign != d1.sign || d1 == 0, abs(d) > abs(3 * d0) { return 3 * d0 }
        return d
    }

    /// The interpolant at `t` (clamped to the knot range: no extrapolation).
    public func callAsFunction(_ t: Double) -> Double {
        let n = x.count
        if t <= x[0] { return y[0] }
        if t >= x[n - 1] { return y[n - 1] }
        // Binary search for the interval [x[k], x[k+1]] holding t.
        var lo = 0, hi = n - 1
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if x[mid] <= t { lo = mid } else { hi = mid }
        }
        let h = x[lo + 1] - x[lo]
        let s = (t - x[lo]) / h
        let s2 = s * s, s3 = s2 * s
        return (2 * s3 - 3 * s2 + 1) * y[lo] + (s3 - 2 * s2 + s) * h * slopes[lo]
            + (-2 * s3 + 3 * s2) * y[lo + 1] + (s3 - s2) * h * slopes[lo + 1]
    }

    public func callAsFunction(_ t: [Double]) -> [Double] { t.map { self($0) } }

    /// Resamples every column of `m` (rows at times `0, 1, …, rows−1`) at fractional row `times`.
    public static func resample(_ m: StepMatrix, at times: [Double]) throws -> StepMatrix {
        guard m.rows >= 1 else { throw InterpolationError.tooFewKnots(m.rows) }
        var out = [Float](repeating: 0, count: times.count * m.columns)
        if m.rows == 1 {
            for r in 0..<times.count { for c in 0..<m.columns { out[r * m.columns + c] = m.values[c] } }
            return try StepMatrix(rows: times.count, columns: m.columns, values: out)
        }
        let knots = (0..<m.rows).map(Double.init)
        for c in 0..<m.columns {
            let column = (0..<m.rows).map { Double(m.values[$0 * m.columns + c]) }
            let f = try MonotoneCubicInterpolation(x: knots, y: column)
            for (r, t) in times.enumerated() { out[r * m.columns + c] = Float(f(t)) }
        }
        return try StepMatrix(rows: times.count, columns: m.columns, values: out)
    }
}

/// Bad knots for `MonotoneCubicInterpolation`.
public enum InterpolationError: Error, Equatable, CustomStringConvertible {
    case lengthMismatch(x: Int, y: Int)
    case tooFewKnots(Int)
    case notIncreasing(index: Int)
    case nonFinite

    public var description: String {
        switch self {
        case let .lengthMismatch(x, y): "x has \(x) knots, y has \(y)"
        case .tooFewKnots(let n): "PCHIP needs at least 2 knots, got \(n)"
        case .notIncreasing(let i): "knot x[\(i)] is not greater than x[\(i - 1)]"
        case .nonFinite: "knots contain NaN or infinity"
        }
    }
}
