import TensorKit

/// Model inputs for a batch of observations (already normalized).
public struct PolicyInputs: @unchecked Sendable {
    /// `[B, slots, S, S, 3]` float32 in [0, 1].
    public var images: Tensor
    /// `[B, slots]` bool: camera present.
    public var cameraMask: Tensor
    /// `[B, L]` int32 byte tokens of "prompt prefix + instruction".
    public var tokens: Tensor
    /// `[B, L]` bool: real (non-pad) token.
    public var tokenMask: Tensor
    /// `[B, 64]` standardized unified state (0 on unused slots).
    public var state: Tensor
    /// `[B, 64]` 1 where the embodiment has the state slot.
    public var stateMask: Tensor
    /// `[B]` int32 RECAP advantage indicator (`AdvantageIndicator.rawValue`) and `[B]` bool
    /// whether the row is conditioned on it at all (read only with `advantageConditioning`).
    public var advantage: Tensor
    public var advantageMask: Tensor
    /// `[B]` log of the speed to act at, relative to the training data's reference speed
    /// (0 = the reference; read only with `speedConditioning`).
    public var logSpeed: Tensor
    /// `[B, L, 384]` float32: the frozen MiniLM's hidden states of the prompt's WordPiece
    /// tokens (`tokens` then holds those ids), zero on padding. Only with `TextEncoderChoice.miniLM`.
    public var textFeatures: Tensor?


    /// Rows without `advantage` are unconditioned; without `logSpeed` at the reference speed.
    public init(images: Tensor, cameraMask: Tensor, tokens: Tensor, tokenMask: Tensor, state: Tensor, stateMask: Tensor,
                advantage: Tensor? = nil, advantageMask: Tensor? = nil, logSpeed: Tensor? = nil, textFeatures: Tensor? = nil) throws {
        self.images = images; self.cameraMask = cameraMask; self.tokens = tokens
        self.tokenMask = tokenMask; self.state = state; self.stateMask = stateMask
        self.textFeatures = textFeatures
        let b = tokens.dim(0)
        self.advantage = try advantage ?? Tensor([Int32](repeating: 0, count: b), shape: [b])
        self.advantageMask = try advantageMask ?? Tensor([Bool](repeating: false, count: b), shape: [b])
        self.logSpeed = try logSpeed ?? Tensor.zeros([b])
    }
    public var batchSize: Int { tokens.dim(0) }
}

/// A training batch: inputs plus the standardized unified action chunk and its mask.
public struct PolicyBatch: @unchecked Sendable {
    public var inputs: PolicyInputs
    /// `[B, H, 64]` standardized unified actions.
    public var actions: Tensor
    /// `[B, H, 64]` 1 on the embodiment's slots at real (not padded) chunk steps.
    public var actionMask: Tensor
    /// `[B, 2]` where the task's target appears in the scene camera, (x, y) ∈ [−1, 1]²
    /// (x right, y down), and `[B]` 1 where that label exists: the pointing loss's targets.
    public var targetPoints: Tensor?
    public var targetPointMask: Tensor?
    /// Each row's embodiment name (the batch's embodiment ids; empty when unknown). The model
    /// reads the embodiment from the prompt; trainers use these to report losses per body.
    public var embodiments: [String]
    /// `[B]` fraction of the task done at the row's step and `[B]` 1 where that label exists
    /// (the progress head's targets).
    public var progress: Tensor?
    public var progressMask: Tensor?
    /// Questions about other observations (VQA rows, e.g. on rendered scenes) co-trained with
    /// the actions: the answer loss, weighted by `answerWeight`, is added to the batch loss.
    public var questions: QuestionBatch?

    public init(inputs: PolicyInputs, actions: Tensor, actionMask: Tensor, targetPoints: Tensor? = nil, targetPointMask: Tensor? = nil,
                embodiments: [String] = [], progress: Tensor? = nil, progressMask: Tensor? = nil, questions: QuestionBatch? = nil) {
        self.inputs = inputs; self.actions = actions; self.actionMask = actionMask
        self.targetPoints = targetPoints; self.targetPointMask = targetPointMask
        self.embodiments = embodiments
        self.progress = progress; self.progressMask = progressMask
        self.questions = questions
    }
}

/// This process's rows of a data-parallel global batch: rows `offset ..< offset + B` of
/// `globalSize`. The loss draws its random numbers for the whole global batch and keeps these
/// rows, so N ranks together compute what one process computes on the concatenated batch.
public struct BatchShare: Sendable, Equatable, Codable {
    public var offset: Int
    public var globalSize: Int
    public init(offset: Int, globalSize: Int) { self.offset = offset; self.globalSize = globalSize }

    /// Rank `rank`'s share of `globalSize` rows over `ranks` ranks (the first `globalSize % ranks`
    /// ranks take one extra row).
    public static func of(globalSize: Int, rank: Int, ranks: Int) -> (share: BatchShare, size: Int) {
        let base = globalSize / ranks, extra = globalSize % ranks
        let size = base + (rank < extra ? 1 : 0)
        return (BatchShare(offset: rank * base + min(rank, extra), globalSize: globalSize), size)
    }
}

extension PolicyBatch {
    /// Joins batches along the batch axis (e.g. an online and an offline share of one step).
    public static func concatenated(_ parts: [PolicyBatch]) throws -> PolicyBatch {
        func join(_ pick: (PolicyBatch) -> Tensor) throws -> Tensor { try TensorKit.concatenated(parts.map(pick), axis: 0) }
        let inputs = try PolicyInputs(
            images: try join(\.inputs.images), cameraMask: try join(\.inputs.cameraMask), tokens: try join(\.inputs.tokens),
            tokenMask: try join(\.inputs.tokenMask), state: try join(\.inputs.state), stateMask: try join(\.inputs.stateMask),
            advantage: try join(\.inputs.advantage), advantageMask: try join(\.inputs.advantageMask),
            logSpeed: try join(\.inputs.logSpeed),
            textFeatures: parts.allSatisfy { $0.inputs.textFeatures != nil } ? try join { $0.inputs.textFeatures! } : nil)
        // Labels join only when every part has them.
        let points = parts.allSatisfy { $0.targetPoints != nil && $0.targetPointMask != nil }
        let progress = parts.allSatisfy { $0.progress != nil && $0.progressMask != nil }
        return PolicyBatch(inputs: inputs, actions: try join(\.actions), actionMask: try join(\.actionMask),
                           targetPoints: points ? try join { $0.targetPoints! } : nil,
                           targetPointMask: points ? try join { $0.targetPointMask! } : nil,
                           embodiments: parts.allSatisfy { $0.embodiments.count == $0.inputs.batchSize } ? parts.flatMap(\.embodiments) : [],
                           progress: progress ? try join { $0.progress! } : nil,
                           progressMask: progress ? try join { $0.progressMask! } : nil,
                           questions: try QuestionBatch.concatenated(parts.compactMap(\.questions)))
    }
}

extension QuestionBatch {
    /// Joins question batches (nil for none), padding answers to the longest.
    public static func concatenated(_ parts: [QuestionBatch]) throws -> QuestionBatch? {
        guard parts.count > 1 else { return parts.first }
        func join(_ pick: (QuestionBatch) -> Tensor) throws -> Tensor { try TensorKit.concatenated(parts.map(pick), axis: 0) }
        let la = parts.map { $0.answers.inputs.dim(1) }.max()!
        func padded(_ pick: (AnswerTokens) -> Tensor, _ value: Tensor) throws -> Tensor {
            try TensorKit.concatenated(parts.map { part in
                let t = pick(part.answers), missing = la - t.dim(1)
                return missing == 0 ? t : try TensorKit.concatenated([t, value.broadcast(to: [t.dim(0), missing])], axis: 1)
            }, axis: 0)
        }
        let pad = try Tensor([ByteTokenizer.pad], shape: [1, 1]), zero = try Tensor([Float(0)], shape: [1, 1])
        let inputs = try PolicyInputs(
            images: try join(\.inputs.images), cameraMask: try join(\.inputs.cameraMask), tokens: try join(\.inputs.tokens),
            tokenMask: try join(\.inputs.tokenMask), state: try join(\.inputs.state), stateMask: try join(\.inputs.stateMask),
            advantage: try join(\.inputs.advantage), advantageMask: try join(\.inputs.advantageMask),
            logSpeed: try join(\.inputs.logSpeed))
        return QuestionBatch(inputs: inputs, answers: AnswerTokens(
            inputs: try padded(\.inputs, pad), targets: try padded(\.targets, pad), mask: try padded(\.mask, zero)))
    }
}

/// RECAP's binarized advantage ("Advantage: positive/negative"), a prefix token the policy is
/// conditioned on; sampling asks for `.positive`.
public enum AdvantageIndicator: Int32, Sendable, Codable {
    case negative = 0
    case positive = 1
}
