import Foundation
import RobotData
import RobotSim
import TensorKit
import VLAModel

/// Green-VLA's Joint Prediction Module at inference, with no extra training: the backbone's
/// pointing head locates the task's target in the scene camera, the point is lifted to 3D with
/// the rendered depth, inverse kinematics turns it into a joint-space target q*, and the flow
/// sampler is guided toward a path to q* (`FlowGuidance`).
///
/// The 3D target is found once per episode, at its first chunk, while the arm is still at home
/// and cannot hide the object from the scene camera; q* is re-solved from the current posture
/// at every chunk.
public final class JointPredictionModule {
    public enum PointSource: String, Sendable, CaseIterable {
        /// The policy's pointing head (needs a model trained with a pointing loss).
        case predicted
        /// The simulator's true target: the upper bound of JPM with perfect pointing (diagnosis).
        case oracle
    }

    /// Guidance strength; `samplingSteps` makes the guided entries end exactly on the path.
    public var strength: Double
    public var pointSource: PointSource
    /// The largest joint move per control step along the path to q* (rad, per joint): chunk
    /// row k is pulled toward q_t + clip(q* − q_t, ±(k + 1)·maxJointStep).
    public var maxJointStep: Float
    /// Where the hand should end up relative to the lifted point (above the object's surface).
    public var offset: SIMD3<Double>

    /// The 3D target of the current episode and what JPM last computed (for logs and tests).
    public private(set) var worldTarget: SIMD3<Double>?
    public private(set) var imagePoint: SIMD2<Double>?
    public private(set) var jointTarget: JointTarget?

    public init(strength: Double, pointSource: PointSource = .predicted, maxJointStep: Float = 0.05,
                offset: SIMD3<Double> = SIMD3(0, 0, 0.025)) {
        self.strength = strength
        self.pointSource = pointSource
        self.maxJointStep = maxJointStep
        self.offset = offset
    }

    /// Forget the episode's target (call at every reset).
    public func reset() {
        worldTarget = nil
        imagePoint = nil
        jointTarget = nil
    }

    /// A native action chunk for `observation`, sampled with guidance toward q*. Falls back to
    /// unguided sampling when there is nothing to guide toward (no depth under the point,
    /// an embodiment without joint-position control).
    public func actionChunk(policy: VLAPolicy, observation: PolicyObservation, environment env: RobotEnvironment,
                            key: RandomKey) throws -> [[Float]] {
        let inputs = try policy.inputs([observation])
        let encoded = try policy.model.encodePrefix(inputs)
        if worldTarget == nil {
            let point: SIMD2<Double>?
            switch pointSource {
            case .oracle: point = env.targetImagePoint
            case .predicted:
                let p: [Float] = try policy.model.pointTarget(prefix: encoded.tokens).toArray()
                point = SIMD2(Double(p[0]), Double(p[1]))
            }
            imagePoint = point
            worldTarget = try point.flatMap { try env.liftImagePoint($0, camera: "scene") }
        }
        let guidance = try worldTarget.flatMap { target -> FlowGuidance? in
            guard let q = env.jointTarget(reaching: target, offset: offset) else { return nil }
            jointTarget = q
            return try self.guidance(toward: q, observation: observation, stats: policy.stats, horizon: policy.model.config.horizon)
        }
        let sampled: [Float] = try policy.model.sampleActions(inputs, key: key, encoded: encoded, guidance: guidance).toArray()
        return try policy.nativeChunk(standardized: sampled, observation: observation)
    }

    /// The guidance for one chunk: on q*'s slots, row k's target is the current joint position
    /// moved toward q* by at most (k + 1)·maxJointStep per joint, in the policy's action frame.
    public func guidance(toward q: JointTarget, observation: PolicyObservation, stats: NormalizationStats,
                         horizon: Int) throws -> FlowGuidance {
        let spec = observation.embodiment, width = VLAConfig.actionDimension
        let current = try spec.unifiedState(observation.nativeState)
        let anchor = try stats.actionAnchor(nativeState: observation.nativeState, spec: spec)
        var target = [Float](repeating: 0, count: horizon * width), weights = target
        for k in 0..<horizon {
            var row = [Float](repeating: 0, count: width)
            let reach = Float(k + 1) * maxJointStep
            for (slot, goal) in zip(q.slots, q.values) {
                row[slot] = current[slot] + min(max(goal - current[slot], -reach), reach)
            }
            let z = try stats.standardizedAction(row, anchor: anchor, embodiment: spec.name)
            for slot in q.slots {
                target[k * width + slot] = z[slot]
                weights[k * width + slot] = 1
            }
        }
        return FlowGuidance(target: try Tensor(target, shape: [1, horizon, width]),
                            weights: try Tensor(weights, shape: [1, horizon, width]), strength: strength)
    }
}
