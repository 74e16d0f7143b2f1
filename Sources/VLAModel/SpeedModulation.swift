import Foundation
import TensorKit

/// Green-VLA's speed conditioning of the action expert: from the episode's speed v (relative
/// to the data's reference speed, so v = 1 is "as the aligned demonstrations move"), a scale
/// and a shift for every RMSNorm of the expert, ĥ = (1 + γ(v))·RMSNorm(h) + β(v).
///
/// The output layer starts at zero (γ = β = 0), so a freshly added modulation leaves the
/// expert exactly as it was and learns only what the speed labels explain.
public final class SpeedModulation: Module, @unchecked Sendable {
    public let embedding: MLP
    public let output: Linear
    public let norms: Int
    public let dims: Int

    /// Features of u = log v: u and sin/cos of kπu/2 for k = 1…4 (v from ~e⁻² to e²).
    public static let featureCount = 9

    public init(dims: Int, norms: Int, key: RandomKey) throws {
        let (k1, k2) = try key.split()
        self.dims = dims
        self.norms = norms
        embedding = try MLP(dims: Self.featureCount, hidden: dims, outDims: dims, activation: .silu, key: k1)
        output = try Linear(dims, 2 * norms * dims, key: k2)
        output.weight = try Tensor.zeros([2 * norms * dims, dims])
        output.bias = try Tensor.zeros([2 * norms * dims])
        super.init()
    }

    /// Features of `logSpeed` `[N]` → `[N, featureCount]` (u clipped to ±2: the knob cannot
    /// leave the range the sinusoids tell apart).
    public static func features(_ logSpeed: Tensor) throws -> Tensor {
        let u = try logSpeed.clip(min: -2, max: 2).reshaped([-1, 1])
        let k = try Tensor((1...4).map { Float($0) * .pi / 2 }, shape: [1, 4])
        let angles = try u * k
        return try concatenated([u, angles.sin(), angles.cos()], axis: 1)
    }

    /// Per norm, (γ, β) `[N, 1, D]` each, for rows with log speeds `[N]`.
    public func callAsFunction(_ logSpeed: Tensor) throws -> [NormModulation] {
        let n = logSpeed.dim(0)
        let out = try output(embedding(Self.features(logSpeed)).silu()).reshaped([n, norms, 2, dims])
        return try (0..<norms).map { i in
            let pair = try out.slice(axis: 1, i..<(i + 1))
            return NormModulation(scale: try pair.slice(axis: 2, 0..<1).reshaped([n, 1, dims]),
                                  shift: try pair.slice(axis: 2, 1..<2).reshaped([n, 1, dims]))
        }
    }
}

/// One RMSNorm's speed modulation: ĥ = (1 + scale)·RMSNorm(h) + shift.
public struct NormModulation {
    public var scale: Tensor
    public var shift: Tensor

    public func apply(_ normalized: Tensor) throws -> Tensor {
        try normalized * (scale + 1) + shift
    }
}
