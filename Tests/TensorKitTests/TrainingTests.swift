import Foundation
import Testing
@testable import TensorKit

final class XORNet: Module, @unchecked Sendable {
    let hidden: Linear
    let output: Linear
    init(key: RandomKey) throws {
        let (k1, k2) = try key.split()
        hidden = try Linear(2, 8, key: k1)
        output = try Linear(8, 1, key: k2)
        super.init()
    }
    func callAsFunction(_ x: Tensor) throws -> Tensor { try output(hidden(x).tanh()) }
}

/// A tiny causal language model: embedding → blocks → tied read-out.
final class TinyTransformer: Module, @unchecked Sendable {
    let embedding: Embedding
    let position: Embedding
    let blocks: [TransformerBlock]
    let norm: LayerNorm
    init(vocab: Int, dims: Int, heads: Int, layers: Int, maxLength: Int, key: RandomKey) throws {
        let keys = try key.split(into: layers + 2)
        embedding = try Embedding(count: vocab, dims: dims, key: keys[0])
        position = try Embedding(count: maxLength, dims: dims, key: keys[1])
        blocks = try (0..<layers).map { try TransformerBlock(dims: dims, heads: heads, key: keys[$0 + 2]) }
        norm = try LayerNorm(dims)
        super.init()
    }
    func callAsFunction(_ tokens: Tensor) throws -> Tensor {
        let length = tokens.dim(1)
        var h = try embedding(tokens) + position(Tensor.arange(0, Double(length), dtype: .int32))
        for block in blocks { h = try block(h, mask: .causal) }
        return try embedding.asLinear(norm(h))
    }
}

@Suite("Training")
struct TrainingTests {
    func trainXOR(seed: UInt64, steps: Int) throws -> (losses: [Float], model: XORNet) {
        let model = try XORNet(key: RandomKey(seed: seed))
        let x = try Tensor([0, 0, 0, 1, 1, 0, 1, 1] as [Float], shape: [4, 2])
        let y = try Tensor([0, 1, 1, 0] as [Float], shape: [4, 1])
        let optimizer = AdamW(learningRate: 0.05, weightDecay: 0)
        let step = valueAndGrad(model: model) { m in try mseLoss(m(x), y) }
        var losses: [Float] = []
        for _ in 0..<steps {
            let (loss, grads) = try step(model)
            try optimizer.step(model: model, gradients: grads, alsoEvaluate: [loss])
            losses.append(try loss.item())
        }
        return (losses, model)
    }

    @Test func mlpLearnsXOR() throws {
        let (losses, model) = try trainXOR(seed: 7, steps: 300)
        #expect(losses.last! < 0.01, "final XOR loss \(losses.last!)")
        let x = try Tensor([0, 0, 0, 1, 1, 0, 1, 1] as [Float], shape: [4, 2])
        let predictions: [Float] = try model(x).toArray()
        #expect(predictions.map { $0 > 0.5 } == [false, true, true, false])
    }

    @Test func sameSeedGivesBitIdenticalRuns() throws {
        let a = try trainXOR(seed: 3, steps: 20), b = try trainXOR(seed: 3, steps: 20)
        #expect(a.losses == b.losses)
        for (key, value) in a.model.parameters() {
            #expect(try value.toArray(Float.self) == b.model.parameters()[key]!.toArray(Float.self))
        }
        let c = try trainXOR(seed: 4, steps: 1)
        #expect(c.losses[0] != a.losses[0])
    }

    @Test func tinyTransformerOverfitsFixedBatch() throws {
        let model = try TinyTransformer(vocab: 16, dims: 32, heads: 4, layers: 2, maxLength: 8, key: RandomKey(seed: 1))
        // Fixed batch: 4 sequences of 9 tokens, next-token targets.
        var sequences: [[Int32]] = []
        for s in 0..<4 {
            sequences.append((0..<9).map { (i: Int) -> Int32 in Int32((s * 5 + i * (i + s)) % 16) })
        }
        let inputs = try Tensor(sequences.flatMap { $0.prefix(8) }, shape: [4, 8])
        let targets = try Tensor(sequences.flatMap { $0.suffix(8) }, shape: [4, 8])
        let optimizer = AdamW(learningRate: 3e-3, weightDecay: 0)
        let step = valueAndGrad(model: model) { m in try crossEntropy(logits: m(inputs), targets: targets) }
        var first: Float = 0, last: Float = 0
        for i in 0..<150 {
            let (loss, grads) = try step(model)
            let (clipped, _) = try clipGradNorm(grads, maxNorm: 1.0)
            try optimizer.step(model: model, gradients: clipped, alsoEvaluate: [loss])
            if i == 0 { first = try loss.item() }
            last = try loss.item()
        }
        // Starts at chance level or worse (≥ 2, vs ln 16 ≈ 2.77 for a uniform guess; tied
        // unit-norm embeddings make the first logits slightly peaked) and memorises the batch.
        #expect(first > 2.0, "initial loss \(first)")
        #expect(last < 0.05, "final loss \(last)")
    }

    @Test func adamWFirstStepMatchesHandComputation() throws {
        // One parameter p = [1, -2], gradient g = [0.5, 0.1], lr 0.1, wd 0.01:
        // m = 0.1g, v = 0.001g², m̂ = g, v̂ = g², so p ← p(1 - 0.001) - 0.1·g/(|g| + 1e-8)
        //  = [0.999 - 0.1, -1.998 - 0.1] = [0.899, -2.098].
        final class One: Module, @unchecked Sendable {
            @Param var p: Tensor
            init(_ v: [Float]) { p = Tensor(v); super.init() }
        }
        let m = One([1, -2])
        let opt = AdamW(learningRate: 0.1, weightDecay: 0.01)
        try opt.step(model: m, gradients: ["p": Tensor([0.5, 0.1] as [Float])])
        expectClose(try m.p.toArray(), [0.899, -2.098], atol: 1e-6)
        // Second step with the same gradient: m̂ = g and v̂ = g² still, so another -0.1 step after decay.
        try opt.step(model: m, gradients: ["p": Tensor([0.5, 0.1] as [Float])])
        expectClose(try m.p.toArray(), [0.899 * 0.999 - 0.1, -2.098 * 0.999 - 0.1], atol: 1e-5)
        // SGD with momentum 0.9: v1 = g, v2 = 0.9g + g.
        let s = One([1, 1])
        let sgd = SGD(learningRate: 0.5, momentum: 0.9)
        try sgd.step(model: s, gradients: ["p": Tensor([1, 2] as [Float])])
        try sgd.step(model: s, gradients: ["p": Tensor([1, 2] as [Float])])
        expectClose(try s.p.toArray(), [1 - 0.5 * 1 - 0.5 * 1.9, 1 - 0.5 * 2 - 0.5 * 3.8], atol: 1e-6)
    }

    @Test func gradientClippingScalesToMaxNorm() throws {
        // Global norm of {[3], [4]} is 5; clipped to 1 → {[0.6], [0.8]}; below the threshold unchanged.
        let grads = ["a": Tensor([3] as [Float]), "b": Tensor([4] as [Float])]
        let (clipped, norm) = try clipGradNorm(grads, maxNorm: 1)
        #expect(Swift.abs(try norm.item() - 5) < 1e-5)
        expectClose(try clipped["a"]!.toArray(), [0.6])
        expectClose(try clipped["b"]!.toArray(), [0.8])
        let (same, _) = try clipGradNorm(grads, maxNorm: 10)
        expectClose(try same["b"]!.toArray(), [4])
    }

    @Test func schedulesFollowClosedForms() {
        let cosine = CosineWithWarmup(peak: 1, final: 0.1, warmupSteps: 10, totalSteps: 110)
        #expect(Swift.abs(cosine(0) - 0.1) < 1e-6)
        #expect(Swift.abs(cosine(9) - 1) < 1e-6)
        // Half-way through the decay: 0.1 + 0.9·½(1 + cos(π/2)) = 0.55.
        #expect(Swift.abs(cosine(60) - 0.55) < 1e-5)
        #expect(Swift.abs(cosine(110) - 0.1) < 1e-6)
        let wsd = WarmupStableDecay(peak: 2, final: 0, warmupSteps: 4, decaySteps: 10, totalSteps: 100)
        #expect(wsd(1) == 1)
        #expect(wsd(50) == 2)
        #expect(Swift.abs(wsd(95) - 1) < 1e-6)
        #expect(wsd(100) == 0)
    }
}
