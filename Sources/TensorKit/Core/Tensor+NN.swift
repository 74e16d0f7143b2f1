import CMLX

// Neural-network ops: fused MLX kernels where MLX has them (`mlx::core::fast`).

extension Tensor {
    /// Fused kernel for float32 over the last axis when `FastKernels` are on (`precise`
    /// only matters for half types).
    public func softmax(axis: Int = -1, precise: Bool = false) throws -> Tensor {
        if takesFusedRows(axis: axis) { return try fusedRowOp(CMLX_FUSED_SOFTMAX, "softmax") }
        var ax = Int32(axis)
        return try Tensor.wrap(cmlx_softmax(raw, &ax, 1, precise ? 1 : 0), "softmax")
    }
    public func logSoftmax(axis: Int = -1) throws -> Tensor {
        if takesFusedRows(axis: axis) { return try fusedRowOp(CMLX_FUSED_LOG_SOFTMAX, "logSoftmax") }
        return try self - logSumExp(axis: axis, keepDims: true)
    }
    public func relu() throws -> Tensor { try maximum(constant(0)) }
    /// SiLU / swish: x·σ(x).
    public func silu() throws -> Tensor {
        if FastKernels.active { return try fastUnary(CMLX_FAST_SILU, "silu") }
        return try self * sigmoid()
    }
    /// Exact GELU: x·Φ(x) = ½x(1 + erf(x/√2)).
    public func gelu() throws -> Tensor {
        if FastKernels.active { return try fastUnary(CMLX_FAST_GELU, "gelu") }
        return try self * ((self * 0.7071067811865476).erf() + 1) * 0.5
    }
    /// GELU's tanh approximation: ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
    public func geluApproximate() throws -> Tensor {
        if FastKernels.active { return try fastUnary(CMLX_FAST_GELU_TANH, "geluApproximate") }
        let inner = try (self + self * self * self * 0.044715) * 0.7978845608028654
        return try self * (inner.tanh() + 1) * 0.5
    }
}

/// LayerNorm over the last axis: `(x - mean) / sqrt(var + eps) * weight + bias`. With
/// `FastKernels` on, float32 takes the fused kernel (other dtypes: MLX's op either way).
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) throws -> Tensor {
    if FastKernels.active { return try Tensor.wrap(cmlx_fused_layer_norm(x.raw, weight?.raw, bias?.raw, eps), "layerNorm") }
    return try Tensor.wrap(cmlx_layer_norm(x.raw, weight?.raw, bias?.raw, eps), "layerNorm")
}

/// RMSNorm over the last axis: `x / sqrt(mean(x²) + eps) * weight`.
public func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float = 1e-6) throws -> Tensor {
    if FastKernels.active { return try Tensor.wrap(cmlx_fused_rms_norm(x.raw, weight?.raw, eps), "rmsNorm") }
    return try Tensor.wrap(cmlx_rms_norm(x.raw, weight?.raw, eps), "rmsNorm")
}

/// Attention mask for `scaledDotProductAttention`.
public enum AttentionMask {
    case none
    /// Query i attends to keys 0...i (aligned at the end when Lk > Lq).
    case causal
    /// Boolean (true = attend) or additive float mask broadcastable to `[B, H, Lq, Lk]`.
    case tensor(Tensor)
}

/// softmax(Q Kᵀ · scale + mask) V. q `[B, H, Lq, D]`, k/v `[B, Hkv, Lk, D]` → `[B, H, Lq, D]`.
/// With `FastKernels` on, float32 runs as matmuls around the fused softmax (MLX's CPU
/// attention was ~3× slower forward here); other dtypes take MLX's op either way.
public func scaledDotProductAttention(
    queries q: Tensor, keys k: Tensor, values v: Tensor, scale: Float, mask: AttentionMask = .none
) throws -> Tensor {
    let op = FastKernels.active ? cmlx_fused_attention : cmlx_attention
    switch mask {
    case .none: return try Tensor.wrap(op(q.raw, k.raw, v.raw, scale, "", nil), "attention")
    case .causal: return try Tensor.wrap(op(q.raw, k.raw, v.raw, scale, "causal", nil), "attention")
    case .tensor(let m): return try Tensor.wrap(op(q.raw, k.raw, v.raw, scale, "array", m.raw), "attention")
    }
}

/// 2-D convolution. input `[N, H, W, Cin]`, weight `[Cout, kH, kW, Cin/groups]` → `[N, H', W', Cout]`.
public func conv2d(
    _ input: Tensor, _ weight: Tensor, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
    dilation: (Int, Int) = (1, 1), groups: Int = 1
) throws -> Tensor {
    try Tensor.wrap(
        cmlx_conv2d(input.raw, weight.raw, Int32(stride.0), Int32(stride.1), Int32(padding.0), Int32(padding.1),
                    Int32(dilation.0), Int32(dilation.1), Int32(groups)),
        "conv2d \(input.shape) * \(weight.shape)")
}

/// Mean cross-entropy between `logits [..., C]` and integer class `targets [...]`.
public func crossEntropy(logits: Tensor, targets: Tensor) throws -> Tensor {
    // logsumexp − picked logit: avoids materialising the full [..., C] log-softmax.
    let picked = try logits.takeAlongAxis(targets.expandedDims(axis: -1).astype(.int32), axis: -1).squeezed([-1])
    return try (logits.logSumExp(axis: -1) - picked).mean()
}

/// Mean squared error.
public func mseLoss(_ prediction: Tensor, _ target: Tensor) throws -> Tensor {
    try (prediction - target).square().mean()
}
