import Foundation
import Testing
@testable import RobotSim

/// `TaskMilestones` on scripted episodes: the operator passes every milestone of its task in
/// order, each first marked at the step where the test's own reading of the state crosses it;
/// a hand that stays put passes none.
@Suite struct TaskMilestonesTests {
    struct Log {
        var tracker: TaskMilestones
        var goal: TaskGoal
        /// Entry k: after control step k + 1 (the tracker counts steps from 1).
        var handDistance: [Double] = []
        var object: [SIMD3<Double>] = []
        /// Where the layout placed the target object.
        var start: SIMD3<Double>
        var success = false
    }

    /// One episode of `act` with the tracker updated after every step, and the test's own log
    /// of the hand's distance to the target object and the object's position.
    static func episode(_ task: TaskKind, seed: UInt64, steps: Int? = nil, act: (RobotEnvironment) -> [Float]) throws -> Log {
        let env = try RobotEnvironment(embodiment: .arm7, task: task, seed: seed, config: EnvironmentConfig(renderImages: false))
        env.reset()
        let i = env.goal.object
        var log = Log(tracker: TaskMilestones(environment: env), goal: env.goal, start: env.layout.objects[i].position)
        while !log.success && env.stepCount < (steps ?? env.goal.stepLimit) {
            let r = try env.step(nativeAction: act(env))
            log.tracker.update(env)
            log.handDistance.append(norm(env.arms[0].tcpPosition(env.simulation) - env.objectPosition(i)))
            log.object.append(env.objectPosition(i))
            log.success = r.success
        }
        return log
    }

    @Test func operatorPickPlacePassesEveryMilestoneInOrder() throws {
        let op = ScriptedExpert()
        let log = try Self.episode(.pickPlace, seed: 3) { op.action(for: $0) }
        let t = log.tracker
        #expect(log.success)
        #expect(t.milestones == [.nearObject, .grasped, .lifted, .overGoal, .succeeded])
        #expect(t.reached == Set(t.milestones))
        let steps = t.milestones.map { t.firstStep[$0] ?? -1 }
        #expect(steps == steps.sorted() && steps[0] < steps[1] && steps[1] < steps[2], "\(steps)")
        // near_object: the first step with the hand within 3 cm of the block's centre.
        #expect(t.firstStep[.nearObject] == log.handDistance.firstIndex { $0 < 0.03 }.map { $0 + 1 })
        // lifted: held 3 cm above the layout's placement, the first such step once held.
        let lifted = try #require(t.firstStep[.lifted]), grasped = try #require(t.firstStep[.grasped])
        #expect(log.object[lifted - 1].z >= log.start.z + 0.03)
        #expect(log.object[(grasped - 1)..<(lifted - 1)].allSatisfy { $0.z < log.start.z + 0.03 })
        // over_goal: the first step with the block's centre inside the mat square.
        let zone = try #require(log.goal.zone)
        let over = log.object.firstIndex { abs($0.x - zone.center.x) < zone.radius && abs($0.y - zone.center.y) < zone.radius }
        #expect(t.firstStep[.overGoal] == over.map { $0 + 1 })
        #expect(t.firstStep[.succeeded] == log.object.count)
        #expect(abs(t.closestApproach! - log.handDistance.min()!) < 1e-12)
    }

    @Test func operatorPushMovesThePuckIntoTheCircle() throws {
        let op = ScriptedExpert()
        let log = try Self.episode(.push, seed: 5) { op.action(for: $0) }
        let t = log.tracker
        #expect(log.success && t.milestones == [.nearObject, .moved, .overGoal, .succeeded] && t.reached == Set(t.milestones), "closest \(log.handDistance.min()!) \(t.firstStep)")
        // moved: the first step the puck is 2 cm (horizontally) from its placement.
        let moved = log.object.firstIndex { hypot($0.x - log.start.x, $0.y - log.start.y) >= 0.02 }
        #expect(t.firstStep[.moved] == moved.map { $0 + 1 })
        let zone = try #require(log.goal.zone)
        let inside = log.object.firstIndex { hypot($0.x - zone.center.x, $0.y - zone.center.y) < zone.radius }
        #expect(t.firstStep[.overGoal] == inside.map { $0 + 1 })
        #expect(t.firstStep[.nearObject] == log.handDistance.firstIndex { $0 < 0.05 }.map { $0 + 1 })
        #expect(t.firstStep[.nearObject]! <= t.firstStep[.moved]!)
        #expect(abs(t.closestApproach! - log.handDistance.min()!) < 1e-12)
    }

    /// A hand held at its home pose (open) for 40 steps gets nowhere on any task.
    @Test func aHandThatStaysPutPassesNone() throws {
        let op = ScriptedExpert()
        for task in [TaskKind.reach, .push, .pickPlace, .stack] {
            var hold: ScriptedExpert.ArmGoal?
            let log = try Self.episode(task, seed: 2, steps: 40) { env in
                let arm = env.arms[0]
                if hold == nil { hold = ScriptedExpert.ArmGoal(position: arm.tcpPosition(env.simulation), yaw: arm.handYaw(env.simulation), gripper: 1) }
                return op.nativeAction(env, [hold!])
            }
            #expect(log.tracker.reached.isEmpty, "\(task): \(log.tracker.firstStep)")
            #expect(log.handDistance.min()! > 0.10, "\(task)")
            #expect(log.tracker.closestApproach == log.handDistance.min())
        }
        #expect(TaskMilestones.milestones(for: .sort) == [.succeeded] && TaskMilestones.milestones(for: .drawer) == [.succeeded])
    }
}
