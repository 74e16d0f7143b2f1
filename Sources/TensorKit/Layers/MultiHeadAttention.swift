/// Multi-head attention with separate query/key/value/output projections and MLX's fused
/// scaled-dot-product kernel. Inputs `[B, L, dims]`; keys/values may be a different length.
public final class MultiHeadAttention: Module, @unchecked Sendable {
    public let query: Linear
    public let key: Linear
    public let value: Linear
    public let output: Linear
    public let heads: Int

    public init(dims: Int, heads: Int, keyDims: Int? = nil, bias: Bool = true, key randomKey: RandomKey) throws {
        guard dims % heads == 0 else {
            throw TensorError.shapeMismatch("attention dims \(dims) not divisible by \(heads) heads")
        }
        let k = try randomKey.split(into: 4)
        query = try Linear(dims, dims, bias: bias, key: k[0])
        key = try Linear(keyDims ?? dims, dims, bias: bias, key: k[1])
        value = try Linear(keyDims ?? dims, dims, bias: bias, key: k[2])
        output = try Linear(dims, dims, bias: bias, key: k[3])
        self.heads = heads
        super.init()
    }

    /// `[B, L, H·D]` → `[B, H, L, D]`.
    func splitHeads(_ x: Tensor) throws -> Tensor {
        let s = x.shape
        return try x.reshaped([s[0], s[1], heads, s[2] / heads]).transposed([0, 2, 1, 3])
    }

    public func callAsFunction(
        queries: Tensor, keys: Tensor, values: Tensor, mask: AttentionMask = .none
    ) throws -> Tensor {
        guard queries.ndim == 3, keys.ndim == 3, values.ndim == 3 else {
            throw TensorError.shapeMismatch("attention expects [B, L, D] inputs, got \(queries.shape), \(keys.shape), \(values.shape)")
        }
        let q = try splitHeads(query(queries))
        let k = try splitHeads(key(keys))
        let v = try splitHeads(value(values))
        let headDims = q.dim(3)
        let attended = try scaledDotProductAttention(
            queries: q, keys: k, values: v, scale: 1 / Float(headDims).squareRoot(), mask: mask)
        let s = queries.shape
        return try output(attended.transposed([0, 2, 1, 3]).reshaped([s[0], s[1], -1]))
    }

    /// Projects keys and values once (`[B, Lk, keyDims]` → `[B, H, Lk, D]` each), so many query
    /// sets can attend to the same memory without recomputing them (`attend(queries:memory:)`).
    public func projectMemory(keys: Tensor, values: Tensor) throws -> (keys: Tensor, values: Tensor) {
        (try splitHeads(key(keys)), try splitHeads(value(values)))
    }

    /// Attention of `queries [B, Lq, dims]` to memory projected by `projectMemory`.
    public func attend(queries: Tensor, memory: (keys: Tensor, values: Tensor), mask: AttentionMask = .none) throws -> Tensor {
        let q = try splitHeads(query(queries))
        let attended = try scaledDotProductAttention(
            queries: q, keys: memory.keys, values: memory.values, scale: 1 / Float(q.dim(3)).squareRoot(), mask: mask)
        let s = queries.shape
        return try output(attended.transposed([0, 2, 1, 3]).reshaped([s[0], s[1], -1]))
    }

    /// Self-attention.
    public func callAsFunction(_ x: Tensor, mask: AttentionMask = .none) throws -> Tensor {
        try self(queries: x, keys: x, values: x, mask: mask)
    }
}
