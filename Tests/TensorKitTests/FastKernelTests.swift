import Foundation
import Testing
@testable import TensorKit

// The fast float32 kernels against float64 references from glibc (exp, tanh, erf, erfc),
// their VJPs against finite differences and float64 derivatives, and fast-on vs fast-off
// agreement of a model. Every test pins the switch for its own task with
// `FastKernels.withEnabled`, so tests running in parallel never see it flip.

/// Specials, denormals, magnitudes across the whole float range (log-spaced) and a dense
/// grid over [-120, 120] that covers every branch point of the kernels. ~260K values, so
/// the kernels also take their multithreaded path.
private let wideInputs: [Float] = {
    var v: [Float] = [
        0, -0, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
        .leastNormalMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude,
        -.greatestFiniteMagnitude, 1e-40, -1e-40, 3e-39, 88.72283, 88.7229, 89, -87.33655,
        -103.2789, -103.9721, -104, -1e4, 1e4, 0.625, -0.625, 0.6249999, 1.4142135, -1.4142135,
    ]
    var e = -45.0
    while e < 38.5 {
        v.append(Float(Foundation.pow(10, e)))
        v.append(-Float(Foundation.pow(10, e)))
        e += 0.01
    }
    for i in 0...240_000 { v.append(Float(-120 + Double(i) * 0.001)) }
    return v
}()

/// |got - ref| in units of the float spacing at ref (denormal spacing below 2^-126).
/// NaN must match NaN, infinities must match exactly.
private func ulpError(_ got: Float, _ ref: Double) -> Double {
    if ref.isNaN { return got.isNaN ? 0 : .infinity }
    let rounded = Float(ref)
    if rounded.isInfinite || got.isInfinite || got.isNaN { return got == rounded ? 0 : .infinity }
    let f = Float(Swift.abs(ref))
    // Just above a power of two the spacing below it applies.
    let ulp = f.significandBitPattern == 0 && f.exponentBitPattern > 1 && Double(f) > Swift.abs(ref) ? f.ulp / 2 : f.ulp
    return Swift.abs(Double(got) - ref) / Double(ulp)
}

private struct Errors: CustomStringConvertible {
    var maxUlp = 0.0, maxAbs = 0.0
    var worstUlpInput: Float = 0, worstAbsInput: Float = 0
    /// max over elements of min(abs / 1e-6, ulp / 4): ≤ 1 when each element is within
    /// 1e-6 absolute or 4 ulp.
    var maxScore = 0.0
    var worstScoreInput: Float = 0
    /// Max ulp over results that are normal floats (denormal results inherit the absolute,
    /// not relative, accuracy of σ(x) or Φ(x) times x).
    var maxNormalUlp = 0.0
    var description: String {
        "max \(maxUlp) ulp at x=\(worstUlpInput) (normal results: \(maxNormalUlp)), max abs \(maxAbs) at x=\(worstAbsInput), score \(maxScore) at x=\(worstScoreInput)"
    }
}

/// Runs `op` with the fast kernels on over `inputs` and compares with `reference`.
private func measure(_ name: String, _ inputs: [Float], _ op: (Tensor) throws -> Tensor, _ reference: (Double) -> Double) throws -> Errors {
    let got: [Float] = try FastKernels.withEnabled(true) { try op(Tensor(inputs)).toArray() }
    var e = Errors()
    for (x, y) in zip(inputs, got) {
        let r = reference(Double(x))
        let u = ulpError(y, r)
        if u > e.maxUlp || u.isNaN { e.maxUlp = u.isNaN ? .infinity : u; e.worstUlpInput = x }
        let a = r.isFinite && y.isFinite ? Swift.abs(Double(y) - r) : (u == 0 ? 0 : .infinity)
        if a > e.maxAbs { e.maxAbs = a; e.worstAbsInput = x }
        let score = Swift.min(a / 1e-6, u / 4)
        if score > e.maxScore || score.isNaN { e.maxScore = score.isNaN ? .infinity : score; e.worstScoreInput = x }
        if Swift.abs(r) >= Double(Float.leastNormalMagnitude) || !r.isFinite { e.maxNormalUlp = Swift.max(e.maxNormalUlp, u) }
    }
    if ProcessInfo.processInfo.environment["FAST_KERNEL_REPORT"] != nil { print("accuracy \(name):", e) }
    return e
}

/// Limit values where x·(something → 0) would be -inf·0 in double as well.
private func limit(_ x: Double, _ f: (Double) -> Double) -> Double { x == -.infinity ? 0 : f(x) }

private func gelu64(_ x: Double) -> Double { limit(x) { 0.5 * $0 * erfc(-$0 / 2.0.squareRoot()) } }
/// ½x(1 + tanh u) written as x·σ(2u) (the same function; no cancellation in float64 either).
private func geluTanh64(_ x: Double) -> Double {
    limit(x) { x in
        let u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
        return x / (1 + Foundation.exp(-2 * u))
    }
}
private func sigmoid64(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }

@Suite("Fast kernels")
struct FastKernelTests {
    // Tolerances (the targets): exp, tanh, sigmoid within 4 ulp everywhere, SiLU
    // within 4 ulp wherever the result is a normal float; erf within 1e-6 absolute; both
    // GELUs within 1e-6 absolute or 4 ulp per element (GELU(x) = x for large x, where float32
    // has no 1e-6 absolute accuracy; in the far negative tail the results are tiny and the
    // float32 rounding of the input dominates their relative error).

    @Test func expWithin4Ulp() throws {
        let e = try measure("exp", wideInputs, { try $0.exp() }, { Foundation.exp($0) })
        #expect(e.maxUlp <= 4, "exp: \(e)")
    }

    @Test func tanhWithin4Ulp() throws {
        let e = try measure("tanh", wideInputs, { try $0.tanh() }, { Foundation.tanh($0) })
        #expect(e.maxUlp <= 4, "tanh: \(e)")
    }

    @Test func sigmoidWithin4Ulp() throws {
        let e = try measure("sigmoid", wideInputs, { try $0.sigmoid() }, sigmoid64)
        #expect(e.maxUlp <= 4, "sigmoid: \(e)")
    }

    @Test func siluWithin4Ulp() throws {
        // Below -87, σ(x) is a denormal with absolute error ≤ 1 denormal ulp, which x·σ(x)
        // scales by |x| ≤ 104: such results are checked to 1e-42 absolute instead.
        let e = try measure("silu", wideInputs, { try $0.silu() }, { limit($0) { $0 * sigmoid64($0) } })
        #expect(e.maxNormalUlp <= 4, "silu: \(e)")
        let deep = try measure("silu", wideInputs.filter { $0 < -87 }, { try $0.silu() }, { limit($0) { $0 * sigmoid64($0) } })
        #expect(deep.maxAbs <= 1e-42, "silu below -87: \(deep)")
    }

    @Test func erfWithin1e6() throws {
        let e = try measure("erf", wideInputs, { try $0.erf() }, { Foundation.erf($0) })
        #expect(e.maxAbs <= 1e-6, "erf: \(e)")
    }

    @Test func geluWithin1e6() throws {
        let e = try measure("gelu", wideInputs, { try $0.gelu() }, gelu64)
        #expect(e.maxScore <= 1, "gelu: \(e)")
    }

    @Test func geluTanhWithin1e6() throws {
        let e = try measure("geluApproximate", wideInputs, { try $0.geluApproximate() }, geluTanh64)
        #expect(e.maxScore <= 1, "gelu_tanh: \(e)")
    }

    /// Gradients of Σf(x) (the VJPs with cotangent 1) over the wide inputs against float64
    /// derivatives: ≤ 1e-6 absolute + 1e-5 relative, and no NaN at ±inf.
    @Test func derivativesMatchFloat64() throws {
        let inputs = wideInputs.filter { !$0.isNaN }
        let cases: [(String, (Tensor) throws -> Tensor, (Double) -> Double)] = [
            ("exp", { try $0.exp() }, { Foundation.exp($0) }),
            ("tanh", { try $0.tanh() }, { x in let t = Foundation.tanh(x); return 1 - t * t }),
            ("sigmoid", { try $0.sigmoid() }, { x in let s = sigmoid64(x); return s * (1 - s) }),
            ("silu", { try $0.silu() }, { x in
                x.isInfinite ? (x > 0 ? 1 : 0) : sigmoid64(x) * (1 + x * sigmoid64(-x)) }),
            ("erf", { try $0.erf() }, { x in 2 / Double.pi.squareRoot() * Foundation.exp(-x * x) }),
            ("gelu", { try $0.gelu() }, { x in
                x.isInfinite ? (x > 0 ? 1 : 0)
                    : 0.5 * erfc(-x / 2.0.squareRoot()) + x * Foundation.exp(-x * x / 2) / (2 * Double.pi).squareRoot() }),
            ("gelu_tanh", { try $0.geluApproximate() }, { x in
                if x.isInfinite || Swift.abs(x) > 1e4 { return x > 0 ? 1 : 0 }
                let v = 2 * 0.7978845608028654 * (x + 0.044715 * x * x * x)
                let dv = 2 * 0.7978845608028654 * (1 + 3 * 0.044715 * x * x)
                let s = sigmoid64(v)
                return s + x * s * sigmoid64(-v) * dv }),
        ]
        for (name, f, df) in cases {
            let g: [Float] = try FastKernels.withEnabled(true) {
                try grad({ try f($0).sum() })(Tensor(inputs)).toArray()
            }
            var worst = 0.0, worstX: Float = 0
            for (x, y) in zip(inputs, g) {
                let r = df(Double(x))
                if Float(r).isInfinite { if y != Float(r) { worst = .infinity; worstX = x }; continue }
                let excess = y.isNaN ? .infinity : Swift.abs(Double(y) - r) - (1e-6 + 1e-5 * Swift.abs(r))
                if excess > worst { worst = excess; worstX = x }
            }
            #expect(worst <= 0, "d/dx \(name) at x=\(worstX)")
        }
    }

    @Test func vjpsMatchFiniteDifferences() throws {
        try FastKernels.withEnabled(true) {
            try expectGradientMatchesFiniteDifferences([3, 7], inputScale: 2, "exp") { try $0.exp() }
            try expectGradientMatchesFiniteDifferences([3, 7], inputScale: 3, "tanh") { try $0.tanh() }
            try expectGradientMatchesFiniteDifferences([3, 7], inputScale: 5, "sigmoid") { try $0.sigmoid() }
            try expectGradientMatchesFiniteDifferences([3, 7], inputScale: 5, "silu") { try $0.silu() }
            try expectGradientMatchesFiniteDifferences([3, 7], inputScale: 3, "erf") { try $0.erf() }
            try expectGradientMatchesFiniteDifferences([3, 7], inputScale: 4, "gelu") { try $0.gelu() }
            try expectGradientMatchesFiniteDifferences([3, 7], inputScale: 4, "gelu_tanh") { try $0.geluApproximate() }
            // Second derivatives: the derivative ops have VJPs of their own.
            try expectGradientMatchesFiniteDifferences([3, 7], inputScale: 4, "silu'") { try $0.siluDerivative() }
            try expectGradientMatchesFiniteDifferences([3, 7], inputScale: 2, "erf'") { try $0.erfDerivative() }
            try expectGradientMatchesFiniteDifferences([3, 7], inputScale: 4, "gelu'") { try $0.geluDerivative() }
            try expectGradientMatchesFiniteDifferences([3, 7], inputScale: 4, "gelu_tanh'") { try $0.geluApproximateDerivative() }
        }
    }

    /// Strided inputs, float16 inputs, jvp and compile take their own paths; all give the
    /// same values.
    @Test func layoutsDtypesAndJVP() throws {
        try FastKernels.withEnabled(true) {
            let x = try tensor([64, 48], scale: 4)
            let viaTranspose: [Float] = try x.transposed().gelu().transposed().toArray()
            let direct: [Float] = try x.gelu().toArray()
            #expect(viaTranspose == direct)
            // Every other column: a view with gaps, which the kernel gathers first.
            let strided: [Float] = try x.slice(start: [0, 0], stop: [64, 48], strides: [1, 2]).gelu().toArray()
            #expect(strided == (0..<64).flatMap { r in stride(from: 0, to: 48, by: 2).map { direct[r * 48 + $0] } })
            #expect(try Tensor.zeros([0, 3]).silu().shape == [0, 3])
            let half = try x.astype(.float16).tanh()
            #expect(half.dtype == .float16)
            expectClose(try half.astype(.float32).toArray(), try x.tanh().toArray(), atol: 2e-3, rtol: 2e-3, "float16 tanh")
            // jvp with tangent 1 is the derivative.
            let xs = pattern(50, 0.71, 0.3).map { $0 * 4 }
            let (_, tangents) = try jvp({ [try $0[0].silu()] }, primals: [Tensor(xs)], tangents: [Tensor.ones([50])])
            let expected = xs.map { x in Float(sigmoid64(Double(x)) * (1 + Double(x) * sigmoid64(-Double(x)))) }
            expectClose(try tangents[0].toArray(), expected, atol: 1e-6, rtol: 1e-5, "jvp silu")
            // compile traces the fast ops like any other op, with gradients through them.
            let compiled = try CompiledFunction { xs in
                [try xs[0].gelu(), try grad({ try $0.geluApproximate().sum() })(xs[0])]
            }
            let outs = try compiled([x])
            #expect(try outs[0].toArray() as [Float] == direct)
            let gradDirect: [Float] = try grad({ try $0.geluApproximate().sum() })(x).toArray()
            #expect(try outs[1].toArray() as [Float] == gradDirect)
        }
    }

    /// A small transformer (GELU MLPs) and an MLP per other activation: loss and every
    /// gradient with the fast kernels on vs off agree to 1e-5 relative loss, and gradients
    /// within 1e-5 + 1e-3·|g| (float32 reassociation noise through LayerNorm and attention).
    @Test func fastOnAndOffAgree() throws {
        func run(_ fast: Bool) throws -> (Float, [String: [Float]], [[Float]]) {
            try FastKernels.withEnabled(fast) {
                let (key, loss, grads) = try tinyTransformerLoss(seed: 7)
                var g: [String: [Float]] = [:]
                for (k, v) in grads { g[k] = try v.toArray() }
                var mlps: [[Float]] = []
                for act in [Activation.silu, .geluApproximate, .tanh, .gelu] {
                    let mlp = try MLP(dims: 8, hidden: 16, activation: act, key: key)
                    let x = try tensor([5, 8], scale: 3)
                    let (l, gm) = try valueAndGrad(model: mlp) { m in try m(x).square().sum() }(mlp)
                    mlps.append([try l.item()] + gm.keys.sorted().flatMap { try! gm[$0]!.toArray() as [Float] })
                }
                return (try loss.item(), g, mlps)
            }
        }
        let (lossOn, gradsOn, mlpOn) = try run(true)
        let (lossOff, gradsOff, mlpOff) = try run(false)
        #expect(Swift.abs(lossOn - lossOff) <= 1e-5 * Swift.abs(lossOff), "loss \(lossOn) vs \(lossOff)")
        #expect(gradsOn.keys.sorted() == gradsOff.keys.sorted())
        for k in gradsOff.keys.sorted() {
            expectClose(gradsOn[k]!, gradsOff[k]!, atol: 1e-5, rtol: 1e-3, "grad \(k)")
        }
        for (a, b) in zip(mlpOn, mlpOff) { expectClose(a, b, atol: 1e-5, rtol: 1e-4, "MLP loss and grads") }
    }

    /// The scalar fallback (used where AVX2+FMA is missing) gives the same bits as the SIMD
    /// code: same operations in the same order, each correctly rounded.
    @Test func scalarFallbackMatchesSIMDBitForBit() {
        var simd = [Float](repeating: 0, count: wideInputs.count), scalar = simd
        for op in FastKernels.Op.allCases {
            FastKernels.apply(op, wideInputs, into: &simd, simd: true)
            FastKernels.apply(op, wideInputs, into: &scalar, simd: false)
            let mismatch = simd.indices.first { simd[$0].bitPattern != scalar[$0].bitPattern && !(simd[$0].isNaN && scalar[$0].isNaN) }
            #expect(mismatch == nil, "\(op) at x=\(mismatch.map { wideInputs[$0] } ?? 0): \(mismatch.map { simd[$0] } ?? 0) vs \(mismatch.map { scalar[$0] } ?? 0)")
        }
    }

    /// Same seed, same results, bit for bit: the kernels' per-element result does not depend
    /// on how the array is split across threads.
    @Test func bitIdenticalRunToRun() throws {
        func run() throws -> [Float] {
            try FastKernels.withEnabled(true) {
                let (key, loss, grads) = try tinyTransformerLoss(seed: 11)
                let big = try key.normal([300, 1000]) * 6  // > 64K elements: the threaded path
                let acts = [try big.gelu(), try big.silu(), try big.exp(), try big.erf()]
                let sums = try acts.map { try $0.sum().item() }
                let slice: [Float] = try acts[0].reshaped([-1]).slice(axis: 0, 99_990..<100_030).toArray()
                return [try loss.item()] + grads.keys.sorted().flatMap { try! grads[$0]!.toArray() as [Float] } + sums + slice
            }
        }
        let a = try run(), b = try run()
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
    }
}
