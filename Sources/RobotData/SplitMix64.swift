/// SplitMix64: a small, fast, seedable generator. The one generator of the project: scenes
/// (RobotSim's `SeededGenerator`), DataQA projections and training samplers all draw from it,
/// so a run is a function of its seeds on every platform.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The whole generator state: `SplitMix64(seed: g.state)` continues the same sequence.
    public private(set) var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func nextDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
