/// Zeroes each element with probability `p` during training and rescales the rest by 1/(1-p).
/// Randomness comes from the key passed at each call, so runs stay reproducible.
public final class Dropout: Module, @unchecked Sendable {
    public let p: Double

    public init(_ p: Double = 0.1) {
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1)")
        self.p = p
        super.init()
    }

    public func callAsFunction(_ x: Tensor, key: RandomKey) throws -> Tensor {
        guard isTraining, p > 0 else { return x }
        let keep = try key.bernoulli(1 - p, shape: x.shape)
        return try which(keep, x / (1 - p), Tensor(scalar: 0, dtype: x.dtype))
    }
}
