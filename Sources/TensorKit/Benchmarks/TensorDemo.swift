import Foundation

/// A small end-to-end run of the tensor engine: a causal transformer learns to continue
/// arithmetic sequences (t_{i+1} = t_i + stride mod vocab, a different stride per row), so
/// the loss falls from chance (ln vocab) towards zero and accuracy climbs to 100%.
public enum TensorDemo {
    public static func run(steps: Int, seed: UInt64, log: (String) -> Void) throws {
        let vocab = 32, length = 16, batch = 64
        let key = RandomKey(seed: seed)
        let keys = try key.split(into: 2)
        let model = try CausalTransformer(vocab: vocab, dims: 64, heads: 4, layers: 2, maxLength: length, key: keys[0])
        let optimizer = AdamW(learningRate: 3e-3, weightDecay: 0.01)
        let schedule = CosineWithWarmup(peak: 3e-3, final: 1e-4, warmupSteps: 20, totalSteps: steps)
        log("CausalTransformer: \(model.parameterCount) parameters, seed \(seed)")
        var dataKey = keys[1]
        let start = Date()
        for step in 0..<steps {
            let (now, next) = try dataKey.split()
            dataKey = next
            let (inputs, targets) = try batchOfSequences(key: now, batch: batch, length: length, vocab: vocab)
            let lossAndGrad = valueAndGrad(model: model) { m -> [Tensor] in
                let logits = try m(inputs)
                let accuracy = try logits.argmax(axis: -1).astype(.int32).equal(targets).astype(.float32).mean()
                return [try crossEntropy(logits: logits, targets: targets), accuracy]
            }
            optimizer.learningRate = schedule(step)
            let (values, grads) = try lossAndGrad(model)
            let (clipped, _) = try clipGradNorm(grads, maxNorm: 1)
            try optimizer.step(model: model, gradients: clipped, alsoEvaluate: values)
            if step % 20 == 0 || step == steps - 1 {
                log(String(format: "step %4d/%d  loss %.4f  next-token accuracy %5.1f%%  lr %.2e  %.1fs",
                           step + 1, steps, try values[0].item(), 100 * (try values[1].item()), optimizer.learningRate,
                           Date().timeIntervalSince(start)))
            }
        }
    }

    /// Rows t_i = (start + i·stride) mod vocab; predict t_{i+1} from t_0…t_i.
    static func batchOfSequences(key: RandomKey, batch: Int, length: Int, vocab: Int) throws -> (Tensor, Tensor) {
        let (k1, k2) = try key.split()
        let starts = try k1.randint([batch, 1], low: 0, high: vocab)
        let strides = try k2.randint([batch, 1], low: 1, high: 6)
        let positions = try Tensor.arange(0, Double(length + 1), dtype: .int32).reshaped([1, length + 1])
        let sequence = try (starts + positions * strides).remainder(Tensor(scalar: Double(vocab), dtype: .int32))
        return (try sequence.slice(axis: 1, 0..<length), try sequence.slice(axis: 1, 1..<(length + 1)))
    }
}
