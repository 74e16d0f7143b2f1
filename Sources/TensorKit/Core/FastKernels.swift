import CMLX

/// Vectorized float32 CPU kernels (AVX2+FMA, multithreaded) for exp, tanh, sigmoid, SiLU,
/// erf and both GELUs, each one MLX op with its own VJP. MLX's own CPU versions of these
/// were 30–80× slower than NumPy here. Other dtypes take MLX's ops either way. The same
/// switch selects the fused last-axis kernels (softmax, log-softmax, logsumexp, LayerNorm,
/// RMSNorm, and attention around the fused softmax) for float32.
public enum FastKernels {
    /// The process-wide switch (on by default). Off, `exp()`, `gelu()` and friends build
    /// exactly the MLX expressions they built before the fast path existed.
    public static var isEnabled: Bool {
        get { cmlx_fast_kernels_enabled() != 0 }
        set { cmlx_set_fast_kernels(newValue ? 1 : 0) }
    }

    /// True when the kernels run the AVX2+FMA code rather than the scalar fallback.
    public static var usesSIMD: Bool { cmlx_fast_kernels_simd() != 0 }

    /// Overrides `isEnabled` for the current task only, so a comparison does not flip the
    /// switch under code running concurrently.
    @TaskLocal static var override: Bool?

    /// Runs `body` with the fast kernels on or off for this task (and the tensors it builds).
    public static func withEnabled<R>(_ enabled: Bool, _ body: () throws -> R) rethrows -> R {
        try $override.withValue(enabled) { try body() }
    }

    static var active: Bool { override ?? isEnabled }

    /// The kernels, in `cmlx_fast_op` order; the *Derivative cases are what the VJPs use.
    public enum Op: Int32, CaseIterable, Sendable {
        case exp, tanh, sigmoid, silu, erf, gelu, geluApproximate
        case siluDerivative, erfDerivative, geluDerivative, geluApproximateDerivative
    }

    /// Runs one kernel straight over host values, no MLX graph (tests and benchmarks);
    /// `simd: false` forces the scalar fallback.
    public static func apply(_ op: Op, _ input: [Float], into output: inout [Float], simd: Bool = true) {
        precondition(output.count == input.count, "FastKernels.apply: output count differs from input")
        _ = cmlx_fast_apply(op.rawValue, input, &output, input.count, simd ? 1 : 0)
    }
}

extension Tensor {
    /// The op through the fast kernel (float32 on the CPU), bypassing the switch.
    func fastUnary(_ op: cmlx_fast_op, _ name: String) throws -> Tensor {
        try Tensor.wrap(cmlx_fast_unary_kernel(Int32(op.rawValue), raw), name)
    }

    /// d/dx SiLU, erf, GELU and GELU-tanh as single fast ops (what the VJPs use).
    public func siluDerivative() throws -> Tensor { try fastUnary(CMLX_FAST_SILU_GRAD, "siluDerivative") }
    public func erfDerivative() throws -> Tensor { try fastUnary(CMLX_FAST_ERF_GRAD, "erfDerivative") }
    public func geluDerivative() throws -> Tensor { try fastUnary(CMLX_FAST_GELU_GRAD, "geluDerivative") }
    public func geluApproximateDerivative() throws -> Tensor {
        try fastUnary(CMLX_FAST_GELU_TANH_GRAD, "geluApproximateDerivative")
    }
}

// MARK: fused row-wise kernels

extension FastKernels {
    /// The fused last-axis kernels (`cmlx_fused_op` order): forward ops, then the VJP kernels
    /// their primitives use.
    public enum RowOp: Int32, CaseIterable, Sendable {
        case softmax, logSoftmax, logSumExp, layerNorm, rmsNorm
        case softmaxVJP, logSoftmaxVJP, layerNormVJP, rmsNormVJP
    }

    /// Runs one row kernel straight over host values of `rows × d` floats, no MLX graph
    /// (tests). Inputs and outputs per op as in `cmlx_fused_rows_host`: nil weight/bias
    /// means ones/zeros, a nil dw/db output is skipped. `simd: false` forces the scalar code.
    public static func applyRows(
        _ op: RowOp, inputs: [[Float]?], outputs: inout [[Float]?], rows: Int, d: Int, eps: Float = 0,
        simd: Bool = true
    ) {
        var inPointers: [UnsafePointer<Float>?] = []
        var outPointers: [UnsafeMutablePointer<Float>?] = []
        // Stable pointers for the call: copy into allocated buffers.
        var owned: [UnsafeMutableBufferPointer<Float>] = []
        defer { owned.forEach { $0.deallocate() } }
        for input in inputs {
            guard let values = input else { inPointers.append(nil); continue }
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: values.count)
            _ = buffer.initialize(from: values)
            owned.append(buffer)
            inPointers.append(UnsafePointer(buffer.baseAddress))
        }
        var outBuffers: [UnsafeMutableBufferPointer<Float>?] = []
        for o in outputs {
            guard let values = o else { outBuffers.append(nil); outPointers.append(nil); continue }
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: values.count)
            _ = buffer.initialize(from: values)
            owned.append(buffer)
            outBuffers.append(buffer)
            outPointers.append(buffer.baseAddress)
        }
        while inPointers.count < 4 { inPointers.append(nil) }
        while outPointers.count < 3 { outPointers.append(nil) }
        let rc = cmlx_fused_rows_host(op.rawValue, inPointers, outPointers, rows, d, eps, simd ? 1 : 0)
        precondition(rc == 0, "FastKernels.applyRows: unknown op")
        for (i, buffer) in outBuffers.enumerated() {
            if let buffer { outputs[i] = Array(buffer) }
        }
    }
}

extension Tensor {
    /// Whether a last-axis row op on this tensor takes the fused kernels (switch on,
    /// float32, last axis); anything else builds MLX's own expression.
    func takesFusedRows(axis: Int) -> Bool {
        FastKernels.active && dtype == .float32 && ndim >= 1 && (axis == -1 || axis == ndim - 1)
    }

    func fusedRowOp(_ op: cmlx_fused_op, _ name: String) throws -> Tensor {
        try Tensor.wrap(cmlx_fused_row_op(Int32(op.rawValue), raw), name)
    }
}
