import Foundation
import Testing
@testable import RobotSim

@Suite struct TaskChainTests {
    static let noImages = EnvironmentConfig(imageWidth: 16, imageHeight: 16, renderImages: false)

    @Test func sameSeedGivesTheSameSceneGoalsAndInstructions() throws {
        let chain = try TaskChain(length: 5)
        var distinct = Set<[String]>()
        for seed: UInt64 in 0..<6 {
            let a = try RobotEnvironment(embodiment: .arm7, chain: chain, seed: seed, config: Self.noImages)
            let b = try RobotEnvironment(embodiment: .arm7, chain: chain, seed: seed, config: Self.noImages)
            #expect(a.goals == b.goals)
            #expect(a.layout.objects.map(\.position) == b.layout.objects.map(\.position))
            #expect(a.goals.count == 5)
            distinct.insert(a.goals.map(\.instruction))
            // The scene does not depend on the chain drawn in it.
            let reachOnly = try RobotEnvironment(embodiment: .arm7, chain: TaskChain(length: 3, tasks: [.reach]), seed: seed, config: Self.noImages)
            #expect(reachOnly.layout.objects.map(\.position) == a.layout.objects.map(\.position))
            #expect(reachOnly.goals.allSatisfy { $0.task == .reach })
        }
        #expect(distinct.count == 6)
    }

    /// Instructions come from the single tasks' families; push and pick_place happen at most once
    /// (a second time would already be done) and a reach never names the previous goal's object.
    @Test func goalsAreFeasibleInSequenceAndSpeakTheSingleTaskFamilies() throws {
        let chain = try TaskChain(length: 5)
        var kinds = Set<TaskKind>()
        for seed: UInt64 in 0..<20 {
            let env = try RobotEnvironment(embodiment: .arm7, chain: chain, seed: seed, config: Self.noImages)
            let layout = env.layout
            #expect(layout.zone != nil && layout.mat != nil && layout.objects.count == 3)
            #expect(env.goals.filter { $0.task == .push }.count <= 1)
            #expect(env.goals.filter { $0.task == .pickPlace }.count <= 1)
            for (k, g) in env.goals.enumerated() {
                kinds.insert(g.task)
                if k > 0 && g.task == .reach { #expect(g.object != env.goals[k - 1].object) }
                let phrase = layout.objects[g.object].phrase
                let expectedZone: SceneZone? = g.task == .push ? layout.zone : g.task == .pickPlace ? layout.mat : nil
                #expect(g.zone == expectedZone)
                let filled = g.task.instructionFamily.map {
                    $0.replacingOccurrences(of: "{obj}", with: phrase).replacingOccurrences(of: "{zone}", with: expectedZone?.color.name ?? "")
                }
                #expect(filled.contains(g.instruction), "\(g.instruction)")
                #expect(g.stepLimit == g.task.stepLimit)
                if g.task == .push { #expect(layout.objects[g.object].shape == .cylinder) }
                if g.task == .pickPlace { #expect(layout.objects[g.object].shape == .box) }
            }
        }
        #expect(kinds == [.reach, .push, .pickPlace])
    }

    @Test func badChainsAreRefusedWithTypedErrors() throws {
        #expect(throws: TaskChainError.nonPositiveLength(0)) { try TaskChain(length: 0) }
        #expect(throws: TaskChainError.noTasks) { try TaskChain(length: 2, tasks: []) }
        #expect(throws: TaskChainError.unsupportedTask("sort")) { try TaskChain(length: 2, tasks: [.reach, .sort]) }
        // Push and pick_place can each happen once: without reach, at most two goals.
        #expect(throws: TaskChainError.tooLong(length: 2, feasible: 1)) { try TaskChain(length: 2, tasks: [.push]) }
        #expect(throws: TaskChainError.tooLong(length: 3, feasible: 2)) { try TaskChain(length: 3, tasks: [.push, .pickPlace]) }
        let env = try RobotEnvironment(embodiment: .arm7, chain: TaskChain(length: 2, tasks: [.push, .pickPlace]), seed: 0, config: Self.noImages)
        #expect(Set(env.goals.map(\.task)) == [.push, .pickPlace])
    }

    /// Every goal's predicate, at every step of an operator-run chain, against the success rules
    /// of the task table computed here from raw simulator state.
    @Test func goalPredicatesAgreeWithTheTaskTableOnEveryStep() throws {
        let env = try RobotEnvironment(embodiment: .arm7, chain: TaskChain(length: 3), seed: 0, config: Self.noImages)
        #expect(env.goals.map(\.task) == [.pickPlace, .reach, .push])
        let arm = env.arms[0]
        func reference(_ g: TaskGoal) -> Bool {
            let o = env.objectPosition(g.object), tcp = arm.tcpPosition(env.simulation)
            let d = tcp - o
            switch g.task {
            case .reach: return (d * d).sum().squareRoot() < 0.05
            case .push:
                let z = g.zone!.center
                return ((o.x - z.x) * (o.x - z.x) + (o.y - z.y) * (o.y - z.y)).squareRoot() < 0.05 && o.z < 0.04
            case .pickPlace:
                let z = g.zone!.center
                let open = arm.gripperWidth(env.simulation) > 0.04 + 0.012 || (d * d).sum().squareRoot() > 0.05
                return Swift.abs(o.x - z.x) < 0.06 && Swift.abs(o.y - z.y) < 0.06 && o.z < 0.03 && open
            default: return false
            }
        }
        env.reset()
        var seenTrue = [Bool](repeating: false, count: 3), seenFalse = seenTrue, steps = 0
        while steps < 600 {
            let r = try env.step(nativeAction: env.expertAction())
            steps += 1
            for (k, g) in env.goals.enumerated() {
                let holds = env.isSuccess(g)
                #expect(holds == reference(g), "goal \(k) (\(g.task)) at step \(steps)")
                if holds { seenTrue[k] = true } else { seenFalse[k] = true }
            }
            #expect(r.success == env.isSuccess(env.goal))
            if r.done { if !r.success || env.beginNextGoal() == nil { break } }
        }
        #expect(seenTrue == [true, true, true] && seenFalse == [true, true, true])
        #expect(env.goalIndex == 2 && env.isSuccess())
    }

    /// The clean operator takes each goal over from where the previous one left the scene (seed 7:
    /// reach, then pick_place, then push; checked by hand: 25, 89 and 63 steps).
    @Test func operatorCompletesAThreeInstructionChain() throws {
        let env = try RobotEnvironment(embodiment: .arm7, chain: TaskChain(length: 3), seed: 7, config: Self.noImages)
        #expect(env.goals.map(\.task) == [.reach, .pickPlace, .push])
        let outcome = try env.runChainWithOperator()
        #expect(outcome.completed == 3 && outcome.failedTask == nil)
        for (g, steps) in zip(env.goals, outcome.stepsPerCompletedGoal) { #expect(steps > 0 && steps < g.stepLimit) }
        // Each goal's step limit counts from its own start.
        #expect(env.stepCount == outcome.stepsPerCompletedGoal.reduce(0, +))
        // A reset restarts the chain at its first instruction.
        let first = env.reset()
        #expect(first.instruction == env.goals[0].instruction && env.goalIndex == 0 && env.stepCount == 0)
    }

    /// Two arms: the arm a goal leaves low among the objects lifts clear before it goes home
    /// (seed 8 flung the puck off the table when it jumped home after the push).
    @Test func twoArmOperatorKeepsTheObjectsOnTheTable() throws {
        let env = try RobotEnvironment(embodiment: .bimanual, chain: TaskChain(length: 5), seed: 8, config: Self.noImages)
        #expect(env.goals.map(\.task) == [.push, .pickPlace, .reach, .reach, .reach])
        let outcome = try env.runChainWithOperator()
        #expect(outcome.completed == 5)
        for i in env.layout.objects.indices {
            let p = env.objectPosition(i)
            #expect(p.x > 0.25 && p.x < 0.75 && Swift.abs(p.y) < 0.4 && p.z < 0.05, "object \(i) at \(p)")
        }
    }

    @Test func singleTaskEnvironmentsKeepOneGoalFromTheirLayout() throws {
        for task in [TaskKind.reach, .push, .pickPlace, .stack] {
            let env = try RobotEnvironment(embodiment: .arm7, task: task, seed: 3, config: Self.noImages)
            #expect(env.goals == [TaskGoal(task: task, object: env.layout.target, zone: env.layout.zone, instruction: env.layout.instruction)])
            #expect(env.chain == nil && env.beginNextGoal() == nil && env.instruction == env.layout.instruction)
        }
    }
}
