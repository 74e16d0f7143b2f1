import Foundation
import Testing
@testable import RobotSim

@Suite struct ExpertTests {
    static let pairs = SimRunner.pairs.map { "\($0.0.rawValue)/\($0.1.rawValue)" }

    @Test(arguments: pairs)
    func expertSolvesTaskOnFixedSeeds(pair: String) throws {
        let parts = pair.split(separator: "/").map(String.init)
        let e = EmbodimentKind(rawValue: parts[0])!, t = TaskKind(rawValue: parts[1])!
        for seed: UInt64 in [0, 1, 2] {
            let env = try RobotEnvironment(embodiment: e, task: t, seed: seed, config: EnvironmentConfig(renderImages: false))
            let r = try SimRunner.runExpert(env)
            #expect(r.success, "\(pair) seed \(seed) failed after \(r.steps) steps")
            #expect(r.steps < t.stepLimit)
        }
    }

    /// HG-DAgger: a random policy drives for a while, then the operator takes over and solves it.
    @Test func operatorTakesOverFromARandomPolicyState() throws {
        for (e, t) in [(EmbodimentKind.arm7, TaskKind.pickPlace), (.arm6, .stack)] {
            let env = try RobotEnvironment(embodiment: e, task: t, seed: 5, config: EnvironmentConfig(renderImages: false))
            env.reset()
            var rng = SeededGenerator(seed: 9)
            // Random actions around the expert's (a bad policy).
            for _ in 0..<20 {
                let a = env.expertAction().map { $0 + Float(rng.uniform(-0.3, 0.3)) }
                _ = try env.step(nativeAction: a)
            }
            let operatorExpert = ScriptedExpert()
            var success = false
            while env.stepCount < t.stepLimit {
                let r = try env.step(nativeAction: operatorExpert.action(for: env))
                if r.success { success = true; break }
            }
            #expect(success, "\(e) \(t)")
        }
    }

    @Test func imperfectOperatorIsJitteryAndSlowerButUsuallySucceeds() throws {
        var cleanSteps = 0, sloppySteps = 0, sloppySuccess = 0
        var cleanJerk = 0.0, sloppyJerk = 0.0
        for seed: UInt64 in 0..<3 {
            for imperfect in [false, true] {
                let env = try RobotEnvironment(embodiment: .arm7, task: .pickPlace, seed: seed, config: EnvironmentConfig(renderImages: false))
                let rec = EpisodeRecorder(environment: env)
                let r = try SimRunner.runExpert(env, profile: imperfect ? .imperfect(seed: seed) : .clean, recorder: rec)
                // Mean |second difference| of joint targets: tremor and noise raise it.
                let a = rec.actions
                var jerk = 0.0
                for i in 2..<a.count { for j in 0..<7 { jerk += Double(abs(a[i][j] - 2 * a[i - 1][j] + a[i - 2][j])) } }
                jerk /= Double(a.count - 2)
                if imperfect { sloppySteps += r.steps; sloppyJerk += jerk; if r.success { sloppySuccess += 1 } }
                else { cleanSteps += r.steps; cleanJerk += jerk; #expect(r.success) }
            }
        }
        #expect(sloppySuccess >= 2)
        #expect(sloppySteps > cleanSteps)
        #expect(sloppyJerk > 1.5 * cleanJerk)
    }

    /// Speed alignment needs real speed differences: a 0.5x operator takes clearly longer, a 2x one clearly shorter.
    @Test func operatorSpeedScaleChangesEpisodeLength() throws {
        func steps(_ speed: Double) throws -> Int {
            var config = EnvironmentConfig(renderImages: false)
            config.stepLimit = 600
            let env = try RobotEnvironment(embodiment: .arm7, task: .pickPlace, seed: 4, config: config)
            let r = try SimRunner.runExpert(env, profile: .speed(speed))
            #expect(r.success, "speed \(speed)")
            return r.steps
        }
        let slow = try steps(0.5), normal = try steps(1), fast = try steps(2)
        #expect(Double(slow) > 1.4 * Double(normal))
        #expect(Double(fast) < 0.8 * Double(normal))
    }
}
