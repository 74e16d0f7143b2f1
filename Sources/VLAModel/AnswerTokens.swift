import TensorKit

/// Teacher-forcing tensors for text answers (byte tokens, as the prompt):
/// position j reads `inputs[j]` (BOS, then the answer's bytes) and is trained to predict
/// `targets[j]` (the answer's bytes, then `end`). Rows are padded to the longest answer.
public struct AnswerTokens: @unchecked Sendable {
    /// `[B, La]` int32: BOS + bytes, PAD after.
    public var inputs: Tensor
    /// `[B, La]` int32: bytes + `end`, PAD after.
    public var targets: Tensor
    /// `[B, La]` float32: 1 on the real targets (the bytes and the end marker).
    public var mask: Tensor

    /// An answer ends where its padding would begin: after its last byte the model predicts
    /// PAD, and decoding stops at the first token that is not a byte.
    public static let end = ByteTokenizer.pad

    public init(inputs: Tensor, targets: Tensor, mask: Tensor) {
        self.inputs = inputs; self.targets = targets; self.mask = mask
    }

    /// Encodes `answers` (UTF-8); an answer needing more than `maxLength` positions
    /// (its bytes + 1) throws `AnswerError.tooLong`.
    public init(_ answers: [String], maxLength: Int) throws {
        let host = try Self.host(answers, maxLength: maxLength)
        let b = answers.count, la = host.length
        self.init(inputs: try Tensor(host.inputs, shape: [b, la]), targets: try Tensor(host.targets, shape: [b, la]),
                  mask: try Tensor(host.mask, shape: [b, la]))
    }

    /// The same as host arrays (no MLX), row-major `[B, La]`.
    public static func host(_ answers: [String], maxLength: Int) throws -> (inputs: [Int32], targets: [Int32], mask: [Float], length: Int) {
        guard !answers.isEmpty else { throw AnswerError.empty }
        let bytes = answers.map { Array($0.utf8).map(Int32.init) }
        for (a, b) in zip(answers, bytes) where b.count + 1 > maxLength {
            throw AnswerError.tooLong(answer: a, positions: b.count + 1, limit: maxLength)
        }
        let la = bytes.map(\.count).max()! + 1
        var inputs: [Int32] = [], targets: [Int32] = [], mask: [Float] = []
        for b in bytes {
            let padding = la - b.count - 1
            inputs += [ByteTokenizer.bos] + b + [Int32](repeating: ByteTokenizer.pad, count: padding)
            targets += b + [end] + [Int32](repeating: ByteTokenizer.pad, count: padding)
            mask += [Float](repeating: 1, count: b.count + 1) + [Float](repeating: 0, count: padding)
        }
        return (inputs, targets, mask, la)
    }

    public var batchSize: Int { inputs.dim(0) }
}

/// A batch of questions about observations and their answers (Green-VLA's L1 VQA data): the
/// question is the prompt, the answer is what the answer head is trained to say.
public struct QuestionBatch: @unchecked Sendable {
    public var inputs: PolicyInputs
    public var answers: AnswerTokens
    public init(inputs: PolicyInputs, answers: AnswerTokens) { self.inputs = inputs; self.answers = answers }
}

/// Answers that cannot be encoded.
public enum AnswerError: Error, Equatable, CustomStringConvertible {
    case empty
    case tooLong(answer: String, positions: Int, limit: Int)
    case questionTooLong(question: String, positions: Int, limit: Int)
    case noAnswerHead
    case needsByteTokens
    public var description: String {
        switch self {
        case .empty: return "AnswerError.empty: no answers"
        case .tooLong(let a, let n, let limit): return "AnswerError.tooLong: \"\(a)\" needs \(n) answer positions, the model has \(limit)"
        case .questionTooLong(let q, let n, let limit): return "AnswerError.questionTooLong: \"\(q)\" needs \(n) prompt tokens, the model has \(limit)"
        case .noAnswerHead: return "AnswerError.noAnswerHead: the config's answerWeight is 0"
        case .needsByteTokens: return "AnswerError.needsByteTokens: answers are byte tokens; the MiniLM text encoder has no byte embedding"
        }
    }
}
