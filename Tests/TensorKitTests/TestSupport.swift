import Foundation
import Testing
@testable import TensorKit

/// Deterministic test inputs that NumPy reproduces exactly: `sin(a·i + b)` for i in 0..<n
/// (the reference scripts in the comments build the same arrays in float64).
func pattern(_ n: Int, _ a: Double = 0.37, _ b: Double = 0.1) -> [Float] {
    (0..<n).map { Float(sin(a * Double($0) + b)) }
}

func tensor(_ shape: [Int], _ a: Double = 0.37, _ b: Double = 0.1, scale: Float = 1) throws -> Tensor {
    try Tensor(pattern(shape.reduce(1, *), a, b).map { $0 * scale }, shape: shape)
}

/// Asserts elementwise |actual - expected| <= atol + rtol·|expected|.
func expectClose(_ actual: [Float], _ expected: [Float], atol: Float = 1e-5, rtol: Float = 1e-4,
                 _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "count \(actual.count) vs \(expected.count)", sourceLocation: sourceLocation)
    var worst: Float = 0
    var worstIndex = -1
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let excess = Swift.abs(a - e) - (atol + rtol * Swift.abs(e))
        if excess > worst || a.isNaN { worst = a.isNaN ? .infinity : excess; worstIndex = i }
    }
    #expect(worstIndex < 0, "\(comment.map { "\($0): " } ?? "")element \(worstIndex): \(worstIndex >= 0 ? actual[worstIndex] : 0) vs \(worstIndex >= 0 ? expected[worstIndex] : 0)", sourceLocation: sourceLocation)
}

/// Checks the gradient of L(x) = Σ f(x)·w (w a fixed pattern) against central finite
/// differences in float32. Step h = 1e-2 keeps truncation (O(h²)) and round-off
/// (≈ 1e-7·|L|/h) both near 1e-4, so the tolerance is 2e-3 + 2e-2·|g|.
func expectGradientMatchesFiniteDifferences(
    _ shape: [Int], inputScale: Float = 1, offset: Float = 0, h: Float = 1e-2,
    atol: Float = 2e-3, rtol: Float = 2e-2, _ name: String,
    sourceLocation: SourceLocation = #_sourceLocation, _ f: @escaping (Tensor) throws -> Tensor
) throws {
    let n = shape.reduce(1, *)
    let xValues = pattern(n, 0.71, 0.3).map { $0 * inputScale + offset }
    let x = try Tensor(xValues, shape: shape)
    let outShape = try f(x).shape
    let w = try Tensor(pattern(outShape.reduce(1, *), 0.43, 0.9), shape: outShape)
    let loss = { (t: Tensor) throws -> Tensor in try (f(t) * w).sum() }
    let analytic: [Float] = try grad(loss)(x).toArray()
    var numeric = [Float](repeating: 0, count: n)
    for i in 0..<n {
        var plus = xValues, minus = xValues
        plus[i] += h
        minus[i] -= h
        let lp = try loss(Tensor(plus, shape: shape)).item()
        let lm = try loss(Tensor(minus, shape: shape)).item()
        numeric[i] = (lp - lm) / (2 * h)
    }
    expectClose(analytic, numeric, atol: atol, rtol: rtol, "gradient of \(name)", sourceLocation: sourceLocation)
}

/// The next-token loss and gradients of a 2-layer d = 32 `CausalTransformer` made from `seed`, on
/// 4 random sequences of 16 tokens (what the fast-kernel on/off and run-to-run tests compare).
func tinyTransformerLoss(seed: UInt64) throws -> (key: RandomKey, loss: Tensor, grads: [String: Tensor]) {
    let key = RandomKey(seed: seed)
    let model = try CausalTransformer(vocab: 64, dims: 32, heads: 2, layers: 2, maxLength: 16, key: key)
    let tokens = try key.split(into: 3)[1].randint([4, 17], low: 0, high: 64)
    let inputs = try tokens.slice(axis: 1, 0..<16), targets = try tokens.slice(axis: 1, 1..<17)
    let (loss, grads) = try valueAndGrad(model: model) { m in
        try crossEntropy(logits: m(inputs), targets: targets)
    }(model)
    return (key, loss, grads)
}
