import Foundation
import RobotData
import RobotSim
import TensorKit
import VLAModel

/// The episode-progress head's labels, one rule for behaviour cloning, the fleet learner and
/// `ProgressHeadFit`.
public enum ProgressLabels {
    /// Target and weight of step `t`. A successful episode's steps rise from 0 to 1
    /// (t / (T − 1)); a failed episode's are 0 throughout, as none of its steps was on the way
    /// to a success. Trained on both, the head estimates progress along successful paths and
    /// stays low where episodes fail (how well that carries to new scenes: README).
    /// `failures: false` is the successes-only rule (failed steps unlabelled), kept as the
    /// baseline: with it the head learns "late in the episode" and rates failures high too.
    public static func label(_ e: Episode, step t: Int, failures: Bool = true) -> (target: Float, weight: Float) {
        if e.success { return (Float(t) / Float(max(e.stepCount - 1, 1)), 1) }
        return (0, failures ? 1 : 0)
    }
}

/// The progress head as a success detector, fitted on a frozen policy: the policy's own
/// rollouts (successes and failures) join the demos, and a head reads the frozen features
/// `predictProgress` reads (the pooled backbone tokens and the standardized state), so nothing
/// that acts changes. Two heads from one initialization, one per labelling rule
/// (`ProgressLabels`), are compared on held-out rollouts by how well their estimate at the
/// last recorded step separates successes from failures (ROC AUC). The returned policy
/// carries the head fitted with failures.
public struct ProgressHeadFit {
    public var embodiment: EmbodimentKind
    public var task: TaskKind
    /// Rollouts the heads train on (disjoint from demos ≥ 10 000 and evaluation 0 ..< 10 000).
    public var rolloutSeeds: [UInt64] = Array(20_000..<20_100)
    /// Rollouts only measured on.
    public var heldOutSeeds: [UInt64] = Array(0..<100)
    public var steps = 2000
    public var batchSize = 256
    public var learningRate: Float = 1e-3
    public var seed: UInt64 = 0
    public var maxDistractors: Int?
    public var jpm: JointPredictionModule?
    /// > 0: then fine-tune the whole policy (from the fitted head) this many steps, the progress
    /// loss on demos and rollouts and the flow loss on demo steps only (a rollout's actions are
    /// never cloned), and measure that head too. The returned policy is then the fine-tuned one.
    public var backboneSteps = 0
    public var backboneLearningRate: Float = 1e-4

    public init(embodiment: EmbodimentKind, task: TaskKind) {
        self.embodiment = embodiment
        self.task = task
    }

    /// How a head's estimate at the last recorded step of each held-out episode separates the
    /// outcomes.
    public struct Separation: Codable, Sendable, Equatable {
        public var meanSuccess: Double?
        public var meanFailure: Double?
        /// P(estimate on a success > estimate on a failure), ties half (nil: one outcome absent).
        public var auc: Double?
        /// Episodes classified right by "estimate ≥ 0.5 means success".
        public var accuracyAtHalf: Double
    }

    public struct Report: Codable, Sendable {
        public var rollouts: SuccessRate
        public var heldOut: SuccessRate
        public var trainingSteps: Int
        public var labelledSteps: (successesOnly: Int, withFailures: Int)
        /// The checkpoint's own head (trained in behaviour cloning), when it has one.
        public var checkpointHead: Separation?
        public var successesOnly: Separation
        public var withFailures: Separation
        /// After `backboneSteps` of fine-tuning the whole policy (nil: not run).
        public var fineTuned: Separation?

        enum CodingKeys: String, CodingKey {
            case rollouts, heldOut, trainingSteps, labelledStepsSuccessesOnly, labelledStepsWithFailures
            case checkpointHead, successesOnly, withFailures, fineTuned
        }
        public init(rollouts: SuccessRate, heldOut: SuccessRate, trainingSteps: Int, labelledSteps: (successesOnly: Int, withFailures: Int),
                    checkpointHead: Separation?, successesOnly: Separation, withFailures: Separation) {
            self.rollouts = rollouts; self.heldOut = heldOut; self.trainingSteps = trainingSteps; self.labelledSteps = labelledSteps
            self.checkpointHead = checkpointHead; self.successesOnly = successesOnly; self.withFailures = withFailures
        }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            rollouts = try c.decode(SuccessRate.self, forKey: .rollouts)
            heldOut = try c.decode(SuccessRate.self, forKey: .heldOut)
            trainingSteps = try c.decode(Int.self, forKey: .trainingSteps)
            labelledSteps = (try c.decode(Int.self, forKey: .labelledStepsSuccessesOnly), try c.decode(Int.self, forKey: .labelledStepsWithFailures))
            checkpointHead = try c.decodeIfPresent(Separation.self, forKey: .checkpointHead)
            successesOnly = try c.decode(Separation.self, forKey: .successesOnly)
            withFailures = try c.decode(Separation.self, forKey: .withFailures)
            fineTuned = try c.decodeIfPresent(Separation.self, forKey: .fineTuned)
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(rollouts, forKey: .rollouts)
            try c.encode(heldOut, forKey: .heldOut)
            try c.encode(trainingSteps, forKey: .trainingSteps)
            try c.encode(labelledSteps.successesOnly, forKey: .labelledStepsSuccessesOnly)
            try c.encode(labelledSteps.withFailures, forKey: .labelledStepsWithFailures)
            try c.encodeIfPresent(checkpointHead, forKey: .checkpointHead)
            try c.encode(successesOnly, forKey: .successesOnly)
            try c.encode(withFailures, forKey: .withFailures)
            try c.encodeIfPresent(fineTuned, forKey: .fineTuned)
        }
    }

    /// Rolls the policy out on both seed sets (recorded), fits the two heads and measures them;
    /// returns the policy with the head fitted with failures (every other weight bit-identical
    /// unless `backboneSteps` > 0; a policy that has a head gets it replaced in place) and the
    /// report.
    public func run(policy: VLAPolicy, demos: [Episode], log: (String) -> Void) throws -> (policy: VLAPolicy, report: Report) {
        let rollouts = try record(policy, seeds: rolloutSeeds, label: "training rollouts", log: log)
        let heldOut = try record(policy, seeds: heldOutSeeds, label: "held-out rollouts", log: log)
        let training = demos + rollouts
        let spec = embodiment.spec
        var observations: [PolicyObservation] = [], episodeOf: [Int] = [], stepOf: [Int] = []
        for (i, e) in training.enumerated() {
            for t in 0..<e.stepCount {
                observations.append(e.policyObservation(at: t, spec: spec))
                episodeOf.append(i)
                stepOf.append(t)
            }
        }
        log("features of \(observations.count) steps (\(demos.count) demos, \(rollouts.count) rollouts)")
        let features = try Self.features(policy, observations)
        let heldOutObservations = heldOut.map { $0.policyObservation(at: $0.stepCount - 1, spec: spec) }
        let heldOutFeatures = try Self.features(policy, heldOutObservations)
        let outcomes = heldOut.map(\.success)

        let width = features.count / max(observations.count, 1)
        let initial = try MLP(dims: width, hidden: policy.model.config.dims, outDims: 1, activation: .gelu,
                              key: RandomKey(seed: seed &+ 0x9E37))
        var heads: [Bool: MLP] = [:], labelled: [Bool: Int] = [:]
        for failures in [false, true] {
            let labels = zip(episodeOf, stepOf).map { ProgressLabels.label(training[$0], step: $1, failures: failures) }
            let head = try MLP(dims: width, hidden: policy.model.config.dims, outDims: 1, activation: .gelu, key: RandomKey(seed: 0))
            try head.update(parameters: initial.parameters())
            let loss = try fit(head, features: features, width: width, labels: labels)
            labelled[failures] = labels.filter { $0.weight > 0 }.count
            log(String(format: "head fitted %@: %d labelled steps, final loss %.4f",
                       failures ? "with failures" : "on successes only", labelled[failures]!, loss))
            heads[failures] = head
        }
        let measure = { (head: MLP) throws -> Separation in
            let predicted = try Self.predict(head, heldOutFeatures, width: width)
            return Self.separation(predicted, outcomes: outcomes)
        }
        var checkpointHead: Separation?
        if let own = policy.model.progressHead { checkpointHead = try measure(own) }
        var report = Report(rollouts: SuccessRate(successes: rollouts.filter(\.success).count, episodes: rollouts.count),
                            heldOut: SuccessRate(successes: outcomes.filter { $0 }.count, episodes: outcomes.count),
                            trainingSteps: steps, labelledSteps: (labelled[false]!, labelled[true]!),
                            checkpointHead: checkpointHead, successesOnly: try measure(heads[false]!), withFailures: try measure(heads[true]!))
        let fitted = try policy.withProgressHead(seed: seed)
        var parameters: [String: Tensor] = [:]
        for (key, value) in heads[true]!.parameters() { parameters["progressHead." + key] = value }
        try fitted.model.update(parameters: parameters)
        if backboneSteps > 0 {
            try fineTune(fitted, on: training, log: log)
            report.fineTuned = Self.separation(try Self.predict(fitted.model.progressHead!, Self.features(fitted, heldOutObservations), width: width),
                                               outcomes: outcomes)
        }
        return (fitted, report)
    }

    /// `backboneSteps` of AdamW on the whole policy: flow matching on demo steps, progress on all.
    func fineTune(_ policy: VLAPolicy, on episodes: [Episode], log: (String) -> Void) throws {
        var schedule = TrainingSchedule.postTraining
        schedule.learningRate = backboneLearningRate
        schedule.batchSize = 32
        let trainer = BehaviorCloningTrainer(policy: policy, schedule: schedule, seed: seed)
        let dataset = try DemonstrationDataset(episodes: episodes, specs: DemoCollector.specs, config: policy.model.config,
                                               stats: policy.stats, isTarget: { e, t in e.sources[t] != .policy })
        var generator = SplitMix64(seed: seed &+ 1)
        var recent: [Float] = []
        for step in 1...backboneSteps {
            recent.append(try trainer.trainStep(dataset.sampleBatch(size: schedule.batchSize, generator: &generator)))
            if recent.count > 50 { recent.removeFirst() }
            if step % 100 == 0 || step == backboneSteps {
                log(String(format: "fine-tuning the policy with the progress loss: step %d/%d, loss %.4f", step, backboneSteps,
                           recent.reduce(0, +) / Float(recent.count)))
            }
        }
    }

    /// The policy's episodes on `seeds`, recorded.
    func record(_ policy: VLAPolicy, seeds: [UInt64], label: String, log: (String) -> Void) throws -> [Episode] {
        let size = policy.model.config.imageSize
        var episodes: [Episode] = []
        for (i, seed) in seeds.enumerated() {
            var config = EnvironmentConfig(imageWidth: size, imageHeight: size)
            config.maxDistractors = maxDistractors
            let env = try RobotEnvironment(embodiment: embodiment, task: task, seed: seed, config: config)
            let recorder = EpisodeRecorder(environment: env)
            var counts = PolicyEvaluator.OODCounts()
            _ = try PolicyEvaluator.runEpisode(policy: policy, environment: env, key: RandomKey(seed: seed), recorder: recorder,
                                               ood: nil, counts: &counts, jpm: jpm)
            episodes.append(try recorder.episode())
            if (i + 1) % 25 == 0 || i + 1 == seeds.count {
                log("\(label): \(i + 1)/\(seeds.count), \(episodes.filter(\.success).count) successes")
            }
        }
        return episodes
    }

    /// `[pooled prefix, standardized state · mask]` per observation, flattened row-major: what
    /// `FlowMatchingVLA.predictProgress` reads.
    static func features(_ policy: VLAPolicy, _ observations: [PolicyObservation]) throws -> [Float] {
        var rows: [Float] = []
        for start in stride(from: 0, to: observations.count, by: 64) {
            let inputs = try policy.inputs(Array(observations[start..<min(start + 64, observations.count)]))
            let model = policy.model
            let pooled = try model.pooledPrefix(encoded: model.encodePrefix(inputs))
            rows += try concatenated([pooled, inputs.state * inputs.stateMask], axis: 1).toArray(Float.self)
        }
        return rows
    }

    static func predict(_ head: MLP, _ features: [Float], width: Int) throws -> [Float] {
        guard !features.isEmpty else { return [] }
        return try head(Tensor(features, shape: [features.count / width, width])).reshaped([-1]).sigmoid().toArray(Float.self)
    }

    /// AdamW on the weighted MSE of sigmoid(head(x)) against the labels; returns the mean loss of
    /// the last 50 steps.
    func fit(_ head: MLP, features: [Float], width: Int, labels: [(target: Float, weight: Float)]) throws -> Float {
        let usable = labels.indices.filter { labels[$0].weight > 0 }
        guard !usable.isEmpty else { return 0 }
        let optimizer = AdamW(learningRate: learningRate, weightDecay: 0)
        let batch = StepInput<(x: Tensor, y: Tensor)>()
        let lossAndGrad = valueAndGrad(model: head) { h in
            let (x, y) = batch.value!
            return [try (h(x).reshaped([-1]).sigmoid() - y).square().mean()]
        }
        var generator = SplitMix64(seed: seed)
        var recent: [Float] = []
        for _ in 0..<steps {
            let picks = (0..<batchSize).map { _ in usable[Int(generator.next() % UInt64(usable.count))] }
            var x = [Float](), y = [Float]()
            x.reserveCapacity(picks.count * width)
            for i in picks {
                x += features[(i * width)..<((i + 1) * width)]
                y.append(labels[i].target)
            }
            batch.value = (try Tensor(x, shape: [picks.count, width]), try Tensor(y, shape: [picks.count]))
            let (values, grads) = try lossAndGrad(head)
            try optimizer.step(model: head, gradients: grads, alsoEvaluate: values)
            recent.append(try values[0].item())
            if recent.count > 50 { recent.removeFirst() }
        }
        batch.value = nil
        return recent.reduce(0, +) / Float(max(recent.count, 1))
    }

    /// Separation of estimates by outcome; AUC by the Mann–Whitney count (ties half).
    public static func separation(_ estimates: [Float], outcomes: [Bool]) -> Separation {
        let positives = zip(estimates, outcomes).filter { $0.1 }.map { Double($0.0) }
        let negatives = zip(estimates, outcomes).filter { !$0.1 }.map { Double($0.0) }
        let mean = { (xs: [Double]) in xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count) }
        var auc: Double?
        if !positives.isEmpty && !negatives.isEmpty {
            var wins = 0.0
            for p in positives { for n in negatives { wins += p > n ? 1 : (p == n ? 0.5 : 0) } }
            auc = wins / Double(positives.count * negatives.count)
        }
        let right = zip(estimates, outcomes).filter { ($0.0 >= 0.5) == $0.1 }.count
        return Separation(meanSuccess: mean(positives), meanFailure: mean(negatives), auc: auc,
                          accuracyAtHalf: estimates.isEmpty ? 0 : Double(right) / Double(estimates.count))
    }
}
