import Foundation
import RobotData
import RobotSim
import TensorKit

/// The smallest real policy: native state → native action through one `Linear` layer
/// (`a = W s + b`, W `[A, S]`). It stands in for the VLA in tests and until the VLA
/// implements `ActorPolicy`: trained by `BehaviorCloningBackend`, published, and run by
/// actors. Inference runs in plain Swift from a cached copy of the weights, so actors do
/// not touch MLX per step.
public final class LinearPolicy: Module, ActorPolicy, @unchecked Sendable {
    public static let modelName = "linear-bc"
    public let linear: Linear
    public let stateDimension: Int
    public let actionDimension: Int
    /// Version of the loaded weights (0 = the initial random ones).
    public private(set) var version = 0
    private var cachedWeight: [Float] = []
    private var cachedBias: [Float] = []

    public init(stateDimension: Int, actionDimension: Int, seed: UInt64) throws {
        self.stateDimension = stateDimension
        self.actionDimension = actionDimension
        linear = try TensorLock.run { try Linear(stateDimension, actionDimension, key: RandomKey(seed: seed)) }
        super.init()
        try TensorLock.run { try refreshCache() }
    }

    public convenience init(embodiment: EmbodimentSpec, seed: UInt64) throws {
        try self.init(stateDimension: embodiment.stateDimension, actionDimension: embodiment.actionDimension, seed: seed)
    }

    /// `[B, S]` → `[B, A]`.
    public func callAsFunction(_ states: Tensor) throws -> Tensor { try linear(states) }

    public func load(weights: [String: Tensor], version: Int) throws {
        try TensorLock.run {
            try update(parameters: weights)
            try refreshCache()
        }
        self.version = version
    }

    /// One action (a chunk of length 1).
    public func actionChunk(observation: Observation, instruction: String) throws -> [[Float]] {
        let s = observation.state
        guard s.count == stateDimension else {
            throw TensorError.shapeMismatch("LinearPolicy expects state [\(stateDimension)], got [\(s.count)]")
        }
        var action = cachedBias
        for i in 0..<actionDimension {
            var acc: Float = 0
            for j in 0..<stateDimension { acc += cachedWeight[i * stateDimension + j] * s[j] }
            action[i] += acc
        }
        return [action]
    }

    private func refreshCache() throws {
        cachedWeight = try linear.weight.toArray(Float.self)
        cachedBias = try linear.bias?.toArray(Float.self) ?? Array(repeating: 0, count: actionDimension)
    }
}
