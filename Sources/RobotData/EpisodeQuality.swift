import Foundation

/// DataQA metrics of one episode (Green-VLA), its quality score and the thresholds it fails.
/// Field names are the column names of `vla data qa`'s CSV/JSON table.
public struct EpisodeQuality: Codable, Sendable, Equatable {
    public var id: UUID
    public var task: String
    public var embodiment: String
    public var steps: Int
    public var success: Bool
    /// Tremor S ∈ [0, 1]: mean |v_smooth − v| / (|v_smooth| + |v|); 0 = smooth motion.
    public var tremor: Double
    /// Median over frames of the block-max of the local std of the Laplacian (gray in [0, 1]).
    public var sharpness: Double
    /// √tr Cov(s) of native proprio states over time.
    public var stateDiversity: Double
    /// Mean over embedding features of their std over time (random-projection embedding).
    public var visualDiversity: Double
    /// Fraction of steps where the state did not move.
    public var idleFraction: Double
    /// Robust z-score of the episode length within its task: 0.6745 (T − median) / MAD.
    public var durationZ: Double
    /// Camera frames that are blank (every pixel equal), all cameras.
    public var missingFrames: Int
    /// Fraction of frame transitions where some camera image did not change while the state moved.
    public var frozenFraction: Double
    /// Gripper command sign flips undone within the chatter window (a legit grasp is not chatter).
    public var gripperChatter: Int
    /// All gripper command sign flips.
    public var gripperFlips: Int
    /// NaN/inf entries in states, actions and rewards.
    public var nonFinite: Int
    /// Quality score in [0, 1] (see `QualityThresholds.score`).
    public var score: Double = 1
    /// Names of the thresholds this episode fails (empty = kept by `vla data filter`).
    public var failures: [String] = []

    public static let csvColumns = ["id", "task", "embodiment", "steps", "success", "tremor", "sharpness",
                                    "stateDiversity", "visualDiversity", "idleFraction", "durationZ", "missingFrames",
                                    "frozenFraction", "gripperChatter", "gripperFlips", "nonFinite", "score", "failures"]

    public var csvRow: [String] {
        func f(_ x: Double) -> String { x.isFinite ? String(format: "%.6g", x) : "\(x)" }
        return [id.uuidString, task, embodiment, "\(steps)", "\(success)", f(tremor), f(sharpness), f(stateDiversity),
                f(visualDiversity), f(idleFraction), f(durationZ), "\(missingFrames)", f(frozenFraction),
                "\(gripperChatter)", "\(gripperFlips)", "\(nonFinite)", f(score), failures.joined(separator: ";")]
    }
}
