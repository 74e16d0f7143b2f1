import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
import VLAModel
@testable import Training

/// Sets a bias-carrying linear layer from plain numbers.
private func setLinear(_ layer: Linear, weight: [Float], out: Int, bias: [Float]) throws {
    try layer.update(parameters: ["weight": Tensor(weight, shape: [out, weight.count / out]), "bias": Tensor(bias, shape: [out])])
}

private func floats(_ t: Tensor) throws -> [Float] { try t.toArray(Float.self) }

@Suite("R2 alignment: IQL critic, critic-guided actions, source-noise policy")
struct R2AlignmentTests {
    @Test func expectileLossWeightsNegativeResidualsByOneMinusTau() throws {
        // τ = 0.7, u = [−2, −1, 0.5, 3]: weights [0.3, 0.3, 0.7, 0.7];
        // (0.3·4 + 0.3·1 + 0.7·0.25 + 0.7·9) / 4 = 7.975 / 4 = 1.99375.
        let u = try Tensor([-2, -1, 0.5, 3] as [Float], shape: [4])
        #expect(Swift.abs(try expectileLoss(u, tau: 0.7).item() as Float - 1.99375) < 1e-6)
        // τ = 0.5 is half the mean squared error: (4 + 1 + 0.25 + 9) / 8 = 1.78125.
        #expect(Swift.abs(try expectileLoss(u, tau: 0.5).item() as Float - 1.78125) < 1e-6)
    }

    /// A critic with linear heads on 1-D states and actions; every number below is worked by hand.
    private func linearCritic() throws -> ChunkCritic {
        let c = try ChunkCritic(stateDims: 1, actionDims: 1, hidden: [], key: RandomKey(seed: 1))
        try setLinear(c.q1.layers[0], weight: [1, 2], out: 1, bias: [0])      // q1 = s + 2a
        try setLinear(c.q2.layers[0], weight: [1, 1], out: 1, bias: [0.5])    // q2 = s + a + 0.5
        try setLinear(c.value.layers[0], weight: [0.5], out: 1, bias: [0])    // V = s / 2
        return c
    }

    private func handBatch() throws -> CriticBatch {
        CriticBatch(states: try Tensor([1, 2] as [Float], shape: [2, 1]), actions: try Tensor([0.5, -1] as [Float], shape: [2, 1]),
                    rewards: try Tensor([0, 1] as [Float], shape: [2]), nextStates: try Tensor([2, 3] as [Float], shape: [2, 1]),
                    discounts: try Tensor([0.9, 0] as [Float], shape: [2]))
    }

    @Test func iqlLossesAndGradientsMatchHandComputation() throws {
        let critic = try linearCritic(), batch = try handBatch()
        // q1 = [2, 0], q2 = [2, 1.5] → min Q = [2, 0]; V(s) = [0.5, 1]; V(s') = [1, 1.5].
        // Value: u = [1.5, −1], weights [0.7, 0.3] → (0.7·2.25 + 0.3·1)/2 = 0.9375.
        // Backup = r + γV(s') = [0.9, 1]; q1 loss (1.21 + 1)/2 = 1.105, q2 loss (1.21 + 0.25)/2 = 0.73.
        let (valueLoss, qLoss) = try IQLTrainer.losses(critic: critic, target: critic, batch: batch, tau: 0.7)
        #expect(Swift.abs(try valueLoss.item() as Float - 0.9375) < 1e-6)
        let q = try qLoss.item()
        #expect(Swift.abs(q - 1.835) < 1e-5, "q loss \(q)")
        let grads = try valueAndGrad(model: critic) { c in
            let (v, q) = try IQLTrainer.losses(critic: c, target: critic, batch: batch, tau: 0.7)
            return try v + q
        }(critic).grads
        // ∂L_V/∂V = −2·w·u/N = [−1.05, 0.3] → ∂w_V = −1.05·1 + 0.3·2 = −0.45, ∂b_V = −0.75.
        #expect(Swift.abs(try floats(grads["value.layers.0.weight"]!)[0] + 0.45) < 1e-6)
        #expect(Swift.abs(try floats(grads["value.layers.0.bias"]!)[0] + 0.75) < 1e-6)
        // ∂L_Q1/∂q1 = 2(q1 − backup)/N = [1.1, −1] → ∂w = 1.1·[1, 0.5] − [2, −1] = [−0.9, 1.55], ∂b = 0.1.
        let w1 = try floats(grads["q1.layers.0.weight"]!)
        #expect(Swift.abs(w1[0] + 0.9) < 1e-6 && Swift.abs(w1[1] - 1.55) < 1e-6)
        #expect(Swift.abs(try floats(grads["q1.layers.0.bias"]!)[0] - 0.1) < 1e-6)
    }

    @Test func trainStepMovesEachParameterByAdamsFirstStepAndBlendsTheTarget() throws {
        let critic = try linearCritic()
        var config = IQLConfig()
        config.hidden = []
        config.learningRate = 1e-3
        config.targetUpdateRate = 0.1
        let trainer = try IQLTrainer(critic: critic, config: config)
        let losses = try trainer.trainStep(try handBatch())
        #expect(Swift.abs(losses.value - 0.9375) < 1e-6 && Swift.abs(losses.q - 1.835) < 1e-5)
        // Adam's first step is −lr·g/(|g| + ε) = −lr·sign(g): ∂w_V = −0.45 → 0.5 + 0.001.
        let wV = try floats(critic.value.layers[0].weight)[0]
        #expect(Swift.abs(wV - 0.501) < 1e-6)
        // Target: 0.9 · 0.5 + 0.1 · 0.501 = 0.5001.
        #expect(Swift.abs(try floats(trainer.target.value.layers[0].weight)[0] - 0.5001) < 1e-6)
    }

    @Test func criticGuidedActionsTakeNormalizedGradientSteps() throws {
        let c = try ChunkCritic(stateDims: 1, actionDims: 2, hidden: [], key: RandomKey(seed: 2))
        try setLinear(c.q1.layers[0], weight: [0, 3, 4], out: 1, bias: [0])   // the min head: ∇ₐQ = [3, 4]
        try setLinear(c.q2.layers[0], weight: [0, 3, 4], out: 1, bias: [10])
        let a = try criticGuidedActions(critic: c, states: Tensor([1, -1] as [Float], shape: [2, 1]),
                                        actions: Tensor([0, 0, 1, 1] as [Float], shape: [2, 2]), stepSize: 0.1, steps: 2)
        // Two steps of 0.1 along [3, 4]/5 = [0.6, 0.8].
        let expected: [Float] = [0.12, 0.16, 1.12, 1.16]
        for (x, e) in zip(try floats(a), expected) { #expect(Swift.abs(x - e) < 1e-6) }
    }

    @Test func noisePolicyDensityAndKLMatchClosedForms() throws {
        let p = try SourceNoisePolicy(stateDims: 1, noiseDims: 1, hidden: [4], key: RandomKey(seed: 3))
        try p.update(parameters: ["logStd": Tensor([Float(Foundation.log(2.0))], shape: [1])], strict: false)
        let s = try Tensor([0.3] as [Float], shape: [1, 1])
        // μ starts at 0; σ = 2: log N(1; 0, 4) = −1/8 − ln 2 − ½ ln 2π = −1.7370857.
        #expect(Swift.abs(try floats(p.logProbability(Tensor([1] as [Float], shape: [1, 1]), states: s))[0] + 1.7370857) < 1e-5)
        // KL(N(0, 4) ‖ N(0, 1)) = ½ (4 − 1 − 2 ln 2) = 0.8068528.
        #expect(Swift.abs(try floats(p.klToStandardNormal(s))[0] - 0.8068528) < 1e-5)
    }

    /// The exact flow of the two-point action distribution ½δ(−1) + ½δ(+1) under
    /// x_t = t·ε + (1 − t)·a: E[a | x_t] = tanh(x(1 − t)/t²), v = (x − E[a | x_t]) / t;
    /// 10 Euler steps from t = 1. It sends ε < 0 to −1 and ε > 0 to +1.
    private func frozenFlow(_ noise: [Float]) -> [Float] {
        noise.map { e in
            var x = Double(e)
            for i in 0..<10 {
                let t = 1 - Double(i) / 10
                x -= (x - tanh(x * (1 - t) / (t * t))) / t * 0.1
            }
            return Float(x)
        }
    }

    @Test func learnedSourceNoiseRaisesSuccessOfAFrozenFlowOnA1DTask() throws {
        // Task: the state s ∈ {−1, +1} says which of the two action modes succeeds. From N(0, 1)
        // the frozen flow picks a mode by the noise's sign, so success is 50%.
        let policy = try SourceNoisePolicy(stateDims: 1, noiseDims: 1, hidden: [16], key: RandomKey(seed: 4))
        var config = NoisePolicyConfig()
        config.learningRate = 0.03
        let trainer = NoisePolicyTrainer(policy: policy, config: config)
        func states(_ key: RandomKey, _ n: Int) throws -> Tensor {
            try (key.bernoulli(0.5, shape: [n, 1]).astype(.float32) * 2 - 1)
        }
        func successRate(_ key: RandomKey, learned: Bool) throws -> Double {
            let (ks, kn) = try key.split()
            let s = try states(ks, 2000)
            let noise = learned ? try policy.sample(s, key: kn) : try kn.normal([2000, 1])
            let actions = frozenFlow(try floats(noise)), signs = try floats(s)
            return Double(zip(actions, signs).filter { $0 * $1 > 0 }.count) / 2000
        }
        let before = try successRate(RandomKey(seed: 99), learned: false)
        #expect(before > 0.45 && before < 0.55)
        var key = RandomKey(seed: 5)
        for _ in 0..<150 {
            let k = try key.split(into: 3)
            key = k[2]
            let s = try states(k[0], 64)
            let noise = try policy.sample(s, key: k[1])
            let rewards = zip(frozenFlow(try floats(noise)), try floats(s)).map { $0 * $1 > 0 ? Float(1) : 0 }
            try trainer.update(states: s, noise: noise, rewards: rewards)
        }
        let after = try successRate(RandomKey(seed: 99), learned: true)
        #expect(after > 0.85, "success with the learned source noise: \(after), with N(0, 1): \(before)")
        // The KL penalty keeps the start distribution near N(0, 1).
        let kl = try policy.klToStandardNormal(Tensor([1, -1] as [Float], shape: [2, 1])).mean().item() as Float
        #expect(kl < 5, "KL to N(0, 1): \(kl)")
    }
}

@Suite("R2 alignment run on RobotSim")
struct R2AlignmentRunTests {
    private func alignment(_ config: R2Config = R2Config()) throws -> R2Alignment {
        let c = smallConfig()
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_001, 10_002], imageSize: c.imageSize)
        let stats = NormalizationStats(episodes: demos)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 0)), stats: stats)
        return R2Alignment(policy: policy, embodiment: .arm7, task: .reach, demos: demos, config: config)
    }

    @Test func demoTransitionsRewardOnlyTheSuccessfulEndAndDiscountByChunkLength() throws {
        let r2 = try alignment()
        let dataset = try DemonstrationDataset(episodes: r2.demos, specs: DemoCollector.specs, config: r2.policy.model.config,
                                               stats: r2.policy.stats)
        let data = try r2.demoTransitions(dataset)
        // One transition per executed chunk: ⌈steps / k⌉ per demo (k = 2 in the small config).
        let expected = r2.demos.map { ($0.stepCount + 1) / 2 }.reduce(0, +)
        #expect(data.count == expected)
        #expect(data.allSatisfy { $0.s.count == r2.featureDims && $0.a.count == r2.chunkDims })
        // arm7 drives 8 unified slots (7 joints + gripper): chunk = H · 8 = 32 values.
        #expect(r2.chunkDims == 4 * 8)
        #expect(data.map(\.r).reduce(0, +) == Float(r2.demos.count))
        #expect(data.filter { $0.discount == 0 }.count == r2.demos.count)
        // Inside a demo the next state is the following chunk's and γ² discounts a 2-step chunk.
        #expect(Swift.abs(data[0].discount - Float(0.98 * 0.98)) < 1e-6)
        #expect(data[0].next == data[1].s)
    }

    @Test func rolloutTransitionsChainStatesAndEndAtTheEpisodeEnd() throws {
        let r2 = try alignment()
        let (decisions, success) = try r2.rollout(seed: 5, key: RandomKey(seed: 5))
        let steps = decisions.map(\.executed.count).reduce(0, +)
        // An untrained policy does not reach: the episode runs to reach's 100-step limit.
        #expect(!success && steps == TaskKind.reach.stepLimit)
        let t = r2.transitions(decisions)
        #expect(t.count == decisions.count)
        #expect(t.last!.discount == 0 && t.dropLast().allSatisfy { Swift.abs($0.discount - Float(0.98 * 0.98)) < 1e-6 })
        for i in 0..<(t.count - 1) { #expect(t[i].next == t[i + 1].s) }
        // The chunk is the sampled chunk's valid slots: scattering it back restores them.
        let base = [Float](repeating: 7, count: 4 * 64)
        let full = try r2.scatter(decisions[0].chunk, base: base).toArray(Float.self)
        #expect(r2.gather(full) == decisions[0].chunk)
        #expect(full.filter { $0 == 7 }.count == 4 * (64 - 8))
    }

    @Test func jpmGuidedRolloutsSampleTowardThePointedTarget() throws {
        // With jpm_strength the rollout's first chunk is the flow sample guided toward q* — the
        // same chunk a JointPredictionModule prepared on the reset observation gives with the
        // rollout's sampling key — and differs from the plain sampler's.
        var c = smallConfig()
        c.pointingWeight = 1
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_001], imageSize: c.imageSize)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 0)), stats: NormalizationStats(episodes: demos))
        var guidedConfig = R2Config()
        guidedConfig.jpmStrength = 1
        let guided = R2Alignment(policy: policy, embodiment: .arm7, task: .reach, demos: demos, config: guidedConfig)
        let plain = R2Alignment(policy: policy, embodiment: .arm7, task: .reach, demos: demos, config: R2Config())
        let (withJPM, _) = try guided.rollout(seed: 5, key: RandomKey(seed: 5))
        let (without, _) = try plain.rollout(seed: 5, key: RandomKey(seed: 5))

        let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: 5,
                                       config: EnvironmentConfig(imageWidth: c.imageSize, imageHeight: c.imageSize))
        let observation = PolicyEvaluator.policyObservation(env.reset(), env: env)
        let jpm = JointPredictionModule(strength: 1)
        try jpm.prepare(policy: policy, observation: observation, environment: env)
        let guidance = try #require(try jpm.guidance(policy: policy, observation: observation), "no target under the predicted point")
        let k = try RandomKey(seed: 5).split(into: 3)
        let expected = try policy.model.sampleActions(policy.inputs([observation]), key: k[1], guidance: guidance).toArray(Float.self)
        let unguided = try policy.model.sampleActions(policy.inputs([observation]), key: k[1]).toArray(Float.self)
        #expect(zip(withJPM[0].chunk, guided.gather(expected)).allSatisfy { Swift.abs($0 - $1) < 1e-5 })
        #expect(zip(without[0].chunk, plain.gather(unguided)).allSatisfy { Swift.abs($0 - $1) < 1e-5 })
        #expect(withJPM[0].chunk != without[0].chunk)
    }

    @Test func aTinyRunWritesItsReportAndLoadableCheckpoints() throws {
        var config = R2Config()
        config.rolloutEpisodes = 2
        config.criticSteps = 5
        config.criticBatch = 8
        config.fineTuneSteps = 2
        config.noiseIterations = 1
        config.noiseEpisodesPerIteration = 2
        config.evalEpisodes = 2
        let r2 = try alignment(config)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("r2-\(UUID())")
        defer { try? FileManager.default.removeItem(at: out) }
        let report = try r2.run(output: out) { _ in }
        #expect(report.r1.episodes == 2 && report.r2.episodes == 2 && report.rolloutSuccess.episodes == 2)
        #expect(report.refinedReplays == 2 - report.rolloutSuccess.successes)
        #expect(report.criticQLoss.isFinite && report.criticValueLoss.isFinite)
        let decoded = try JSONDecoder().decode(R2Report.self, from: Data(contentsOf: out.appendingPathComponent("r2-report.json")))
        #expect(decoded.transitions == report.transitions)
        _ = try VLAPolicy.load(from: out.appendingPathComponent("checkpoint"))
        let noise = try r2.loadNoisePolicy(from: out.appendingPathComponent("noise-policy"))
        // Evaluating with the loaded noise policy reproduces the run's own R2 number on its seeds.
        #expect(try r2.evaluate(seeds: [0, 1], noisePolicy: noise).successes == report.r2.successes)
    }
}
