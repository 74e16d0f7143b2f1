import Foundation
import Testing
import RobotData
import TensorKit
@testable import VLAModel

private func answerConfig() -> VLAConfig {
    var c = tinyConfig()
    c.answerWeight = 0.5
    c.maxAnswerLength = 16
    return c
}

private func bits(_ t: Tensor) throws -> [UInt32] { try t.toArray(Float.self).map(\.bitPattern) }

/// Questions about `tinyBatch`'s two observations, one prompt per row.
private func questionInputs(_ c: VLAConfig, _ questions: [String]) throws -> PolicyInputs {
    var inputs = try tinyBatch(c).inputs
    let tokenizer = ByteTokenizer(maxLength: c.maxTextLength)
    let encoded = questions.map { tokenizer.encode($0) }
    inputs.tokens = try Tensor(encoded.flatMap(\.tokens), shape: [questions.count, c.maxTextLength])
    inputs.tokenMask = try Tensor(encoded.flatMap(\.mask), shape: [questions.count, c.maxTextLength])
    return inputs
}

@Suite("Answer head (backbone as a VLM)")
struct AnswerHeadTests {
    @Test func answersNeverChangeThePrefixAndAttendCausally() throws {
        let c = answerConfig()
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 2))
        let inputs = try questionInputs(c, ["where is the red block?", "describe"])
        // The answer path's prefix pass is encodePrefix bit for bit.
        let (prefix, mask) = try model.encodePrefix(inputs)
        let context = try model.encodePrefixForAnswers(inputs)
        #expect(try bits(context.prefix) == bits(prefix) && bits(context.mask.astype(.float32)) == bits(mask.astype(.float32)))

        // Answers that agree on their first 3 input tokens (BOS + 2 bytes), padded to the same
        // length: logits 0..<3 identical bit for bit, position 3 not.
        let a = try AnswerTokens(["far left", "a red"], maxLength: c.maxAnswerLength)
        let b = try AnswerTokens(["faxxxxxx", "a xyz"], maxLength: c.maxAnswerLength)
        let la = a.inputs.dim(1), v = ByteTokenizer.vocabularySize
        let la2 = b.inputs.dim(1)
        let logitsA = try model.answerLogits(context: context, answerTokens: a.inputs).toArray(Float.self)
        let logitsB = try model.answerLogits(context: context, answerTokens: b.inputs).toArray(Float.self)
        for row in 0..<2 {
            for j in 0..<3 {
                let x = Array(logitsA[((row * la + j) * v)..<((row * la + j + 1) * v)]).map(\.bitPattern)
                let y = Array(logitsB[((row * la2 + j) * v)..<((row * la2 + j + 1) * v)]).map(\.bitPattern)
                #expect(x == y, "row \(row) position \(j) saw a later answer token")
            }
            let j = 3
            let x = Array(logitsA[((row * la + j) * v)..<((row * la + j + 1) * v)])
            let y = Array(logitsB[((row * la2 + j) * v)..<((row * la2 + j + 1) * v)])
            #expect(zip(x, y).map { abs($0 - $1) }.max()! > 1e-4, "position 3 must see its own (different) token")
        }
        // And the context is still the prefix the expert reads after computing answers.
        #expect(try bits(context.prefix) == bits(model.encodePrefix(inputs).tokens))
    }

    @Test func twoStreamsEqualOnePassUnderTheFullPrefixLMMask() throws {
        // Reference: [prefix, answers] through the TransformerBlocks once with a [B, 1, L, L]
        // mask (prefix rows: prefix keys; answer rows: prefix keys + causal answer keys).
        let c = answerConfig()
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 4))
        let inputs = try questionInputs(c, ["point to the cube", "hi"])
        let answers = try AnswerTokens(["<0.1 -0.2>", "ok"], maxLength: c.maxAnswerLength)
        let (embedded, prefixMask) = try model.prefixEmbeddings(inputs)
        let b = 2, lp = embedded.dim(1), la = answers.inputs.dim(1), l = lp + la
        let keyOK: [Bool] = try prefixMask.reshaped([b, lp]).toArray(Bool.self)
        var full = [Bool](repeating: false, count: b * l * l)
        for r in 0..<b { for i in 0..<l { for j in 0..<l {
            full[(r * l + i) * l + j] = j < lp ? keyOK[r * lp + j] : (i >= lp && j <= i)
        } } }
        var h = try concatenated([embedded, model.answerEmbeddings(answers.inputs)], axis: 1)
        for block in model.backbone { h = try block(h, mask: .tensor(Tensor(full, shape: [b, 1, l, l]))) }
        h = try model.backboneNorm(h)
        let referencePrefix = try h.slice(axis: 1, 0..<lp).toArray(Float.self)
        let referenceLogits = try model.answerHead!(h.slice(axis: 1, lp..<l)).toArray(Float.self)

        let context = try model.encodePrefixForAnswers(inputs)
        let logits = try model.answerLogits(context: context, answerTokens: answers.inputs).toArray(Float.self)
        let prefixError = zip(try context.prefix.toArray(Float.self), referencePrefix).map { abs($0 - $1) }.max()!
        let logitError = zip(logits, referenceLogits).map { abs($0 - $1) }.max()!
        #expect(prefixError < 1e-5 && logitError < 1e-4, "prefix \(prefixError), logits \(logitError)")
    }

    @Test func lossIsTheMaskedMeanOfNextByteLogSoftmax() throws {
        let c = answerConfig()
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 6))
        let inputs = try questionInputs(c, ["what color is the puck?", "x"])
        let answers = try AnswerTokens(["blue", "a"], maxLength: c.maxAnswerLength)
        // Teacher forcing layout: BOS + bytes in, bytes + end out, padding masked.
        #expect(try answers.inputs.toArray(Int32.self) == [256, 98, 108, 117, 101, 256, 97, 257, 257, 257])
        #expect(try answers.targets.toArray(Int32.self) == [98, 108, 117, 101, 257, 97, 257, 257, 257, 257])
        #expect(try answers.mask.toArray(Float.self) == [1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
        let context = try model.encodePrefixForAnswers(inputs)
        let logits = try model.answerLogits(context: context, answerTokens: answers.inputs).toArray(Float.self)
        let targets = try answers.targets.toArray(Int32.self), mask = try answers.mask.toArray(Float.self)
        let v = ByteTokenizer.vocabularySize
        var total = 0.0, count = 0.0
        for p in 0..<targets.count where mask[p] > 0 {
            let row = logits[(p * v)..<((p + 1) * v)].map(Double.init)
            let top = row.max()!
            let logSumExp = top + Foundation.log(row.map { Foundation.exp($0 - top) }.reduce(0, +))
            total += logSumExp - row[Int(targets[p])]
            count += 1
        }
        let loss = try model.answerLoss(context: context, answers: answers).itemDouble()
        #expect(abs(loss - total / count) < 1e-5 * max(1, total / count), "\(loss) vs \(total / count)")
        // Over-long answers and a model without the head are typed errors.
        #expect(throws: AnswerError.tooLong(answer: String(repeating: "z", count: 16), positions: 17, limit: 16)) {
            _ = try AnswerTokens([String(repeating: "z", count: 16)], maxLength: 16)
        }
        let plain = try FlowMatchingVLA(config: tinyConfig(), key: RandomKey(seed: 6))
        #expect(plain.answerHead == nil && plain.answerPosition == nil)
        #expect(throws: AnswerError.noAnswerHead) { _ = try plain.answer(inputs, maxLength: 4) }
    }

    @Test func tinyModelOverfitsQuestionsAndDecodesThemExactly() throws {
        let c = answerConfig()
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 8))
        let questions = ["where is the red block?", "what color is the puck?", "point to the cube", "describe the scene"]
        let expected = ["far left", "blue", "<0.42 -0.13>", "a red block"]
        // Rows 0/1 and 2/3 share images: only the question tells them apart.
        var inputs = try questionInputs(c, questions)
        inputs.images = try concatenated([inputs.images, inputs.images], axis: 0)
        inputs.cameraMask = try concatenated([inputs.cameraMask, inputs.cameraMask], axis: 0)
        inputs.state = try concatenated([inputs.state, inputs.state], axis: 0)
        inputs.stateMask = try concatenated([inputs.stateMask, inputs.stateMask], axis: 0)
        inputs = try PolicyInputs(images: inputs.images, cameraMask: inputs.cameraMask, tokens: inputs.tokens, tokenMask: inputs.tokenMask,
                                  state: inputs.state, stateMask: inputs.stateMask)
        let batch = QuestionBatch(inputs: inputs, answers: try AnswerTokens(expected, maxLength: c.maxAnswerLength))
        let optimizer = AdamW(learningRate: 1e-2, weightDecay: 0)
        var first: Float = 0, last: Float = 0
        for step in 0..<120 {
            let (loss, grads) = try valueAndGrad(model: model) { m in try m.answerLoss(batch) }(model)
            try optimizer.step(model: model, gradients: grads, alsoEvaluate: [loss])
            if step == 0 { first = try loss.item() }
            last = try loss.item()
        }
        #expect(last < 0.01 * first, "loss \(first) → \(last)")
        #expect(try model.answer(inputs, maxLength: 15) == expected)
    }

    @Test func coTrainingLossIsFlowPlusWeightedAnswerLossAndInsulationKeepsFlowOutOfTheBackbone() throws {
        var c = answerConfig()
        c.insulateBackbone = true
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 10))
        var batch = try tinyBatch(c)
        let questions = QuestionBatch(inputs: try questionInputs(c, ["where is it?", "color?"]),
                                      answers: try AnswerTokens(["near right", "red"], maxLength: c.maxAnswerLength))
        let key = RandomKey(seed: 3)
        let (flow, flowGrads) = try valueAndGrad(model: model) { m in try m.loss(batch, key: key) }(model)
        let (answer, answerGrads) = try valueAndGrad(model: model) { m in try m.answerLoss(questions) }(model)
        batch.questions = questions
        let (total, grads) = try valueAndGrad(model: model) { m in try m.loss(batch, key: key) }(model)
        #expect(abs(try total.item() - (flow.item() + 0.5 * answer.item())) < 1e-5)
        // Backbone: only the answer term's gradient (the flow term's is stopped at the prefix).
        let backbone = grads.keys.filter { $0.hasPrefix("backbone.") || $0.hasPrefix("tokenEmbedding") || $0.hasPrefix("vision.") }
        #expect(!backbone.isEmpty)
        for k in backbone {
            let g = try grads[k]!.toArray(Float.self), reference = try (answerGrads[k]! * 0.5).toArray(Float.self)
            let flowPart = try flowGrads[k].map { try $0.abs().max().item() } ?? 0
            #expect(flowPart == 0, "flow reached \(k)")
            #expect(zip(g, reference).map { abs($0 - $1) }.max()! <= 1e-6 * max(1, reference.map(abs).max()!), "\(k)")
        }
        // The action expert still learns from the flow term, and answers never reach it.
        let expert = grads.keys.filter { $0.hasPrefix("expert.") || $0.hasPrefix("velocityHead") }
        #expect(try expert.contains { try flowGrads[$0]!.abs().max().item() > 0 })
        #expect(try expert.allSatisfy { try (answerGrads[$0]?.abs().max().item() ?? 0) == 0 })
    }
}
