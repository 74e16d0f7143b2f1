import Foundation
import RobotData
import RobotSim
import TensorKit
import VLAModel

/// Green-VLA's L1 on RobotSim with the backbone as a VLM: on rendered scenes (one reset and
/// one render each) it answers `GroundingQuestions` in byte tokens (answer cross-entropy,
/// weighted by `answerWeight`) and, with `pointingWeight` > 0, also regresses the pointing
/// head toward the instructed target (as `PointingPretraining`). The action expert is frozen.
/// Logs exact-match accuracy per question family on held-out scenes.
public struct GroundingPretraining: Sendable {
    public var questions: GroundingQuestions
    public var scenes = 2000
    public var steps = 800
    /// Question rows per step (and as many pointing rows when pointing is on).
    public var batchSize = 64
    public var learningRate: Float = 3e-4
    /// Scene seeds start here (demos use ≥ 10 000, held-out evaluation 0 ..< 10 000).
    public var firstSeed: UInt64 = 100_000
    /// Scenes after the training ones, only measured.
    public var heldOutScenes = 200
    public var seed: UInt64 = 0

    public init(questions: GroundingQuestions) { self.questions = questions }

    /// Parameter prefixes L1 trains: the pointing ones plus the answer head.
    public static let trained = PointingPretraining.trained + ["answerHead", "answerPosition"]

    /// Held-out scores of one question family.
    public struct FamilyScore: Sendable, Codable, Equatable {
        public var family: QuestionFamily
        public var questions: Int
        public var exactMatches: Int
        /// Point-to: mean distance (normalized image units) between the decoded and the true
        /// point, over the answers that parse as a point; how many did not.
        public var meanPointDistance: Double?
        public var unparsedPoints: Int
        public var accuracy: Double { Double(exactMatches) / Double(max(questions, 1)) }
    }

    public struct Report: Sendable {
        public var families: [FamilyScore]
        /// The same scores on the first training scenes (as many as held out): with the held-out
        /// ones, whether the answers fail to fit at all or fit without generalizing.
        public var trainingFamilies: [FamilyScore] = []
        /// The pointing head's mean error on the held-out scenes' targets (nil without the head).
        public var pointingError: (before: Double, after: Double)?
        /// With `questions.sceneSplit`: the scores on each novel part's scenes, every question
        /// asked (also those about held-out objects).
        public var novelParts: [NovelPartScore] = []
    }

    /// Held-out scores on one part of a scene split that training never saw.
    public struct NovelPartScore: Sendable {
        public var part: SceneSplit.Part
        public var scenes: Int
        public var families: [FamilyScore]
        /// The pointing head's mean error on the part's targets (nil without the head).
        public var pointingError: Double?
    }

    /// Decodes every question of `scenes` greedily and scores it per family.
    public static func evaluate(policy: VLAPolicy, scenes: [GroundingScene], families: [QuestionFamily]) throws -> [FamilyScore] {
        let limit = policy.model.config.maxAnswerLength - 1
        return try families.map { family in
            let rows = scenes.flatMap { s in s.questions.filter { $0.family == family }.map { (s, $0) } }
            var score = FamilyScore(family: family, questions: rows.count, exactMatches: 0, meanPointDistance: nil, unparsedPoints: 0)
            var distances: [Double] = []
            for start in stride(from: 0, to: rows.count, by: 50) {
                let part = rows[start..<min(start + 50, rows.count)]
                let decoded = try policy.model.answer(QuestionPool.inputs(Array(part), policy: policy), maxLength: limit)
                for ((_, q), text) in zip(part, decoded) {
                    if text == q.answer { score.exactMatches += 1 }
                    if family == .pointTo, let truth = q.point {
                        if let p = GroundingQuestions.parsePoint(text) { distances.append(hypot(p.x - truth.x, p.y - truth.y)) }
                        else { score.unparsedPoints += 1 }
                    }
                }
            }
            if family == .pointTo && !distances.isEmpty { score.meanPointDistance = distances.reduce(0, +) / Double(distances.count) }
            return score
        }
    }

    /// The pointing head's mean error on the scenes that have a target.
    static func pointingError(policy: VLAPolicy, scenes: [GroundingScene]) throws -> Double {
        let labelled = scenes.compactMap { s in s.targetPoint.map { PointingPretraining.Scene(observation: s.observation, point: $0) } }
        return try PointingPretraining.meanError(policy: policy, scenes: labelled)
    }

    static func describe(_ s: FamilyScore) -> String {
        var line = String(format: "%@ %d/%d = %.1f%%", s.family.rawValue, s.exactMatches, s.questions, 100 * s.accuracy)
        if let d = s.meanPointDistance { line += String(format: " (decoded point off by %.3f, %d unparsed)", d, s.unparsedPoints) }
        return line
    }

    /// Renders the scenes, trains, and returns the held-out scores after training.
    @discardableResult
    public func run(policy: VLAPolicy, log: (String) -> Void) throws -> Report {
        let model = policy.model, config = model.config
        guard config.answerWeight > 0 else { throw AnswerError.noAnswerHead }
        let pointing = config.pointingWeight > 0
        let size = config.imageSize
        // One run of seeds, so a split's skipped seeds never make the two overlap.
        let rendered = try questions.scenes(firstSeed: firstSeed, count: scenes + heldOutScenes, imageSize: size, log: log)
        let train = Array(rendered.prefix(scenes)), heldOut = Array(rendered.dropFirst(scenes))
        let pool = try QuestionPool(scenes: train)
        let pointable = train.filter { $0.targetPoint != nil }
        let before = pointing ? try Self.pointingError(policy: policy, scenes: heldOut) : nil
        log("grounding pretraining: \(train.count) scenes, \(pool.count) questions (\(questions.families.map(\.rawValue).joined(separator: ", ")))"
            + (pointing ? String(format: ", pointing on %d; held-out pointing error before %.3f", pointable.count, before!) : ""))

        model.freeze()
        model.unfreeze(Self.trained.filter { prefix in model.parameters().keys.contains { $0 == prefix || $0.hasPrefix(prefix + ".") } })
        defer { model.unfreeze() }
        let optimizer = AdamW(learningRate: learningRate, beta1: 0.9, beta2: 0.95, weightDecay: 0.01)
        let schedule = WarmupStableDecay(peak: learningRate, final: learningRate * 0.05, warmupSteps: min(50, steps / 10),
                                         decaySteps: steps / 5, totalSteps: steps)
        var generator = SplitMix64(seed: seed &+ 29)
        let holder = StepInput<(QuestionBatch, (PolicyInputs, Tensor)?)>()
        let lossAndGrad = valueAndGrad(model: model) { m in
            let (questionBatch, points) = holder.value!
            var loss = try m.answerLoss(questionBatch) * m.config.answerWeight
            if let (inputs, targets) = points {
                let (prefix, _) = try m.encodePrefix(inputs)
                loss = try loss + m.pointingLoss(prefix: prefix, targets: targets, mask: Tensor.ones([inputs.batchSize])) * m.config.pointingWeight
            }
            return loss
        }
        var recent: [Float] = []
        for step in 0..<steps {
            let batch = try pool.batch(size: batchSize, using: &generator, policy: policy)
            var points: (PolicyInputs, Tensor)? = nil
            if pointing && !pointable.isEmpty {
                let scenes = (0..<batchSize).map { _ in pointable[Int(generator.next() % UInt64(pointable.count))] }
                points = (try policy.inputs(scenes.map(\.observation)),
                          try Tensor(scenes.flatMap { [$0.targetPoint!.x, $0.targetPoint!.y] }, shape: [scenes.count, 2]))
            }
            holder.value = (batch, points)
            optimizer.learningRate = schedule(step)
            let (loss, grads) = try lossAndGrad(model)
            let (clipped, _) = try clipGradNorm(grads, maxNorm: 1)
            try optimizer.step(model: model, gradients: clipped, alsoEvaluate: [loss])
            recent.append(try loss.item())
            if (step + 1) % 50 == 0 || step + 1 == steps {
                log(String(format: "grounding step %d/%d  loss %.4f", step + 1, steps, recent.reduce(0, +) / Float(recent.count)))
                recent.removeAll()
            }
        }
        holder.value = nil
        let scores = try Self.evaluate(policy: policy, scenes: heldOut, families: questions.families)
        let after = pointing ? try Self.pointingError(policy: policy, scenes: heldOut) : nil
        log("held-out exact match (\(heldOut.count) scenes): " + scores.map(Self.describe).joined(separator: "; "))
        let seen = Array(train.prefix(heldOut.count))
        let trainingScores = try Self.evaluate(policy: policy, scenes: seen, families: questions.families)
        log("training-scene exact match (first \(seen.count) scenes): " + trainingScores.map(Self.describe).joined(separator: "; "))
        if let after, let before { log(String(format: "held-out pointing-head error after %.3f (before %.3f)", after, before)) }
        let novel = try novelPartScores(policy: policy, pointing: pointing)
        for n in novel {
            log("\(n.part.rawValue) (\(n.scenes) scenes): " + n.families.map(Self.describe).joined(separator: "; ")
                + (n.pointingError.map { String(format: "; pointing-head error %.3f", $0) } ?? ""))
        }
        return Report(families: scores, trainingFamilies: trainingScores,
                      pointingError: before.flatMap { b in after.map { (b, $0) } }, novelParts: novel)
    }

    /// With a split: `heldOutScenes` scenes of each novel part (seeds from `firstSeed` + 50 000,
    /// past the training ones; the first task that names a target), all their questions asked.
    func novelPartScores(policy: VLAPolicy, pointing: Bool) throws -> [NovelPartScore] {
        guard let split = questions.sceneSplit,
              let task = questions.tasks.first(where: { $0 != .sort && $0 != .drawer }) else { return [] }
        var unfiltered = questions
        unfiltered.sceneSplit = nil
        return try SceneSplit.Part.allCases.filter { $0 != .seen }.map { part in
            let seeds = split.seeds(part, embodiment: questions.embodiment, task: task, from: firstSeed + 50_000, count: heldOutScenes)
            let scenes = try seeds.map { try unfiltered.scene(seed: $0, task: task, imageSize: policy.model.config.imageSize) }
            return NovelPartScore(part: part, scenes: scenes.count,
                                  families: try Self.evaluate(policy: policy, scenes: scenes, families: questions.families),
                                  pointingError: pointing ? try Self.pointingError(policy: policy, scenes: scenes) : nil)
        }
    }
}
