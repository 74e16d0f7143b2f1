import Foundation
import RobotSim
import TensorKit
import VLAModel

/// Bad requests to a `GroundingProbe`.
public enum GroundingProbeError: Error, Equatable, CustomStringConvertible {
    /// Point-to and caption answers are open text; a probe needs a small closed answer set.
    case openAnswers(QuestionFamily)
    /// The checkpoint has no answer head (it was never trained as a VLM: L1 adds it).
    case noAnswerHead

    public var description: String {
        switch self {
        case let .openAnswers(f): return "grounding probe: \(f.rawValue) answers are open text; probe where_is or which_object"
        case .noAnswerHead: return "grounding probe: the checkpoint has no answer head (train L1 with answer_weight > 0 first)"
        }
    }
}

/// Linear probes of a VLM checkpoint's prefix tokens for one question family (L1's where-is,
/// which-object): whether the answer is *in* the backbone's tokens at each depth, to tell a
/// backbone that never binds the question to the image from an answer stream that does not
/// fetch what is there. The questions are the prompt, as in L1 training and evaluation.
///
/// Two readouts per depth (0: the embeddings; l: layer l's input, what the answer stream
/// attends to in layer l; `backboneLayers`: the normed output the pointing head and action
/// expert read):
/// - `sceneImage`: the scene camera's tokens, concatenated (where each patch is is kept);
/// - `question`: the mean of the question's tokens (what the question gathered by attention);
/// and, with a pointing head, `pointing`: the point the head finds with the question as the
/// prompt (2 features, last depth only) — a readout through a softmax over patches, which L1's
/// pointing loss trained to find the object the prompt names.
/// Scenes come from seeds no stage trains on (L1 uses 100 000 on, demos 10 000 on).
public struct GroundingProbe: Sendable {
    public var questions: GroundingQuestions
    public var family: QuestionFamily
    public var trainScenes = 1000
    public var heldOutScenes = 200
    public var firstSeed: UInt64 = 200_000
    /// The probes' fit settings; `run` sets the class count to the answers seen.
    public var probe = LinearProbe(classes: 0)

    public init(embodiment: EmbodimentKind, tasks: [TaskKind], family: QuestionFamily) throws {
        guard family == .whereIs || family == .whichObject else { throw GroundingProbeError.openAnswers(family) }
        questions = GroundingQuestions(embodiment: embodiment, tasks: tasks, families: [family])
        self.family = family
    }

    public enum Readout: String, Sendable, Codable, CaseIterable {
        case sceneImage = "scene_image"
        case question
        case pointing
    }

    public struct Row: Sendable, Codable, Equatable {
        public var readout: Readout
        public var depth: Int
        public var result: LinearProbe.Result
    }

    public struct Report: Sendable, Codable, Equatable {
        public var family: QuestionFamily
        public var answers: [String]
        public var trainQuestions: Int
        public var heldOutQuestions: Int
        /// The checkpoint's own greedy answers on the held-out questions (exact match).
        public var decodedAccuracy: Double
        public var rows: [Row]
    }

    /// Per depth, the two readouts' features `[rows][width]` flattened, for the questions of `scenes`.
    struct Features {
        var sceneImage: [[Float]]   // [depth] → rows × (P·D)
        var question: [[Float]]     // [depth] → rows × D
        var pointing: [Float]       // rows × 2 (empty without a pointing head)
        var answers: [String]
    }

    func features(policy: VLAPolicy, scenes: [GroundingScene]) throws -> Features {
        let config = policy.model.config
        let p = config.tokensPerCamera, d = config.dims, textStart = config.cameraSlots * p
        let depths = config.backboneLayers + 1
        var out = Features(sceneImage: Array(repeating: [], count: depths), question: Array(repeating: [], count: depths), pointing: [], answers: [])
        let rows = scenes.flatMap { s in s.questions.filter { $0.family == family }.map { (s, $0) } }
        for start in stride(from: 0, to: rows.count, by: 50) {
            let part = Array(rows[start..<min(start + 50, rows.count)])
            let inputs = try QuestionPool.inputs(part, policy: policy)
            let context = try policy.model.encodePrefixForAnswers(inputs)
            let textLength = inputs.tokens.dim(1)
            let mask = try inputs.tokenMask.astype(.float32).reshaped([part.count, textLength, 1])
            for (depth, h) in (context.layerInputs + [context.prefix]).enumerated() {
                let image = try h.slice(axis: 1, 0..<p).reshaped([part.count, p * d])
                let text = try h.slice(axis: 1, textStart..<(textStart + textLength))
                let pooled = try (text * mask).sum(axis: 1) / mask.sum(axis: 1).maximum(1)
                out.sceneImage[depth] += try image.toArray(Float.self)
                out.question[depth] += try pooled.toArray(Float.self)
            }
            if policy.model.pointingHead != nil { out.pointing += try policy.model.pointTarget(prefix: context.prefix).toArray(Float.self) }
            out.answers += part.map(\.1.answer)
        }
        return out
    }

    /// Renders the scenes, reads the checkpoint's prefix tokens and fits a probe per readout
    /// and depth (trained on the first `trainScenes`' questions, scored on the rest).
    public func run(policy: VLAPolicy, log: (String) -> Void = { _ in }) throws -> Report {
        guard policy.model.config.answerWeight > 0 else { throw GroundingProbeError.noAnswerHead }
        let config = policy.model.config
        let rendered = try questions.scenes(firstSeed: firstSeed, count: trainScenes + heldOutScenes, imageSize: config.imageSize, log: log)
        let train = Array(rendered.prefix(trainScenes)), heldOut = Array(rendered.dropFirst(trainScenes))
        let fit = try features(policy: policy, scenes: train), test = try features(policy: policy, scenes: heldOut)
        let answers = Array(Set(fit.answers + test.answers)).sorted()
        let index = Dictionary(uniqueKeysWithValues: answers.enumerated().map { ($1, $0) })
        let trainLabels = fit.answers.map { index[$0]! }, testLabels = test.answers.map { index[$0]! }
        var probe = self.probe
        probe.classes = answers.count
        let decoded = try GroundingPretraining.evaluate(policy: policy, scenes: heldOut, families: [family])[0]
        log(String(format: "%@: %d training and %d held-out questions, %d answers; the checkpoint answers %.1f%% of the held-out ones exactly",
                   family.rawValue, trainLabels.count, testLabels.count, answers.count, 100 * decoded.accuracy))
        var rows: [Row] = []
        var probes: [(Readout, Int, [Float], [Float], Int)] = []
        for depth in 0...config.backboneLayers {
            probes.append((.sceneImage, depth, fit.sceneImage[depth], test.sceneImage[depth], config.tokensPerCamera * config.dims))
        }
        for depth in 0...config.backboneLayers { probes.append((.question, depth, fit.question[depth], test.question[depth], config.dims)) }
        if !fit.pointing.isEmpty { probes.append((.pointing, config.backboneLayers, fit.pointing, test.pointing, 2)) }
        for (readout, depth, x, xTest, width) in probes {
            let result = try probe.fit(train: (x, trainLabels), test: (xTest, testLabels), width: width)
            rows.append(Row(readout: readout, depth: depth, result: result))
            log(String(format: "probe %@ depth %d: held-out %.1f%% (train %.1f%%, majority %.1f%%, l2 %g)",
                       readout.rawValue, depth, 100 * result.testAccuracy, 100 * result.trainAccuracy,
                       100 * result.majorityAccuracy, Double(result.l2Weight)))
        }
        return Report(family: family, answers: answers, trainQuestions: trainLabels.count, heldOutQuestions: testLabels.count,
                      decodedAccuracy: decoded.accuracy, rows: rows)
    }
}
