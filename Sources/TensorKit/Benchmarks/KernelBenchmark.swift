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
