import Foundation
import Testing
@testable import TensorKit

// The fused last-axis kernels (softmax, log-softmax, logsumexp, LayerNorm, RMSNorm and their
// VJPs) against straightforward float64 implementations written here, their VJPs against
// central differences of those float64 functions, the scalar fallback against the SIMD
// code, and fast on vs off on a small transformer. Each test pins the switch for its task.

// ---- float64 references, one row at a time ----

private func max64(_ r: [Double]) -> Double { r.reduce(-Double.infinity) { Swift.max($0, $1) } }
private func lse64(_ r: [Double]) -> Double {
    let m = max64(r)
    if m == -.infinity { return -.infinity }
    return m + Foundation.log(r.reduce(0) { $0 + Foundation.exp($1 - m) })
}
private func softmax64(_ r: [Double]) -> [Double] { let l = lse64(r); return r.map { Foundation.exp($0 - l) } }
private func logSoftmax64(_ r: [Double]) -> [Double] { let l = lse64(r); return r.map { $0 - l } }
private func layerNorm64(_ r: [Double], _ w: [Double]?, _ b: [Double]?, _ eps: Double) -> [Double] {
    let n = Double(r.count)
    let mean = r.reduce(0, +) / n
    let variance = r.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
    let s = 1 / (variance + eps).squareRoot()
    return r.indices.map { (r[$0] - mean) * s * (w?[$0] ?? 1) + (b?[$0] ?? 0) }
}
private func rmsNorm64(_ r: [Double], _ w: [Double]?, _ eps: Double) -> [Double] {
    let s = 1 / (r.reduce(0) { $0 + $1 * $1 } / Double(r.count) + eps).squareRoot()
    return r.indices.map { r[$0] * s * (w?[$0] ?? 1) }
}
/// Applies a row function to every row of a row-major [rows, d] buffer.
private func byRows(_ x: [Double], _ d: Int, _ f: ([Double]) -> [Double]) -> [Double] {
    stride(from: 0, to: x.count, by: d).flatMap { f(Array(x[$0..<$0 + d])) }
}

/// Rows of width d: a sine pattern times `scale` plus `offset`, with every fifth row
/// getting -inf entries when `withNegInf` (one such row keeps a single finite entry).
private func rows(_ n: Int, _ d: Int, scale: Float, offset: Float = 0, withNegInf: Bool = false, seed: Double = 0.37) -> [Float] {
    var v = pattern(n * d, seed, 0.2).map { $0 * scale + offset }
    if withNegInf {
        for r in stride(from: 0, to: n, by: 5) {
            for j in stride(from: r % 3, to: d, by: 3) { v[r * d + j] = -.infinity }
        }
        if n > 1 { for j in 1..<d { v[d + j] = -.infinity } }
    }
    return v
}

/// max over elements of |got − ref| − (atol + rtol·|ref|) (≤ 0 passes); equal infinities pass.
/// With FUSED_KERNEL_REPORT set, prints the largest |got − ref| / (atol + rtol·|ref|).
private func excess(_ got: [Float], _ ref: [Double], atol: Double, rtol: Double, _ name: @autoclosure () -> String = "") -> (Double, Int) {
    var worst = -Double.infinity, at = -1, ratio = 0.0
    for (i, (g, r)) in zip(got, ref).enumerated() {
        let e: Double
        if r.isInfinite || g.isInfinite { e = Double(g) == r ? -1 : .infinity }
        else if g.isNaN || r.isNaN { e = g.isNaN && r.isNaN ? -1 : .infinity }
        else {
            e = Swift.abs(Double(g) - r) - (atol + rtol * Swift.abs(r))
            ratio = Swift.max(ratio, Swift.abs(Double(g) - r) / (atol + rtol * Swift.abs(r)))
        }
        if e > worst { worst = e; at = i }
    }
    if ProcessInfo.processInfo.environment["FUSED_KERNEL_REPORT"] != nil { print("error/tolerance \(ratio) \(name())") }
    return (worst, at)
}

private let widths = [1, 7, 8, 13, 64, 100, 256]

@Suite("Fused kernels")
struct FusedKernelTests {
    /// Softmax, log-softmax, logsumexp over rows of every width (tails of 1–7 lanes), with
    /// magnitudes 1, ±80, ±1e4, an offset of 1e4 and -inf entries. Tolerances (2–5× the
    /// worst error measured here): softmax 1e-8 + 1e-6·|p|; log-softmax 5e-6 + 2.5e-7·|ref|
    /// and logsumexp 2.5e-6 + 1.25e-7·|ref| (2–4 ulp: float32 spacing at 2e4 is 2e-3, so
    /// large values are held relative).
    /// -inf entries give exactly 0 / -inf; an all -inf row gives logsumexp -inf.
    @Test func softmaxFamilyMatchesFloat64() throws {
        try FastKernels.withEnabled(true) {
            for d in widths {
                for (scale, offset) in [(Float(1), Float(0)), (80, 0), (1e4, 0), (3, 1e4)] {
                    for negInf in [false, true] {
                        let n = 11
                        let x = rows(n, d, scale: scale, offset: offset, withNegInf: negInf)
                        let t = try Tensor(x, shape: [n, d])
                        let x64 = x.map(Double.init)
                        let what = "d=\(d) scale=\(scale) offset=\(offset) -inf=\(negInf)"
                        let sm: [Float] = try t.softmax().toArray()
                        let (e1, i1) = excess(sm, byRows(x64, d, softmax64), atol: 1e-8, rtol: 1e-6, "softmax \(what)")
                        #expect(e1 <= 0, "softmax \(what) at \(i1)")
                        let ls: [Float] = try t.logSoftmax().toArray()
                        let (e2, i2) = excess(ls, byRows(x64, d, logSoftmax64), atol: 5e-6, rtol: 2.5e-7, "logSoftmax \(what)")
                        #expect(e2 <= 0, "logSoftmax \(what) at \(i2)")
                        let lse: [Float] = try t.logSumExp(axis: -1).toArray()
                        let (e3, i3) = excess(lse, byRows(x64, d) { [lse64($0)] }, atol: 2.5e-6, rtol: 1.25e-7, "logSumExp \(what)")
                        #expect(e3 <= 0, "logSumExp \(what) at \(i3)")
                    }
                }
            }
            let allNegInf = try Tensor([Float](repeating: -.infinity, count: 8), shape: [1, 8])
            #expect(try allNegInf.logSumExp(axis: -1).item() as Float == -.infinity)
            #expect(try FastKernels.withEnabled(false) { try allNegInf.logSumExp(axis: -1).item() as Float } == -.infinity)
        }
    }

    /// LayerNorm (with and without weight/bias) and RMSNorm (with and without weight) over
    /// rows of every width at magnitudes 1, ±80, ±1e4, and an offset of 100 (the two-pass
    /// variance keeps it). Tolerances (2–4× the worst measured): LayerNorm 2.5e-6 +
    /// 2.5e-6·|ref|, with the offset 5e-5 + 2.5e-6·|ref| (the float32 row mean carries
    /// ~ulp(100) = 8e-6 error, which the unit spread scales); RMSNorm 5e-7 + 5e-7·|ref|.
    @Test func normsMatchFloat64() throws {
        try FastKernels.withEnabled(true) {
            for d in widths where d > 1 {
                for (scale, offset) in [(Float(1), Float(0)), (80, 0), (1e4, 0), (1, 100)] {
                    let n = 9
                    let x = rows(n, d, scale: scale, offset: offset)
                    let w = pattern(d, 0.53, 0.4).map { $0 * 2 }, b = pattern(d, 0.29, 1.1)
                    let t = try Tensor(x, shape: [n, d]), wt = Tensor(w), bt = Tensor(b)
                    let x64 = x.map(Double.init), w64 = w.map(Double.init), b64 = b.map(Double.init)
                    let atol = offset == 0 ? 2.5e-6 : 5e-5
                    let what = "d=\(d) scale=\(scale) offset=\(offset)"
                    for (wOn, bOn) in [(true, true), (false, false), (true, false), (false, true)] {
                        let got: [Float] = try layerNorm(t, weight: wOn ? wt : nil, bias: bOn ? bt : nil, eps: 1e-5).toArray()
                        let ref = byRows(x64, d) { layerNorm64($0, wOn ? w64 : nil, bOn ? b64 : nil, 1e-5) }
                        let (e, i) = excess(got, ref, atol: atol, rtol: 2.5e-6, "layerNorm \(what) w=\(wOn) b=\(bOn)")
                        #expect(e <= 0, "layerNorm \(what) w=\(wOn) b=\(bOn) at \(i): \(got[Swift.max(i, 0)]) vs \(ref[Swift.max(i, 0)])")
                    }
                    for wOn in [true, false] {
                        let got: [Float] = try rmsNorm(t, weight: wOn ? wt : nil, eps: 1e-6).toArray()
                        let ref = byRows(x64, d) { rmsNorm64($0, wOn ? w64 : nil, 1e-6) }
                        let (e, i) = excess(got, ref, atol: 5e-7, rtol: 5e-7, "rmsNorm \(what) w=\(wOn)")
                        #expect(e <= 0, "rmsNorm \(what) w=\(wOn) at \(i)")
                    }
                }
            }
        }
    }

    /// Each VJP (cotangent c: a fixed pattern) against central differences of Σ f64(p)·c in
    /// float64 (h = 1e-6·max(1, |p|): truncation and round-off both ≲ 1e-9). Tolerance
    /// 1e-5 + 1e-5·|g| for the float32 VJP (worst measured ~5e-7 relative).
    @Test func vjpsMatchFloat64FiniteDifferences() throws {
        try FastKernels.withEnabled(true) {
            let n = 4, d = 13
            let cot = pattern(n * d, 0.43, 0.9)
            func check(_ name: String, _ p: [Float], shape: [Int], _ f: @escaping (Tensor) throws -> Tensor,
                       _ f64: ([Double]) -> [Double], cotangent: [Float]? = nil) throws {
                let c = cotangent ?? cot
                let ct = try Tensor(c, shape: try f(Tensor(p, shape: shape)).shape)
                let analytic: [Float] = try grad({ try (f($0) * ct).sum() })(Tensor(p, shape: shape)).toArray()
                let cd = c.map(Double.init)
                var numeric = [Double](repeating: 0, count: p.count)
                let p64 = p.map(Double.init)
                for i in p.indices {
                    let h = 1e-6 * Swift.max(1, Swift.abs(p64[i]))
                    var plus = p64, minus = p64
                    plus[i] += h
                    minus[i] -= h
                    let lp = zip(f64(plus), cd).reduce(0) { $0 + $1.0 * $1.1 }
                    let lm = zip(f64(minus), cd).reduce(0) { $0 + $1.0 * $1.1 }
                    numeric[i] = (lp - lm) / (2 * h)
                }
                let (e, i) = excess(analytic, numeric, atol: 1e-5, rtol: 1e-5, "VJP \(name)")
                #expect(e <= 0, "VJP of \(name) at \(i): \(analytic[Swift.max(i, 0)]) vs \(numeric[Swift.max(i, 0)])")
            }
            for scale: Float in [1, 10, 80] {
                let x = rows(n, d, scale: scale)
                try check("softmax ×\(scale)", x, shape: [n, d], { try $0.softmax() }) { byRows($0, d, softmax64) }
                try check("logSoftmax ×\(scale)", x, shape: [n, d], { try $0.logSoftmax() }) { byRows($0, d, logSoftmax64) }
                try check("logSumExp ×\(scale)", x, shape: [n, d], { try $0.logSumExp(axis: -1) },
                          { byRows($0, d) { [lse64($0)] } }, cotangent: Array(cot.prefix(n)))
            }
            let w = pattern(d, 0.53, 0.4).map { $0 * 2 }, b = pattern(d, 0.29, 1.1)
            let w64 = w.map(Double.init), b64 = b.map(Double.init)
            let wt = Tensor(w), bt = Tensor(b)
            for scale: Float in [1, 80] {
                let x = rows(n, d, scale: scale, offset: 0.5)
                let x64 = x.map(Double.init)
                let xt = try Tensor(x, shape: [n, d])
                try check("layerNorm dx ×\(scale)", x, shape: [n, d], { try layerNorm($0, weight: wt, bias: bt) }) {
                    byRows($0, d) { layerNorm64($0, w64, b64, 1e-5) } }
                try check("layerNorm dx no affine ×\(scale)", x, shape: [n, d], { try layerNorm($0, weight: nil, bias: nil) }) {
                    byRows($0, d) { layerNorm64($0, nil, nil, 1e-5) } }
                try check("layerNorm dw ×\(scale)", w, shape: [d], { try layerNorm(xt, weight: $0, bias: bt) }) { wv in
                    byRows(x64, d) { layerNorm64($0, wv, b64, 1e-5) } }
                try check("layerNorm db ×\(scale)", b, shape: [d], { try layerNorm(xt, weight: wt, bias: $0) }) { bv in
                    byRows(x64, d) { layerNorm64($0, w64, bv, 1e-5) } }
                try check("rmsNorm dx ×\(scale)", x, shape: [n, d], { try rmsNorm($0, weight: wt) }) {
                    byRows($0, d) { rmsNorm64($0, w64, 1e-6) } }
                try check("rmsNorm dw ×\(scale)", w, shape: [d], { try rmsNorm(xt, weight: $0) }) { wv in
                    byRows(x64, d) { rmsNorm64($0, wv, 1e-6) } }
            }
        }
    }

    /// Second derivatives go through the VJP primitives' own VJPs (MLX's autodiff of the
    /// same expressions): float32 central differences, the shared helper's tolerance.
    @Test func secondDerivativesMatchFiniteDifferences() throws {
        try FastKernels.withEnabled(true) {
            let c = try tensor([3, 9], 0.43, 0.9)
            let w = try tensor([9], 0.53, 0.4)
            try expectGradientMatchesFiniteDifferences([3, 9], inputScale: 2, "softmax'") { x in
                try grad({ try ($0.softmax() * c).sum() })(x) }
            try expectGradientMatchesFiniteDifferences([3, 9], inputScale: 2, "logSoftmax'") { x in
                try grad({ try ($0.logSoftmax() * c).sum() })(x) }
            try expectGradientMatchesFiniteDifferences([3, 9], inputScale: 2, offset: 0.3, "layerNorm'") { x in
                try grad({ try (layerNorm($0, weight: w, bias: nil) * c).sum() })(x) }
            try expectGradientMatchesFiniteDifferences([3, 9], inputScale: 2, offset: 0.3, "rmsNorm'") { x in
                try grad({ try (rmsNorm($0, weight: w) * c).sum() })(x) }
        }
    }

    /// Strided views, other axes, float16, jvp and compile: the same values as MLX's ops.
    @Test func layoutsAxesDtypesJVPAndCompile() throws {
        let x = try tensor([24, 40], scale: 6)
        let w = try tensor([24], 0.53, 0.4)
        func both(_ f: () throws -> [Float]) throws -> ([Float], [Float]) {
            (try FastKernels.withEnabled(true, f), try FastKernels.withEnabled(false, f))
        }
        // A transposed view: the primitive sees a row-contiguous copy.
        var (on, off) = try both { try x.transposed().softmax().toArray() }
        expectClose(on, off, atol: 1e-7, rtol: 1e-5, "softmax of a transposed view")
        (on, off) = try both { try layerNorm(x.transposed(), weight: w, bias: nil).toArray() }
        expectClose(on, off, atol: 1e-5, rtol: 1e-5, "layerNorm of a transposed view")
        // Axis 0 and float16 take MLX's op even with the switch on: identical bits.
        (on, off) = try both { try x.softmax(axis: 0).toArray() }
        #expect(on == off)
        (on, off) = try both { try x.astype(.float16).logSoftmax().astype(.float32).toArray() }
        #expect(on == off)
        (on, off) = try both { try x.logSumExp(axes: [0, 1], keepDims: true).toArray() }
        #expect(on == off)
        #expect(try FastKernels.withEnabled(true) { try x.logSumExp(axis: 1, keepDims: true).shape } == [24, 1])
        #expect(try FastKernels.withEnabled(true) { try Tensor.zeros([0, 5]).softmax().shape } == [0, 5])
        // jvp of the norms and logsumexp (tangents for x and the weight) on vs off.
        let tx = try tensor([24, 40], 0.3, 0.7), tw = try tensor([40], 0.8, 0.1), wl = try tensor([40], 0.53, 0.4)
        (on, off) = try both {
            let f = { (p: [Tensor]) in
                [try layerNorm(p[0], weight: p[1], bias: nil), try rmsNorm(p[0], weight: p[1]), try p[0].logSumExp(axis: -1)]
            }
            return try jvp(f, primals: [x, wl], tangents: [tx, tw]).jvps.flatMap { try $0.toArray() as [Float] }
        }
        expectClose(on, off, atol: 1e-5, rtol: 1e-4, "jvp of layerNorm, rmsNorm, logSumExp")
        try FastKernels.withEnabled(true) {
            // jvp of softmax = y ⊙ (t − Σ t⊙y)
            let t = try tensor([24, 40], 0.3, 0.7)
            let (_, tangents) = try jvp({ [try $0[0].softmax()] }, primals: [x], tangents: [t])
            let y = try x.softmax()
            let expected: [Float] = try (y * (t - (t * y).sum(axis: -1, keepDims: true))).toArray()
            expectClose(try tangents[0].toArray(), expected, atol: 1e-6, rtol: 1e-4, "jvp softmax")
            let compiled = try CompiledFunction { xs in
                [try xs[0].softmax(), try grad({ try layerNorm($0, weight: nil, bias: nil).square().sum() })(xs[0])]
            }
            let outs = try compiled([x])
            #expect(try outs[0].toArray() as [Float] == (try y.toArray() as [Float]))
            let direct: [Float] = try grad({ try layerNorm($0, weight: nil, bias: nil).square().sum() })(x).toArray()
            #expect(try outs[1].toArray() as [Float] == direct)
        }
    }

    /// The scalar fallback gives the same bits as the AVX2 code for every row kernel (same
    /// lane order, same operations, each correctly rounded), tails and -inf entries included.
    @Test func scalarFallbackMatchesSIMDBitForBit() {
        for d in [1, 5, 8, 13, 64, 257] {
            let n = 37  // > 16 rows: several chunks of the norm backward
            let x = rows(n, d, scale: 30, withNegInf: true)
            let xf = rows(n, d, scale: 30, offset: 2)
            let g = pattern(n * d, 0.61, 0.2)
            let w = pattern(d, 0.53, 0.4), b = pattern(d, 0.29, 1.1)
            let y = (0..<n * d).map { Float(0.5 + 0.4 * sin(Double($0))) }
            let cases: [(FastKernels.RowOp, [[Float]?], [Int])] = [
                (.softmax, [x], [n * d]), (.logSoftmax, [x], [n * d]), (.logSumExp, [x], [n]),
                (.layerNorm, [xf, w, b], [n * d]), (.layerNorm, [xf, nil, nil], [n * d]),
                (.rmsNorm, [xf, w], [n * d]), (.softmaxVJP, [y, g], [n * d]),
                (.logSoftmaxVJP, [y.map { -$0 }, g], [n * d]),
                (.layerNormVJP, [xf, w, g], [n * d, d, d]), (.rmsNormVJP, [xf, w, g], [n * d, d]),
            ]
            for (op, inputs, sizes) in cases {
                var simd: [[Float]?] = sizes.map { [Float](repeating: 0, count: $0) }
                var scalar = simd
                FastKernels.applyRows(op, inputs: inputs, outputs: &simd, rows: n, d: d, eps: 1e-5, simd: true)
                FastKernels.applyRows(op, inputs: inputs, outputs: &scalar, rows: n, d: d, eps: 1e-5, simd: false)
                for (a, s) in zip(simd, scalar) {
                    let same = zip(a!, s!).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
                    #expect(same, "\(op) d=\(d)")
                }
            }
        }
    }

    /// A small transformer (LayerNorm, cross-entropy through logsumexp) plus an RMSNorm /
    /// softmax / log-softmax head: loss within 1e-5 relative and every gradient within
    /// 1e-5 + 1e-3·|g| with the kernels on vs off (float32 reassociation noise).
    @Test func fastOnAndOffAgree() throws {
        func run(_ fast: Bool) throws -> (Float, [String: [Float]], [Float]) {
            try FastKernels.withEnabled(fast) {
                let (key, loss, grads) = try tinyTransformerLoss(seed: 5)
                var g: [String: [Float]] = [:]
                for (k, v) in grads { g[k] = try v.toArray() }
                let x = try key.normal([6, 40]) * 3, w = try tensor([40], 0.53, 0.4)
                let head = try valueAndGrad({ (p: [Tensor]) in
                    let h = try rmsNorm(p[0], weight: p[1])
                    return [try (h.softmax() * h).sum() + h.logSoftmax().mean() + h.logSumExp(axis: -1).sum()]
                }, argnums: [0, 1])([x, w])
                let extra: [Float] = [try head.values[0].item()] + (try head.grads.flatMap { try $0.toArray() as [Float] })
                return (try loss.item(), g, extra)
            }
        }
        let (lossOn, gradsOn, headOn) = try run(true)
        let (lossOff, gradsOff, headOff) = try run(false)
        #expect(Swift.abs(lossOn - lossOff) <= 1e-5 * Swift.abs(lossOff), "loss \(lossOn) vs \(lossOff)")
        #expect(gradsOn.keys.sorted() == gradsOff.keys.sorted())
        for k in gradsOff.keys.sorted() {
            expectClose(gradsOn[k]!, gradsOff[k]!, atol: 1e-5, rtol: 1e-3, "grad \(k)")
        }
        expectClose(headOn, headOff, atol: 1e-5, rtol: 1e-4, "RMSNorm/softmax head")
    }

    /// Attention through the fused softmax vs MLX's op: no mask, causal (also Lk > Lq),
    /// boolean and additive masks, grouped heads; outputs and the gradients w.r.t. q, k, v
    /// within 2e-6 + 1e-4·|ref| (float32 reassociation; values and grads are O(1)).
    @Test func attentionOnAndOffAgree() throws {
        let key = RandomKey(seed: 21)
        let ks = try key.split(into: 6)
        let q = try ks[0].normal([2, 4, 7, 16]), c = try ks[3].normal([2, 4, 7, 16])
        let k4 = try ks[1].normal([2, 4, 9, 16]), v4 = try ks[2].normal([2, 4, 9, 16])
        let k2 = try ks[1].normal([2, 2, 9, 16]), v2 = try ks[2].normal([2, 2, 9, 16])
        let boolMask = try ks[4].normal([2, 1, 7, 9]).greater(-1.0)
        let addMask = try ks[5].normal([4, 7, 9])
        let masks: [(String, AttentionMask)] = [("none", .none), ("causal", .causal), ("bool", .tensor(boolMask)), ("additive", .tensor(addMask))]
        for (kName, k, v) in [("MHA", k4, v4), ("GQA", k2, v2)] {
            for (mName, mask) in masks {
                func run(_ fast: Bool) throws -> [[Float]] {
                    try FastKernels.withEnabled(fast) {
                        let f = { (p: [Tensor]) in
                            [try (scaledDotProductAttention(queries: p[0], keys: p[1], values: p[2], scale: 0.25, mask: mask) * c).sum()]
                        }
                        let out: [Float] = try scaledDotProductAttention(queries: q, keys: k, values: v, scale: 0.25, mask: mask).toArray()
                        let g = try valueAndGrad(f, argnums: [0, 1, 2])([q, k, v]).grads
                        return [out] + (try g.map { try $0.toArray() as [Float] })
                    }
                }
                for (i, (a, b)) in zip(try run(true), try run(false)).enumerated() {
                    expectClose(a, b, atol: 2e-6, rtol: 1e-4, "attention \(kName) \(mName) output/grad \(i)")
                }
            }
        }
    }

    /// Same seed twice gives the same bits, including inputs big enough for the threaded
    /// path (the norm backward sums dw/db per fixed chunk of rows, whatever the split).
    @Test func bitIdenticalRunToRun() throws {
        func run() throws -> [UInt32] {
            try FastKernels.withEnabled(true) {
                let (key, loss, grads) = try tinyTransformerLoss(seed: 13)
                let big = try key.normal([1000, 130]) * 5  // 130K elements: threaded
                let w = try key.split(into: 2)[0].normal([130])
                let gx = try valueAndGrad({ (p: [Tensor]) in
                    [try (layerNorm(p[0], weight: p[1], bias: nil).square() + p[0].softmax() + rmsNorm(p[0], weight: p[1])).sum()]
                }, argnums: [0, 1])([big, w]).grads
                var out: [Float] = [try loss.item()] + grads.keys.sorted().flatMap { try! grads[$0]!.toArray() as [Float] }
                out += try gx[1].toArray() as [Float]
                out.append(try gx[0].sum().item())
                out.append(try big.logSumExp(axis: -1).sum().item())
                return out.map(\.bitPattern)
            }
        }
        #expect(try run() == run())
    }
}
