import Foundation
import RobotData

/// RobotData's SplitMix64 with the draws scenes and operators need, so every scene and
/// operator draw flows from an explicit seed (identical on every platform).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var core: SplitMix64

    /// Offset by one increment, as scenes have always been generated (cached demos stay valid).
    public init(seed: UInt64) { core = SplitMix64(seed: seed &+ 0x9E37_79B9_7F4A_7C15) }

    public mutating func next() -> UInt64 { core.next() }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Double, _ hi: Double) -> Double {
        lo + (hi - lo) * Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal (Box–Muller).
    public mutating func gaussian() -> Double {
        let u1 = max(uniform(0, 1), 1e-12), u2 = uniform(0, 1)
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    public mutating func int(_ range: Range<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    public mutating func chance(_ p: Double) -> Bool { uniform(0, 1) < p }
}
