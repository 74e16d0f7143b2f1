/// Lookup table: integer ids `[...]` → vectors `[..., dims]`. weight `[count, dims]`.
public final class Embedding: Module, @unchecked Sendable {
    @Param public var weight: Tensor

    /// Entries drawn from N(0, 1/dims) so embeddings start at unit expected norm.
    public init(count: Int, dims: Int, key: RandomKey) throws {
        weight = try key.normal([count, dims], std: 1 / Double(dims).squareRoot())
        super.init()
    }

    public func callAsFunction(_ ids: Tensor) throws -> Tensor {
        try weight.take(ids, axis: 0)
    }

    /// Logits against the table (weight tying): x `[..., dims]` → `[..., count]`.
    public func asLinear(_ x: Tensor) throws -> Tensor { try x.matmul(weight.T) }
}
