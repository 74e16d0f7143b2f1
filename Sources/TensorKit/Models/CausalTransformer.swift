/// A decoder-only transformer over tokens: embedding + learned positions → pre-norm blocks
/// → final norm → logits over the vocabulary. The reference graph for the tensor benchmark
/// and the demo, and a template for the VLA backbone.
public final class CausalTransformer: Module, @unchecked Sendable {
    public let tokenEmbedding: Embedding
    public let positionEmbedding: Embedding
    public let blocks: [TransformerBlock]
    public let norm: LayerNorm
    public let head: Linear

    public init(vocab: Int, dims: Int, heads: Int, layers: Int, maxLength: Int, key: RandomKey) throws {
        let keys = try key.split(into: layers + 3)
        tokenEmbedding = try Embedding(count: vocab, dims: dims, key: keys[0])
        positionEmbedding = try Embedding(count: maxLength, dims: dims, key: keys[1])
        blocks = try (0..<layers).map { try TransformerBlock(dims: dims, heads: heads, key: keys[$0 + 3]) }
        norm = try LayerNorm(dims)
        head = try Linear(dims, vocab, bias: false, key: keys[2])
        super.init()
    }

    /// tokens `[B, L]` (int32) → logits `[B, L, vocab]`.
    public func callAsFunction(_ tokens: Tensor) throws -> Tensor {
        guard tokens.ndim == 2, tokens.dim(1) <= positionEmbedding.weight.dim(0) else {
            throw TensorError.shapeMismatch("CausalTransformer expects [B, L ≤ \(positionEmbedding.weight.dim(0))], got \(tokens.shape)")
        }
        let positions = try Tensor.arange(0, Double(tokens.dim(1)), dtype: .int32)
        var h = try tokenEmbedding(tokens) + positionEmbedding(positions)
        for block in blocks { h = try block(h, mask: .causal) }
        return try head(norm(h))
    }

    /// Matmul FLOPs of one forward pass over `[batch, length]` tokens (2 per multiply-add):
    /// per layer 12·d² per token for projections and MLP, 4·L·d per token for attention scores
    /// and mixing; plus the vocabulary head. Training costs ≈ 3× this.
    public func forwardFLOPs(batch: Int, length: Int) -> Double {
        let d = Double(tokenEmbedding.weight.dim(1)), vocab = Double(head.weight.dim(0))
        let tokens = Double(batch * length)
        let perLayer = 2 * 12 * d * d + 4 * Double(length) * d
        return tokens * (Double(blocks.count) * perLayer + 2 * d * vocab)
    }
}
