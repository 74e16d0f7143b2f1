import RobotData
import TensorKit

/// What the learner trains: it is fed every accepted episode and asked for training steps.
/// The BC trainer (`BehaviorCloningBackend`) implements it now; the VLA post-training
/// algorithms (HG-DAgger, RECAP) will implement it in `Training`.
public protocol LearnerBackend: Sendable {
    /// Model family name sent in the policy manifest (actors check they can load it).
    var modelName: String { get }
    /// A newly accepted (already durable) episode.
    func ingest(_ episode: Episode) async throws
    /// One optimizer step; nil when there is not enough data yet.
    func trainStep() async throws -> Float?
    /// The parameters actors need: trainable ones only (a frozen backbone never travels).
    func exportTrainableWeights() async throws -> [String: Tensor]
}
