import Foundation

extension TensorBenchmark {
    public struct KernelResult: Sendable {
        public let op: String
        /// Best-of time per element, MLX's own op (fast kernels off).
        public let mlxNanosecondsPerElement: Double
        /// Best-of time per element, the fast kernel.
        public let fastNanosecondsPerElement: Double
        /// The kernel alone over host buffers (no MLX graph, allocation or eval).
        public let kernelOnlyNanosecondsPerElement: Double
        /// Forward + backward (grad of Σf(x)) per element, MLX off vs fast on.
        public let mlxGradNanosecondsPerElement: Double
        public let fastGradNanosecondsPerElement: Double
        public var speedup: Double { mlxNanosecondsPerElement / fastNanosecondsPerElement }
    }

    /// Per-op time over one `rows`×`cols` float32 array (normal(0, 3) values), MLX's op and
    /// the fast kernel timed back to back in the same run, best of `repeats`, one eval each.
    public static func kernels(rows: Int = 2048, cols: Int = 1024, repeats: Int = 5) throws -> [KernelResult] {
        let x = try RandomKey(seed: 3).normal([rows, cols], std: 3)
        try x.eval()
        let n = Double(rows * cols)
        let host: [Float] = try x.toArray()
        var out = [Float](repeating: 0, count: host.count)
        let ops: [(String, FastKernels.Op, (Tensor) throws -> Tensor)] = [
            ("exp", .exp, { try $0.exp() }), ("tanh", .tanh, { try $0.tanh() }),
            ("sigmoid", .sigmoid, { try $0.sigmoid() }), ("silu", .silu, { try $0.silu() }),
            ("erf", .erf, { try $0.erf() }), ("gelu", .gelu, { try $0.gelu() }),
            ("gelu_tanh", .geluApproximate, { try $0.geluApproximate() }),
        ]
        return try ops.map { name, op, f in
            func time(_ fast: Bool, grad withGrad: Bool) throws -> Double {
                try FastKernels.withEnabled(fast) {
                    let g = grad { try f($0).sum() }
                    return try bestTime(repeats: repeats) {
                        try (withGrad ? g(x) : f(x)).eval()
                    } * 1e9 / n
                }
            }
            return KernelResult(
                op: name, mlxNanosecondsPerElement: try time(false, grad: false),
                fastNanosecondsPerElement: try time(true, grad: false),
                kernelOnlyNanosecondsPerElement: bestTime(repeats: repeats) {
                    FastKernels.apply(op, host, into: &out)
                } * 1e9 / n,
                mlxGradNanosecondsPerElement: try time(false, grad: true),
                fastGradNanosecondsPerElement: try time(true, grad: true))
        }
    }

    public struct RowKernelResult: Sendable {
        public let op: String
        public let shape: [Int]
        /// Best-of time per element: MLX's own ops (switch off) vs the fused kernel.
        public let mlxNanosecondsPerElement: Double
        public let fusedNanosecondsPerElement: Double
        /// Forward + backward (gradients of Σ f(x)⊙c w.r.t. x and any weight/bias).
        public let mlxGradNanosecondsPerElement: Double
        public let fusedGradNanosecondsPerElement: Double
    }

    /// The fused last-axis kernels vs MLX's ops: softmax, log-softmax and logsumexp over a
    /// [32, 4, 64, 64] attention-score-shaped array, LayerNorm and RMSNorm over [2048, 256],
    /// and causal attention with q, k, v [32, 4, 64, 64] (per score).
    public static func rowKernels(repeats: Int = 5) throws -> [RowKernelResult] {
        let key = RandomKey(seed: 4)
        let scores = try key.normal([32, 4, 64, 64], std: 3)
        let acts = try key.split(into: 2)[1].normal([2048, 256], mean: 0.5, std: 2)
        let w = try key.normal([256]), b = try key.normal([256]) * 0.1
        let cScores = try key.split(into: 3)[2].normal([32, 4, 64, 64])
        let cLse = try key.normal([32, 4, 64]), cActs = try key.normal([2048, 256])
        let keys = try key.split(into: 4)[3].normal([32, 4, 64, 64]), values = try acts.reshaped([32, 4, 64, 64])
        try TensorKit.eval([scores, acts, w, b, cScores, cLse, cActs, keys, values])
        typealias Case = (String, Tensor, [Tensor], Tensor, ([Tensor]) throws -> Tensor)
        let cases: [Case] = [
            ("softmax", scores, [], cScores, { try $0[0].softmax() }),
            ("logsoftmax", scores, [], cScores, { try $0[0].logSoftmax() }),
            ("logsumexp", scores, [], cLse, { try $0[0].logSumExp(axis: -1) }),
            ("layernorm", acts, [w, b], cActs, { try layerNorm($0[0], weight: $0[1], bias: $0[2]) }),
            ("rmsnorm", acts, [w], cActs, { try rmsNorm($0[0], weight: $0[1]) }),
            // q, k, v [32, 4, 64, 64]: as many scores as q has elements
            ("attention", scores, [keys, values], cScores, {
                try scaledDotProductAttention(queries: $0[0], keys: $0[1], values: $0[2], scale: 0.125, mask: .causal) }),
        ]
        return try cases.map { name, x, params, c, f in
            let n = Double(x.shape.reduce(1, *))
            let inputs = [x] + params
            let g = valueAndGrad({ [try (f($0) * c).sum()] }, argnums: Array(inputs.indices))
            func time(_ fused: Bool, grad withGrad: Bool) throws -> Double {
                try FastKernels.withEnabled(fused) {
                    try bestTime(repeats: repeats) {
                        if withGrad { try TensorKit.eval(g(inputs).grads) } else { try f(inputs).eval() }
                    } * 1e9 / n
                }
            }
            return RowKernelResult(
                op: name, shape: x.shape,
                mlxNanosecondsPerElement: try time(false, grad: false),
                fusedNanosecondsPerElement: try time(true, grad: false),
                mlxGradNanosecondsPerElement: try time(false, grad: true),
                fusedGradNanosecondsPerElement: try time(true, grad: true))
        }
    }

    /// `transformerStep` with the fast kernels off and on (the switch is restored after).
    public static func transformerStepFastOffOn(steps: Int = 3) throws -> (off: StepResult, on: StepResult) {
        let saved = FastKernels.isEnabled
        defer { FastKernels.isEnabled = saved }
        FastKernels.isEnabled = false
        let off = try transformerStep(steps: steps)
        FastKernels.isEnabled = true
        let on = try transformerStep(steps: steps)
        return (off, on)
    }
}
