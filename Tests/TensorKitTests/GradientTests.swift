import Foundation
import Testing
@testable import TensorKit

// Every differentiable op: MLX's gradient against central finite differences
// (tolerances in `expectGradientMatchesFiniteDifferences`).
@Suite("Gradients against finite differences")
struct GradientTests {
    @Test func elementwise() throws {
        try expectGradientMatchesFiniteDifferences([3, 4], "exp") { try $0.exp() }
        try expectGradientMatchesFiniteDifferences([3, 4], offset: 2, "log") { try $0.log() }
        try expectGradientMatchesFiniteDifferences([3, 4], offset: 2, "sqrt") { try $0.sqrt() }
        try expectGradientMatchesFiniteDifferences([3, 4], offset: 2, "rsqrt") { try $0.rsqrt() }
        try expectGradientMatchesFiniteDifferences([3, 4], inputScale: 2, "tanh") { try $0.tanh() }
        try expectGradientMatchesFiniteDifferences([3, 4], inputScale: 3, "sigmoid") { try $0.sigmoid() }
        try expectGradientMatchesFiniteDifferences([3, 4], inputScale: 2, "sin·cos") { try $0.sin() * $0.cos() }
        try expectGradientMatchesFiniteDifferences([3, 4], inputScale: 2, "erf") { try $0.erf() }
        try expectGradientMatchesFiniteDifferences([3, 4], inputScale: 3, "gelu") { try $0.gelu() }
        try expectGradientMatchesFiniteDifferences([3, 4], inputScale: 3, "gelu tanh") { try $0.geluApproximate() }
        try expectGradientMatchesFiniteDifferences([3, 4], inputScale: 3, "silu") { try $0.silu() }
        // relu away from its kink: shifted by 0.05, the nearest input is 0.05 from 0 (> h).
        try expectGradientMatchesFiniteDifferences([3, 4], inputScale: 1, offset: 0.05, "relu") { try $0.relu() }
        try expectGradientMatchesFiniteDifferences([3, 4], offset: 2, "pow/divide") { try $0.pow(1.5) / ($0 + 1) }
        try expectGradientMatchesFiniteDifferences([3, 4], offset: 2, "log1p/expm1") { try $0.log1p() + ($0 * 0.1).expm1() }
        // maximum(x, 0.3 - x) has its kink at x = 0.15; the nearest input is 0.146 away.
        try expectGradientMatchesFiniteDifferences([3, 4], "maximum") { try $0.maximum(0.3 - $0) }
        try expectGradientMatchesFiniteDifferences([3, 4], "where") { try which($0.greater(0.05), $0.square(), $0 * 3) }
    }

    @Test func reductionsAndShapes() throws {
        try expectGradientMatchesFiniteDifferences([3, 4], "sum/mean") { try $0.sum(axis: 0) + $0.mean(axis: 0) * 2 }
        try expectGradientMatchesFiniteDifferences([3, 4], "max") { try $0.max(axis: 1) }
        try expectGradientMatchesFiniteDifferences([3, 4], inputScale: 2, "logsumexp") { try $0.logSumExp(axis: 1) }
        try expectGradientMatchesFiniteDifferences([3, 4], "variance") { try $0.variance(axes: [1]) }
        try expectGradientMatchesFiniteDifferences([2, 3, 4], "reshape/transpose/slice") {
            try $0.reshaped([6, 4]).T.slice(axis: 1, 1..<5).square()
        }
        try expectGradientMatchesFiniteDifferences([3, 4], "concatenate/take") {
            try concatenated([$0, $0.square()], axis: 0).take(Tensor([5, 0, 2] as [Int32]), axis: 0)
        }
        try expectGradientMatchesFiniteDifferences([3, 4], "cumsum/broadcast") {
            try $0.cumsum(axis: 1) * $0.sum(axis: 0, keepDims: true).broadcast(to: [3, 4])
        }
    }

    @Test func neuralNetworkOps() throws {
        let w = try tensor([4, 5], 0.3, 0.2)
        try expectGradientMatchesFiniteDifferences([3, 4], "matmul") { try $0.matmul(w) }
        try expectGradientMatchesFiniteDifferences([2, 5], inputScale: 2, "softmax") { try $0.softmax() }
        try expectGradientMatchesFiniteDifferences([2, 5], inputScale: 2, "logSoftmax") { try $0.logSoftmax() }
        let g = try Tensor((0..<6).map { 1 + 0.1 * Float($0) }), b = try Tensor((0..<6).map { 0.05 * Float($0) })
        try expectGradientMatchesFiniteDifferences([2, 6], inputScale: 2, "layerNorm") { try layerNorm($0, weight: g, bias: b) }
        try expectGradientMatchesFiniteDifferences([2, 6], inputScale: 2, "rmsNorm") { try rmsNorm($0, weight: g) }
        let kernel = try tensor([2, 3, 3, 2], 0.41, 0.5)
        try expectGradientMatchesFiniteDifferences([1, 4, 4, 2], "conv2d input") { try conv2d($0, kernel, padding: (1, 1)) }
        let image = try tensor([1, 4, 4, 2], 0.29, 0.3)
        try expectGradientMatchesFiniteDifferences([2, 3, 3, 2], "conv2d weight") { try conv2d(image, $0, stride: (2, 2)) }
        let k = try tensor([1, 2, 5, 4], 0.23, 0.7), v = try tensor([1, 2, 5, 4], 0.19, 1.1)
        try expectGradientMatchesFiniteDifferences([1, 2, 3, 4], "attention q") {
            try scaledDotProductAttention(queries: $0, keys: k, values: v, scale: 0.5)
        }
        try expectGradientMatchesFiniteDifferences([1, 2, 3, 4], "causal self-attention") {
            try scaledDotProductAttention(queries: $0, keys: $0, values: $0, scale: 0.5, mask: .causal)
        }
        let targets = try Tensor([1, 4, 0] as [Int32])
        try expectGradientMatchesFiniteDifferences([3, 5], inputScale: 2, "crossEntropy") { try crossEntropy(logits: $0, targets: targets) }
    }

    @Test func stopGradientBlocksFlow() throws {
        // d/dx [x·stop(x)] = stop(x) = x, not 2x.
        let x = try Tensor([1, 2, 3] as [Float])
        let g: [Float] = try grad { try ($0 * $0.stopGradient()).sum() }(x).toArray()
        #expect(g == [1, 2, 3])
    }

    @Test func vjpAndJvpMatchClosedForm() throws {
        // f(x) = x², J = diag(2x): vjp(c) = 2x·c, jvp(t) = 2x·t.
        let x = try Tensor([1, -2, 3] as [Float]), c = try Tensor([0.5, 1, 2] as [Float])
        let (_, vjps) = try vjp({ [try $0[0].square()] }, primals: [x], cotangents: [c])
        #expect(try vjps[0].toArray() == [1, -4, 12] as [Float])
        let (_, jvps) = try jvp({ [try $0[0].square()] }, primals: [x], tangents: [c])
        #expect(try jvps[0].toArray() == [1, -4, 12] as [Float])
    }

    @Test func errorsThrownInsideTransformsPropagate() throws {
        struct Boom: Error {}
        #expect(throws: Boom.self) { _ = try grad { _ in throw Boom() }(Tensor([1] as [Float])) }
        #expect(throws: TensorError.self) {
            _ = try grad { try $0.matmul(Tensor.zeros([7, 7])).sum() }(Tensor.zeros([2, 3]))
        }
    }
}
