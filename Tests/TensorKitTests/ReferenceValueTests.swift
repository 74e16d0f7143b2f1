import Foundation
import Testing
@testable import TensorKit

// Expected values below were computed once with NumPy in float64 from the same
// sin-pattern inputs (`pattern(n, a, b)` = sin(a·i + b)); the script is quoted per test.
@Suite("Op outputs against NumPy")
struct ReferenceValueTests {
    @Test func matmul() throws {
        // A = pattern(6).reshape(2,3); B = pattern(12,0.53,0.2).reshape(3,4); A @ B
        let a = try tensor([2, 3]), b = try tensor([3, 4], 0.53, 0.2)
        let y: [Float] = try a.matmul(b).toArray()
        expectClose(y, [-0.3657374, -0.5233002, -0.5372768, -0.4038323, 0.0233688, 0.01309441, -0.0007728999, -0.01442814])
    }

    @Test func conv2dSamePaddingAndStride() throws {
        // x = pattern(32,0.29,0.3).reshape(1,4,4,2) NHWC, w = pattern(54,0.41,0.5).reshape(3,3,3,2) OHWI;
        // direct loops over np.pad(x, 1) for padding 1, and x[0,0:3,0:3] for stride 2.
        let x = try tensor([1, 4, 4, 2], 0.29, 0.3), w = try tensor([3, 3, 3, 2], 0.41, 0.5)
        let same: [Float] = try conv2d(x, w, padding: (1, 1)).toArray()
        expectClose(same, [-2.601069, -0.9993168, 1.688827, -5.01734, -4.341446, 1.054185, -4.745005, -7.11476, -1.749812, -0.7174892, -5.657746, -4.44727, 0.7101646, -3.458137, -3.866978, 6.307219, -0.6723517, -6.920985, 8.818905, 4.827411, -4.41213, 4.633969, 6.702336, 1.48436, 4.825394, 6.076529, 0.7216581, 0.4385451, 7.659396, 6.553451, -4.577221, 3.005839, 7.321147, -4.547288, -2.044736, 2.68072, -5.872326, -2.969287, 3.161767, -5.328111, -6.353857, -0.4721037, -1.729498, -4.895913, -2.739811, 0.6392691, -1.457144, -1.969445], atol: 1e-4)
        let strided = try conv2d(x, w, stride: (2, 2))
        #expect(strided.shape == [1, 1, 1, 3])
        expectClose(try strided.toArray(), [6.307219, -0.6723517, -6.920985], atol: 1e-4)
    }

    @Test func softmaxAndLogSumExp() throws {
        // s = 3·pattern(10,0.7,0).reshape(2,5); softmax and log(sum(exp(s))) over the last axis
        let s = try tensor([2, 5], 0.7, 0, scale: 3)
        expectClose(try s.softmax().toArray(), [0.02315239, 0.1599324, 0.445166, 0.3085013, 0.06324793, 0.2081771, 0.04364163, 0.03129258, 0.089742, 0.6271467])
        expectClose(try s.logSumExp(axis: -1).toArray(), [3.765657, 0.5170165])
        let ls: [Float] = try s.logSoftmax().exp().toArray()
        expectClose(ls, try s.softmax().toArray())
    }

    @Test func layerNormAndRMSNorm() throws {
        // l = 2·pattern(12,0.61,0.4).reshape(2,6); g = 1 + 0.1·arange(6); b = 0.05·arange(6) - 0.1
        // layer norm: (l - mean)/sqrt(var + 1e-5)·g + b; rms norm: l/sqrt(mean(l²) + 1e-6)·g
        let l = try tensor([2, 6], 0.61, 0.4, scale: 2)
        let g = try Tensor((0..<6).map { 1 + 0.1 * Float($0) }), b = try Tensor((0..<6).map { 0.05 * Float($0) - 0.1 })
        expectClose(try layerNorm(l, weight: g, bias: b, eps: 1e-5).toArray(), [-0.3595433, 0.8125337, 1.357006, 0.9022097, -0.5584434, -2.610969, -0.8169321, -1.197131, -0.9531874, -0.02930736, 1.349633, 2.733767], atol: 2e-5)
        expectClose(try rmsNorm(l, weight: g, eps: 1e-6).toArray(), [0.5835898, 1.395986, 1.796166, 1.540017, 0.6232126, -0.6823397, -1.109986, -1.535153, -1.413367, -0.6957316, 0.420686, 1.541655], atol: 2e-5)
    }

    @Test func attentionPlainAndCausal() throws {
        // q = pattern(24,0.31,0.1).reshape(1,2,3,4); k = pattern(40,0.23,0.7), v = pattern(40,0.19,1.1) as (1,2,5,4)
        // softmax(q kᵀ · 0.5) v; causal: q attends to itself with tril mask, -inf elsewhere.
        let q = try tensor([1, 2, 3, 4], 0.31, 0.1), k = try tensor([1, 2, 5, 4], 0.23, 0.7), v = try tensor([1, 2, 5, 4], 0.19, 1.1)
        let plain: [Float] = try scaledDotProductAttention(queries: q, keys: k, values: v, scale: 0.5).toArray()
        expectClose(plain, [0.6728235, 0.6280351, 0.5606428, 0.4730721, 0.8094432, 0.774766, 0.7122037, 0.6240081, 0.3366506, 0.2473056, 0.1490597, 0.04544885, -0.3795844, -0.3207994, -0.2504683, -0.1711225, -0.3685357, -0.2982015, -0.2171345, -0.1282525, 0.1658447, 0.2849071, 0.3937153, 0.4883531])
        let causal: [Float] = try scaledDotProductAttention(queries: q, keys: q, values: q, scale: 0.5, mask: .causal).toArray()
        let expected: [Float] = [0.09983342, 0.3986093, 0.6593847, 0.857299, 0.704723, 0.8128234, 0.8434351, 0.7936397, 0.5781492, 0.5605738, 0.4895572, 0.3718697, -0.6275538, -0.835151, -0.9631309, -0.9992928, -0.7772132, -0.8142335, -0.7736306, -0.6592754, -0.3033534, -0.1136173, 0.08695022, 0.2792286]
        expectClose(causal, expected)
        // The same mask given as a boolean tensor.
        let tri = try Tensor.ones([3, 3]).tril().greater(0.5)
        expectClose(try scaledDotProductAttention(queries: q, keys: q, values: q, scale: 0.5, mask: .tensor(tri)).toArray(), expected)
    }

    @Test func reductionsAndIndexing() throws {
        let x = try Tensor((0..<12).map { Float($0) }, shape: [3, 4])
        // Closed forms over 0..11 laid out row-major in [3, 4].
        #expect(try x.sum().item() == 66)
        #expect(try x.sum(axis: 0).toArray() == [12, 15, 18, 21] as [Float])
        #expect(try x.mean(axis: 1, keepDims: true).shape == [3, 1])
        #expect(try x.max(axis: 1).toArray() == [3, 7, 11] as [Float])
        #expect(try x.argmax(axis: 0).toArray() == [2, 2, 2, 2] as [UInt32])
        #expect(try x.slice(axis: 1, 1..<3).toArray() == [1, 2, 5, 6, 9, 10] as [Float])
        #expect(try x.take(Tensor([2, 0] as [Int32]), axis: 0).toArray() == [8, 9, 10, 11, 0, 1, 2, 3] as [Float])
        #expect(try x.T.toArray() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11] as [Float])
        let parts = try x.split(parts: 2, axis: 1)
        #expect(try concatenated(parts, axis: 1).toArray() == (0..<12).map(Float.init))
        #expect(try stacked([x, x]).shape == [2, 3, 4])
        #expect(try x.cumsum(axis: 1).toArray().prefix(4) == [0, 1, 3, 6])
        #expect(try which(x.greater(5), x, Tensor(-1)).toArray() == [-1, -1, -1, -1, -1, -1, 6, 7, 8, 9, 10, 11] as [Float])
    }

    @Test func dtypesRoundTrip() throws {
        let bytes: [UInt8] = [0, 1, 127, 255]
        #expect(try Tensor(bytes, shape: [2, 2]).toArray() == bytes)
        let ints: [Int32] = [-5, 0, 7, Int32.max]
        #expect(try Tensor(ints).toArray() == ints)
        // bfloat16 keeps 8 mantissa bits: 1.5 and -2.25 are exact, 0.1 rounds to 0.10009765625.
        let bf = try Tensor([1.5, -2.25, 0.1] as [Float]).astype(.bfloat16)
        #expect(bf.dtype == .bfloat16)
        #expect(try bf.toArray(Float.self) == [1.5, -2.25, 0.10009765625])
        #expect(try Tensor.arange(0, 5).toArray() == [0, 1, 2, 3, 4] as [Float])
        #expect(try Tensor.full([2], value: 3, dtype: .int32).toArray() == [3, 3] as [Int32])
    }

    @Test func badShapesThrowTypedErrors() throws {
        let a = try Tensor.zeros([2, 3]), b = try Tensor.zeros([4, 5])
        #expect(throws: TensorError.self) { try a.matmul(b) }
        #expect(throws: TensorError.self) { try a + b }
        #expect(throws: TensorError.self) { try a.reshaped([7]) }
        #expect(throws: TensorError.self) { try Tensor([1, 2, 3] as [Float], shape: [2, 2]) }
        #expect(throws: TensorError.self) { try a.slice(axis: 1, 0..<9) }
        #expect(throws: TensorError.self) { try conv2d(a, b) }
        do {
            _ = try a.matmul(b)
        } catch let TensorError.mlx(op, message) {
            #expect(op.contains("matmul"))
            #expect(!message.isEmpty)
        }
        // The process carries on: a valid op after the failures still works.
        #expect(try (a + 1).sum().item() == 6)
    }

    @Test func compiledFunctionMatchesEager() throws {
        let f = { (xs: [Tensor]) throws -> [Tensor] in [try (xs[0].tanh() * xs[1] + xs[0].square()).sum(axis: 1)] }
        let compiled = try CompiledFunction(f)
        let x = try tensor([4, 8]), y = try tensor([4, 8], 0.2, 0.5)
        expectClose(try compiled([x, y])[0].toArray(), try f([x, y])[0].toArray())
        // A second shape re-traces.
        let x2 = try tensor([2, 8]), y2 = try tensor([2, 8], 0.2, 0.5)
        expectClose(try compiled([x2, y2])[0].toArray(), try f([x2, y2])[0].toArray())
    }
}
