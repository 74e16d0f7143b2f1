/// Pre-norm transformer block: `x + attn(norm(x))`, then `x + mlp(norm(x))`.
public final class TransformerBlock: Module, @unchecked Sendable {
    public let attentionNorm: LayerNorm
    public let attention: MultiHeadAttention
    public let mlpNorm: LayerNorm
    public let mlp: MLP

    public init(dims: Int, heads: Int, mlpRatio: Int = 4, activation: Activation = .gelu, key: RandomKey) throws {
        let (k1, k2) = try key.split()
        attentionNorm = try LayerNorm(dims)
        attention = try MultiHeadAttention(dims: dims, heads: heads, key: k1)
        mlpNorm = try LayerNorm(dims)
        mlp = try MLP(dims: dims, hidden: dims * mlpRatio, activation: activation, key: k2)
        super.init()
    }

    /// x `[B, L, dims]` → `[B, L, dims]`.
    public func callAsFunction(_ x: Tensor, mask: AttentionMask = .none) throws -> Tensor {
        let h = try x + attention(attentionNorm(x), mask: mask)
        return try h + mlp(mlpNorm(h))
    }
}
