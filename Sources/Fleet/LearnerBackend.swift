import Foundation
import RobotData
import TensorKit
import Training

/// What the learner trains: it is fed every accepted episode and asked for training steps.
/// `BehaviorCloningBackend` (a linear policy) and `PostTrainingBackend` (the VLA) implement it.
public protocol LearnerBackend: Sendable {
    /// Model family name sent in the policy manifest (actors check they can load it).
    var modelName: String { get }
    /// A newly accepted (already durable) episode.
    func ingest(_ episode: Episode) async throws
    /// One optimizer step; nil when there is not enough data yet.
    func trainStep() async throws -> Float?
    /// The parameters actors need: trainable ones only (a frozen backbone never travels).
    func exportTrainableWeights() async throws -> [String: Tensor]
    /// Writes what continuing the training exactly needs (weights, optimizer, sampler state)
    /// into `directory` (fresh and empty). Episodes are not included: the learner re-ingests
    /// its store after `restoreCheckpoint`.
    func saveCheckpoint(to directory: URL) async throws
    /// Restores what `saveCheckpoint` wrote.
    func restoreCheckpoint(from directory: URL) async throws
    /// Train steps taken (restored with the checkpoint).
    var stepsTrained: Int { get async }
    /// The adaptive sampler's state per task key, for dashboards.
    func samplerStatus() async -> [String: TaskSamplerStatus]
}

/// A backend that can be one rank of a data-parallel learner (`LearnerRanks`): its train
/// steps take part in collectives, so every rank must step together.
public protocol DataParallelLearnerBackend: LearnerBackend {
    /// Whether `trainStep` would find data (checked on every rank before any rank steps).
    func hasTrainingData() async -> Bool
    /// Makes every rank's trainable parameters rank 0's (a collective; at start and resume).
    func synchronizeParameters() async throws
}

extension LearnerBackend {
    /// Backends with no training state keep nothing.
    public func saveCheckpoint(to directory: URL) async throws {}
    public func restoreCheckpoint(from directory: URL) async throws {}
    public var stepsTrained: Int { get async { 0 } }
    /// Backends without an adaptive sampler report none.
    public func samplerStatus() async -> [String: TaskSamplerStatus] { [:] }
}

/// Host-side state of a backend's sampling, stored next to its weights.
struct SamplerCheckpoint: Codable {
    var generator: UInt64
    var stepsTrained: Int
    var mix: AdaptiveMix?
    var samplesDrawn: [Int]?
}
