/// How a (simulated) human operator deviates from the clean scripted expert. Used to make
/// demonstrations with real defects for DataQA and real speed differences for speed alignment.
public struct OperatorProfile: Sendable, Equatable {
    /// Std of white noise added to the hand target, metres.
    public var noise: Double = 0
    /// Amplitude (metres) and frequency (Hz) of a sinusoidal hand tremor.
    public var tremorAmplitude: Double = 0
    public var tremorHz: Double = 8
    /// Actions reach the robot this many control steps late.
    public var delaySteps: Int = 0
    /// Global speed scale (0.5 = half-speed operator, 2 = fast operator).
    public var speedScale: Double = 1
    /// Per-step probability of starting a slow segment, its length and speed factor.
    public var slowProbability: Double = 0
    public var slowSteps: Int = 15
    public var slowFactor: Double = 0.3
    /// Per-step probability of pausing (holding still) and the pause length.
    public var hesitationProbability: Double = 0
    public var hesitationSteps: Int = 8
    /// Seed of the operator's own randomness.
    public var seed: UInt64 = 0
    /// How the hand approaches a reach or grasp target or a push's start.
    public var approach: Approach = .fromAbove

    /// The operator's path to a reach or grasp target or to the point behind a puck a push
    /// starts from.
    public enum Approach: String, Sendable, Codable, CaseIterable {
        /// The demos' phase machine: lift clear, move over the target, come down.
        case fromAbove = "from-above"
        /// Straight at the target from wherever the hand is, kept above a mound over the object
        /// (the puck, for a push) so the fingers clear it: a corrective operator that continues what a stalled policy
        /// started instead of replaying its from-reset path.
        case direct
    }

    public init() {}

    public static let clean = OperatorProfile()

    /// A plausible sloppy operator: noisy, trembling, a little late, sometimes slow or hesitant.
    public static func imperfect(seed: UInt64) -> OperatorProfile {
        var p = OperatorProfile()
        p.noise = 0.0015
        p.tremorAmplitude = 0.0025
        p.delaySteps = 1
        p.slowProbability = 0.015
        p.slowSteps = 10
        p.slowFactor = 0.4
        p.hesitationProbability = 0.015
        p.hesitationSteps = 6
        p.seed = seed
        return p
    }

    /// A clean operator at a different speed (for speed-alignment data).
    public static func speed(_ scale: Double) -> OperatorProfile {
        var p = OperatorProfile()
        p.speedScale = scale
        return p
    }
}
