import Foundation
import RobotData
import RobotSim
import TensorKit
import VLAModel

/// Green-VLA's Joint Prediction Module at inference, with no extra training: the backbone's
/// pointing head locates the task's target in the scene camera, the point is lifted to 3D with
/// the rendered depth, inverse kinematics turns it into a joint-space target q*, and the flow
/// sampler is guided toward a path to q* (`FlowGuidance`). An arm commanded in end-effector
/// deltas (arm6) needs no IK: its chunk is guided along a straight TCP path to the point.
///
/// The target and q* (and a carry's place point and waypoints) are found once per episode
/// (`prepare`, right after the reset), while the arm is still at home and cannot hide the
/// object from the scene camera; every chunk is then guided from the current joints alone,
/// without touching the environment, so an actor may sample chunks on another thread while
/// its episode thread steps the simulator.
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
    /// End-effector-delta arms: the largest TCP step per control step along the path (m; the
    /// scripted operator's reach moves 0.025), and the distance that releases the approach.
    public var maxTCPStep = 0.025
    public var tcpReleaseDistance = 0.015
    /// Guidance ends for the rest of the episode once every joint is within this of q*: q* is
    /// where the approach ends; what follows (grasp, carry, place) is the policy's, and a pull
    /// back toward the object's old place would fight it.
    public var releaseTolerance: Float = 0.05

    /// Pick-and-place: also guide the carry once the gripper holds the object (nil: approach only).
    public var carry: CarryGuidance?
    /// Where the carry's place point comes from (nil: as `pointSource`; mixing them separates
    /// the two heads' errors).
    public var placeSource: PointSource?
    /// Ask the pointing heads with this body's prompt instead of the episode's (nil): the body
    /// L1 grounded on. Pointing reads only images and text, and in a body-first prompt a longer
    /// body line shifts and cuts the instruction, so an L1 trained under one body's prompt
    /// points far worse under another's (README, JPM on arm6).
    public var pointingPrompt: EmbodimentSpec?

    /// What `prepare` found for the current episode (for logs and tests).
    public private(set) var worldTarget: SIMD3<Double>?
    public private(set) var imagePoint: SIMD2<Double>?
    public private(set) var jointTarget: JointTarget?
    /// End-effector-delta arms: where the TCP should go (the lifted point plus `offset`).
    public private(set) var tcpTarget: SIMD3<Double>?
    /// Where the carry puts the object (the place point lifted to 3D) and its joint waypoints.
    public private(set) var placeImagePoint: SIMD2<Double>?
    public private(set) var placeTarget: SIMD3<Double>?
    public private(set) var carryWaypoints: [JointTarget] = []
    /// Whether the joints have reached q* this episode (approach guidance released).
    public private(set) var released = false
    /// Where the episode is: approaching q*, waiting for a grasp, carrying (waypoint index), done.
    public private(set) var phase = Phase.approach
    /// The carry waypoint to head for after a (re)grasp: a dropped object resumes where it was.
    private var nextWaypoint = 0
    /// The gripper opening at the previous chunk (a grasp is a settled opening).
    private var lastOpening: Float?

    public enum Phase: Equatable, Sendable {
        case approach, awaitingGrasp, carrying(Int), finished
    }

    public init(strength: Double, pointSource: PointSource = .predicted, maxJointStep: Float = 0.05,
                offset: SIMD3<Double> = SIMD3(0, 0, 0.025), carry: CarryGuidance? = nil) {
        self.strength = strength
        self.pointSource = pointSource
        self.maxJointStep = maxJointStep
        self.offset = offset
        self.carry = carry
    }

    /// Forget the episode's target (call at every reset).
    public func reset() {
        worldTarget = nil
        imagePoint = nil
        jointTarget = nil
        tcpTarget = nil
        placeImagePoint = nil
        placeTarget = nil
        carryWaypoints = []
        released = false
        phase = .approach
        nextWaypoint = 0
        lastOpening = nil
    }

    /// Finds the episode's target: the point (pointing head or oracle) in the scene camera,
    /// lifted to 3D with the rendered depth, and q* by IK (an end-effector-delta arm keeps the
    /// 3D point as its TCP target instead). Leaves no target (unguided sampling) when there is
    /// no depth under the point. The carry needs joint positions.
    /// `encoded`: the observation's backbone pass when the caller already has it (saves one).
    public func prepare(policy: VLAPolicy, observation: PolicyObservation, environment env: RobotEnvironment,
                        encoded: (tokens: Tensor, mask: Tensor)? = nil) throws {
        reset()
        let asked = pointingPrompt.map { observation.withPrompt(of: $0) } ?? observation
        var encodedTokens = pointingPrompt == nil || pointingPrompt == observation.embodiment ? encoded?.tokens : nil
        let prefix = {
            if let encodedTokens { return encodedTokens }
            let tokens = try policy.model.encodePrefix(policy.inputs([asked])).tokens
            encodedTokens = tokens
            return tokens
        }
        switch pointSource {
        case .oracle: imagePoint = env.targetImagePoint
        case .predicted:
            let p: [Float] = try policy.model.pointTarget(prefix: prefix()).toArray()
            imagePoint = SIMD2(Double(p[0]), Double(p[1]))
        }
        worldTarget = try imagePoint.flatMap { try env.liftImagePoint($0, camera: "scene") }
        if env.spec.controlMode == .endEffectorDelta {
            tcpTarget = worldTarget.map { $0 + offset }
            return
        }
        jointTarget = worldTarget.flatMap { env.jointTarget(reaching: $0, offset: offset) }
        if let carry, let pick = worldTarget, let approach = jointTarget, let placePoint = try findPlacePoint(env, policy: policy, prefix: prefix) {
            placeImagePoint = placePoint
            placeTarget = try env.liftImagePoint(placePoint, camera: "scene")
            if let place = placeTarget {
                // Up over the grasp, across at carry height, down to just above the place point;
                // each solved from the one before so the chain stays on one IK branch.
                let points = [SIMD3(pick.x, pick.y, place.z + carry.height), place + SIMD3(0, 0, carry.height),
                              place + SIMD3(0, 0, carry.placeHeight)]
                var previous = approach
                carryWaypoints = points.compactMap { p in
                    env.jointTarget(reaching: p, offset: .zero, from: previous).map { previous = $0; return $0 }
                }
            }
        }
    }

    /// Where the object goes, in the scene camera: the pick/place mat's centre (oracle) or the
    /// place-pointing head's point (`PointingHeadFit`; none without one: no carry).
    func findPlacePoint(_ env: RobotEnvironment, policy: VLAPolicy, prefix: () throws -> Tensor) throws -> SIMD2<Double>? {
        guard env.goal.task == .pickPlace else { return nil }
        switch placeSource ?? pointSource {
        case .oracle:
            return env.zoneImagePoint
        case .predicted:
            guard policy.model.placePointingHead != nil else { return nil }
            let p: [Float] = try policy.model.pointPlace(prefix: prefix()).toArray()
            return SIMD2(Double(p[0]), Double(p[1]))
        }
    }

    /// A native action chunk for `observation`, sampled with guidance toward q* (unguided
    /// before `prepare`, when it found no target, or once q* has been reached).
    public func actionChunk(policy: VLAPolicy, observation: PolicyObservation, key: RandomKey) throws -> [[Float]] {
        let sampled: [Float] = try policy.sampleStandardized(observation, key: key, guidance: guidance(policy: policy, observation: observation)).toArray()
        return try policy.nativeChunk(standardized: sampled, observation: observation)
    }

    /// The guidance for the chunk planned at `observation`, advancing the episode's phase: toward
    /// q* while approaching; with a carry, toward the current waypoint while the gripper holds
    /// something; nil before `prepare`, without a target, and otherwise (once q* has been
    /// reached the approach is released for good).
    public func guidance(policy: VLAPolicy, observation: PolicyObservation) throws -> FlowGuidance? {
        if let goal = tcpTarget {
            return try tcpGuidance(toward: goal, observation: observation, stats: policy.stats, horizon: policy.model.config.horizon)
        }
        guard let approach = jointTarget else { return nil }
        let current = try observation.embodiment.unifiedState(observation.nativeState)
        let within = { (q: JointTarget, tolerance: Float) in zip(q.slots, q.values).allSatisfy { abs(current[$0.0] - $0.1) < tolerance } }
        // The gripper's opening (1 = open) says whether something is between the fingers.
        let gripper = approach.slots.first == UnifiedActionSpace.leftArm.lowerBound ? UnifiedActionSpace.leftGripper : UnifiedActionSpace.rightGripper
        // Held: the opening is in the held range and has settled since the last chunk (closing
        // fingers pass through the range on their way to closing on nothing).
        let opening = current[gripper]
        let holding = carry.map { $0.heldOpening.contains(opening) && abs(opening - (lastOpening ?? -1)) < $0.settledChange } ?? false
        lastOpening = opening
        if phase == .approach, within(approach, releaseTolerance) {
            released = true
            phase = carryWaypoints.isEmpty ? .finished : .awaitingGrasp
        } else if phase == .approach, holding, !carryWaypoints.isEmpty, let carry, within(approach, carry.graspTolerance) {
            // The policy went down and grasped before the joints settled on q* (which is above
            // the object): the approach is over; pulling back up to q* would fight the grasp.
            released = true
            phase = .awaitingGrasp
        }
        if phase == .awaitingGrasp, holding { phase = .carrying(nextWaypoint) }
        if case .carrying(var k) = phase, let carry {
            if !holding {
                phase = .awaitingGrasp   // dropped: wait for the policy to grasp again
            } else {
                if within(carryWaypoints[k], carry.waypointTolerance) { k += 1 }
                nextWaypoint = k
                phase = k < carryWaypoints.count ? .carrying(k) : .finished
            }
        }
        let horizon = policy.model.config.horizon
        switch phase {
        case .approach:
            return try guidance(toward: approach, observation: observation, stats: policy.stats, horizon: horizon)
        case .carrying(let k):
            // The carry also keeps the fingers closed: the policy alone lets go of a held block.
            return try guidance(toward: carryWaypoints[k], observation: observation, stats: policy.stats, horizon: horizon,
                                gripper: (gripper, 0))
        case .awaitingGrasp, .finished:
            return nil
        }
    }

    /// The guidance for one chunk: on q*'s slots, row k's target is the current joint position
    /// moved toward q* by at most (k + 1)·maxJointStep per joint, in the policy's action frame.
    /// `gripper`: also hold this unified gripper slot at a command (the carry keeps it closed).
    public func guidance(toward q: JointTarget, observation: PolicyObservation, stats: NormalizationStats,
                         horizon: Int, gripper: (slot: Int, command: Float)? = nil) throws -> FlowGuidance {
        let current = try observation.embodiment.unifiedState(observation.nativeState)
        let slots = q.slots + (gripper.map { [$0.slot] } ?? [])
        return try pathGuidance(slots: slots, observation: observation, stats: stats, horizon: horizon) { k, row in
            let reach = Float(k + 1) * maxJointStep
            for (slot, goal) in zip(q.slots, q.values) {
                row[slot] = current[slot] + min(max(goal - current[slot], -reach), reach)
            }
            if let gripper { row[gripper.slot] = gripper.command }
        }
    }

    /// A guidance pulling `slots` of each chunk row toward the unified action `fill(k, &row)`
    /// writes for row k, standardized into the policy's action frame.
    func pathGuidance(slots: [Int], observation: PolicyObservation, stats: NormalizationStats, horizon: Int,
                      fill: (Int, inout [Float]) -> Void) throws -> FlowGuidance {
        let spec = observation.embodiment, width = VLAConfig.actionDimension
        let anchor = try stats.actionAnchor(nativeState: observation.nativeState, spec: spec)
        var target = [Float](repeating: 0, count: horizon * width), weights = target
        for k in 0..<horizon {
            var row = [Float](repeating: 0, count: width)
            fill(k, &row)
            let z = try stats.standardizedAction(row, anchor: anchor, embodiment: spec.name)
            for slot in slots {
                target[k * width + slot] = z[slot]
                weights[k * width + slot] = 1
            }
        }
        return FlowGuidance(target: try Tensor(target, shape: [1, horizon, width]),
                            weights: try Tensor(weights, shape: [1, horizon, width]), strength: strength)
    }

    /// The approach for an end-effector-delta arm: chunk row k's position delta is the step of at
    /// most `maxTCPStep` toward `goal` from where rows 0..<k leave the TCP (the rotation and
    /// gripper slots stay the policy's). Released for good within `tcpReleaseDistance`.
    public func tcpGuidance(toward goal: SIMD3<Double>, observation: PolicyObservation, stats: NormalizationStats,
                            horizon: Int) throws -> FlowGuidance? {
        let spec = observation.embodiment
        let slots = Array(UnifiedActionSpace.endEffectorPosition)
        let current = try spec.unifiedState(observation.nativeState)
        var tcp = SIMD3(Double(current[slots[0]]), Double(current[slots[1]]), Double(current[slots[2]]))
        func length(_ v: SIMD3<Double>) -> Double { (v * v).sum().squareRoot() }
        if phase == .approach, length(goal - tcp) < tcpReleaseDistance {
            released = true
            phase = .finished
        }
        guard phase == .approach else { return nil }
        return try pathGuidance(slots: slots, observation: observation, stats: stats, horizon: horizon) { _, row in
            let toGoal = goal - tcp, distance = length(toGoal)
            let step = distance > maxTCPStep ? toGoal * (maxTCPStep / distance) : toGoal
            tcp += step
            for (i, slot) in slots.enumerated() { row[slot] = Float(step[i]) }
        }
    }
}

/// JPM's carry for pick-and-place: after the grasp, a path up, across and down over the place
/// point, released just above it for the policy to set the object down.
public struct CarryGuidance: Sendable, Equatable {
    /// TCP height above the place point while carrying (m).
    public var height = 0.12
    /// TCP height above the place point where guidance ends.
    public var placeHeight = 0.05
    /// Gripper opening (fraction of full travel) that means something is held: a 4 cm block
    /// leaves 0.5; empty fingers close to 0, open ones stay near 1.
    public var heldOpening: ClosedRange<Float> = 0.35...0.65
    /// A grasp near q* (every joint within this, rad) ends the approach even if q* was not reached.
    public var graspTolerance: Float = 0.2
    /// Largest change of the opening between two chunks that still counts as settled.
    public var settledChange: Float = 0.1
    /// A carry waypoint is passed once every joint is within this of it (rad): looser than the
    /// approach's release, as the held object's weight and the policy's own pull keep the
    /// joints a little off.
    public var waypointTolerance: Float = 0.1

    public init(height: Double = 0.12, placeHeight: Double = 0.05) {
        self.height = height
        self.placeHeight = placeHeight
    }
}
