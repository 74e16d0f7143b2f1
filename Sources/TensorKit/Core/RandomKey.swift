import CMLX

/// An explicit PRNG key (MLX's threefry key, a `uint32 [2]` tensor).
///
/// All randomness in SwiftVLA flows from keys: a run seeded the same way draws the same
/// numbers. Split a key rather than reusing it for two different draws.
public struct RandomKey: @unchecked Sendable {
    public let tensor: Tensor

    public init(seed: UInt64) {
        // A seed always makes a key.
        tensor = try! Tensor.wrap(cmlx_random_key(seed), "random.key")
    }
    init(tensor: Tensor) { self.tensor = tensor }

    /// `n` independent keys derived from this one.
    public func split(into n: Int) throws -> [RandomKey] {
        let keys = try Tensor.wrap(cmlx_random_split(tensor.raw, Int32(n)), "random.split")
        return try (0..<n).map { i in RandomKey(tensor: try keys.slice(axis: 0, i..<(i + 1)).reshaped([2])) }
    }
    /// Two keys: one to use now, one to carry forward.
    public func split() throws -> (RandomKey, RandomKey) {
        let k = try split(into: 2)
        return (k[0], k[1])
    }

    // MARK: draws

    /// Standard normal samples (scaled and shifted when asked).
    public func normal(_ shape: [Int], mean: Double = 0, std: Double = 1, dtype: DType = .float32) throws -> Tensor {
        let dims = shape.map(Int32.init)
        let z = try Tensor.wrap(cmlx_random_normal(dims, Int32(dims.count), dtype.rawValue, tensor.raw), "random.normal")
        if mean == 0 && std == 1 { return z }
        return try z * std + mean
    }
    /// Uniform samples in `[low, high)`.
    public func uniform(_ shape: [Int], low: Double = 0, high: Double = 1, dtype: DType = .float32) throws -> Tensor {
        let dims = shape.map(Int32.init)
        let lo = Tensor(scalar: low, dtype: dtype), hi = Tensor(scalar: high, dtype: dtype)
        return try Tensor.wrap(cmlx_random_uniform(lo.raw, hi.raw, dims, Int32(dims.count), dtype.rawValue, tensor.raw), "random.uniform")
    }
    /// Booleans that are true with probability `p` (a scalar or a broadcastable tensor).
    public func bernoulli(_ p: Tensor, shape: [Int]) throws -> Tensor {
        let dims = shape.map(Int32.init)
        return try Tensor.wrap(cmlx_random_bernoulli(p.raw, dims, Int32(dims.count), tensor.raw), "random.bernoulli")
    }
    public func bernoulli(_ p: Double, shape: [Int]) throws -> Tensor {
        try bernoulli(Tensor(scalar: p, dtype: .float32), shape: shape)
    }
    /// Integers in `[low, high)`.
    public func randint(_ shape: [Int], low: Int, high: Int, dtype: DType = .int32) throws -> Tensor {
        let dims = shape.map(Int32.init)
        let lo = Tensor(scalar: Double(low), dtype: dtype), hi = Tensor(scalar: Double(high), dtype: dtype)
        return try Tensor.wrap(cmlx_random_randint(lo.raw, hi.raw, dims, Int32(dims.count), dtype.rawValue, tensor.raw), "random.randint")
    }
    /// Class indices drawn from unnormalised log-probabilities along `axis`.
    public func categorical(logits: Tensor, axis: Int = -1) throws -> Tensor {
        try Tensor.wrap(cmlx_random_categorical(logits.raw, Int32(axis), tensor.raw), "random.categorical")
    }
    public func gumbel(_ shape: [Int], dtype: DType = .float32) throws -> Tensor {
        let dims = shape.map(Int32.init)
        return try Tensor.wrap(cmlx_random_gumbel(dims, Int32(dims.count), dtype.rawValue, tensor.raw), "random.gumbel")
    }
    /// A random permutation of `0 ..< n`.
    public func permutation(_ n: Int) throws -> Tensor {
        try Tensor.wrap(cmlx_random_permutation(Int32(n), tensor.raw), "random.permutation")
    }

    /// Gamma(α, 1) samples (α > 0), by Marsaglia–Tsang rejection done for a fixed number
    /// of candidates at once (MLX has no gamma sampler). With α ≥ 1 each candidate is
    /// accepted with probability > 0.95, so 16 candidates leave < 1e-20 chance of none;
    /// α < 1 uses Gamma(α) = Gamma(α + 1)·U^(1/α).
    public func gamma(_ shape: [Int], alpha: Double) throws -> Tensor {
        guard alpha > 0 else { throw TensorError.shapeMismatch("gamma needs alpha > 0, got \(alpha)") }
        let keys = try split(into: 3)
        let a = alpha < 1 ? alpha + 1 : alpha
        let d = a - 1.0 / 3.0, c = 1.0 / (9.0 * d).squareRoot()
        let candidates = 16
        let x = try keys[0].normal([candidates] + shape)
        let u = try keys[1].uniform([candidates] + shape)
        let v = try (x * c + 1).pow(3)
        let positive = try v.greater(0)
        let safeV = try which(positive, v, Tensor(scalar: 1, dtype: .float32))
        let bound = try x.square() * 0.5 + d - safeV * d + safeV.log() * d
        let accepted = try positive.logicalAnd(u.log().less(bound))
        let first = try accepted.astype(.int32).argmax(axis: 0, keepDims: true)
        var sample = try (safeV * d).takeAlongAxis(first, axis: 0).squeezed([0])
        if alpha < 1 {
            sample = try sample * keys[2].uniform(shape).pow(1 / alpha)
        }
        return sample
    }

    /// Beta(α, β) samples as X / (X + Y) with X ~ Gamma(α), Y ~ Gamma(β); Beta(α, 1) uses the
    /// exact inverse CDF U^(1/α).
    public func beta(_ shape: [Int], alpha: Double, beta b: Double) throws -> Tensor {
        if b == 1 { return try uniform(shape).pow(1 / alpha) }
        let (k1, k2) = try split()
        let x = try k1.gamma(shape, alpha: alpha), y = try k2.gamma(shape, alpha: b)
        return try x / (x + y)
    }
}
