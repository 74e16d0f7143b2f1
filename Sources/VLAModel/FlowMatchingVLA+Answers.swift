import TensorKit

/// The prefix pass of `FlowMatchingVLA.encodePrefixForAnswers`: what `encodePrefix` returns,
/// plus each backbone layer's keys and values of the prefix (`[B, heads, Lp, D/heads]`) for
/// the answer tokens to attend to.
public struct AnswerContext: @unchecked Sendable {
    public let prefix: Tensor
    public let mask: Tensor
    public let memory: [(keys: Tensor, values: Tensor)]
    /// Each backbone layer's input `[B, Lp, D]` (layer l's keys/values are projected from its
    /// norm): what the answer stream can read at each depth, for probes.
    public let layerInputs: [Tensor]
}

/// The backbone as a VLM that answers in byte tokens (Green-VLA's L1; JPM's pointing as text).
///
/// A prefix-LM: the prefix [image tokens, prompt] attends bidirectionally as in `encodePrefix`;
/// answer tokens attend to the whole (unmasked) prefix and causally to the answer; the prefix
/// never attends to answers. It runs as two streams through the same layers — the prefix pass
/// keeps each layer's keys/values, the answer stream appends its own to them — which is the
/// prefix-LM mask without the prefix→answer block, so the prefix the action expert reads is
/// the same computation with or without answers (tests compare bits, and compare both streams
/// with one pass under the full `[B, 1, L, L]` mask).
extension FlowMatchingVLA {
    /// `encodePrefix` that also keeps each layer's prefix keys/values (same ops, same bits).
    public func encodePrefixForAnswers(_ inputs: PolicyInputs) throws -> AnswerContext {
        var (h, mask) = try prefixEmbeddings(inputs)
        var memory: [(keys: Tensor, values: Tensor)] = []
        var layerInputs: [Tensor] = []
        for block in backbone {
            layerInputs.append(h)
            // TransformerBlock's forward, with the projected keys/values kept.
            let normed = try block.attentionNorm(h)
            let kv = try block.attention.projectMemory(keys: normed, values: normed)
            memory.append(kv)
            h = try h + block.attention.attend(queries: normed, memory: kv, mask: .tensor(mask))
            h = try h + block.mlp(block.mlpNorm(h))
        }
        return AnswerContext(prefix: try backboneNorm(h), mask: mask, memory: memory, layerInputs: layerInputs)
    }

    /// Answer token embeddings `[B, La, D]`: the prompt's byte embedding + the answer positions.
    func answerEmbeddings(_ tokens: Tensor) throws -> Tensor {
        guard let answerPosition else { throw AnswerError.noAnswerHead }
        let la = tokens.dim(1)
        guard tokens.ndim == 2, la <= config.maxAnswerLength else {
            throw TensorError.shapeMismatch("answer tokens must be [B, ≤ \(config.maxAnswerLength)], got \(tokens.shape)")
        }
        // Answers are bytes: a MiniLM prompt has no byte embedding to read them with.
        guard let tokenEmbedding else { throw AnswerError.needsByteTokens }
        return try tokenEmbedding(tokens) + answerPosition(Tensor.arange(0, Double(la), dtype: .int32))
    }

    /// `[B, 1, La, Lp + La]` bool: query j sees the prefix keys the prefix mask allows and the
    /// answer keys 0...j. Padding sits after an answer's real tokens, so causality hides it.
    static func answerAttentionMask(prefixMask: Tensor, answerLength la: Int) throws -> Tensor {
        let b = prefixMask.dim(0), lp = prefixMask.dim(3)
        let causal = try Tensor((0..<la).flatMap { i in (0..<la).map { j in j <= i } }, shape: [1, 1, la, la])
        return try concatenated([prefixMask.broadcast(to: [b, 1, la, lp]), causal.broadcast(to: [b, 1, la, la])], axis: 3)
    }

    /// Byte logits `[B, La, 258]` at answer tokens `[B, La]` (`AnswerTokens.inputs`).
    public func answerLogits(context: AnswerContext, answerTokens: Tensor) throws -> Tensor {
        guard let answerHead else { throw AnswerError.noAnswerHead }
        guard answerTokens.ndim == 2, answerTokens.dim(0) == context.prefix.dim(0) else {
            throw TensorError.shapeMismatch("answer tokens must be [\(context.prefix.dim(0)), La], got \(answerTokens.shape)")
        }
        var a = try answerEmbeddings(answerTokens)
        let mask = try Self.answerAttentionMask(prefixMask: context.mask, answerLength: answerTokens.dim(1))
        for (block, prefixKV) in zip(backbone, context.memory) {
            let normed = try block.attentionNorm(a)
            let own = try block.attention.projectMemory(keys: normed, values: normed)
            let kv = (keys: try concatenated([prefixKV.keys, own.keys], axis: 2),
                      values: try concatenated([prefixKV.values, own.values], axis: 2))
            a = try a + block.attention.attend(queries: normed, memory: kv, mask: .tensor(mask))
            a = try a + block.mlp(block.mlpNorm(a))
        }
        return try answerHead(backboneNorm(a))
    }

    /// Cross-entropy of the next answer byte, masked to the real targets, mean over them.
    public func answerLoss(context: AnswerContext, answers: AnswerTokens) throws -> Tensor {
        guard answers.targets.shape == answers.inputs.shape, answers.mask.shape == answers.inputs.shape else {
            throw TensorError.shapeMismatch("answer inputs \(answers.inputs.shape), targets \(answers.targets.shape), mask \(answers.mask.shape) differ")
        }
        let logits = try answerLogits(context: context, answerTokens: answers.inputs)
        let picked = try logits.takeAlongAxis(answers.targets.expandedDims(axis: -1).astype(.int32), axis: -1).squeezed([-1])
        let perToken = try logits.logSumExp(axis: -1) - picked
        return try (perToken * answers.mask).sum() / answers.mask.sum().maximum(1)
    }

    /// `answerLoss` of a question batch, prefix pass included.
    public func answerLoss(_ questions: QuestionBatch) throws -> Tensor {
        try answerLoss(context: encodePrefixForAnswers(questions.inputs), answers: questions.answers)
    }

    /// Greedy decoding: per row, the answer's text up to the first non-byte token or
    /// `maxLength` bytes (invalid UTF-8 is replaced, as `String(decoding:)` does).
    public func answer(_ inputs: PolicyInputs, maxLength: Int) throws -> [String] {
        let context = try encodePrefixForAnswers(inputs)
        let b = inputs.batchSize
        var tokens = [[Int32]](repeating: [ByteTokenizer.bos], count: b)
        var done = [Bool](repeating: false, count: b)
        let limit = min(maxLength, config.maxAnswerLength - 1)
        var length = 0
        while length < limit && done.contains(false) {
            let la = length + 1
            let logits = try answerLogits(context: context, answerTokens: Tensor(tokens.flatMap { $0 }, shape: [b, la]))
            let next: [Int32] = try logits.slice(axis: 1, (la - 1)..<la).argmax(axis: -1).astype(.int32).toArray()
            for i in 0..<b {
                if next[i] > 255 { done[i] = true }
                tokens[i].append(done[i] ? ByteTokenizer.pad : next[i])
            }
            length += 1
        }
        return tokens.map { String(decoding: $0.dropFirst().prefix { $0 < 256 }.map { UInt8($0) }, as: UTF8.self) }
    }
}
