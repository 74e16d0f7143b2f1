import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
import TestSupport
@testable import Training
@testable import VLAModel

/// The repository's `stages/` directory.
private let stagesDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("stages")

/// `smallConfig()` as a stage file's model section.
private let tinyModel = """
    model:
      image_size: 32
      dims: 32
      heads: 2
      backbone_layers: 1
      expert_layers: 1
      horizon: 4
      execute_steps: 2
      noise_draws: 2
    """

private func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("stage-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The error `body` throws, which must be a `StageConfigError`.
private func stageError(_ body: () throws -> Void) throws -> StageConfigError {
    do { try body() } catch let e as StageConfigError { return e }
    Issue.record("no StageConfigError thrown")
    throw StageConfigError(key: "", problem: .missingKey)
}

private func bits(_ tensors: [String: Tensor]) throws -> [String: [UInt32]] {
    try tensors.mapValues { try $0.toArray(Float.self).map(\.bitPattern) }
}

@Suite("Stage configs (stages/*.yaml, StageRunner)")
struct StageConfigTests {
    @Test func everyShippedStageFileParsesToItsRunSettings() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: stagesDirectory.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files == ["L0.yaml", "L1.yaml", "R0.yaml", "R1.yaml", "R2.yaml"])
        let c = try Dictionary(uniqueKeysWithValues: files.map { f in
            (String(f.dropLast(5)), try StageConfig.load(from: stagesDirectory.appendingPathComponent(f)))
        })
        for (name, config) in c {
            #expect(config.stage.rawValue == name)
            #expect(config.output == "runs/stages/\(name)")
            #expect(config.seed == 0)
            #expect(config.source == stagesDirectory.appendingPathComponent("\(name).yaml").path)
        }
        // A chain: each stage starts from the one before.
        #expect(c["L0"]!.initFrom == nil)
        for (stage, previous) in [("L1", "L0"), ("R0", "L1"), ("R1", "R0"), ("R2", "R1")] {
            #expect(c[stage]!.initFrom == "runs/stages/\(previous)/checkpoint")
        }

        // L0: the default sizes, written out.
        #expect(c["L0"]!.modelConfig(base: VLAConfig()) == VLAConfig())
        #expect(c["L0"]!.model?.imageSize == 64 && c["L0"]!.model?.dims == 128 && c["L0"]!.model?.horizon == 10)

        // L1: pointing head on, 2000 scenes × 2400 steps at peak 1e-3 on arm7/reach.
        let l1 = c["L1"]!
        #expect(l1.modelConfig(base: VLAConfig()).pointingWeight == 1)
        let pointing = l1.pointingPretraining
        #expect(pointing.embodiment == .arm7 && pointing.tasks == [.reach])
        #expect(pointing.scenes == 2000 && pointing.steps == 2400 && pointing.batchSize == 64)
        #expect(pointing.learningRate == 1e-3 && pointing.heldOutScenes == 200)
        #expect(l1.behaviorCloningRun(model: VLAConfig()).demosPerPair == 30)
        // … and the answer head at weight 0.5, asking every question family.
        #expect(l1.modelConfig(base: VLAConfig()).answerWeight == 0.5)
        #expect(l1.groundingPretraining.questions.families == QuestionFamily.allCases && l1.groundingPretraining.scenes == 2000)

        // R0: arm7 + arm6 reach, 1000 steps of AdamW with warmup-stable-decay, nothing frozen.
        let r0 = c["R0"]!.behaviorCloningRun(model: VLAConfig())
        #expect(r0.embodiments == [.arm7, .arm6] && r0.tasks == [.reach, .push] && r0.demosPerPair == 30)
        #expect(r0.episodeStore?.path.hasSuffix("runs/stages/demos") == true)
        #expect(r0.initFrom?.path.hasSuffix("runs/stages/L1/checkpoint") == true)
        #expect(r0.schedule.learningRate == 3e-4 && r0.schedule.weightDecay == 0.01 && r0.schedule.warmupSteps == 50)
        #expect(r0.schedule.decayFraction == 0.2 && r0.schedule.totalSteps == 1000 && r0.schedule.batchSize == 32)
        #expect(r0.schedule.gradientClip == 1 && r0.checkpointEvery == 200 && r0.frozen.isEmpty)
        #expect(r0.oodGuard != nil && r0.maxDistractors == nil)
        // Co-trained with 8 questions per batch on 400 scenes, the backbone insulated.
        #expect(r0.questionScenes == 400 && r0.questionBatchSize == 8 && c["R0"]!.modelConfig(base: VLAConfig()).insulateBackbone)

        // R1: arm7 only, lower rate, exactly what L1 trained kept frozen.
        let r1 = c["R1"]!.behaviorCloningRun(model: VLAConfig())
        #expect(r1.embodiments == [.arm7] && r1.tasks == [.reach, .push] && r1.demosPerPair == 30)
        #expect(r1.schedule.learningRate == 1e-4 && r1.schedule.warmupSteps == 20 && r1.schedule.totalSteps == 600)
        #expect(r1.schedule.batchSize == 32 && r1.schedule.weightDecay == 0.01 && r1.schedule.decayFraction == 0.2)
        #expect(Set(r1.frozen) == Set(GroundingPretraining.trained))
        #expect(r1.initFrom?.path.hasSuffix("runs/stages/R0/checkpoint") == true)

        // R2: the file's numbers; the rest R2Config's defaults; fine-tuning from the schedule.
        let r2 = c["R2"]!.r2Config
        #expect(r2.rolloutEpisodes == 48 && r2.criticSteps == 400 && r2.refineSteps == 5)
        #expect(r2.noiseIterations == 8 && r2.noiseEpisodesPerIteration == 12 && r2.evalEpisodes == 200 && r2.jpmStrength == 1)
        #expect(r2.fineTuneSteps == 200 && r2.fineTune.totalSteps == 200 && r2.fineTune.learningRate == 5e-5)
        #expect(r2.fineTune.warmupSteps == 10 && r2.fineTune.batchSize == 32 && r2.fineTune.decayFraction == 0)
        #expect(r2.criticBatch == 64 && r2.discount == 0.98 && r2.iql == IQLConfig() && r2.seed == 0)
        #expect(Set(c["R2"]!.frozen ?? []) == Set(GroundingPretraining.trained))
    }

    @Test func modelSectionCoversEveryVLAConfigField() throws {
        // VLAConfig's JSON keys in snake_case: a new field must get a stage-file key too.
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(VLAConfig())) as! [String: Any]
        let snake = Set(json.keys.map { key in
            key.reduce("") { $0 + ($1.isUppercase ? "_" + $1.lowercased() : String($1)) }
        })
        #expect(snake == Set(StageConfig.ModelOptions.CodingKeys.allCases.map(\.rawValue)))
        let config = try StageConfig.parse("stage: L0\noutput: x\n" + tinyModel + "\n  relative_actions: true\n  state_noise: 0.25\n  prompt_layout: instruction-first\n", file: "m.yaml")
        var expected = smallConfig()
        expected.relativeActions = true
        expected.stateNoise = 0.25
        expected.promptLayout = .instructionFirst
        #expect(config.modelConfig(base: VLAConfig()) == expected)
    }

    @Test func unknownKeysAreErrorsNamingTheKeyAndTheFile() throws {
        let nested = try stageError {
            _ = try StageConfig.parse("stage: R0\noutput: x\ndata: {embodiments: [arm7], tasks: [reach]}\nschedule:\n  learnign_rate: 1.0e-4\n", file: "typo.yaml")
        }
        #expect(nested.file == "typo.yaml" && nested.key == "schedule.learnign_rate")
        guard case .unknownKey(let allowed) = nested.problem else { Issue.record("\(nested)"); return }
        #expect(allowed.contains("learning_rate"))
        #expect(nested.description.contains("typo.yaml") && nested.description.contains("schedule.learnign_rate"))

        let top = try stageError { _ = try StageConfig.parse("stage: R1\noutput: x\ninit_form: y\n", file: "a.yaml") }
        #expect(top.key == "init_form" && top.file == "a.yaml")
        let inList = try stageError { _ = try StageConfig.parse("stage: L0\noutput: x\nmodel: {dimz: 3}\n", file: "b.yaml") }
        #expect(inList.key == "model.dimz")
        // A real key the stage does not use would do nothing: also an error.
        let unused = try stageError { _ = try StageConfig.parse("stage: L0\noutput: x\nschedule: {steps: 3}\n", file: "c.yaml") }
        #expect(unused.key == "schedule" && unused.problem == .notForStage("L0"))
    }

    @Test func badNamesAreErrorsListingTheChoices() throws {
        let stage = try stageError { _ = try StageConfig.parse("stage: R3\noutput: x\n", file: "s.yaml") }
        #expect(stage.key == "stage" && stage.file == "s.yaml")
        #expect(stage.problem == .badValue("R3", expected: "one of L0, L1, R0, R1, R2"))
        let embodiment = try stageError {
            _ = try StageConfig.parse("stage: R0\noutput: x\ndata:\n  embodiments: [arm7, arm9]\n  tasks: [reach]\n", file: "e.yaml")
        }
        #expect(embodiment.key == "data.embodiments[1]")
        guard case .badValue("arm9", _) = embodiment.problem else { Issue.record("\(embodiment)"); return }
        let two = try stageError {
            _ = try StageConfig.parse("stage: R1\noutput: x\ninit_from: y\ndata: {embodiments: [arm7, arm6], tasks: [reach]}\n", file: "r1.yaml")
        }
        #expect(two.key == "data.embodiments")
    }

    @Test func wrongTypesAndMissingKeysAreErrorsNamingTheKey() throws {
        let steps = try stageError {
            _ = try StageConfig.parse("stage: R0\noutput: x\ndata: {embodiments: [arm7], tasks: [reach]}\nschedule: {steps: many}\n", file: "t.yaml")
        }
        #expect(steps.key == "schedule.steps" && steps.file == "t.yaml" && steps.problem == .wrongType(expected: "an integer"))
        let list = try stageError {
            _ = try StageConfig.parse("stage: R0\noutput: x\ndata: {embodiments: [arm7], tasks: [reach]}\nfrozen: vision\n", file: "t.yaml")
        }
        #expect(list.key == "frozen" && list.problem == .wrongType(expected: "a list"))
        let section = try stageError { _ = try StageConfig.parse("stage: L0\noutput: x\nmodel: 5\n", file: "t.yaml") }
        #expect(section.key == "model")
        let output = try stageError { _ = try StageConfig.parse("stage: L0\n", file: "t.yaml") }
        #expect(output.key == "output" && output.problem == .missingKey)
        let initFrom = try stageError {
            _ = try StageConfig.parse("stage: R1\noutput: x\ndata: {embodiments: [arm7], tasks: [reach]}\n", file: "t.yaml")
        }
        #expect(initFrom.key == "init_from" && initFrom.problem == .missingKey)
        let data = try stageError { _ = try StageConfig.parse("stage: R0\noutput: x\n", file: "t.yaml") }
        #expect(data.key == "data" && data.problem == .missingKey)
        let yaml = try stageError { _ = try StageConfig.parse("stage: [L0\n", file: "t.yaml") }
        guard case .invalidYAML = yaml.problem else { Issue.record("\(yaml)"); return }
    }

    @Test func frozenPrefixesKeepTheirParametersThroughTraining() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try StageConfig.parse("""
            stage: R0
            output: \(dir.path)
            seed: 5
            ood_guard: false
            data: {embodiments: [arm7], tasks: [reach], demos_per_pair: 1}
            schedule: {steps: 2, batch_size: 4, warmup_steps: 1}
            frozen: [vision, tokenEmbedding, backbone.0.attention]
            """ + "\n" + tinyModel + "\n", file: "frozen.yaml")
        let model = try StageRunner.modelConfig(config)
        #expect(model == smallConfig())
        let before = try bits(FlowMatchingVLA(config: model, key: RandomKey(seed: 5)).parameters())
        let policy = try config.behaviorCloningRun(model: model).run { _ in }
        let after = try bits(policy.model.parameters())
        let frozen = before.keys.filter { k in config.frozen!.contains { k == $0 || k.hasPrefix($0 + ".") } }
        #expect(frozen.contains("tokenEmbedding.weight") && frozen.contains { $0.hasPrefix("vision.") }
                && frozen.contains { $0.hasPrefix("backbone.0.attention.") })
        #expect(frozen.filter { after[$0] != before[$0] } == [])
        // The rest trained (same seed, same initial values).
        let trained = before.keys.filter { $0.hasPrefix("velocityHead.") || $0.hasPrefix("backbone.0.mlp.") }
        #expect(!trained.isEmpty && trained.filter { after[$0] == before[$0] } == [])
        // A prefix that names nothing is rejected before any work.
        var typo = config
        typo.frozen = ["vision", "visoin"]
        let e = try stageError { try StageRunner.checkFrozen(typo, model: model) }
        #expect(e.key == "frozen[1]" && e.file == "frozen.yaml")
    }

    @Test func initFromLoadsTheEarlierCheckpointBitExactly() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let l0 = try StageConfig.parse("stage: L0\noutput: \(dir.path)/L0\nseed: 1\n" + tinyModel + "\n", file: "L0.yaml")
        _ = try StageRunner.run(l0) { _ in }
        let saved = try bits(TensorFile.load(l0.checkpointURL.appendingPathComponent("model.safetensors")).tensors)
        // A later stage with another seed and a training-only override.
        let r2 = try StageConfig.parse("""
            stage: R2
            output: \(dir.path)/R2
            seed: 2
            init_from: \(l0.checkpointURL.path)
            data: {embodiments: [arm7], tasks: [reach]}
            model: {state_noise: 0.3}
            """, file: "R2.yaml")
        let model = try StageRunner.modelConfig(r2)
        var expected = smallConfig()
        expected.stateNoise = 0.3
        #expect(model == expected)
        let loaded = try bits(StageRunner.startingModel(r2, model: model).parameters())
        #expect(Set(loaded.keys) == Set(saved.keys) && saved.keys.filter { loaded[$0] != saved[$0] } == [])
        // Not the seed's own initialization.
        let fresh = try bits(FlowMatchingVLA(config: model, key: RandomKey(seed: 2)).parameters())
        #expect(saved.keys.contains { fresh[$0] != saved[$0] })
        // A missing checkpoint is named.
        var missing = r2
        missing.initFrom = dir.appendingPathComponent("nothing").path
        let e = try stageError { _ = try StageRunner.modelConfig(missing) }
        #expect(e.key == "init_from" && e.file == "R2.yaml")
    }

    @Test func tinyL0ToR1ChainWritesCheckpoints() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let l0File = dir.appendingPathComponent("L0.yaml"), r1File = dir.appendingPathComponent("R1.yaml")
        try ("stage: L0\noutput: \(dir.path)/L0\nseed: 1\n" + tinyModel + "\n").write(to: l0File, atomically: true, encoding: .utf8)
        try """
            stage: R1
            output: \(dir.path)/R1
            init_from: \(dir.path)/L0/checkpoint
            seed: 2
            ood_guard: false
            data: {embodiments: [arm7], tasks: [reach], demos_per_pair: 1}
            schedule: {steps: 3, batch_size: 4, warmup_steps: 1}
            checkpoint_every: 2
            frozen: [vision, backbone]

            """.write(to: r1File, atomically: true, encoding: .utf8)
        let l0 = try StageConfig.load(from: l0File), r1 = try StageConfig.load(from: r1File)
        let first = try StageRunner.run(l0) { _ in }
        #expect(first.step == 0)
        var lines: [String] = []
        let result = try StageRunner.run(r1) { lines.append($0) }
        #expect(result.checkpoint == r1.checkpointURL && result.step == 3)
        #expect(lines.contains { $0.hasPrefix("weights from ") })

        let (policy, step) = try VLAPolicy.load(from: r1.checkpointURL)
        #expect(step == 3 && policy.model.config == smallConfig() && policy.stats.actions["arm7"] != nil)
        let csv = try String(contentsOf: r1.outputURL.appendingPathComponent("loss.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 4)
        // The same losses in a TensorBoard event file, read back by TensorBoard itself.
        let boards = try FileManager.default.contentsOfDirectory(at: r1.outputURL.appendingPathComponent("tensorboard"), includingPropertiesForKeys: nil)
        #expect(boards.count == 1)
        let read = try await ChildProcess.run(ChildProcess.python, [ChildProcess.packageRoot.appendingPathComponent("scripts/read_tensorboard.py").path,
                                                                     boards[0].path], timeout: 120)
        let board = try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any]
        let curve = (board?["scalars"] as? [String: [[Double]]])?["train/loss"] ?? []
        let csvLosses = csv.split(separator: "\n").dropFirst().map { Double($0.split(separator: ",")[1])! }
        #expect(curve.map(\.[0]) == [1, 2, 3], "\(read.stderr)")
        #expect(zip(curve.map(\.[1]), csvLosses).allSatisfy { abs($0 - $1) < 1e-5 } && curve.count == csvLosses.count)
        // The frozen subtrees are L0's weights bit for bit; the action expert trained.
        let start = try bits(TensorFile.load(l0.checkpointURL.appendingPathComponent("model.safetensors")).tensors)
        let end = try bits(policy.model.parameters())
        #expect(start.keys.filter { ($0.hasPrefix("vision.") || $0.hasPrefix("backbone.")) && end[$0] != start[$0] } == [])
        #expect(start.keys.filter { $0.hasPrefix("expert.") }.contains { end[$0] != start[$0] })
        // The settings travel with the run and read back as written.
        var copy = try StageConfig.load(from: r1.outputURL.appendingPathComponent("stage.yaml"))
        copy.source = r1.source
        #expect(copy == r1)
        // Running again resumes at the end: nothing more to do.
        #expect(try StageRunner.run(r1) { _ in }.step == 3)
        #expect(try String(contentsOf: r1.outputURL.appendingPathComponent("loss.csv"), encoding: .utf8) == csv)
    }
}
