import Foundation
import Testing
import TestSupport
import RobotData
import RobotSim
import TensorKit
@testable import Fleet
import Training
import VLAModel

@Suite("RECAP on the fleet", .stopsLearners, .timeLimit(.minutes(10)))
struct RECAPTests {
    /// Two 16-pixel reach demos, a tiny policy on them and a RECAP with a value fitted on them.
    func fixture(dropIndicator: Double = 0.3, continuousValue: Bool = false) throws
        -> (demos: [Episode], policy: VLAPolicy, recap: RECAP) {
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010, 10_011], imageSize: 16)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: tinyVLAConfig(), key: RandomKey(seed: 1)),
                               stats: NormalizationStats(episodes: demos))
        let encoder = VLAPolicy(model: try FlowMatchingVLA(config: tinyVLAConfig(), key: RandomKey(seed: 1)), stats: policy.stats)
        let value = try StepsToGoValue(encoder: encoder, hidden: [32], seed: 2)
        try TensorLock.run {
            try value.fit(episodes: demos, specs: DemoCollector.specs, stepLimit: RECAP.stepLimit, steps: 60, batchSize: 16, seed: 3)
        }
        let recap = RECAP(value: value, specs: DemoCollector.specs, lookahead: 5, positiveFraction: 0.3,
                          dropIndicator: dropIndicator, continuousValue: continuousValue)
        return (demos, policy, recap)
    }

    /// A demo replayed as a failed online episode: every third step the operator's.
    func onlineEpisode(_ demo: Episode) -> Episode {
        var e = demo
        e.id = UUID()
        e.sources = (0..<e.stepCount).map { $0 % 3 == 0 ? .operator : .policy }
        e.success = false
        return e
    }

    @Test func labelsFollowNStepAdvantagesAndTheTasksQuantileThreshold() throws {
        let (demos, _, recap) = try fixture(dropIndicator: 0)
        let e = onlineEpisode(demos[0])
        try recap.ingest(e)
        // Advantages from an independent pass: V of every step, then the n-step formula.
        let v: [Float] = try TensorLock.run {
            try recap.value.values(features: recap.value.features(of: e, spec: EmbodimentKind.arm7.spec)).toArray()
        }
        let expected = RECAPReturns().advantages(values: v, success: false, stepLimit: TaskKind.reach.stepLimit, n: 5)
        for t in 0..<e.stepCount { #expect(abs(recap.advantage(e, t)! - expected[t]) < 1e-5) }
        // ε is the 70% quantile of the policy steps' advantages: ~30% of them are positive.
        let policySteps = (0..<e.stepCount).filter { e.sources[$0] == .policy }
        let sorted = policySteps.map { expected[$0] }.sorted()
        let epsilon = sorted[Int(Double(sorted.count) * 0.7)]
        for t in 0..<e.stepCount {
            let want: AdvantageIndicator = e.sources[t] == .policy && expected[t] <= epsilon ? .negative : .positive
            #expect(recap.indicator(e, t) == want, "step \(t)")
        }
        let positives = policySteps.filter { recap.indicator(e, $0) == .positive }.count
        #expect(abs(Double(positives) / Double(policySteps.count) - 0.3) < 0.1, "\(positives)/\(policySteps.count)")
        // Offline samples are positive; with no dropout every sample is conditioned.
        var g = SplitMix64(seed: 1)
        let offline = recap.indicators(for: (0..<10).map { (demos[1], $0) }, online: false, generator: &g)!
        #expect(offline.allSatisfy { $0 == .positive })
        #expect(recap.summary["arm7/reach ε"].map { abs($0 - Double(epsilon)) < 1e-6 } == true)
        // The value's fit on the episode it labelled, from the same independent pass.
        let returnsToGo: [Double] = RECAPReturns().returnsToGo(steps: e.stepCount, success: false, stepLimit: TaskKind.reach.stepLimit).map(Double.init)
        let values: [Double] = v.map(Double.init)
        let mean: Double = returnsToGo.reduce(0, +) / Double(returnsToGo.count)
        var residual = 0.0, spread = 0.0
        for t in 0..<returnsToGo.count {
            residual += (values[t] - returnsToGo[t]) * (values[t] - returnsToGo[t])
            spread += (returnsToGo[t] - mean) * (returnsToGo[t] - mean)
        }
        let r2 = try #require(recap.summary["arm7/reach value R² online"])
        #expect(abs(r2 - (1 - residual / spread)) < 1e-4 * max(1, abs(r2)), "\(r2)")
    }

    /// An episode with only what `ValueDiagnostics` reads: step count, sources and outcome.
    func bareEpisode(_ sources: [StepSource], success: Bool) throws -> Episode {
        let n = sources.count
        return Episode(embodiment: "arm7", task: "reach", instruction: "", cameras: [:],
                       states: try StepMatrix(rows: n, columns: 1, values: Array(repeating: 0, count: n)),
                       nativeActions: try StepMatrix(rows: n, columns: 1, values: Array(repeating: 0, count: n)),
                       unifiedActions: try StepMatrix(rows: n, columns: 1, values: Array(repeating: 0, count: n)),
                       actionMask: [1], rewards: Array(repeating: 0, count: n), dones: Array(repeating: false, count: n),
                       sources: sources, timestamps: (0..<n).map(Double.init), success: success)
    }

    @Test func valueDiagnosticsMatchHandComputedFigures() throws {
        var d = ValueDiagnostics()
        // Success, L = 10: g = (−0.4, −0.3, −0.2, −0.1), V = 0; failure: g = (−1.2, −1.1), V = −0.5.
        d.add(episode: try bareEpisode([.policy, .policy, .operator, .policy], success: true),
              values: [0, 0, 0, 0], returnsToGo: [-0.4, -0.3, -0.2, -0.1], advantages: [0.1, 0.2, 0.5, 0.3])
        d.add(episode: try bareEpisode([.policy, .policy], success: false),
              values: [-0.5, -0.5], returnsToGo: [-1.2, -1.1], advantages: [-0.4, -0.2])
        // By hand: Σ(V − g)² = 0.30 + 0.85 = 1.15; ḡ = −0.55, Σ(g − ḡ)² = 2.95 − 3.3²/6 = 1.135;
        // R² = 1 − 1.15/1.135 = −0.013215859.
        #expect(d.steps == 6)
        #expect(abs(d.rSquared! - -0.013215859) < 1e-6, "\(d.rSquared!)")
        // Policy steps only (the operator's 0.5 is left out): mean(0.1, 0.2, 0.3) − mean(−0.4, −0.2) = 0.5.
        #expect(abs(d.advantageGap! - 0.5) < 1e-6)
        #expect(ValueDiagnostics().rSquared == nil && ValueDiagnostics().advantageGap == nil)
    }

    @Test func indicatorDropoutLeavesTheConfiguredShareUnconditioned() throws {
        let (demos, _, recap) = try fixture(dropIndicator: 0.3)
        var g = SplitMix64(seed: 4)
        let labels = recap.indicators(for: (0..<2000).map { (demos[0], $0 % demos[0].stepCount) }, online: false, generator: &g)!
        let dropped = Double(labels.filter { $0 == nil }.count) / 2000
        // Binomial(2000, 0.3): σ ≈ 0.010, so ±0.04 is four σ.
        #expect(abs(dropped - 0.3) < 0.04, "\(dropped)")
    }

    @Test func backendNeedsTheAdvantageTokenAndTrainsItThenResumesExactly() async throws {
        let (demos, plain, _) = try fixture()
        var schedule = TrainingSchedule.postTraining
        schedule.batchSize = 6
        #expect(throws: PostTrainingError.missingAdvantageToken("recap")) {
            _ = try PostTrainingBackend(trainer: BehaviorCloningTrainer(policy: plain, schedule: schedule, seed: 5),
                                        offline: demos, specs: DemoCollector.specs, algorithm: try fixture().recap, seed: 6)
        }
        func backend() throws -> (PostTrainingBackend, VLAPolicy) {
            let (_, policy, recap) = try fixture()
            let conditioned = try policy.withAdvantageConditioning(seed: 7)
            return (try PostTrainingBackend(trainer: BehaviorCloningTrainer(policy: conditioned, schedule: schedule, seed: 5),
                                            offline: demos, specs: DemoCollector.specs, algorithm: recap, seed: 6), conditioned)
        }
        let online = onlineEpisode(demos[1])
        let (a, policyA) = try backend()
        let token = try TensorLock.run { try policyA.model.parameters()["advantageEmbedding.weight"]!.toArray(Float.self) }
        try await a.ingest(online)
        for _ in 0..<3 { _ = try await a.trainStep() }
        let trained = try TensorLock.run { try policyA.model.parameters()["advantageEmbedding.weight"]!.toArray(Float.self) }
        #expect(token != trained)
        // Policy steps are samples in RECAP (HG-DAgger drops them): the online data has every step.
        let directory = temporaryDirectory("recap-checkpoint")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try await a.saveCheckpoint(to: directory)
        let (b, _) = try backend()
        try await b.restoreCheckpoint(from: directory)
        try await b.ingest(online)
        let la = try await a.trainStep(), lb = try await b.trainStep()
        #expect(la != nil && la == lb)
        #expect(try bitPatterns(await a.exportTrainableWeights()) == bitPatterns(await b.exportTrainableWeights()))
    }

    @Test func demoPostTrainsWithRECAPAndKeepsTheLanguageBackboneFrozen() async throws {
        var demo = tinyFleetDemo("recap-demo")
        demo.setup.algorithm = .recap
        demo.actors = 2
        demo.episodesPerActor = 1
        demo.trainSteps = 4
        demo.publishEveryTrainSteps = 2
        demo.setup.recapValueSteps = 10
        demo.gate.policyStepBudget = 10
        demo.oodGuard = .monitor               // the pretraining's guard, on every actor
        let lines = Locked([String]())
        let report = try await demo.run { line in lines.withLock { $0.append(line) } }
        #expect(report.settings["OOD guard on actors"] == "monitor")
        #expect(lines.current.contains { $0.hasPrefix("actor ") && $0.contains("OOD chunks") })
        // The report carries each actor's guard counts: every planned chunk was checked.
        #expect(!report.oodGuard.isEmpty && report.oodGuard.values.allSatisfy { $0.chunks > 0 && $0.outOfDistribution <= $0.chunks && $0.corrected == 0 })
        #expect(report.html().contains("OOD guard on the actors"))
        #expect(report.before.count == 1 && report.after.count == 1)
        // Before and after keep each seed's outcome (paired test); every fleet episode its takeovers.
        #expect(report.before[0].perSeedSuccess?.count == 1 && report.after[0].perSeedSuccess?.count == 1)
        #expect(report.episodes.allSatisfy { $0.takeovers != nil })
        // The pretrained policy's evaluation is cached next to its checkpoint for the next run.
        let cache = demo.output.appendingPathComponent("pretrain/held-out-arm7-reach-seeds1-jpm0.0-predicted.json")
        let cached = FleetDemo.cachedEvaluation(cache, newerThan: demo.output.appendingPathComponent("pretrain/checkpoint"))
        #expect(cached?.first?.perSeedSuccess == report.before[0].perSeedSuccess && cached?.first?.successes == report.before[0].successes)
        #expect(report.versionsPublished >= 2 && report.trainSteps >= 4)
        #expect(report.algorithmSummary["arm7/reach ε"] != nil)
        let (pretrained, _) = try VLAPolicy.load(from: demo.output.appendingPathComponent("pretrain/checkpoint"))
        let (post, _) = try VLAPolicy.load(from: demo.output.appendingPathComponent("post-trained"))
        #expect(post.model.config.advantageConditioning && !pretrained.model.config.advantageConditioning)
        let before = pretrained.model.parameters(), after = post.model.parameters()
        // SOP's default: the language backbone is frozen, the action expert trains.
        let backbone = before.keys.filter { $0.hasPrefix("backbone.") || $0.hasPrefix("tokenEmbedding.") }
        #expect(backbone.count >= 4)
        for key in backbone { #expect(try before[key]!.toArray(Float.self) == after[key]!.toArray(Float.self), "\(key)") }
        #expect(try before["velocityHead.weight"]!.toArray(Float.self) != after["velocityHead.weight"]!.toArray(Float.self))
    }
}
