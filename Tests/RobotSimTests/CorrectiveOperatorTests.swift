import Foundation
import Testing
@testable import RobotSim

/// The corrective operator (`OperatorProfile.approach = .direct`) takes over from where a
/// policy stalled and goes straight at the target; the demos' phase machine lifts clear first.
@Suite struct CorrectiveOperatorTests {
    /// Drives arm 0's hand to `offset` from the target object (a policy that stalled beside it)
    /// and returns the snapshot there.
    static func stalledBeside(_ env: RobotEnvironment, offset: SIMD3<Double>) throws -> RobotEnvironment.Snapshot {
        env.reset()
        let driver = ScriptedExpert()
        let o = env.objectPosition(env.goal.object)
        let arm = env.arms[0]
        for _ in 0..<80 {
            let goal = ScriptedExpert.ArmGoal(position: o + offset, yaw: 0, gripper: 1)
            _ = try env.step(nativeAction: driver.nativeAction(env, [goal]))
            if norm(arm.tcpPosition(env.simulation) - (o + offset)) < 0.004 { break }
        }
        return env.snapshot()
    }

    struct Run { var success = false; var steps = 0; var maxHeight = -Double.infinity; var startDistance = 0.0 }

    static func takeOver(_ env: RobotEnvironment, from snapshot: RobotEnvironment.Snapshot, approach: OperatorProfile.Approach, steps: Int) throws -> Run {
        env.restore(snapshot)
        var profile = OperatorProfile.clean
        profile.approach = approach
        let op = ScriptedExpert(profile: profile)
        let o = env.objectPosition(env.goal.object)
        var run = Run()
        run.startDistance = norm(env.arms[0].tcpPosition(env.simulation) - o)
        for _ in 0..<steps {
            let r = try env.step(nativeAction: op.action(for: env))
            run.steps += 1
            run.maxHeight = max(run.maxHeight, env.arms[0].tcpPosition(env.simulation).z - o.z)
            if r.success { run.success = true; break }
        }
        return run
    }

    /// Reach succeeds within 5 cm of the object. From 8 cm beside it, 1 cm over its centre,
    /// the phase machine first lifts toward 10 cm above it (its `reach` branch for a low hand);
    /// the direct operator heads for 2.5 cm over the centre, closing the 3 cm at ≤ 2.5 cm a step.
    @Test func directOperatorFinishesAReachWithoutTheLift() throws {
        let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: 3, config: EnvironmentConfig(renderImages: false))
        let snap = try Self.stalledBeside(env, offset: SIMD3(-0.08, 0, 0.01))
        #expect(!env.isSuccess())
        let start = env.arms[0].tcpPosition(env.simulation).z - env.objectPosition(env.goal.object).z
        let phased = try Self.takeOver(env, from: snap, approach: .fromAbove, steps: 100)
        let direct = try Self.takeOver(env, from: snap, approach: .direct, steps: 100)
        #expect(phased.success && direct.success)
        #expect(direct.startDistance > 0.06 && direct.startDistance < 0.1)
        #expect(phased.maxHeight > start + 0.05, "phased max height \(phased.maxHeight), start \(start)")
        #expect(direct.maxHeight < 0.025 + 0.005, "direct max height \(direct.maxHeight), start \(start)")
        // ceil((distance − 0.05) / 0.025) steps at full speed, + 2 for IK lag.
        let bound = Int(((direct.startDistance - 0.05) / 0.025).rounded(.up)) + 2
        #expect(direct.steps <= bound, "direct \(direct.steps) steps, bound \(bound)")
        #expect(direct.steps < phased.steps)
    }

    /// Push from a hand stalled low on the wrong side of the puck (8 cm toward the circle,
    /// 1 cm over the table): the phase machine lifts to 10 cm before moving behind the puck; the
    /// direct operator passes over the puck's mound (3 cm over its 3 cm top) and pushes it in.
    @Test func directOperatorFinishesAPushFromTheWrongSideWithoutTheLift() throws {
        let env = try RobotEnvironment(embodiment: .arm7, task: .push, seed: 4, config: EnvironmentConfig(renderImages: false))
        let o = env.objectPosition(env.goal.object), zone = try #require(env.goal.zone).center
        let toward = SIMD3(zone.x - o.x, zone.y - o.y, 0) / hypot(zone.x - o.x, zone.y - o.y)
        let snap = try Self.stalledBeside(env, offset: toward * 0.08 + SIMD3(0, 0, 0.01 - o.z))
        let phased = try Self.takeOver(env, from: snap, approach: .fromAbove, steps: env.stepLimit)
        let direct = try Self.takeOver(env, from: snap, approach: .direct, steps: env.stepLimit)
        #expect(phased.success && direct.success, "phased \(phased), direct \(direct)")
        // Heights relative to the puck's centre (1.5 cm): its top is at +1.5 cm, the mound at +4.5 cm.
        #expect(phased.maxHeight > 0.07, "phased max height \(phased.maxHeight)")
        #expect(direct.maxHeight < 0.045 + 0.005, "direct max height \(direct.maxHeight)")
        #expect(direct.steps < phased.steps, "direct \(direct.steps) steps, phased \(phased.steps)")
    }

    /// Pick-and-place from a hand stalled beside the block: the direct approach comes in over
    /// its mound, grasps and places it.
    @Test func directOperatorFinishesAPickAndPlaceFromAStalledGrasp() throws {
        let env = try RobotEnvironment(embodiment: .arm7, task: .pickPlace, seed: 5, config: EnvironmentConfig(renderImages: false))
        let snap = try Self.stalledBeside(env, offset: SIMD3(-0.07, 0.03, 0.04))
        let o = env.objectPosition(env.goal.object)
        let tcp = env.arms[0].tcpPosition(env.simulation)
        let start = hypot(tcp.x - o.x, tcp.y - o.y)
        let direct = try Self.takeOver(env, from: snap, approach: .direct, steps: env.stepLimit)
        #expect(direct.success, "direct pick-place from the stalled state")
        #expect(start > 0.05)
    }
}

extension CorrectiveOperatorTests {
    /// The direct approach is a whole operator too: from reset it solves the tasks it changes
    /// (reach, pick-and-place's grasp, push) on every body.
    @Test(arguments: [EmbodimentKind.arm7, .arm6, .bimanual])
    func directOperatorSolvesFromReset(embodiment: EmbodimentKind) throws {
        var profile = OperatorProfile.clean
        profile.approach = .direct
        for task in [TaskKind.reach, .pickPlace, .push] where task.embodiments.contains(embodiment) {
            for seed: UInt64 in [0, 1, 2] {
                let env = try RobotEnvironment(embodiment: embodiment, task: task, seed: seed, config: EnvironmentConfig(renderImages: false))
                let r = try SimRunner.runExpert(env, profile: profile)
                #expect(r.success, "\(embodiment)/\(task) seed \(seed) after \(r.steps) steps")
            }
        }
    }
}
