import Foundation
import RobotData
import RobotSim
import TensorKit
import VLAModel

/// A complete behaviour-cloning run: collect (or load) expert demos, train, checkpoint,
/// evaluate. The entry point behind `vla train bc`.
public struct BehaviorCloningRun: Sendable {
    public var embodiments: [EmbodimentKind] = [.arm7]
    public var tasks: [TaskKind] = [.reach]
    public var demosPerPair = 40
    public var model = VLAConfig()
    public var schedule = TrainingSchedule()
    public var seed: UInt64 = 0
    /// Checkpoint every this many steps (and at the end).
    public var checkpointEvery = 200
    public var output: URL
    /// Episodes kept here between runs (demos are collected once).
    public var episodeStore: URL?
    /// Caps the scenes' distractor objects (nil: each task's own range).
    public var maxDistractors: Int?
    /// L1 pointing pretraining on rendered scenes before behaviour cloning (needs
    /// `model.pointingWeight` > 0); runs only when the run starts from step 0.
    public var pointingScenes = 0
    public var pointingSteps = 0
    public var pointingLearningRate = PointingPretraining.defaultLearningRate
    /// L1's prompts: each scene asked as one of these bodies (empty: the scene's own).
    public var pointingPromptBodies: [EmbodimentKind] = []
    /// Keep what pointing pretraining trained (vision, embeddings, backbone) frozen during
    /// behaviour cloning, so 30 demos cannot overfit the grounding (not kept across a resume).
    public var freezeGrounding = false
    /// The OOD guard fitted on the training states after training (`ood-guard.json` in the
    /// checkpoint directory); nil skips it.
    public var oodGuard: OODGuardOptions? = OODGuardOptions()
    /// Weights to start from (an earlier stage's checkpoint; optimizer and step start fresh,
    /// statistics come from this run's demos); `model` must have its shapes. Ignored on resume.
    public var initFrom: URL?
    /// Parameter-path prefixes (`Module.freeze`) kept frozen during behaviour cloning, also
    /// after a resume.
    public var frozen: [String] = []
    /// Green-VLA's curriculum over the (embodiment, task) datasets: W_i ∝ w_i^α with w from
    /// DataQA (`DataQA.datasetWeights`), α reaching 1 after this fraction of the steps.
    public var curriculumAnnealFraction = 0.5
    /// Batches built ahead on a background thread (0: on the training thread).
    public var prefetchBatches = 2
    /// Operator speed scales the demos cycle through, seed by seed (`OperatorProfile.speed`):
    /// [1] is the clean operator; e.g. [0.5, 1, 2] gives speed conditioning something to learn.
    public var operatorSpeeds: [Double] = [1]
    /// VQA co-training (R0, with `model.answerWeight` > 0): every batch also carries
    /// `questionBatchSize` grounding questions drawn from `questionScenes` scenes of the first
    /// embodiment, rendered once before training (seeds from `questionFirstSeed`, apart from
    /// L1's and the demos'); the loss adds answerWeight · answer cross-entropy. 0: off.
    public var questionScenes = 0
    public var questionBatchSize = 8
    public var questionFamilies = QuestionFamily.allCases
    public var questionFirstSeed: UInt64 = 200_000
    /// Train only on this split's seen scenes (demos, L1 pointing scenes and VQA co-training
    /// questions, which never name a held-out colour or object; see `GroundingQuestions.sceneSplit`), so its held-out
    /// target colours and positions stay new to the policy (`vla eval --scenes`). nil: all scenes.
    public var sceneSplit: SceneSplit?

    /// Behaviour cloning on a declared body's demos from an episode store (`StoredDemos`,
    /// e.g. a learner's store a bridge filled) instead of RobotSim's scripted operator.
    public struct StoredBody: Sendable {
        public var store: URL
        public var spec: EmbodimentSpec
        /// nil: every task of the body in the store.
        public var tasks: [String]?
        public init(store: URL, spec: EmbodimentSpec, tasks: [String]? = nil) {
            self.store = store
            self.spec = spec
            self.tasks = tasks
        }
    }
    public var storedBody: StoredBody?

    /// RobotSim's bodies and the stored one.
    public var specs: [String: EmbodimentSpec] {
        var specs = DemoCollector.specs
        if let storedBody { specs[storedBody.spec.name] = storedBody.spec }
        return specs
    }

    public init(output: URL) { self.output = output }

    /// Trains and returns the final policy; `log` receives progress lines.
    public func run(log: (String) -> Void) throws -> VLAPolicy {
        var episodes = try demonstrations(log: log)
        log("dataset: \(episodes.count) episodes, \(episodes.reduce(0) { $0 + $1.stepCount }) steps")
        if model.speedConditioning {
            // Measured once here; every dataset below reuses the labels.
            episodes = try SpeedLabels.measured(episodes)
            let speeds = episodes.compactMap(\.speed).sorted()
            log(String(format: "speed labels (optical flow, px/step): %.3f … %.3f, median %.3f", speeds.first ?? 0, speeds.last ?? 0,
                       speeds.isEmpty ? 0 : speeds[speeds.count / 2]))
        }
        let stats = try DemonstrationDataset.statistics(episodes: episodes, specs: specs, config: model)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: model, key: RandomKey(seed: seed)), stats: stats)
        log("model: \(policy.model.parameterCount) parameters")
        var s = schedule
        s.totalSteps = schedule.totalSteps
        let trainer = BehaviorCloningTrainer(policy: policy, schedule: s, seed: seed)
        let checkpoint = output.appendingPathComponent("checkpoint")
        if FileManager.default.fileExists(atPath: checkpoint.appendingPathComponent("manifest.json").path) {
            try trainer.resume(from: checkpoint)
            log("resumed from step \(trainer.step)")
        } else {
            if let initFrom {
                try Checkpoint.load(into: policy.model, optimizer: nil, from: initFrom)
                log("weights from \(initFrom.path)")
            }
            if pointingSteps > 0 && pointingScenes > 0 {
                var l1 = PointingPretraining(embodiment: embodiments[0], tasks: tasks)
                l1.scenes = pointingScenes
                l1.steps = pointingSteps
                l1.learningRate = pointingLearningRate
                l1.promptBodies = pointingPromptBodies.map(\.spec)
                l1.seed = seed
                l1.sceneSplit = sceneSplit
                try l1.run(policy: policy, log: log)
                if freezeGrounding { policy.model.freeze(PointingPretraining.trainedAnyText) }
            }
        }
        let questions = try questionPool(log: log)
        // After pointing pretraining, which leaves everything trainable.
        if !frozen.isEmpty { policy.model.freeze(frozen) }
        let sources = try curriculumSources(episodes, stats: stats)
        if sources.count > 1 {
            log("curriculum over \(sources.count) datasets, \(storedBody == nil ? "DataQA" : "equal") weights " + sources.map { String(format: "%@ %.3f", $0.name, $0.weight) }
                .joined(separator: ", ") + ", α = 1 from step \(Int(Double(s.totalSteps) * curriculumAnnealFraction))")
        }
        let loader = try CurriculumLoader(sources: sources, batchSize: s.batchSize,
                                          annealSteps: Int(Double(s.totalSteps) * curriculumAnnealFraction),
                                          seed: seed, startStep: trainer.step, prefetch: prefetchBatches)
        defer { loader.stop() }
        let csv = output.appendingPathComponent("loss.csv")
        if !FileManager.default.fileExists(atPath: csv.path) { try Data("step,loss,lr,seconds\n".utf8).write(to: csv) }
        let handle = try FileHandle(forWritingTo: csv)
        handle.seekToEndOfFile()
        defer { try? handle.close() }
        // The same curves for `tensorboard --logdir` (a resumed run adds a new event file).
        let board = try TensorBoardWriter(directory: output.appendingPathComponent("tensorboard"))
        let start = Date()
        var recent: [Float] = []
        // Per-embodiment running sums of per-sample losses, reported with each progress line.
        var perBody: [String: (sum: Double, count: Int)] = [:]
        while trainer.step < s.totalSteps {
            var batch = try loader.next()
            if let questions {
                batch.questions = try questions.batch(step: trainer.step, size: questionBatchSize, seed: seed, policy: policy)
            }
            let lr = trainer.optimizer.learningRate
            let (loss, perSample) = try trainer.trainStepWithSampleLosses(batch)
            recent.append(loss)
            for (body, l) in zip(batch.embodiments, perSample) { perBody[body, default: (0, 0)].sum += Double(l); perBody[body]!.count += 1 }
            let elapsed = Date().timeIntervalSince(start)
            handle.write(Data(String(format: "%d,%.6f,%.3e,%.2f\n", trainer.step, loss, lr, elapsed).utf8))
            try board.add(scalars: [("train/loss", loss), ("train/learning_rate", lr)], step: trainer.step)
            if trainer.step % 25 == 0 || trainer.step == s.totalSteps {
                let mean = recent.reduce(0, +) / Float(recent.count)
                recent.removeAll()
                let bodies = perBody.count > 1
                    ? "  (" + perBody.keys.sorted().map { String(format: "%@ %.4f", $0, perBody[$0]!.sum / Double(perBody[$0]!.count)) }.joined(separator: ", ") + ")"
                    : ""
                try board.add(scalars: perBody.keys.sorted().map { ("train/loss_\($0)", Float(perBody[$0]!.sum / Double(perBody[$0]!.count))) },
                              step: trainer.step)
                perBody.removeAll()
                log(String(format: "step %5d/%d  loss %.4f  lr %.2e  %.0fs", trainer.step, s.totalSteps, mean, trainer.optimizer.learningRate, elapsed) + bodies)
            }
            if trainer.step % checkpointEvery == 0 || trainer.step == s.totalSteps {
                try policy.save(to: checkpoint, optimizer: trainer.optimizer, step: trainer.step)
            }
        }
        if let oodGuard {
            // A few thousand standardized states: seconds, next to the checkpoint it belongs to.
            let fitted = try OODGuard.fit(episodes: episodes, specs: specs, stats: stats, options: oodGuard)
            try FileManager.default.createDirectory(at: checkpoint, withIntermediateDirectories: true)
            try fitted.write(to: OODGuard.url(inCheckpoint: checkpoint))
            for d in fitted.densities.values.sorted(by: { $0.embodiment < $1.embodiment }) {
                log("OOD guard \(d.embodiment): \(d.mixture.components)-component \(d.mixture.covarianceType.rawValue) GMM on "
                    + "\(d.trainingStates) states, τ = \(String(format: "%.3f", d.threshold)) "
                    + "(\(String(format: "%g", 100 * fitted.thresholdQuantile))% quantile, \(d.calibrationFolds)-fold) → checkpoint/\(OODGuard.fileName)")
            }
        }
        return policy
    }

    /// The co-training questions' scenes, or nil when co-training is off.
    func questionPool(log: (String) -> Void) throws -> QuestionPool? {
        guard questionScenes > 0 && model.answerWeight > 0 else { return nil }
        var generator = GroundingQuestions(embodiment: embodiments[0], tasks: tasks, families: questionFamilies)
        generator.sceneSplit = sceneSplit
        let pool = try QuestionPool(scenes: generator.scenes(firstSeed: questionFirstSeed, count: questionScenes, imageSize: model.imageSize, log: log))
        log("VQA co-training: \(questionBatchSize) of \(pool.count) questions on \(questionScenes) \(embodiments[0].rawValue) scenes per step, "
            + "answer weight \(model.answerWeight)" + (model.insulateBackbone ? ", backbone insulated from the action expert" : ""))
        return pool
    }

    /// One dataset per (embodiment, task), weighted by DataQA's effective count of good episodes.
    func curriculumSources(_ episodes: [Episode], stats: NormalizationStats) throws -> [CurriculumLoader.Source] {
        let key = { (embodiment: String, task: String) in "\(embodiment)/\(task)" }
        let groups = Dictionary(grouping: episodes) { key($0.embodiment, $0.task) }
        // DataQA's scores are calibrated on RobotSim's operator; a stored body's tasks keep equal
        // weights (on MetaWorld demos DataQA weighted reach-v3 0.000, never sampled after annealing).
        let weights = groups.count > 1 && storedBody == nil
            ? DataQA.datasetWeights(DataQA().assess(episodes)) { key($0.embodiment, $0.task) } : [:]
        return try groups.keys.sorted().map { name in
            CurriculumLoader.Source(name: name, dataset: try DemonstrationDataset(episodes: groups[name]!, specs: specs,
                                                                                 config: model, stats: stats),
                                    weight: weights[name] ?? 1)
        }
    }

    /// Seeds to try for `needed` more demos: twice as many (the expert fails on some scenes),
    /// from 10 000 on a fresh store, otherwise past every stored demo's seed — counting stored
    /// demos instead would reuse a seed after a failed one and store the same scene twice.
    public static func demoSeeds(after stored: [Episode], needed: Int) -> [UInt64] {
        let start = max(UInt64(10_000 + stored.count), stored.compactMap(\.seed).max().map { $0 + 1 } ?? 0)
        return Array(start..<(start + UInt64(needed) * 2))
    }

    /// Where the scripted demos are kept: `episodeStore`, else a directory in `output` named
    /// after the scene distribution — capped clutter, other operator speeds and seen-only
    /// scenes are each a different one, so each gets its own store.
    public var demoStoreDirectory: URL {
        if let episodeStore { return episodeStore }
        let speeds = operatorSpeeds == [1] ? "" : "-speeds-" + operatorSpeeds.map { String(format: "%g", $0) }.joined(separator: "-")
        let name = (maxDistractors.map { "demos-max-distractors-\($0)" } ?? "demos") + speeds + (sceneSplit == nil ? "" : "-seen-scenes")
        return output.appendingPathComponent(name)
    }

    /// `demosPerPair` successful expert demos per (embodiment, task) pair at the model's image
    /// size, read from the episode store and topped up there by collecting new ones.
    public func demonstrations(log: (String) -> Void) throws -> [Episode] {
        if let body = storedBody {
            let demos = try StoredDemos.load(store: body.store, embodiment: body.spec.name, tasks: body.tasks,
                                             imageSize: model.imageSize, perTask: demosPerPair)
            log("\(demos.count) \(body.spec.name) demos from \(body.store.path) (tasks \(Set(demos.map(\.task)).sorted().joined(separator: ",")))")
            return demos
        }
        let store = try EpisodeStore(root: demoStoreDirectory)
        var episodes: [Episode] = []
        for e in embodiments {
            for t in tasks where t.embodiments.contains(e) {
                var have = try store.loadAll(matching: EpisodeQuery(task: t.rawValue, embodiment: e.rawValue, source: .demo, success: true)).episodes
                    .filter { $0.cameras.values.first?.width == model.imageSize && isSeen($0, embodiment: e, task: t) }
                if have.count < demosPerPair {
                    var seeds = Self.demoSeeds(after: have, needed: demosPerPair - have.count)
                    if let sceneSplit {
                        seeds = sceneSplit.seeds(.seen, embodiment: e, task: t, from: seeds[0], count: seeds.count)
                        log("\(e.rawValue)/\(t.rawValue) demos from seen scenes only (seeds \(seeds[0])…\(seeds.last!))")
                    }
                    let speeds = operatorSpeeds
                    let fresh = try DemoCollector.collectSuccessful(
                        count: demosPerPair - have.count, embodiment: e, task: t, seeds: seeds, imageSize: model.imageSize,
                        maxDistractors: maxDistractors,
                        profile: { seed in let scale = speeds[Int(seed % UInt64(speeds.count))]; return scale == 1 ? .clean : .speed(scale) }
                    ) { tried, _ in
                        if tried % 10 == 0 || tried == seeds.count { log("collecting \(e.rawValue)/\(t.rawValue) demos: \(tried)/\(seeds.count) seeds") }
                    }
                    for ep in fresh { try store.insert(ep); have.append(ep) }
                }
                episodes += have.prefix(demosPerPair)
            }
        }
        return episodes
    }

    /// Whether a stored demo may train this run: always without a split; with one, only a demo
    /// whose seed's scene is seen (a shared store may hold demos of held-out scenes).
    func isSeen(_ episode: Episode, embodiment: EmbodimentKind, task: TaskKind) -> Bool {
        guard let sceneSplit else { return true }
        guard let seed = episode.seed else { return false }
        return sceneSplit.part(embodiment: embodiment, task: task, seed: seed) == .seen
    }
}
