import RobotData
import TensorKit
import VLAModel

/// Rendered scenes' questions, drawn into `QuestionBatch`es: L1's training set and R0's VQA
/// co-training rows (scenes rendered once, before training, so a step costs no simulation).
public struct QuestionPool: Sendable {
    public let scenes: [GroundingScene]
    /// (scene, question) pairs, drawn uniformly.
    let rows: [Row]
    struct Row: Sendable { var scene: Int; var question: Int }

    public init(scenes: [GroundingScene]) throws {
        self.scenes = scenes
        rows = scenes.indices.flatMap { i in scenes[i].questions.indices.map { Row(scene: i, question: $0) } }
        guard !rows.isEmpty else { throw AnswerError.empty }
    }

    public var count: Int { rows.count }

    /// `size` questions drawn with `generator`, as model inputs (the question is the prompt).
    public func batch(size: Int, using generator: inout SplitMix64, policy: VLAPolicy) throws -> QuestionBatch {
        let picks = (0..<size).map { _ in rows[Int(generator.next() % UInt64(rows.count))] }
        let asked = picks.map { (scenes[$0.scene], scenes[$0.scene].questions[$0.question]) }
        return QuestionBatch(inputs: try Self.inputs(asked, policy: policy),
                             answers: try AnswerTokens(asked.map(\.1.answer), maxLength: policy.model.config.maxAnswerLength))
    }

    /// Model inputs for questions about scenes: the scenes' cameras and state, and the question
    /// alone as the prompt (no embodiment/control prefix: answering is not acting, and the
    /// prefix would leave too few of the 64 prompt tokens for the question).
    public static func inputs(_ asked: [(GroundingScene, GroundingQuestion)], policy: VLAPolicy) throws -> PolicyInputs {
        var inputs = try policy.inputs(asked.map(\.0.observation))
        let length = policy.model.config.maxTextLength
        let tokenizer = ByteTokenizer(maxLength: length)
        var tokens: [Int32] = [], mask: [Bool] = []
        for (_, q) in asked {
            guard q.question.utf8.count + 1 <= length else {
                throw AnswerError.questionTooLong(question: q.question, positions: q.question.utf8.count + 1, limit: length)
            }
            let encoded = tokenizer.encode(q.question)
            tokens += encoded.tokens
            mask += encoded.mask
        }
        inputs.tokens = try Tensor(tokens, shape: [asked.count, length])
        inputs.tokenMask = try Tensor(mask, shape: [asked.count, length])
        return inputs
    }

    /// The batch of training step `step`: a function of `seed` and the step, so a resumed run
    /// draws what an uninterrupted one would.
    public func batch(step: Int, size: Int, seed: UInt64, policy: VLAPolicy) throws -> QuestionBatch {
        var generator = SplitMix64(seed: seed &* 0x5851_F42D_4C95_7F2D &+ UInt64(step) &+ 31)
        return try batch(size: size, using: &generator, policy: policy)
    }
}
