import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
@testable import Training
@testable import VLAModel

/// The object a question names ("… the red block?"), by its phrase.
private func namedObject(_ question: String, in layout: SceneLayout) -> Int? {
    layout.objects.indices.first { question.hasSuffix("the \(layout.objects[$0].phrase)") || question.hasSuffix("the \(layout.objects[$0].phrase)?") }
}

/// "a red block, an orange puck and a green circle" → ["red block", "orange puck", "green circle"].
private func captionItems(_ caption: String) -> [String] {
    caption.replacingOccurrences(of: " and ", with: ", ").components(separatedBy: ", ").map { item in
        item.hasPrefix("an ") ? String(item.dropFirst(3)) : item.hasPrefix("a ") ? String(item.dropFirst(2)) : item
    }
}

private func grounding(_ c: VLAConfig) -> VLAConfig {
    var c = c
    c.answerWeight = 0.5
    c.pointingWeight = 1
    return c
}

@Suite("Grounding questions (L1 VQA, R0 co-training)")
struct GroundingQuestionsTests {
    @Test func answersEqualAnIndependentComputationFromTheSimulator() throws {
        let generator = GroundingQuestions(embodiment: .arm7, tasks: [.reach, .pickPlace, .push, .sort])
        var seen = Set<QuestionFamily>(), colorQuestions = 0, closestQuestions = 0
        for seed in UInt64(100_000)..<100_012 {
            let task = generator.task(forScene: Int(seed - 100_000))
            let env = try RobotEnvironment(embodiment: .arm7, task: task, seed: seed, config: EnvironmentConfig(renderImages: false))
            let state = env.reset().state
            let questions = generator.questions(env, seed: seed)
            #expect(questions.map(\.family) == QuestionFamily.allCases)
            let layout = env.layout
            for q in questions {
                seen.insert(q.family)
                // Every question fits a 64-token prompt and every answer the default answer table.
                #expect(q.question.utf8.count + 1 <= 64 && q.answer.utf8.count + 1 <= VLAConfig().maxAnswerLength, "\(q)")
                switch q.family {
                case .pointTo:
                    let i = try #require(namedObject(q.question, in: layout))
                    let p = try #require(env.imagePoint(env.objectPosition(i), camera: "scene"))
                    // + 0 turns a rounded −0 into +0.
                    let expected = String(format: "<%.2f %.2f>", (p.x * 100).rounded() / 100 + 0, (p.y * 100).rounded() / 100 + 0)
                    #expect(q.answer == expected && q.point == p)
                    let parsed = try #require(GroundingQuestions.parsePoint(q.answer))
                    #expect(abs(parsed.x - p.x) <= 0.005 + 1e-12 && abs(parsed.y - p.y) <= 0.005 + 1e-12)
                case .whereIs:
                    let i = try #require(namedObject(q.question, in: layout))
                    let o = env.objectPosition(i)
                    #expect(q.answer == (o.x > 0.49 ? "far " : "near ") + (o.y > 0 ? "left" : "right"))
                case .whichObject:
                    if q.question == "which object is closest to the gripper?" {
                        closestQuestions += 1
                        // The TCP from the native state (arm7: 7 joints, gripper, then x, y, z).
                        let tcp = SIMD3(Double(state[8]), Double(state[9]), Double(state[10]))
                        let d = layout.objects.indices.map { k -> Double in let v = env.objectPosition(k) - tcp; return (v * v).sum() }
                        #expect(q.answer == layout.objects[d.indices.min { d[$0] < d[$1] }!].phrase)
                    } else {
                        colorQuestions += 1
                        let shape: ObjectShape = q.question == "what color is the block?" ? .box : .cylinder
                        let matching = layout.objects.filter { $0.shape == shape }
                        #expect(matching.count == 1 && q.answer == matching[0].color.name, "\(q)")
                    }
                case .caption:
                    // Exactly the layout's objects, zone and bins, each once.
                    var expected = layout.objects.map(\.phrase) + layout.bins.map { "\($0.color.name) bin" }
                    if let zone = layout.zone { expected.append("\(zone.color.name) \(task == .push ? "circle" : "square")") }
                    #expect(captionItems(q.answer).sorted() == expected.sorted(), "\(q.answer)")
                    // Ordered left to right in the scene camera.
                    let xs = captionItems(q.answer).map { phrase in
                        GroundingQuestions.sceneItems(env).first { $0.phrase == phrase }.flatMap { env.imagePoint($0.position, camera: "scene")?.x } ?? .nan
                    }
                    #expect(xs == xs.sorted())
                }
            }
        }
        #expect(seen == Set(QuestionFamily.allCases) && colorQuestions > 0 && closestQuestions > 0)
        // Text forms.
        #expect(GroundingQuestions.pointText(SIMD2(0.4213, -0.004)) == "<0.42 0.00>")
        #expect(GroundingQuestions.pointText(SIMD2(-0.125001, 1)) == "<-0.13 1.00>")
        #expect(GroundingQuestions.parsePoint("<0.42 -0.13>") == SIMD2(0.42, -0.13))
        #expect(GroundingQuestions.parsePoint("0.42 -0.13") == nil && GroundingQuestions.parsePoint("<0.42>") == nil)
        #expect(GroundingQuestions.list(["red block"]) == "a red block")
        #expect(GroundingQuestions.list(["red block", "orange puck", "green circle"]) == "a red block, an orange puck and a green circle")
    }

    @Test func groundingPretrainingTrainsTheBackboneAndAnswerHeadButNotTheExpert() throws {
        var c = grounding(smallConfig())
        c.imageSize = 16
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: 16)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 1)), stats: NormalizationStats(episodes: demos))
        let before = try policy.model.parameters().mapValues { try $0.toArray(Float.self) }
        var l1 = GroundingPretraining(questions: GroundingQuestions(embodiment: .arm7, tasks: [.reach]))
        l1.scenes = 4
        l1.heldOutScenes = 2
        l1.steps = 3
        l1.batchSize = 4
        var lines: [String] = []
        let report = try l1.run(policy: policy) { lines.append($0) }
        #expect(report.families.map(\.family) == QuestionFamily.allCases)
        #expect(report.families.allSatisfy { $0.questions == 2 && (0...2).contains($0.exactMatches) })
        #expect(report.pointingError != nil && lines.contains { $0.hasPrefix("held-out exact match") })
        // Training-scene scores: the first 2 training scenes (seeds 100 000…), decoded again here.
        let seen = try l1.questions.scenes(firstSeed: l1.firstSeed, count: 2, imageSize: c.imageSize) { _ in }
        let again = try GroundingPretraining.evaluate(policy: policy, scenes: seen, families: QuestionFamily.allCases)
        #expect(report.trainingFamilies == again && again.allSatisfy { $0.questions == 2 })
        let after = try policy.model.parameters().mapValues { try $0.toArray(Float.self) }
        #expect(before.keys.filter { $0.hasPrefix("expert.") || $0.hasPrefix("velocityHead.") }.allSatisfy { before[$0] == after[$0] })
        #expect(before.keys.filter { $0.hasPrefix("answerHead.") || $0.hasPrefix("backbone.") }.allSatisfy { before[$0] != after[$0] })
        // Everything is trainable again afterwards.
        #expect(policy.model.trainableParameters().count == policy.model.parameters().count)
    }

    @Test func stageFilesWireL1QuestionsAndR0CoTraining() throws {
        let l1 = try StageConfig.parse("""
            stage: L1
            output: x
            model: {pointing_weight: 1, answer_weight: 0.5}
            data: {embodiments: [arm7], tasks: [reach, push]}
            pointing: {scenes: 10, steps: 4, batch_size: 2, held_out_scenes: 3}
            questions: {families: [point_to, caption]}
            """, file: "l1.yaml")
        let g = l1.groundingPretraining
        #expect(g.questions.families == [.pointTo, .caption] && g.questions.tasks == [.reach, .push])
        #expect(g.scenes == 10 && g.steps == 4 && g.batchSize == 2 && g.heldOutScenes == 3 && g.firstSeed == 100_000)
        let r0 = try StageConfig.parse("""
            stage: R0
            output: x
            model: {insulate_backbone: true}
            data: {embodiments: [arm7], tasks: [reach]}
            questions: {scenes: 5, batch_size: 3}
            """, file: "r0.yaml")
        let run = r0.behaviorCloningRun(model: VLAConfig())
        #expect(run.questionScenes == 5 && run.questionBatchSize == 3 && run.questionFamilies == QuestionFamily.allCases)
        #expect(r0.modelConfig(base: VLAConfig()).insulateBackbone)
        // L1's scenes come from `pointing`; an unknown family is named.
        #expect(throws: StageConfigError.self) {
            _ = try StageConfig.parse("stage: L1\noutput: x\ndata: {embodiments: [arm7], tasks: [reach]}\nquestions: {scenes: 3}\n", file: "a.yaml")
        }
        do {
            _ = try StageConfig.parse("stage: L1\noutput: x\ndata: {embodiments: [arm7], tasks: [reach]}\nquestions: {families: [colour]}\n", file: "b.yaml")
            Issue.record("no error")
        } catch let e as StageConfigError {
            #expect(e.key == "questions.families[0]" && e.file == "b.yaml")
        }
    }

    @Test func r0CoTrainingCarriesAQuestionBatchEveryStep() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vqa-r0-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var c = grounding(smallConfig())
        c.imageSize = 16
        c.insulateBackbone = true
        var run = BehaviorCloningRun(output: dir)
        run.model = c
        run.demosPerPair = 1
        run.schedule.totalSteps = 2
        run.schedule.batchSize = 2
        run.schedule.warmupSteps = 1
        run.oodGuard = nil
        run.questionScenes = 3
        run.questionBatchSize = 2
        var lines: [String] = []
        let policy = try run.run { lines.append($0) }
        #expect(lines.contains { $0.hasPrefix("VQA co-training: 2 of 12 questions on 3 arm7 scenes per step") })
        // The same step draws the same questions (a resumed run continues the sequence).
        let pool = try #require(try run.questionPool { _ in })
        let a = try pool.batch(step: 7, size: 4, seed: 0, policy: policy), b = try pool.batch(step: 7, size: 4, seed: 0, policy: policy)
        #expect(try a.answers.inputs.toArray(Int32.self) == b.answers.inputs.toArray(Int32.self))
        #expect(try a.inputs.tokens.toArray(Int32.self) == b.inputs.tokens.toArray(Int32.self))
        // Questions are the whole prompt (no embodiment prefix).
        let firstPrompt = try a.inputs.tokens.toArray(Int32.self).prefix(64).dropFirst().prefix { $0 < 256 }
        #expect(pool.scenes.flatMap(\.questions).map(\.question).contains(String(decoding: firstPrompt.map { UInt8($0) }, as: UTF8.self)))
    }
}
