import Foundation
import RobotData
import RobotSim
import TensorKit
import VLAModel

/// Green-VLA's L1 idea on RobotSim: before any robot data, teach the backbone to ground the
/// instruction in the image by pointing at the task's target in the scene camera. Scenes cost
/// one reset and one render each (no robot motion), so thousands are cheap where demos are
/// not — 30 demos are 30 scenes, too few for the pointing (and so the policy) to generalize
/// to new layouts. Only the vision encoder, embeddings, backbone and pointing head train; the
/// action expert is frozen.
public struct PointingPretraining: Sendable {
    public var embodiment: EmbodimentKind
    public var tasks: [TaskKind]
    public var scenes = 4000
    public var steps = 1500
    public var batchSize = 64
    /// Peak of a warm-up/stable/decay schedule (decay to 5% over the last fifth).
    public var learningRate = defaultLearningRate
    public static let defaultLearningRate: Float = 3e-4
    /// Scene seeds start here (demos use ≥ 10 000, held-out evaluation 0 ..< 10 000).
    public var firstSeed: UInt64 = 100_000
    /// Scenes after the training ones, only measured.
    public var heldOutScenes = 200
    public var seed: UInt64 = 0
    /// Train (and measure the held-out error) on this split's seen scenes only, and also
    /// measure the error on `heldOutScenes` scenes of each novel part after training. nil: all.
    public var sceneSplit: SceneSplit?
    /// Ask each training scene in the prompt of one of these bodies, drawn at random (empty: the
    /// scene's own), so the pointing also holds under the other bodies' prompts. With body-first
    /// prompts it helps less than `VLAConfig.promptLayout = .instructionFirst`, since a longer
    /// body line still cuts the instruction (README, JPM on arm6).
    public var promptBodies: [EmbodimentSpec] = []

    public init(embodiment: EmbodimentKind, tasks: [TaskKind]) {
        self.embodiment = embodiment
        self.tasks = tasks
    }

    /// Parameter prefixes the pointing loss trains.
    static let trained = ["vision", "cameraEmbedding", "patchPosition", "tokenEmbedding", "textPosition",
                          "backbone", "backboneNorm", "pointingHead"]
    /// `trained` with a MiniLM-text model's projection too (it stands where the byte embedding is;
    /// stage files list only what a byte model has, as their prefixes are checked against it).
    public static let trainedAnyText = trained + ["textProjection"]

    /// One rendered scene at reset and its label.
    struct Scene {
        var observation: PolicyObservation
        var point: SIMD2<Float>
    }

    func render(_ seed: UInt64, task: TaskKind, imageSize: Int) throws -> Scene? {
        let env = try RobotEnvironment(embodiment: embodiment, task: task, seed: seed,
                                       config: EnvironmentConfig(imageWidth: imageSize, imageHeight: imageSize))
        let o = env.reset()
        guard let p = env.targetImagePoint else { return nil }
        return Scene(observation: PolicyEvaluator.policyObservation(o, env: env), point: SIMD2(Float(p.x), Float(p.y)))
    }

    /// The `scenes` training scenes' seeds and tasks, then the `heldOutScenes` measured ones:
    /// consecutive seeds from `firstSeed`, the pointable tasks in turn, skipping seeds whose
    /// scene the split holds out (so a split run renders as many scenes as an unsplit one).
    func sceneSlots(_ pointable: [TaskKind]) -> [(seed: UInt64, task: TaskKind)] {
        var slots: [(seed: UInt64, task: TaskKind)] = []
        for i in 0... {
            guard slots.count < scenes + heldOutScenes else { break }
            let task = pointable[i % pointable.count], seed = firstSeed + UInt64(i)
            if let sceneSplit, sceneSplit.part(embodiment: embodiment, task: task, seed: seed) != .seen { continue }
            slots.append((seed, task))
        }
        return slots
    }

    /// Mean distance (normalized image units, [−1, 1] across) between where the policy points
    /// and where the target is, over the scenes.
    static func meanError(policy: VLAPolicy, scenes: [Scene]) throws -> Double {
        var total = 0.0
        for start in stride(from: 0, to: scenes.count, by: 50) {
            let part = Array(scenes[start..<min(start + 50, scenes.count)])
            let (prefix, _) = try policy.model.encodePrefix(policy.inputs(part.map(\.observation)))
            let p = try policy.model.pointTarget(prefix: prefix).toArray(Float.self)
            for (k, s) in part.enumerated() { total += Double(hypot(p[2 * k] - s.point.x, p[2 * k + 1] - s.point.y)) }
        }
        return total / Double(max(scenes.count, 1))
    }

    /// The policy's mean pointing error on the scenes of `seeds` at reset (e.g. the held-out
    /// evaluation seeds), for the first pointable task. `promptAs`: read the scenes with that
    /// embodiment's prompt (its control mode and arm count) instead of their own, to tell an
    /// error that comes from the prompt from one that comes from how the robot looks (the
    /// pointing reads only images and text; the state is the prompt body's zero state).
    public func pointingError(policy: VLAPolicy, seeds: [UInt64], promptAs: EmbodimentSpec? = nil) throws -> Double {
        guard let task = tasks.first(where: { $0 != .sort && $0 != .drawer }) else { return 0 }
        var scenes = try seeds.compactMap { try render($0, task: task, imageSize: policy.model.config.imageSize) }
        if let promptAs {
            for i in scenes.indices { scenes[i].observation = scenes[i].observation.withPrompt(of: promptAs) }
        }
        return try Self.meanError(policy: policy, scenes: scenes)
    }

    /// Renders the scenes and trains; returns the mean pointing error (normalized image units)
    /// on `heldOutScenes` scenes it did not train on, before and after.
    @discardableResult
    public func run(policy: VLAPolicy, log: (String) -> Void) throws -> (before: Double, after: Double) {
        let model = policy.model
        guard model.config.pointingWeight > 0 else { throw TensorError.unknownParameter("pointing pretraining needs pointingWeight > 0") }
        let pointable = tasks.filter { $0 != .sort && $0 != .drawer }
        guard !pointable.isEmpty else { return (0, 0) }
        var train: [Scene] = [], heldOut: [Scene] = []
        let slots = sceneSlots(pointable)
        for (slot, scene) in slots.enumerated() {
            guard let rendered = try render(scene.seed, task: scene.task, imageSize: model.config.imageSize) else { continue }
            if slot < scenes { train.append(rendered) } else { heldOut.append(rendered) }
            if (slot + 1) % 1000 == 0 { log("pointing scenes: \(slot + 1)/\(slots.count) rendered") }
        }
        func error(_ set: [Scene]) throws -> Double { try Self.meanError(policy: policy, scenes: set) }
        let before = try error(heldOut)
        log(String(format: "pointing pretraining: %d scenes, %d steps; held-out error before %.3f", train.count, steps, before))

        model.freeze()
        model.unfreeze(Self.trainedAnyText)
        defer { model.unfreeze() }
        let optimizer = AdamW(learningRate: learningRate, beta1: 0.9, beta2: 0.95, weightDecay: 0.01)
        let schedule = WarmupStableDecay(peak: learningRate, final: learningRate * 0.05, warmupSteps: 50,
                                         decaySteps: steps / 5, totalSteps: steps)
        var generator = SplitMix64(seed: seed &+ 23)
        let holder = StepInput<(PolicyInputs, Tensor)>()
        let lossAndGrad = valueAndGrad(model: model) { m in
            let (inputs, targets) = holder.value!
            let (prefix, _) = try m.encodePrefix(inputs)
            return try m.pointingLoss(prefix: prefix, targets: targets, mask: Tensor.ones([inputs.batchSize]))
        }
        var recent: [Float] = []
        for step in 0..<steps {
            let picks = (0..<batchSize).map { _ in train[Int(generator.next() % UInt64(train.count))] }
            let asked = promptBodies.isEmpty ? picks.map(\.observation)
                : picks.map { $0.observation.withPrompt(of: promptBodies[Int(generator.next() % UInt64(promptBodies.count))]) }
            holder.value = (try policy.inputs(asked),
                            try Tensor(picks.flatMap { [$0.point.x, $0.point.y] }, shape: [picks.count, 2]))
            optimizer.learningRate = schedule(step)
            let (loss, grads) = try lossAndGrad(model)
            let (clipped, _) = try clipGradNorm(grads, maxNorm: 1)
            try optimizer.step(model: model, gradients: clipped, alsoEvaluate: [loss])
            recent.append(try loss.item())
            if (step + 1) % 100 == 0 || step + 1 == steps {
                log(String(format: "pointing step %d/%d  loss %.4f", step + 1, steps, recent.reduce(0, +) / Float(recent.count)))
                recent.removeAll()
            }
        }
        holder.value = nil
        let after = try error(heldOut)
        log(String(format: "pointing pretraining: held-out error after %.3f (before %.3f)", after, before))
        for body in promptBodies where body != embodiment.spec {
            let asked = heldOut.map { Scene(observation: $0.observation.withPrompt(of: body), point: $0.point) }
            log(String(format: "  the same held-out scenes in %@'s prompt: %.3f", body.name, try error(asked)))
        }
        if let sceneSplit {
            // Scenes past the training ones, on the first pointable task.
            for part in SceneSplit.Part.allCases where part != .seen {
                let seeds = sceneSplit.seeds(part, embodiment: embodiment, task: pointable[0], from: firstSeed + 50_000, count: heldOutScenes)
                let novel = try seeds.compactMap { try render($0, task: pointable[0], imageSize: model.config.imageSize) }
                log(String(format: "pointing error on %d %@ scenes (%@): %.3f", novel.count, part.rawValue, pointable[0].rawValue, try error(novel)))
            }
        }
        return (before, after)
    }
}
