import TensorKit

/// One layer of the action expert: self-attention over the suffix (state + action tokens),
/// cross-attention to the backbone's prefix tokens, MLP; pre-RMSNorm residuals.
public final class ActionExpertBlock: Module, @unchecked Sendable {
    public let selfNorm: RMSNorm
    public let selfAttention: MultiHeadAttention
    public let crossNorm: RMSNorm
    public let crossAttention: MultiHeadAttention
    public let mlpNorm: RMSNorm
    public let mlp: MLP

    public init(dims: Int, heads: Int, key: RandomKey) throws {
        let k = try key.split(into: 3)
        selfNorm = try RMSNorm(dims)
        selfAttention = try MultiHeadAttention(dims: dims, heads: heads, key: k[0])
        crossNorm = try RMSNorm(dims)
        crossAttention = try MultiHeadAttention(dims: dims, heads: heads, key: k[1])
        mlpNorm = try RMSNorm(dims)
        mlp = try MLP(dims: dims, hidden: 4 * dims, activation: .gelu, key: k[2])
        super.init()
    }

    /// This layer's keys and values of the prefix `[B, Lp, D]`: computed once per
    /// observation and reused by every noise draw and Euler step.
    public func prefixMemory(_ prefix: Tensor) throws -> (keys: Tensor, values: Tensor) {
        try crossAttention.projectMemory(keys: prefix, values: prefix)
    }

    /// x `[B, Ls, D]`, memory from `prefixMemory`, prefixMask `[B, 1, 1, Lp]` bool → `[B, Ls, D]`.
    /// `speed` modulates the three norms in order (self-attention, cross-attention, MLP).
    public func callAsFunction(_ x: Tensor, memory: (keys: Tensor, values: Tensor), prefixMask: Tensor,
                               speed: ArraySlice<NormModulation>? = nil) throws -> Tensor {
        let m = speed.map(Array.init)
        var h = try x + selfAttention(m?[0].apply(selfNorm(x)) ?? selfNorm(x))
        h = try h + crossAttention.attend(queries: m?[1].apply(crossNorm(h)) ?? crossNorm(h), memory: memory, mask: .tensor(prefixMask))
        return try h + mlp(m?[2].apply(mlpNorm(h)) ?? mlpNorm(h))
    }

    /// Norms this block's speed modulation covers.
    public static let modulatedNorms = 3
}
