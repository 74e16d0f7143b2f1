import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
@testable import Training
import VLAModel

@Suite("Joint prediction module")
struct JointPredictionTests {
    /// With the oracle point the lifted target sits on the object; with strength = sampling
    /// steps the guided joint entries of the sampled chunk end exactly on the path toward q*
    /// (see `guidancePullsMaskedEntriesTowardTheTargetInClosedForm`), whatever the (untrained)
    /// model says, so the decoded native chunk must equal q_t + clip(q* − q_t, ±(k + 1)·step)
    /// on the arm's joints — in the absolute and in the relative action frame.
    @Test(arguments: [false, true])
    func oracleGuidanceSteersTheChunkOntoThePathToTheIKTarget(relative: Bool) throws {
        var c = smallConfig()
        c.relativeActions = relative
        let (policy, env, observation) = try untrainedPolicyAndScene(c, task: .reach)
        let jpm = JointPredictionModule(strength: Double(c.samplingSteps), pointSource: .oracle, maxJointStep: 0.05)
        try jpm.prepare(policy: policy, observation: observation, environment: env)
        let chunk = try jpm.actionChunk(policy: policy, observation: observation, key: RandomKey(seed: 3))

        let target = try #require(jpm.worldTarget)
        let centre = env.objectPosition(env.layout.target)
        #expect(((target - centre) * (target - centre)).sum().squareRoot() < 0.035)
        let q = try #require(jpm.jointTarget)
        for k in 0..<c.horizon {
            for j in 0..<7 {
                let now = observation.nativeState[j], reach = Float(k + 1) * 0.05
                let expected = now + min(max(q.values[j] - now, -reach), reach)
                #expect(Swift.abs(chunk[k][j] - expected) < 2e-3, "row \(k) joint \(j)")
            }
        }
        // At q* (every joint within the 0.05 rad tolerance) guidance is released for the rest of the
        // episode: the chunk is the policy's own, even back at the start posture.
        var atTarget = observation
        for j in 0..<7 { atTarget.nativeState[j] = q.values[j] + 0.03 }
        try expectReleased(jpm, policy: policy, arrived: atTarget, start: observation)
    }

    /// arm6 is commanded in end-effector deltas: no IK, the lifted point (plus the 2.5 cm offset)
    /// is the TCP target, and with strength = sampling steps the decoded chunk's position deltas
    /// are the steps of at most 2.5 cm along the straight line from the observed TCP to it.
    @Test func endEffectorDeltaArmIsGuidedAlongAStraightTCPPath() throws {
        let c = smallConfig()
        let (policy, env, observation) = try untrainedPolicyAndScene(c, task: .reach, embodiment: .arm6)
        let jpm = JointPredictionModule(strength: Double(c.samplingSteps), pointSource: .oracle)
        try jpm.prepare(policy: policy, observation: observation, environment: env)
        let chunk = try jpm.actionChunk(policy: policy, observation: observation, key: RandomKey(seed: 3))

        #expect(jpm.jointTarget == nil)
        let point = try #require(jpm.worldTarget), goal = try #require(jpm.tcpTarget)
        let centre = env.objectPosition(env.layout.target)
        #expect(((point - centre) * (point - centre)).sum().squareRoot() < 0.035)
        #expect(goal == point + SIMD3(0, 0, 0.025))
        // arm6's native state: 6 joints, the gripper, then the TCP position.
        var tcp = SIMD3(Double(observation.nativeState[7]), Double(observation.nativeState[8]), Double(observation.nativeState[9]))
        #expect(((tcp - goal) * (tcp - goal)).sum().squareRoot() > 0.1)   // far: every row a full step
        for k in 0..<c.horizon {
            let toGoal = goal - tcp, distance = (toGoal * toGoal).sum().squareRoot()
            let step = distance > 0.025 ? toGoal * (0.025 / distance) : toGoal
            tcp += step
            for i in 0..<3 { #expect(Swift.abs(Double(chunk[k][i]) - step[i]) < 5e-4, "row \(k) axis \(i)") }
        }
        // Within 1.5 cm of the target the approach is released for the rest of the episode.
        var near = observation
        for i in 0..<3 { near.nativeState[7 + i] = Float(goal[i]) + 0.005 }
        try expectReleased(jpm, policy: policy, arrived: near, start: observation)
    }

    /// Once arrived, the approach is released for the rest of the episode: JPM's chunk is the
    /// policy's own there, and later even back at the start.
    private func expectReleased(_ jpm: JointPredictionModule, policy: VLAPolicy, arrived: PolicyObservation,
                                start: PolicyObservation) throws {
        let free = try jpm.actionChunk(policy: policy, observation: arrived, key: RandomKey(seed: 5))
        let own = try policy.actionChunk(arrived, key: RandomKey(seed: 5))
        #expect(jpm.released && free == own)
        let later = try jpm.actionChunk(policy: policy, observation: start, key: RandomKey(seed: 6))
        let ownLater = try policy.actionChunk(start, key: RandomKey(seed: 6))
        #expect(later == ownLater)
    }

    @Test func predictedPointComesFromThePointingHead() throws {
        var c = smallConfig()
        c.pointingWeight = 1
        let (policy, env, observation) = try untrainedPolicyAndScene(c, task: .reach)
        let jpm = JointPredictionModule(strength: 1, pointSource: .predicted)
        try jpm.prepare(policy: policy, observation: observation, environment: env)
        let point = try #require(jpm.imagePoint)
        let expected: [Float] = try policy.model.pointTarget(prefix: policy.model.encodePrefix(policy.inputs([observation])).tokens).toArray()
        #expect(Swift.abs(point.x - Double(expected[0])) < 1e-6 && Swift.abs(point.y - Double(expected[1])) < 1e-6)
        // Without a target (after reset) chunks are sampled unguided: the policy's own chunk.
        jpm.reset()
        let unguided = try jpm.actionChunk(policy: policy, observation: observation, key: RandomKey(seed: 4))
        #expect(unguided == (try policy.actionChunk(observation, key: RandomKey(seed: 4))))
        #expect(jpm.worldTarget == nil && jpm.imagePoint == nil)
    }

    /// `pointingPrompt`: on an arm6 scene the head is asked with arm7's prompt (the body L1
    /// grounded on), even when the caller hands in the scene's own backbone pass.
    @Test func pointingPromptAsksTheHeadAsAnotherBody() throws {
        var c = smallConfig()
        c.pointingWeight = 1
        let policy = try twoArmPointingPolicy(c, seed: 1)
        let env = try RobotEnvironment(embodiment: .arm6, task: .reach, seed: 4,
                                       config: EnvironmentConfig(imageWidth: c.imageSize, imageHeight: c.imageSize))
        let observation = PolicyEvaluator.policyObservation(env.reset(), env: env)
        let own = try policy.model.encodePrefix(policy.inputs([observation]))
        let jpm = JointPredictionModule(strength: 1, pointSource: .predicted)
        jpm.pointingPrompt = EmbodimentKind.arm7.spec
        try jpm.prepare(policy: policy, observation: observation, environment: env, encoded: own)
        let point = try #require(jpm.imagePoint)
        let expected = try pointReadAsArm7(policy, observation)
        #expect(Swift.abs(point.x - Double(expected[0])) < 1e-6 && Swift.abs(point.y - Double(expected[1])) < 1e-6)
        let ownPoint: [Float] = try policy.model.pointTarget(prefix: own.tokens).toArray()
        #expect(Swift.abs(point.x - Double(ownPoint[0])) + Swift.abs(point.y - Double(ownPoint[1])) > 1e-4)
        // arm6 commands end-effector deltas: the lifted point is its TCP target.
        #expect(jpm.tcpTarget != nil || jpm.worldTarget == nil)
    }

    /// The pick_place carry: forward kinematics of each waypoint lands on the point it was
    /// solved for (up over the lifted pick point, across at carry height over the mat, down
    /// to just above it), the place point is on the mat, and the phases follow the gripper's
    /// opening: unguided at q* with open fingers; once the opening has settled where a 4 cm
    /// block leaves it (0.5), the path to the current waypoint with the gripper held closed;
    /// unguided again when the fingers close on nothing; resumed at the same waypoint on a
    /// regrasp; released after the last. A grasp short of q* ends the approach too.
    @Test func carryFollowsTheGripperAlongWaypointsOverTheMat() throws {
        let c = smallConfig()
        let (policy, env, observation) = try untrainedPolicyAndScene(c, task: .pickPlace)
        let jpm = JointPredictionModule(strength: Double(c.samplingSteps), pointSource: .oracle, maxJointStep: 0.05)
        jpm.carry = CarryGuidance(height: 0.12, placeHeight: 0.05)
        try jpm.prepare(policy: policy, observation: observation, environment: env)

        let pick = try #require(jpm.worldTarget), place = try #require(jpm.placeTarget)
        let mat = try #require(env.goal.zone)
        #expect(hypot(place.x - mat.center.x, place.y - mat.center.y) < 0.01 && place.z < 0.015)
        let points = [SIMD3(pick.x, pick.y, place.z + 0.12), place + SIMD3(0, 0, 0.12), place + SIMD3(0, 0, 0.05)]
        #expect(jpm.carryWaypoints.count == 3)
        for (w, p) in zip(jpm.carryWaypoints, points) {
            let d = env.tcpPosition(arm: 0, joints: w.values) - p
            #expect((d * d).sum().squareRoot() < 0.01, "waypoint for \(p)")
        }

        let approach = try #require(jpm.jointTarget)
        func at(_ q: JointTarget, gripper: Float, off: Float = 0) -> PolicyObservation {
            var o = observation
            for j in 0..<7 { o.nativeState[j] = q.values[j] + off }
            o.nativeState[7] = gripper
            return o
        }
        func isUnguided(_ o: PolicyObservation, seed: UInt64) throws -> Bool {
            try jpm.actionChunk(policy: policy, observation: o, key: RandomKey(seed: seed)) == policy.actionChunk(o, key: RandomKey(seed: seed))
        }
        #expect(try isUnguided(at(approach, gripper: 1), seed: 2) && jpm.phase == .awaitingGrasp && jpm.released)
        // Fingers passing 0.5 on their way closed are no grasp; settled at 0.5 (next chunk) they are.
        #expect(try isUnguided(at(approach, gripper: 0.5), seed: 2) && jpm.phase == .awaitingGrasp)
        let holding = at(approach, gripper: 0.52)
        let chunk = try jpm.actionChunk(policy: policy, observation: holding, key: RandomKey(seed: 3))
        #expect(jpm.phase == .carrying(0))
        let lift = jpm.carryWaypoints[0]
        for k in 0..<c.horizon {
            for j in 0..<7 {
                let now = holding.nativeState[j], reach = Float(k + 1) * 0.05
                #expect(Swift.abs(chunk[k][j] - (now + min(max(lift.values[j] - now, -reach), reach))) < 2e-3, "row \(k) joint \(j)")
            }
            #expect(Swift.abs(chunk[k][7]) < 2e-3, "row \(k) gripper held closed")
        }
        // Within the carry's 0.1 rad of a waypoint counts as passing it.
        _ = try jpm.guidance(policy: policy, observation: at(lift, gripper: 0.5, off: 0.08))
        #expect(jpm.phase == .carrying(1))
        #expect(try isUnguided(at(lift, gripper: 0.02), seed: 4) && jpm.phase == .awaitingGrasp)
        _ = try jpm.guidance(policy: policy, observation: at(approach, gripper: 0.5))
        _ = try jpm.guidance(policy: policy, observation: at(approach, gripper: 0.5))
        #expect(jpm.phase == .carrying(1))
        _ = try jpm.guidance(policy: policy, observation: at(jpm.carryWaypoints[1], gripper: 0.5))
        #expect(jpm.phase == .carrying(2))
        #expect(try isUnguided(at(jpm.carryWaypoints[2], gripper: 0.5), seed: 5) && jpm.phase == .finished)
        #expect(try isUnguided(at(approach, gripper: 0.5), seed: 6) && jpm.phase == .finished)

        // A new episode: a settled grasp 0.1 rad short of q* (not reached) ends the approach.
        try jpm.prepare(policy: policy, observation: observation, environment: env)
        _ = try jpm.guidance(policy: policy, observation: at(approach, gripper: 0.5, off: 0.1))
        #expect(jpm.phase == .approach)
        _ = try jpm.guidance(policy: policy, observation: at(approach, gripper: 0.5, off: 0.1))
        #expect(jpm.phase == .carrying(0) && jpm.released)
    }
}

/// An untrained policy of `c` (normalization from one reach demo) and seed 4's scene of `task` at reset.
/// An untrained policy with a pointing head and statistics for arm7 and arm6, so it reads
/// either body's prompt.
func twoArmPointingPolicy(_ c: VLAConfig, seed: UInt64) throws -> VLAPolicy {
    let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_001], imageSize: c.imageSize)
        + DemoCollector.collect(embodiment: .arm6, task: .reach, seeds: [10_001], imageSize: c.imageSize)
    return VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: seed)), stats: NormalizationStats(episodes: demos))
}

/// By hand: the head's point for `observation`'s cameras and instruction in an observation
/// built for arm7 (its state, −0.2 in every entry, is never read by the pointing).
func pointReadAsArm7(_ policy: VLAPolicy, _ observation: PolicyObservation) throws -> [Float] {
    let arm7 = EmbodimentKind.arm7.spec
    let asArm7 = PolicyObservation(embodiment: arm7, instruction: observation.instruction, cameras: observation.cameras,
                                   nativeState: [Float](repeating: -0.2, count: arm7.stateDimension))
    return try policy.model.pointTarget(prefix: policy.model.encodePrefix(policy.inputs([asArm7])).tokens).toArray()
}

func untrainedPolicyAndScene(_ c: VLAConfig, task: TaskKind, embodiment: EmbodimentKind = .arm7) throws -> (VLAPolicy, RobotEnvironment, PolicyObservation) {
    let demos = try DemoCollector.collect(embodiment: embodiment, task: .reach, seeds: [10_001], imageSize: c.imageSize)
    let dataset = try DemonstrationDataset(episodes: demos, specs: DemoCollector.specs, config: c)
    let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 1)), stats: dataset.stats)
    let env = try RobotEnvironment(embodiment: embodiment, task: task, seed: 4,
                                   config: EnvironmentConfig(imageWidth: c.imageSize, imageHeight: c.imageSize))
    return (policy, env, PolicyEvaluator.policyObservation(env.reset(), env: env))
}
