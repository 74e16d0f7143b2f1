import RobotData
import RobotSim
import TensorKit

/// The policy an actor runs: observation in, a chunk of native actions out. Used from one
/// task only (the actor's episode loop), so it need not be Sendable.
public protocol ActorPolicy: AnyObject {
    /// Replaces the trainable parameters with a published version. Called between episodes
    /// (and, with chunk-boundary swaps, before a chunk request), never while a chunk is computed.
    func load(weights: [String: Tensor], version: Int) throws
    /// Native actions `[H, actionDim]` to execute from this observation (H ≥ 1).
    func actionChunk(observation: Observation, instruction: String) throws -> [[Float]]
    /// Called on the episode thread right after the reset, before any chunk: a policy that
    /// needs the robot itself (depth, kinematics — JPM) prepares here, so chunks requested
    /// later from another thread never touch the environment.
    func beginEpisode(environment: RobotEnvironment, observation: Observation) throws
    /// The policy's estimate of task progress (0…1) at the observation of its latest chunk,
    /// if it has a progress head: the gate watches it for stalls.
    var progressEstimate: Float? { get }
}

extension ActorPolicy {
    public func beginEpisode(environment: RobotEnvironment, observation: Observation) throws {}
    public var progressEstimate: Float? { nil }
}
