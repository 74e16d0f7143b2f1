import CMLX
import Foundation

/// Measures TensorKit's speed against references timed in the same run: OpenBLAS sgemm
/// called directly, and (when given) the same training step in MLX-Python.
public enum TensorBenchmark {
    public struct SgemmResult: Sendable {
        public let n: Int
        public let tensorKitGFLOPs: Double
        public let openBLASGFLOPs: Double
    }

    public struct StepResult: Sendable {
        public let milliseconds: Double
        public let gflops: Double
        public let flopsPerStep: Double
        public let finalLoss: Float
    }

    /// Best-of-`repeats` time of `body` in seconds, after one warm-up call.
    static func bestTime(repeats: Int, _ body: () throws -> Void) rethrows -> Double {
        try body()
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            best = Swift.min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best
    }

    /// n×n×n float32 matmul through TensorKit (one eval) and through cblas_sgemm.
    public static func sgemm(n: Int, repeats: Int = 5) throws -> SgemmResult {
        let key = RandomKey(seed: UInt64(n))
        let a = try key.normal([n, n]), b = try key.split().1.normal([n, n])
        try eval([a, b])
        let flops = 2 * Double(n * n * n)
        let tk = try bestTime(repeats: repeats) { try a.matmul(b).eval() }
        let aHost: [Float] = try a.toArray(), bHost: [Float] = try b.toArray()
        var c = [Float](repeating: 0, count: n * n)
        let blas = bestTime(repeats: repeats) { _ = cmlx_reference_sgemm(Int32(n), Int32(n), Int32(n), aHost, bHost, &c) }
        return SgemmResult(n: n, tensorKitGFLOPs: flops / tk / 1e9, openBLASGFLOPs: flops / blas / 1e9)
    }

    /// One AdamW training step of a causal transformer (forward, backward, update, one eval).
    public static func transformerStep(
        layers: Int = 4, dims: Int = 256, heads: Int = 4, vocab: Int = 512, batch: Int = 32,
        length: Int = 64, steps: Int = 5, progress: ((Int, Double) -> Void)? = nil
    ) throws -> StepResult {
        let key = RandomKey(seed: 0)
        let model = try CausalTransformer(vocab: vocab, dims: dims, heads: heads, layers: layers, maxLength: length, key: key)
        let tokens = try key.split(into: 3)[1].randint([batch, length + 1], low: 0, high: vocab)
        let inputs = try tokens.slice(axis: 1, 0..<length), targets = try tokens.slice(axis: 1, 1..<(length + 1))
        try eval([inputs, targets])
        let optimizer = AdamW(learningRate: 1e-3)
        let lossAndGrad = valueAndGrad(model: model) { m in try crossEntropy(logits: m(inputs), targets: targets) }
        var lastLoss: Float = 0
        var best = Double.infinity
        for i in 0...steps {  // step 0 warms up (allocations, first trace)
            let start = DispatchTime.now().uptimeNanoseconds
            let (loss, grads) = try lossAndGrad(model)
            try optimizer.step(model: model, gradients: grads, alsoEvaluate: [loss])
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            lastLoss = try loss.item()
            if i > 0 { best = Swift.min(best, seconds) }
            progress?(i, seconds)
        }
        let flops = 3 * model.forwardFLOPs(batch: batch, length: length)
        return StepResult(milliseconds: best * 1000, gflops: flops / best / 1e9, flopsPerStep: flops, finalLoss: lastLoss)
    }
}
