/// Activation functions by name (configs refer to them as strings).
public enum Activation: String, Sendable, Codable {
    case relu, gelu, geluApproximate = "gelu_tanh", silu, tanh

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        switch self {
        case .relu: return try x.relu()
        case .gelu: return try x.gelu()
        case .geluApproximate: return try x.geluApproximate()
        case .silu: return try x.silu()
        case .tanh: return try x.tanh()
        }
    }
}

/// Two-layer perceptron: `down(act(up(x)))`, `[..., dims]` → `[..., outDims]`.
public final class MLP: Module, @unchecked Sendable {
    public let up: Linear
    public let down: Linear
    public let activation: Activation

    public init(dims: Int, hidden: Int, outDims: Int? = nil, activation: Activation = .gelu, key: RandomKey) throws {
        let (k1, k2) = try key.split()
        up = try Linear(dims, hidden, key: k1)
        down = try Linear(hidden, outDims ?? dims, key: k2)
        self.activation = activation
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try down(activation(up(x)))
    }
}
