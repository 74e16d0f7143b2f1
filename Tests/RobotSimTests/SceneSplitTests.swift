import Foundation
import Testing
@testable import RobotSim

/// The held-out scene split: parts against closed-form frequencies and against the built scene.
@Suite struct SceneSplitTests {
    let split = SceneSplit.standard

    /// In a reach scene the target is the first object placed: its position is uniform over
    /// x ∈ [0.36, 0.62], y ∈ [−0.2, 0.2] (the table is empty, the first draw is always free) and
    /// its colour the first of a shuffled 6-colour palette. So P(held-out colour) = 1/6 and
    /// P(held-out corner x ≥ 0.52, y ≥ 0.08) = (0.10 / 0.26) · (0.12 / 0.40), independently.
    @Test func partFrequenciesMatchTheClosedForm() {
        let n = 3000
        var counts: [SceneSplit.Part: Int] = [:]
        for seed in 0..<UInt64(n) { counts[split.part(embodiment: .arm7, task: .reach, seed: seed), default: 0] += 1 }
        let pColor = 1.0 / 6, pPosition = (0.10 / 0.26) * (0.12 / 0.40)
        let expected: [SceneSplit.Part: Double] = [
            .seen: (1 - pColor) * (1 - pPosition), .novelColor: pColor * (1 - pPosition),
            .novelPosition: (1 - pColor) * pPosition, .novelBoth: pColor * pPosition,
        ]
        for (part, p) in expected {
            let sigma = (Double(n) * p * (1 - p)).squareRoot()
            let got = Double(counts[part, default: 0])
            #expect(Swift.abs(got - Double(n) * p) < 4 * sigma, "\(part): \(got) of \(n), expected \(Double(n) * p)")
        }
    }

    /// The part says what the simulated scene shows: the instruction names a purple object
    /// exactly for the held-out colour parts, and the target body MuJoCo placed lies in the
    /// held-out corner exactly for the held-out position parts.
    @Test func partsAgreeWithTheBuiltScene() throws {
        for part in SceneSplit.Part.allCases {
            for task in [TaskKind.reach, .pickPlace] {
                for seed in split.seeds(part, embodiment: .arm7, task: task, from: 0, count: 2) {
                    let env = try RobotEnvironment(embodiment: .arm7, task: task, seed: seed,
                                                   config: EnvironmentConfig(imageWidth: 16, imageHeight: 16))
                    env.reset()
                    let p = env.objectPosition(env.goal.object)
                    let inCorner = p.x >= 0.52 && p.y >= 0.08
                    let namesPurple = env.instruction.contains("purple block") || env.instruction.contains("purple puck")
                    #expect(inCorner == (part == .novelPosition || part == .novelBoth), "\(task) seed \(seed) \(part): target at \(p)")
                    #expect(namesPurple == (part == .novelColor || part == .novelBoth), "\(task) seed \(seed) \(part): \(env.instruction)")
                }
            }
        }
    }

    /// `seeds` is the brute-force filter of the seeds from `start` on, cut at `count`.
    @Test func seedsAreTheFirstOfThePartFromTheStart() {
        let start: UInt64 = 10_000
        let all = (start..<(start + 400)).map { ($0, split.part(embodiment: .arm6, task: .push, seed: $0)) }
        for part in SceneSplit.Part.allCases {
            let expected = all.filter { $0.1 == part }.map(\.0)
            let count = min(expected.count, 12)
            #expect(count > 0 || part == .novelBoth)
            #expect(split.seeds(part, embodiment: .arm6, task: .push, from: start, count: count) == Array(expected.prefix(count)))
        }
    }

    /// A scene without objects (a drawer with no block on the table) has nothing held out, and
    /// a search for a part a task cannot produce ends at the limit instead of running forever.
    @Test func sceneWithoutObjectsIsSeen() {
        #expect(split.part(of: SceneLayout()) == .seen)
        let impossible = SceneSplit(heldOutColors: ["no such colour"], heldOutX: 5...6, heldOutY: 5...6)
        #expect(impossible.seeds(.novelColor, embodiment: .arm7, task: .reach, from: 0, count: 1, limit: 2000).isEmpty)
        #expect(impossible.seeds(.seen, embodiment: .arm7, task: .reach, from: 0, count: 3, limit: 2) == [0, 1])
    }
}
