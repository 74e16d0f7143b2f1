/// `y = x Wᵀ + b`. weight `[out, in]`, bias `[out]`; x `[..., in]` → `[..., out]`.
public final class Linear: Module, @unchecked Sendable {
    @Param public var weight: Tensor
    @OptionalParam public var bias: Tensor?

    /// Weights and bias uniform in ±1/√in (PyTorch's and MLX's default).
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, key: RandomKey) throws {
        let (wk, bk) = try key.split()
        let bound = 1 / Double(inFeatures).squareRoot()
        weight = try wk.uniform([outFeatures, inFeatures], low: -bound, high: bound)
        self.bias = bias ? try bk.uniform([outFeatures], low: -bound, high: bound) : nil
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.dim(-1) == weight.dim(1) else {
            throw TensorError.shapeMismatch("Linear expects [..., \(weight.dim(1))], got \(x.shape)")
        }
        // addmm fuses the bias add into the GEMM epilogue.
        if let bias { return try bias.addmm(x, weight.T) }
        return try x.matmul(weight.T)
    }
}
