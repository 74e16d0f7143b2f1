import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
@testable import Training
@testable import VLAModel

/// L1's grounding questions and R0/R1's VQA co-training within `SceneSplit.standard`: no
/// training question names a held-out colour or labels an object in the held-out region.
@Suite("Scene split in grounding questions and stage files")
struct SceneSplitGroundingTests {
    /// The object a question is about, read back from its text and the layout (independently
    /// of the generator's own bookkeeping); nil for a caption.
    static func subject(_ q: GroundingQuestion, layout: SceneLayout) -> Int? {
        let objects = layout.objects
        switch q.family {
        case .pointTo, .whereIs:
            return objects.indices.first { q.question.hasSuffix("the \(objects[$0].phrase)") || q.question.hasSuffix("the \(objects[$0].phrase)?") }
        case .whichObject:
            if q.question == "which object is closest to the gripper?" { return objects.firstIndex { $0.phrase == q.answer } }
            let shape: ObjectShape = q.question == "what color is the block?" ? .box : .cylinder
            return objects.firstIndex { $0.shape == shape }
        case .caption:
            return nil
        }
    }

    @Test func splitQuestionsDropExactlyThoseAboutHeldOutObjects() throws {
        let generator = GroundingQuestions(embodiment: .arm7, tasks: [.reach, .pickPlace, .push])
        var droppedForColor = 0, droppedForPosition = 0, kept = 0
        for seed in UInt64(100_000)..<100_150 {
            let task = generator.task(forScene: Int(seed - 100_000))
            let env = try RobotEnvironment(embodiment: .arm7, task: task, seed: seed, config: EnvironmentConfig(renderImages: false))
            _ = env.reset()
            let all = generator.questions(env, seed: seed)
            let split = generator.questions(env, seed: seed, split: .standard)
            // The rule written out: purple anywhere in the text, or about an object whose
            // layout position is in the far-left corner (x ≥ 0.52 m, y ≥ 0.08 m).
            let expected = try all.filter { q in
                let text = (q.question + " " + q.answer).split(separator: " ").map { $0.trimmingCharacters(in: .punctuationCharacters) }
                if text.contains("purple") { droppedForColor += 1; return false }
                if q.family != .caption {
                    let i = try #require(Self.subject(q, layout: env.layout), "\(q)")
                    let p = env.layout.objects[i].position
                    if env.layout.objects[i].color.name == "purple" { droppedForColor += 1; return false }
                    if p.x >= 0.52 && p.y >= 0.08 { droppedForPosition += 1; return false }
                }
                return true
            }
            #expect(split == expected, "seed \(seed)")
            kept += split.count
        }
        // Both rules fired over these scenes, and most questions stay (kept 417, dropped 146 + 37).
        #expect(droppedForColor > 0 && droppedForPosition > 0 && kept > 2 * (droppedForColor + droppedForPosition),
                "kept \(kept), dropped for colour \(droppedForColor), for position \(droppedForPosition)")
    }

    @Test func splitScenesAreSeenAndAsManyAsWithoutIt() throws {
        var generator = GroundingQuestions(embodiment: .arm7, tasks: [.reach, .pickPlace], families: [.pointTo, .caption])
        let unsplit = try generator.scenes(firstSeed: 100_000, count: 24, imageSize: 16)
        #expect(unsplit.map(\.seed) == Array(100_000..<100_024))
        generator.sceneSplit = .standard
        let split = try generator.scenes(firstSeed: 100_000, count: 24, imageSize: 16)
        #expect(split.count == 24)
        #expect(split.allSatisfy { SceneSplit.standard.part(embodiment: .arm7, task: $0.task, seed: $0.seed) == .seen })
        #expect(unsplit.contains { SceneSplit.standard.part(embodiment: .arm7, task: $0.task, seed: $0.seed) != .seen })
        // Seeds ascend, the tasks keep their turn by seed, and every skipped seed was held out.
        let kept = Set(split.map(\.seed))
        #expect(split.map(\.seed) == split.map(\.seed).sorted())
        for s in split { #expect(s.task == ((s.seed - 100_000) % 2 == 0 ? .reach : .pickPlace)) }
        for seed in 100_000...split.last!.seed where !kept.contains(seed) {
            let task: TaskKind = (seed - 100_000) % 2 == 0 ? .reach : .pickPlace
            #expect(SceneSplit.standard.part(embodiment: .arm7, task: task, seed: seed) != .seen)
        }
        #expect(!split.flatMap(\.questions).contains { $0.question.contains("purple") || $0.answer.contains("purple") })
    }

    @Test func groundingPretrainingWithTheSplitScoresEachNovelPart() throws {
        var c = smallConfig()
        c.imageSize = 16
        c.answerWeight = 0.5
        c.pointingWeight = 1
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: 16)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 1)), stats: NormalizationStats(episodes: demos))
        var questions = GroundingQuestions(embodiment: .arm7, tasks: [.reach])
        questions.sceneSplit = .standard
        var l1 = GroundingPretraining(questions: questions)
        l1.scenes = 4
        l1.heldOutScenes = 2
        l1.steps = 2
        l1.batchSize = 4
        var lines: [String] = []
        let report = try l1.run(policy: policy) { lines.append($0) }
        #expect(report.novelParts.map(\.part) == [.novelColor, .novelPosition, .novelBoth])
        for n in report.novelParts {
            #expect(n.scenes == 2 && n.pointingError.map { $0.isFinite && $0 > 0 } == true)
            #expect(n.families.map(\.family) == QuestionFamily.allCases)
            #expect(lines.contains { $0.hasPrefix("\(n.part.rawValue) (2 scenes)") })
        }
        // Without the split: no novel parts.
        l1.questions.sceneSplit = nil
        #expect(try l1.run(policy: policy) { _ in }.novelParts.isEmpty)
    }

    @Test func stageFilesTakeSeenScenesOnly() throws {
        let l1 = try StageConfig.parse("""
            stage: L1
            output: x
            model: {pointing_weight: 1, answer_weight: 0.5}
            data: {embodiments: [arm7], tasks: [reach], seen_scenes_only: true}
            """, file: "l1.yaml")
        #expect(l1.groundingPretraining.questions.sceneSplit == .standard)
        #expect(l1.pointingPretraining.sceneSplit == .standard)
        #expect(l1.behaviorCloningRun(model: VLAConfig()).sceneSplit == .standard)
        let r0 = try StageConfig.parse("""
            stage: R0
            output: x
            data: {embodiments: [arm7], tasks: [reach], seen_scenes_only: true}
            questions: {scenes: 5}
            """, file: "r0.yaml")
        #expect(r0.behaviorCloningRun(model: VLAConfig()).sceneSplit == .standard)
        // Absent or false: every scene.
        let plain = try StageConfig.parse("stage: R1\noutput: x\ninit_from: y\ndata: {embodiments: [arm7], tasks: [reach], seen_scenes_only: false}\n", file: "r1.yaml")
        #expect(plain.behaviorCloningRun(model: VLAConfig()).sceneSplit == nil && plain.pointingPretraining.sceneSplit == nil)
        // R2 does not take it; a non-boolean is named.
        do {
            _ = try StageConfig.parse("stage: R2\noutput: x\ninit_from: y\ndata: {embodiments: [arm7], tasks: [reach], seen_scenes_only: true}\n", file: "r2.yaml")
            Issue.record("no error")
        } catch let e as StageConfigError {
            #expect(e.key == "data.seen_scenes_only" && e.problem == .notForStage("R2"))
        }
        do {
            _ = try StageConfig.parse("stage: R0\noutput: x\ndata: {embodiments: [arm7], tasks: [reach], seen_scenes_only: maybe}\n", file: "r0.yaml")
            Issue.record("no error")
        } catch let e as StageConfigError {
            #expect(e.key == "data.seen_scenes_only" && e.file == "r0.yaml")
        }
    }
}
