/// LayerNorm over the last axis with learned scale and shift (MLX's fused kernel).
public final class LayerNorm: Module, @unchecked Sendable {
    @OptionalParam public var weight: Tensor?
    @OptionalParam public var bias: Tensor?
    public let eps: Float

    public init(_ dims: Int, eps: Float = 1e-5, affine: Bool = true) throws {
        self.eps = eps
        weight = affine ? try Tensor.ones([dims]) : nil
        bias = affine ? try Tensor.zeros([dims]) : nil
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try layerNorm(x, weight: weight, bias: bias, eps: eps)
    }
}

/// RMSNorm over the last axis with a learned scale (MLX's fused kernel).
public final class RMSNorm: Module, @unchecked Sendable {
    @Param public var weight: Tensor
    public let eps: Float

    public init(_ dims: Int, eps: Float = 1e-6) throws {
        self.eps = eps
        weight = try Tensor.ones([dims])
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try rmsNorm(x, weight: weight, eps: eps)
    }
}
