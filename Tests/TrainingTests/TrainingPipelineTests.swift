import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
import TestSupport
@testable import Training
@testable import VLAModel

func smallConfig() -> VLAConfig {
    var c = VLAConfig()
    c.imageSize = 32
    c.maxTextLength = 64
    c.dims = 32
    c.heads = 2
    c.backboneLayers = 1
    c.expertLayers = 1
    c.horizon = 4
    c.executeSteps = 2
    c.noiseDraws = 2
    return c
}

@Suite("Training pipeline")
struct TrainingPipelineTests {
    @Test func wilsonIntervalMatchesClosedForm() {
        // 8/10: p = 0.8, z = 1.96: centre (0.8 + 0.19208)/1.38415 = 0.71674,
        // half-width 1.96·√(0.016 + 0.0096040)/1.38415 = 0.22657 → [0.4902, 0.9433].
        let r = SuccessRate(successes: 8, episodes: 10)
        #expect(Swift.abs(r.interval95.low - 0.4902) < 1e-3)
        #expect(Swift.abs(r.interval95.high - 0.9433) < 1e-3)
        #expect(SuccessRate(successes: 0, episodes: 20).interval95.low == 0)
        #expect(SuccessRate(successes: 20, episodes: 20).interval95.high == 1)
    }

    @Test func chunksArePaddedAndMaskedAtTheEpisodeEnd() throws {
        let c = smallConfig()
        let episodes = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_001], imageSize: c.imageSize)
        let e = try #require(episodes.first)
        let dataset = try DemonstrationDataset(episodes: episodes, specs: DemoCollector.specs, config: c)
        let last = e.stepCount - 1
        let batch = try dataset.batch([(0, last - 1), (0, 0)])
        #expect(batch.actions.shape == [2, c.horizon, 64])
        let mask: [Float] = try batch.actionMask.toArray()
        // Sample 0 starts 2 steps before the end: chunk steps 0,1 are real, 2,3 padding.
        let perStep = (0..<c.horizon).map { k in mask[(k * 64)..<((k + 1) * 64)].reduce(0, +) }
        let slots = e.actionMask.reduce(0, +)
        #expect(perStep == [slots, slots, 0, 0])
        // Real entries are the standardized unified actions: (a - mean) / (std + 1e-6).
        let stats = dataset.stats.actions["arm7"]!
        let actions: [Float] = try batch.actions.toArray()
        let expected = stats.standardize(Array(e.unifiedActions.row(last - 1)))
        for j in 0..<64 where e.actionMask[j] > 0 { #expect(Swift.abs(actions[j] - expected[j]) < 1e-5) }
        // The sample at step 0 sees a full chunk.
        let second = (0..<c.horizon).map { k in mask[((c.horizon + k) * 64)..<((c.horizon + k + 1) * 64)].reduce(0, +) }
        #expect(second == [Float](repeating: slots, count: c.horizon))
    }

    @Test func relativeChunksAreOffsetsFromTheStartStateAndDecodeBackToTheDemo() throws {
        var c = smallConfig()
        c.relativeActions = true
        let episodes = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_001], imageSize: c.imageSize)
        let e = try #require(episodes.first)
        let dataset = try DemonstrationDataset(episodes: episodes, specs: DemoCollector.specs, config: c)
        #expect(dataset.stats.relativeHorizon == c.horizon)
        let t = 5, spec = EmbodimentKind.arm7.spec
        let z: [Float] = try dataset.batch([(0, t)]).actions.toArray()
        // By hand: joints 0–6 of a_{t+k} minus the measured joints at t (native state 0–6),
        // the gripper (slot 13) as it is, then (x − mean) / (std + 1e-6).
        let stats = dataset.stats.actions["arm7"]!
        for k in 0..<c.horizon {
            let a = Array(e.unifiedActions.row(t + k))
            for j in 0..<7 {
                let expected = (a[j] - e.states.values[t * e.states.columns + j] - stats.mean[j]) / (stats.std[j] + 1e-6)
                #expect(Swift.abs(z[k * 64 + j] - expected) < 1e-4)
            }
            #expect(Swift.abs(z[k * 64 + 13] - (a[13] - stats.mean[13]) / (stats.std[13] + 1e-6)) < 1e-4)
        }
        // The policy's decoding, anchored at the same observation, gives back the demo's native actions.
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 0)), stats: dataset.stats)
        let observation = PolicyObservation(embodiment: spec, instruction: e.instruction, cameras: [:], nativeState: Array(e.states.row(t)))
        let native = try policy.nativeChunk(standardized: z, observation: observation)
        for k in 0..<c.horizon {
            for (x, y) in zip(native[k], e.nativeActions.row(t + k)) { #expect(Swift.abs(x - y) < 1e-4) }
        }
    }

    @Test func weightedSamplingFollowsTheWeightsIncludingAppendedEpisodes() throws {
        let c = smallConfig()
        let episodes = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_001], imageSize: c.imageSize)
        var e = try #require(episodes.first)
        // Operator steps weigh 3, policy steps 1, the first 10 steps 0 (dropped).
        e.sources = (0..<e.stepCount).map { $0 % 2 == 0 ? .operator : .policy }
        let weight = { (e: Episode, t: Int) -> Double in t < 10 ? 0 : (e.sources[t] == .operator ? 3 : 1) }
        let dataset = try DemonstrationDataset(episodes: [e], specs: DemoCollector.specs, config: c, stepWeight: weight)
        #expect(dataset.count == e.stepCount - 10)
        var g = SplitMix64(seed: 1)
        let n = 20_000
        let picks = try dataset.samplePicks(size: n, generator: &g)
        #expect(picks.allSatisfy { $0.step >= 10 })
        // P(operator) = 3·n_op / (3·n_op + n_pol); binomial 4σ bound.
        let operators = (10..<e.stepCount).filter { $0 % 2 == 0 }.count, policies = e.stepCount - 10 - operators
        let p = 3.0 * Double(operators) / (3.0 * Double(operators) + Double(policies))
        let observed = Double(picks.filter { $0.step % 2 == 0 }.count) / Double(n)
        #expect(Swift.abs(observed - p) < 4 * (p * (1 - p) / Double(n)).squareRoot(), "\(observed) vs \(p)")
        // An appended copy with equal weights takes half the mass.
        try dataset.append([e], stepWeight: weight)
        #expect(dataset.episodes.count == 2 && dataset.count == 2 * (e.stepCount - 10))
        let second = Double(try dataset.samplePicks(size: n, generator: &g).filter { $0.episode == 1 }.count) / Double(n)
        #expect(Swift.abs(second - 0.5) < 4 * (0.25 / Double(n)).squareRoot(), "\(second)")
    }

    @Test func chunkTargetsSkipStepsThePolicyActedItself() throws {
        let c = smallConfig()   // horizon 4
        let episodes = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_001], imageSize: c.imageSize)
        var e = try #require(episodes.first)
        // Operator at steps 0–1, policy at 2–3, operator again from 4.
        e.sources = (0..<e.stepCount).map { (2...3).contains($0) ? .policy : .operator }
        let dataset = try DemonstrationDataset(episodes: [e], specs: DemoCollector.specs, config: c,
                                               isTarget: { e, t in e.sources[t] != .policy })
        let mask: [Float] = try dataset.batch([(0, 1)]).actionMask.toArray()
        let slots = e.actionMask.reduce(0, +)
        // Chunk of step 1 covers steps 1…4: 1 and 4 are targets, 2 and 3 (policy) are masked.
        #expect((0..<4).map { k in mask[(k * 64)..<((k + 1) * 64)].reduce(0, +) } == [slots, 0, 0, slots])
    }

    @Test func adaptiveMixFollowsSOPsRuleOverASlidingWindow() {
        var mix = AdaptiveMix(alpha: 2, window: 3, bounds: 0.2...0.8)
        #expect(mix.onlineShare(task: "arm7/reach") == 0.5)   // no losses yet
        mix.record(task: "arm7/reach", online: true, loss: 0.5)
        mix.record(task: "arm7/reach", online: false, loss: 0.4)
        // exp(2·0.5) / (exp(2·0.5) + exp(0.4)) = 1 / (1 + e^−0.6) = 0.645656
        #expect(Swift.abs(mix.onlineShare(task: "arm7/reach") - 0.645656) < 1e-6)
        // The window keeps the last 3 steps: online mean (2 + 3 + 4) / 3 = 3 → share 0.99 → clipped.
        for loss in [1.0, 2, 3, 4] { mix.record(task: "arm7/reach", online: true, loss: loss) }
        #expect(mix.meanLosses(task: "arm7/reach").online == 3)
        #expect(mix.onlineShare(task: "arm7/reach") == 0.8)
        // Offline much worse: exp(0.2) / (exp(0.2) + exp(5)) = 0.0082 → clipped to 0.2.
        mix.record(task: "arm6/push", online: true, loss: 0.1)
        mix.record(task: "arm6/push", online: false, loss: 5)
        #expect(mix.onlineShare(task: "arm6/push") == 0.2)
        mix.record(task: "arm6/push", online: false, loss: .nan)   // ignored
        #expect(mix.meanLosses(task: "arm6/push").offline == 5)
        #expect(mix.onlineShares.count == 2)
    }

    @Test func perSampleLossesRecombineIntoTheBatchLoss() throws {
        let c = smallConfig()
        let episodes = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_002], imageSize: c.imageSize)
        let dataset = try DemonstrationDataset(episodes: episodes, specs: DemoCollector.specs, config: c)
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 1))
        let e = episodes[0]
        // The last step's chunk is mostly padding, so samples have different valid counts.
        let batch = try dataset.batch([(0, 0), (0, e.stepCount - 1), (0, 5)])
        let key = RandomKey(seed: 5)
        let (loss, perSample) = try model.lossTerms(batch, key: key)
        let ps: [Float] = try perSample.toArray()
        let mask: [Float] = try batch.actionMask.toArray()
        let perRow = mask.count / 3
        let valid = (0..<3).map { i in Double(mask[(i * perRow)..<((i + 1) * perRow)].reduce(0, +)) * Double(c.noiseDraws) }
        // Σ_i l_i·n_i / Σ_i n_i is the batch loss (n_i: valid entries of sample i over all draws).
        let recombined = zip(ps, valid).map { Double($0) * $1 }.reduce(0, +) / valid.reduce(0, +)
        #expect(Swift.abs(recombined - Double(try loss.item())) < 1e-4 * recombined)
        // The trainer reports the values from inside its differentiated pass; they equal
        // lossTerms on the trainer's step-0 key (seed·1_000_003 + 0 = 0).
        let policy = VLAPolicy(model: model, stats: dataset.stats)
        let trainer = BehaviorCloningTrainer(policy: policy, schedule: TrainingSchedule(), seed: 0)
        let stepKey = RandomKey(seed: 0)
        let expected: [Float] = try model.lossTerms(batch, key: stepKey).perSample.toArray()
        let (_, reported) = try trainer.trainStepWithSampleLosses(batch)
        for (a, b) in zip(reported, expected) { #expect(Swift.abs(a - b) < 1e-5 * Swift.max(1, Swift.abs(b))) }
    }

    @Test func trainingReducesLossAndCheckpointsRestoreExactly() throws {
        let c = smallConfig()
        let episodes = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_002, 10_003], imageSize: c.imageSize)
        let dataset = try DemonstrationDataset(episodes: episodes, specs: DemoCollector.specs, config: c)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 1)), stats: dataset.stats)
        var schedule = TrainingSchedule()
        schedule.totalSteps = 40
        schedule.warmupSteps = 5
        schedule.learningRate = 2e-3
        schedule.batchSize = 8
        let trainer = BehaviorCloningTrainer(policy: policy, schedule: schedule, seed: 3)
        var generator = SplitMix64(seed: 7)
        let fixed = try dataset.sampleBatch(size: 16, generator: &generator)
        let evalKey = RandomKey(seed: 99)
        let before = try policy.model.loss(fixed, key: evalKey).item()
        for _ in 0..<40 { try trainer.trainStep(dataset.sampleBatch(size: 8, generator: &generator)) }
        let after = try policy.model.loss(fixed, key: evalKey).item()
        #expect(after < 0.7 * before, "held batch loss \(before) → \(after)")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vla-ckpt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try policy.save(to: dir, optimizer: trainer.optimizer, step: trainer.step)
        let (restored, step) = try VLAPolicy.load(from: dir)
        #expect(step == 40)
        let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: 5,
                                       config: EnvironmentConfig(imageWidth: c.imageSize, imageHeight: c.imageSize))
        let observation = PolicyEvaluator.policyObservation(env.reset(), env: env)
        let a = try policy.actionChunk(observation, key: RandomKey(seed: 4))
        let b = try restored.actionChunk(observation, key: RandomKey(seed: 4))
        #expect(a == b)
        #expect(a.count == c.horizon && a[0].count == 8)
    }

    @Test func evaluatorRunsEpisodesToTheStepLimit() throws {
        // An untrained policy on a 3-seed evaluation: episodes end (success or step limit) and
        // the counts add up; the same seeds give the same result twice.
        let c = smallConfig()
        let episodes = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_004], imageSize: c.imageSize)
        let stats = NormalizationStats(episodes: episodes)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 2)), stats: stats)
        let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: 1,
                                       config: EnvironmentConfig(imageWidth: c.imageSize, imageHeight: c.imageSize))
        let first = try PolicyEvaluator.runEpisode(policy: policy, environment: env, key: RandomKey(seed: 1))
        let second = try PolicyEvaluator.runEpisode(policy: policy, environment: env, key: RandomKey(seed: 1))
        #expect(first.steps == second.steps && first.success == second.success)
        #expect(first.success || first.steps == env.stepLimit)
    }

    @Test func evaluatorWritesEpisodeGIFsOfTheSceneCamera() async throws {
        // An untrained policy on seeds 1…3 with GIFs for the first two: two files named by seed and
        // outcome; Pillow (an independent decoder) reads one frame per control step at 6× (32 → 192
        // px), and frame 0 is the seed's reset image through the GIF palette.
        let c = smallConfig()
        let stats = NormalizationStats(episodes: try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_004], imageSize: c.imageSize))
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 2)), stats: stats)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vla-gifs-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try PolicyEvaluator.evaluate(policy: policy, embodiment: .arm7, task: .reach, seeds: [1, 2, 3],
                                                  gifs: .init(directory: dir, episodes: 2))
        #expect(result.gifs.count == 2)
        #expect(result.outcomes.count == 3 && result.outcomes.filter { $0 }.count == result.success.successes)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).count == 2)
        for (i, seed) in [UInt64(1), 2].enumerated() {
            let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: seed,
                                           config: EnvironmentConfig(imageWidth: c.imageSize, imageHeight: c.imageSize))
            let reset = env.reset()
            let run = try PolicyEvaluator.runEpisode(policy: policy, environment: env, key: RandomKey(seed: seed))
            #expect(result.gifs[i].lastPathComponent == "arm7-reach-seed\(seed)-\(run.success ? "success" : "failure").gif")
            #expect(result.outcomes[i] == run.success)
            let script = """
            import sys; from PIL import Image
            im = Image.open(sys.argv[1]); print(im.size[0], im.size[1], im.n_frames)
            im.seek(0); px = im.convert('RGB').load(); s = 6
            print(' '.join(str(c) for y in range(32) for x in range(32) for c in px[x * s, y * s]))
            """
            let out = try await ChildProcess.run(ChildProcess.python, ["-c", script, result.gifs[i].path], timeout: 60)
            let lines = out.stdout.split(separator: "\n")
            #expect(lines[0] == "192 192 \(run.steps)")
            let scene = reset.images[try #require(reset.cameraNames.firstIndex(of: "scene"))]
            var expected: [Int] = []
            for p in 0..<(32 * 32) {
                let q = GIFEncoder.paletteColor(Int(GIFEncoder.paletteIndex(red: scene[3 * p], green: scene[3 * p + 1], blue: scene[3 * p + 2])))
                expected += [Int(q.red), Int(q.green), Int(q.blue)]
            }
            #expect(lines[1].split(separator: " ").map { Int($0)! } == expected)
        }
        // Mean completion time is steps × the 0.05 s control period.
        #expect(Swift.abs(result.meanSecondsToSuccess - 0.05 * result.meanStepsToSuccess) < 1e-9)
    }
}

@Suite("Pointing labels")
struct PointingLabelTests {
    @Test func datasetLabelsAreTheSeedsProjectedTarget() throws {
        var c = smallConfig()
        c.pointingWeight = 1
        let episodes = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_001, 10_002], imageSize: c.imageSize)
        let dataset = try DemonstrationDataset(episodes: episodes, specs: DemoCollector.specs, config: c)
        for (i, e) in episodes.enumerated() {
            let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: e.seed!,
                                           config: EnvironmentConfig(imageWidth: c.imageSize, imageHeight: c.imageSize))
            env.reset()
            let expected = try #require(env.targetImagePoint)
            let label = try #require(dataset.targetPoints[i])
            #expect(Swift.abs(Double(label.x) - expected.x) < 1e-6 && Swift.abs(Double(label.y) - expected.y) < 1e-6)
            #expect(Swift.abs(label.x) < 1 && Swift.abs(label.y) < 1)
        }
        let batch = try dataset.batch([(1, 3), (0, 0)])
        let points = try batch.targetPoints!.toArray(Float.self)
        #expect(points == [dataset.targetPoints[1]!.x, dataset.targetPoints[1]!.y, dataset.targetPoints[0]!.x, dataset.targetPoints[0]!.y])
        #expect(try batch.targetPointMask!.toArray(Float.self) == [1, 1])
    }
}

@Suite("Demo seeds")
struct DemoSeedTests {
    @Test func topUpsNeverReuseAStoredDemosSeed() throws {
        func demo(_ seed: UInt64?) -> Episode {
            var e = try! DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_000], imageSize: 16)[0]
            e.seed = seed
            return e
        }
        // Fresh store: 10 000 on, twice the demos needed.
        #expect(BehaviorCloningRun.demoSeeds(after: [], needed: 3) == Array(10_000..<10_006))
        // The expert failed on 10 001, so the two stored demos are 10 000 and 10 002: the next
        // seeds start at 10 003, not at 10 000 + 2 (which would store scene 10 002 again).
        let stored = [demo(10_000), demo(10_002)]
        #expect(BehaviorCloningRun.demoSeeds(after: stored, needed: 2) == Array(10_003..<10_007))
        // Episodes without a seed fall back to the count.
        #expect(BehaviorCloningRun.demoSeeds(after: [demo(nil)], needed: 1) == [10_001, 10_002])
    }

    /// Collection goes through the seeds in order, skips a failed one and stops at the count.
    @Test func collectSuccessfulSkipsFailuresAndStopsAtTheCount() throws {
        var calls: [[Int]] = []
        // A 50× slower operator cannot finish a reach in the step limit: seed 10 001 fails.
        let demos = try DemoCollector.collectSuccessful(
            count: 2, embodiment: .arm7, task: .reach, seeds: [10_000, 10_001, 10_002, 10_003], imageSize: 16,
            profile: { $0 == 10_001 ? .speed(0.02) : .clean }, progress: { calls.append([$0, $1]) })
        #expect(demos.map(\.seed) == [10_000, 10_002] && demos.allSatisfy(\.success))
        #expect(calls == [[1, 1], [2, 1], [3, 2]])
    }
}

@Suite("L1 pointing pretraining")
struct PointingPretrainingTests {
    /// L1 at test size on arm7/reach: 16 scenes, 60 steps of 16, 4 held out, peak 1e-3.
    static func smallL1() -> PointingPretraining {
        var l1 = PointingPretraining(embodiment: .arm7, tasks: [.reach])
        l1.scenes = 16
        l1.steps = 60
        l1.batchSize = 16
        l1.heldOutScenes = 4
        l1.learningRate = 1e-3
        return l1
    }

    /// Mean distance between `point`'s answer and the simulator's projected target, one reach
    /// scene of `embodiment` at a time (the reference for `pointingError`).
    static func meanErrorByHand(_ embodiment: EmbodimentKind, seeds: [UInt64], imageSize: Int,
                                point: (PolicyObservation) throws -> [Float]) throws -> Double {
        var total = 0.0
        for seed in seeds {
            let env = try RobotEnvironment(embodiment: embodiment, task: .reach, seed: seed,
                                           config: EnvironmentConfig(imageWidth: imageSize, imageHeight: imageSize))
            let o = PolicyEvaluator.policyObservation(env.reset(), env: env)
            let truth = try #require(env.targetImagePoint)
            let p = try point(o)
            total += hypot(Double(p[0]) - truth.x, Double(p[1]) - truth.y)
        }
        return total / Double(seeds.count)
    }

    @Test func trainsTheBackboneToPointAndLeavesTheExpertUntouched() throws {
        var c = smallConfig()
        c.pointingWeight = 1
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_001], imageSize: c.imageSize)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 0)), stats: NormalizationStats(episodes: demos))
        let l1 = Self.smallL1()
        // The same scenes the run trains on, to measure the fit.
        let scenes = try (0..<16).compactMap { try l1.render(l1.firstSeed + UInt64($0), task: .reach, imageSize: c.imageSize) }
        func trainingError() throws -> Float {
            let (prefix, _) = try policy.model.encodePrefix(policy.inputs(scenes.map(\.observation)))
            let targets = try Tensor(scenes.flatMap { [$0.point.x, $0.point.y] }, shape: [scenes.count, 2])
            return try policy.model.pointingLoss(prefix: prefix, targets: targets, mask: Tensor.ones([scenes.count])).item()
        }
        let before = try trainingError()
        let expertBefore = try policy.model.parameters().filter { $0.key.hasPrefix("expert.") || $0.key.hasPrefix("velocityHead") }
            .mapValues { try $0.toArray(Float.self) }
        let backboneBefore = try policy.model.parameters()["backbone.0.attention.query.weight"].map { try $0.toArray(Float.self) }
        let result = try l1.run(policy: policy) { _ in }
        let after = try trainingError()
        #expect(after < 0.5 * before, "pointing MSE on its training scenes \(before) → \(after)")
        #expect(result.before.isFinite && result.after.isFinite)
        for (key, values) in expertBefore { #expect(try policy.model.parameters()[key]!.toArray(Float.self) == values, "\(key) moved") }
        #expect(try policy.model.parameters()["backbone.0.attention.query.weight"]!.toArray(Float.self) != backboneBefore)
        // Everything is trainable again for behaviour cloning.
        #expect(policy.model.trainableParameters().count == policy.model.parameters().count)
    }

    /// `promptBodies`: the scenes are asked in another body's prompt. Two runs from the same
    /// weights, one asked as arm7 (the scenes' own) and one as arm6, cross over: each fits its
    /// own prompt's pointing better than the other run does. arm6 needs no statistics: a
    /// prompted observation carries no state.
    @Test func promptBodiesTrainThePointingUnderTheirPrompt() throws {
        var c = smallConfig()
        c.pointingWeight = 1
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_001], imageSize: c.imageSize)
        func run(_ bodies: [EmbodimentSpec]) throws -> (asArm7: Float, asArm6: Float) {
            let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 0)), stats: NormalizationStats(episodes: demos))
            var l1 = Self.smallL1()
            l1.promptBodies = bodies
            var lines: [String] = []
            try l1.run(policy: policy) { lines.append($0) }
            if bodies.contains(EmbodimentKind.arm6.spec) {
                #expect(lines.contains { $0.contains("held-out scenes in arm6's prompt") })
            }
            let scenes = try (0..<16).compactMap { try l1.render(l1.firstSeed + UInt64($0), task: .reach, imageSize: c.imageSize) }
            let targets = try Tensor(scenes.flatMap { [$0.point.x, $0.point.y] }, shape: [scenes.count, 2])
            func loss(_ body: EmbodimentSpec) throws -> Float {
                let (prefix, _) = try policy.model.encodePrefix(policy.inputs(scenes.map { $0.observation.withPrompt(of: body) }))
                return try policy.model.pointingLoss(prefix: prefix, targets: targets, mask: Tensor.ones([scenes.count])).item()
            }
            return (try loss(EmbodimentKind.arm7.spec), try loss(EmbodimentKind.arm6.spec))
        }
        let own = try run([]), asArm6 = try run([EmbodimentKind.arm6.spec])
        #expect(asArm6.asArm6 < own.asArm6, "arm6 prompt: trained as arm6 \(asArm6.asArm6), as arm7 \(own.asArm6)")
        #expect(own.asArm7 < asArm6.asArm7, "arm7 prompt: trained as arm7 \(own.asArm7), as arm6 \(asArm6.asArm7)")
    }

    @Test func pointingErrorIsTheMeanDistanceToTheProjectedTarget() throws {
        var c = smallConfig()
        c.pointingWeight = 1
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_001], imageSize: c.imageSize)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 0)), stats: NormalizationStats(episodes: demos))
        let seeds: [UInt64] = [0, 1, 2]
        let measured = try PointingPretraining(embodiment: .arm7, tasks: [.reach]).pointingError(policy: policy, seeds: seeds)
        // One scene at a time: the simulator's projected target against the head's point.
        let byHand = try Self.meanErrorByHand(.arm7, seeds: seeds, imageSize: c.imageSize) { o in
            try policy.model.pointTarget(prefix: policy.model.encodePrefix(policy.inputs([o])).tokens).toArray()
        }
        #expect(Swift.abs(measured - byHand) < 1e-4)
    }

    /// `vla eval --pointing-error --pointing-prompt-as arm7` on arm6 scenes: the same images read
    /// with arm7's prompt ("Control mode: joint.") instead of arm6's ("… cartesian.").
    @Test func pointingWithAnotherBodysPromptReadsOnlyThatPrompt() throws {
        var c = smallConfig()
        c.pointingWeight = 1
        let policy = try twoArmPointingPolicy(c, seed: 0)
        let seeds: [UInt64] = [0, 1, 2]
        let l1 = PointingPretraining(embodiment: .arm6, tasks: [.reach])
        let own = try l1.pointingError(policy: policy, seeds: seeds)
        let swapped = try l1.pointingError(policy: policy, seeds: seeds, promptAs: EmbodimentKind.arm7.spec)
        // By hand: each arm6 scene's cameras and instruction in an observation built for arm7.
        let byHand = try Self.meanErrorByHand(.arm6, seeds: seeds, imageSize: c.imageSize) { try pointReadAsArm7(policy, $0) }
        // Equal to the hand-built arm7 reading …
        #expect(Swift.abs(swapped - byHand) < 1e-4)
        // … and not the scenes' own: the prompt reaches the pointing.
        #expect(Swift.abs(swapped - own) > 1e-4, "own \(own), swapped \(swapped)")
    }
}

@Suite("Behaviour cloning after L1")
struct BehaviorCloningAfterPointingTests {
    /// A tiny L1 → BC run with the grounding frozen through BC, in a fresh directory.
    private func smallRun(steps: Int) throws -> BehaviorCloningRun {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("bc-l1-\(UUID())")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        var run = BehaviorCloningRun(output: out)
        run.demosPerPair = 1
        run.model = smallConfig()
        run.model.pointingWeight = 1
        run.schedule.totalSteps = steps
        run.schedule.batchSize = 4
        run.pointingScenes = 8
        run.pointingSteps = steps
        run.freezeGrounding = true
        return run
    }

    @Test func freezeGroundingKeepsTheBackboneOutOfBehaviourCloning() throws {
        let run = try smallRun(steps: 2)
        let out = run.output
        defer { try? FileManager.default.removeItem(at: out) }
        let policy = try run.run { _ in }
        let trainable = Set(policy.model.trainableParameters().keys)
        #expect(!trainable.isEmpty)
        #expect(trainable.allSatisfy { key in !PointingPretraining.trained.contains { key == $0 || key.hasPrefix($0 + ".") } })
        #expect(trainable.contains { $0.hasPrefix("expert.") })
        // The checkpoint BC wrote loads back with the pointing head (the config travels with it).
        let (loaded, step) = try VLAPolicy.load(from: out.appendingPathComponent("checkpoint"))
        #expect(step == 2 && loaded.model.pointingHead != nil)
    }

    @Test func pointingLearningRateSetsL1sStepSize() throws {
        var run = try smallRun(steps: 1)   // BC leaves the frozen backbone as L1 left it
        defer { try? FileManager.default.removeItem(at: run.output) }
        run.pointingLearningRate = 5e-3
        let key = "backbone.0.attention.query.weight"
        // The run builds its model from RandomKey(seed: run.seed): the same initial weights.
        let initial = try FlowMatchingVLA(config: run.model, key: RandomKey(seed: run.seed)).parameters()[key]!.toArray(Float.self)
        let trained = try run.run { _ in }.model.parameters()[key]!.toArray(Float.self)
        // Adam's first step moves each weight by lr·g/(|g|+ε) ≈ ±lr (plus decay lr·0.01·w), and
        // L1's warm-up makes step 0's rate peak/50 = 1e-4.
        let largest = zip(trained, initial).map { Swift.abs($0 - $1) }.max()!
        let decayBound = 1e-4 * 0.01 * initial.map(Swift.abs).max()!
        #expect(largest > 1e-4 * 0.99 && largest < 1e-4 * 1.01 + decayBound, "largest step \(largest)")
    }
}

@Suite("Paired comparison (McNemar)")
struct PairedComparisonTests {
    @Test func exactMcNemarMatchesTheBinomialTail() throws {
        // 2 seeds only the candidate solved, 8 only the baseline: n = 10 discordant,
        // P(X ≤ 2) = (C(10,0) + C(10,1) + C(10,2)) / 2^10 = 56/1024, two-sided p = 0.109375.
        let candidate = [true, true] + [Bool](repeating: false, count: 8) + [true, false]
        let baseline = [false, false] + [Bool](repeating: true, count: 8) + [true, false]
        let p = try PairedComparison(candidate: candidate, baseline: baseline)
        #expect(p.candidateOnly == 2 && p.baselineOnly == 8 && p.bothSucceeded == 1 && p.bothFailed == 1)
        #expect(Swift.abs(p.pValue - 0.109375) < 1e-12)
        #expect(Swift.abs(p.difference - (-6.0 / 12.0)) < 1e-12)
        #expect(p.summary() == "paired on the same 12 seeds: only the checkpoint succeeded on 2, only the baseline on 8 (both 1, neither 1); difference -50.0 points, McNemar exact p = 0.109")
        #expect(p.json.hasPrefix(#"{"candidate_only": 2, "baseline_only": 8, "both": 1, "neither": 1, "difference": -0.5, "mcnemar_p": 0.1093"#))
        // 0 vs 12 discordant: p = 2 / 4096; balanced 5 vs 5: p = 1 (capped); none discordant: 1.
        #expect(Swift.abs(try PairedComparison(candidate: [Bool](repeating: true, count: 12), baseline: [Bool](repeating: false, count: 12)).pValue - 2.0 / 4096) < 1e-15)
        let balanced = try PairedComparison(candidate: [true, true, true, true, true, false, false, false, false, false],
                                            baseline: [false, false, false, false, false, true, true, true, true, true])
        #expect(balanced.pValue == 1)
        #expect(try PairedComparison(candidate: [true, false], baseline: [true, false]).pValue == 1)
        // 300 discordant seeds split 130/170 (large n through log-gamma): with Python's exact
        // integers, 2 * sum(comb(300, i) for i in range(131)) / 2**300 = 0.0241820 (computed once).
        let big = try PairedComparison(candidate: [Bool](repeating: true, count: 130) + [Bool](repeating: false, count: 170),
                                       baseline: [Bool](repeating: false, count: 130) + [Bool](repeating: true, count: 170))
        #expect(Swift.abs(big.pValue - 0.0241820) < 1e-6, "\(big.pValue)")
        #expect(throws: PairedComparison.Error.lengthMismatch(candidate: 1, baseline: 2)) { try PairedComparison(candidate: [true], baseline: [true, false]) }
    }
}
