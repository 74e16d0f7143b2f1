import Foundation
import Testing
import RobotData
@testable import VLAModel

/// Standard normal draws (Box–Muller on SplitMix64), independent of the code under test.
private struct NormalDraws {
    var generator: SplitMix64
    init(seed: UInt64) { generator = SplitMix64(seed: seed) }
    mutating func next() -> Double {
        let u1 = Swift.max(generator.nextDouble(), 1e-300), u2 = generator.nextDouble()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
    /// μ + L z for a row-major lower-triangular L.
    mutating func sample(mean: [Double], lower l: [Double]) -> [Double] {
        let d = mean.count
        let z = (0..<d).map { _ in next() }
        var x = mean
        for i in 0..<d { for j in 0...i { x[i] += l[i * d + j] * z[j] } }
        return x
    }
}

private func sampleMean(_ points: [[Double]]) -> [Double] {
    let d = points[0].count
    return (0..<d).map { i in points.reduce(0) { $0 + $1[i] } / Double(points.count) }
}

/// Population (1/N) covariance, row-major.
private func sampleCovariance(_ points: [[Double]]) -> [Double] {
    let d = points[0].count, m = sampleMean(points)
    var c = [Double](repeating: 0, count: d * d)
    for p in points { for i in 0..<d { for j in 0..<d { c[i * d + j] += (p[i] - m[i]) * (p[j] - m[j]) } } }
    return c.map { $0 / Double(points.count) }
}

private func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).reduce(0) { Swift.max($0, Swift.abs($1.0 - $1.1)) }
}

@Suite("Gaussian mixture")
struct GaussianMixtureTests {
    /// The 2-component, 3-D, full-covariance mixture whose densities were computed with NumPy.
    static func referenceMixture() throws -> GaussianMixture {
        try GaussianMixture(
            weights: [0.3, 0.7],
            means: [[0.0, 1.0, -1.0], [2.0, -0.5, 0.5]],
            covariances: [[1.0, 0.3, 0.1, 0.3, 2.0, -0.4, 0.1, -0.4, 0.5],
                          [0.6, -0.2, 0.0, -0.2, 0.8, 0.25, 0.0, 0.25, 1.5]],
            covarianceType: .full)
    }

    @Test func logDensityMatchesNumPyReference() throws {
        // Computed once with NumPy 2.4 (SciPy is not installed): for each point,
        // log Σ_k w_k N(x; μ_k, Σ_k) with log N = −½(D log 2π + slogdet(Σ_k) + dᵀ solve(Σ_k, d)),
        // d = x − μ_k, combined by a max-shifted log-sum-exp in float64.
        let points: [[Double]] = [[0, 0, 0], [1, 1, -1], [2.5, -0.5, 1], [-3, 4, 2], [1, 0.2, 0]]
        let expected = [-4.633187181229095, -4.181527757682909, -3.1723138162940945, -29.278682493937843, -3.684472907941964]
        let got = try Self.referenceMixture().logDensity(points)
        for (g, e) in zip(got, expected) { #expect(Swift.abs(g - e) < 1e-10, "log p \(g) vs NumPy \(e)") }
    }

    @Test func gradientsOfDensityAndLogDensityMatchCentralDifferences() throws {
        let diagonal = try GaussianMixture(weights: [0.25, 0.25, 0.5], means: [[0, 0], [1.5, -1], [-1, 2]],
                                           covariances: [[0.5, 1.2], [0.3, 0.3], [2, 0.7]], covarianceType: .diagonal)
        let points: [[Double]] = [[0.2, 0.1, -0.3], [1.8, -0.9, 0.4], [3, 2, -2]]
        let planar: [[Double]] = [[0.2, 0.1], [1.2, -0.4], [-2, 3]]
        for (mixture, xs) in [(try Self.referenceMixture(), points), (diagonal, planar)] {
            let (logP, gradLog) = try mixture.logDensityGradient(xs)
            let (p, gradP) = try mixture.densityGradient(xs)
            let h = 1e-5
            for (n, x) in xs.enumerated() {
                #expect(Swift.abs(p[n] - Foundation.exp(logP[n])) <= 1e-15)
                for i in 0..<x.count {
                    var plus = x, minus = x
                    plus[i] += h
                    minus[i] -= h
                    let l = try mixture.logDensity([plus, minus])
                    let numericLog = (l[0] - l[1]) / (2 * h)
                    let numericP = (Foundation.exp(l[0]) - Foundation.exp(l[1])) / (2 * h)
                    #expect(Swift.abs(gradLog[n][i] - numericLog) < 1e-6 * Swift.max(1, Swift.abs(numericLog)),
                            "∂log p/∂x\(i) at \(x): \(gradLog[n][i]) vs \(numericLog)")
                    #expect(Swift.abs(gradP[n][i] - numericP) < 1e-6 * Swift.max(p[n], Swift.abs(numericP)),
                            "∂p/∂x\(i) at \(x): \(gradP[n][i]) vs \(numericP)")
                }
            }
        }
    }

    @Test func emRecoversWellSeparatedClusters() throws {
        // Three 2-D clusters ≥ 8 standard deviations apart, 600/360/240 points.
        let means: [[Double]] = [[0, 0], [8, 1], [2, 9]]
        let covariances: [[Double]] = [[1, 0.5, 0.5, 1], [0.5, -0.2, -0.2, 0.8], [1.5, 0, 0, 0.3]]
        let lowers: [[Double]] = [[1, 0, 0.5, Double(0.75).squareRoot()],
                                  [Double(0.5).squareRoot(), 0, -0.2 / Double(0.5).squareRoot(), Double(0.72).squareRoot()],
                                  [Double(1.5).squareRoot(), 0, 0, Double(0.3).squareRoot()]]
        let counts = [600, 360, 240]
        var draws = NormalDraws(seed: 11)
        let clusters = (0..<3).map { c in (0..<counts[c]).map { _ in draws.sample(mean: means[c], lower: lowers[c]) } }
        var options = GaussianMixtureOptions(components: 3, covariance: .full, regularization: 1e-6, tolerance: 1e-9, seed: 5)
        options.initializations = 2
        let fitted = try GaussianMixture.fit(clusters.flatMap { $0 }, options: options)
        #expect(fitted.fitSummary?.converged == true)
        for c in 0..<3 {
            let k = (0..<3).min { maxAbsDifference(fitted.means[$0], means[c]) < maxAbsDifference(fitted.means[$1], means[c]) }!
            // Against the truth: sampling error (σ/√n ≈ 0.06, covariance ≈ σ²·√(2/n) ≈ 0.1).
            #expect(maxAbsDifference(fitted.means[k], means[c]) < 0.2)
            #expect(maxAbsDifference(fitted.covariances[k], covariances[c]) < 0.3)
            // Against the closed form: separated clusters make EM's fixed point each cluster's
            // sample mean and (1/N) covariance (+ regularisation), and weights n_c / N.
            #expect(maxAbsDifference(fitted.means[k], sampleMean(clusters[c])) < 1e-6)
            let regularized = sampleCovariance(clusters[c]).enumerated().map { $0.offset % 3 == 0 ? $0.element + 1e-6 : $0.element }
            #expect(maxAbsDifference(fitted.covariances[k], regularized) < 1e-6)
            #expect(Swift.abs(fitted.weights[k] - Double(counts[c]) / 1200) < 1e-6)
        }
    }

    @Test func singleComponentFitIsTheSampleMoments() throws {
        var draws = NormalDraws(seed: 3)
        let points = (0..<500).map { _ in [2 + 0.5 * draws.next(), -1 + 3 * draws.next(), draws.next() * draws.next()] }
        let reg = 1e-3
        let diagonal = try GaussianMixture.fit(points, options: .init(components: 1, covariance: .diagonal, regularization: reg))
        let mean = sampleMean(points), covariance = sampleCovariance(points)
        #expect(maxAbsDifference(diagonal.means[0], mean) < 1e-12)
        #expect(maxAbsDifference(diagonal.covariances[0], [covariance[0] + reg, covariance[4] + reg, covariance[8] + reg]) < 1e-12)
        #expect(diagonal.weights == [1])
        let full = try GaussianMixture.fit(points, options: .init(components: 1, covariance: .full, regularization: reg))
        #expect(maxAbsDifference(full.means[0], mean) < 1e-12)
        #expect(maxAbsDifference(full.covariances[0], covariance.enumerated().map { $0.offset % 4 == 0 ? $0.element + reg : $0.element }) < 1e-12)
        // One component: EM has nothing to iterate on, the second pass changes nothing.
        #expect(full.fitSummary!.iterations <= 2 && full.fitSummary!.converged)
    }

    @Test func jsonRoundTripKeepsTheDensity() throws {
        var draws = NormalDraws(seed: 8)
        let points = (0..<300).map { i in [Double(i % 2) * 4 + draws.next(), draws.next()] }
        let fitted = try GaussianMixture.fit(points, options: .init(components: 2, covariance: .full, seed: 1))
        let decoded = try JSONDecoder().decode(GaussianMixture.self, from: JSONEncoder().encode(fitted))
        #expect(decoded == fitted)
        #expect(try decoded.logDensity([[0.5, 0.5], [9, 9]]) == fitted.logDensity([[0.5, 0.5], [9, 9]]))
        // Same seed, same data: the same fit.
        #expect(try GaussianMixture.fit(points, options: .init(components: 2, covariance: .full, seed: 1)) == fitted)
    }

    @Test func badInputThrowsTypedErrors() throws {
        let mixture = try Self.referenceMixture()
        #expect(throws: GaussianMixtureError.wrongDimension(expected: 3, got: 2, what: "point 1")) {
            try mixture.logDensity([[0, 0, 0], [1, 2]])
        }
        #expect(throws: GaussianMixtureError.nonFinite("point 0")) { try mixture.logDensityGradient([[0, .nan, 0]]) }
        #expect(throws: GaussianMixtureError.nonFinite("point 1")) { try GaussianMixture.fit([[0, 1], [.infinity, 0], [1, 1]]) }
        #expect(throws: GaussianMixtureError.tooFewPoints(points: 2, components: 4)) { try GaussianMixture.fit([[0], [1]]) }
        #expect(throws: GaussianMixtureError.notPositiveDefinite(component: 0)) {
            try GaussianMixture(weights: [1], means: [[0, 0]], covariances: [[1, 2, 2, 1]], covarianceType: .full)
        }
        #expect(throws: GaussianMixtureError.self) {
            try GaussianMixture(weights: [0.5, 0.6], means: [[0], [1]], covariances: [[1], [1]], covarianceType: .diagonal)
        }
    }
}

// MARK: - the OOD guard on synthetic states

/// A 3-joint arm + gripper with joint-position control, and episodes whose states come from a
/// known two-cluster distribution (raw units: radians, metres).
private enum ToyArm {
    static let spec = try! EmbodimentSpec(
        name: "toy3", controlMode: .jointPosition, numArms: 1,
        actionNames: ["j1", "j2", "j3", "gripper"],
        actionSlots: UnifiedActionSpace.armSlots(dof: 3, block: UnifiedActionSpace.leftArm) + [UnifiedActionSpace.leftGripper],
        stateNames: ["j1", "j2", "j3", "gripper"],
        stateSlots: UnifiedActionSpace.armSlots(dof: 3, block: UnifiedActionSpace.leftArm) + [UnifiedActionSpace.leftGripper])
    static let means: [[Double]] = [[0.5, -0.3, 1.0, 0.04], [0.9, 0.1, 0.6, 0.01]]
    /// Lower Cholesky factors: correlated joints, a narrow gripper.
    static let lowers: [[Double]] = [
        [0.05, 0, 0, 0, 0.03, 0.04, 0, 0, -0.02, 0.01, 0.04, 0, 0, 0, 0, 0.005],
        [0.04, 0, 0, 0, -0.02, 0.05, 0, 0, 0.01, 0.02, 0.03, 0, 0, 0, 0, 0.003]]

    static func states(_ count: Int, seed: UInt64) -> [[Float]] {
        var draws = NormalDraws(seed: seed)
        return (0..<count).map { i in draws.sample(mean: means[i % 2], lower: lowers[i % 2]).map(Float.init) }
    }

    static func episodes(count: Int, steps: Int, seed: UInt64) throws -> [Episode] {
        let all = states(count * steps, seed: seed)
        return try (0..<count).map { e in
            let rows = Array(all[(e * steps)..<((e + 1) * steps)])
            let unified = try rows.map { try spec.unifiedAction($0) }
            return Episode(embodiment: spec.name, task: "reach", instruction: "reach", cameras: [:],
                           states: try StepMatrix(rows, columns: 4), nativeActions: try StepMatrix(rows, columns: 4),
                           unifiedActions: try StepMatrix(unified, columns: UnifiedActionSpace.dimension), actionMask: spec.actionMask,
                           rewards: .init(repeating: 0, count: steps), dones: (0..<steps).map { $0 == steps - 1 },
                           sources: .init(repeating: .demo, count: steps), timestamps: (0..<steps).map { Double($0) * 0.1 }, success: true)
        }
    }

    static let trainingEpisodes = Result { try episodes(count: 20, steps: 100, seed: 21) }
    static var options: OODGuardOptions {
        var options = OODGuardOptions()
        options.mixture.components = 2
        options.mixture.seed = 4
        // The toy clusters are ~0.25 wide in standardized units: the default 0.1 would swamp them.
        options.mixture.regularization = 0.01
        return options
    }

    /// The guard on 2000 training states (2-component full GMM, τ cross-fitted over 5 folds), fitted once for all tests.
    static func fittedGuard() throws -> OODGuard { try shared.get() }
    private static let shared = Result { try fit(options) }
    static func fit(_ options: OODGuardOptions) throws -> OODGuard {
        let episodes = try trainingEpisodes.get()
        return try OODGuard.fit(episodes: episodes, specs: [spec.name: spec], stats: NormalizationStats(episodes: episodes), options: options)
    }

    /// The known push: +0.15 rad on j1, −0.15 on j2, +0.1 on j3 (3–5 within-cluster σ).
    static let offset: [Float] = [0.15, -0.15, 0.1, 0]
}

@Suite("OOD guard")
struct GaussianMixtureOODGuardTests {
    @Test func quantileMatchesNumPy() {
        // np.quantile(v, q) (NumPy 2.4, default "linear") for q = 0.01, 0.37, 0.95.
        let v = [3.2, -1.5, 0.25, 7.0, 2.0, -4.75, 1.125, 0.5, 9.0, -2.25, 3.0].sorted()
        #expect(Swift.abs(OODGuard.quantile(v, 0.01) - -4.5) < 1e-12)
        #expect(Swift.abs(OODGuard.quantile(v, 0.37) - 0.42500000000000004) < 1e-12)
        #expect(Swift.abs(OODGuard.quantile(v, 0.95) - 8.0) < 1e-12)
    }

    @Test func thresholdIsTheCalibrationQuantile() throws {
        let episodes = try ToyArm.trainingEpisodes.get()
        let native = episodes.map { e in (0..<e.stepCount).map { Array(e.states.row($0)) } }
        // In-sample τ: the 1% quantile of the fitted states' own log-likelihood.
        var inSample = ToyArm.options
        inSample.calibrationFolds = 1
        let direct = try ToyArm.fit(inSample)
        let density = try direct.density(for: ToyArm.spec)
        #expect(density.trainingStates == 2000 && density.calibrationFolds == 1 && direct.thresholdQuantile == 0.01)
        let logP = try direct.logDensity(nativeStates: native.flatMap { $0 }, spec: ToyArm.spec).sorted()
        // 0.01 · 1999 = 19.99: 99% of the way from the 20th to the 21st smallest value.
        #expect(Swift.abs(density.threshold - (logP[19] + 0.99 * (logP[20] - logP[19]))) < 1e-9)
        #expect(logP.filter { $0 < density.threshold }.count == 20)

        // Cross-fitted τ (the default): episode i is scored by a mixture fitted without fold i mod 5.
        let crossFitted = try ToyArm.fittedGuard()
        let cross = try crossFitted.density(for: ToyArm.spec)
        #expect(cross.calibrationFolds == 5 && cross.mixture == density.mixture)   // the kept mixture is the all-data fit
        let stats = try #require(NormalizationStats(episodes: episodes).states[ToyArm.spec.name])
        func point(_ s: [Float]) -> [Double] { stats.standardize(s).map(Double.init) }   // the toy's state slots are in native order
        var scores: [Double] = []
        for fold in 0..<5 {
            let fitStates = native.indices.filter { $0 % 5 != fold }.flatMap { native[$0] }.map(point)
            let foldMixture = try GaussianMixture.fit(fitStates, options: ToyArm.options.mixture)
            scores += try foldMixture.logDensity(native.indices.filter { $0 % 5 == fold }.flatMap { native[$0] }.map(point))
        }
        scores.sort()
        #expect(Swift.abs(cross.threshold - (scores[19] + 0.99 * (scores[20] - scores[19]))) < 1e-9)
        // New in-distribution states are flagged at about the nominal 1%.
        let fresh = try crossFitted.logDensity(nativeStates: ToyArm.states(1000, seed: 55), spec: ToyArm.spec)
        let rate = Double(fresh.filter { $0 < cross.threshold }.count) / 1000
        print("fresh in-distribution states flagged: in-sample τ \(try direct.logDensity(nativeStates: ToyArm.states(1000, seed: 55), spec: ToyArm.spec).filter { $0 < density.threshold }.count)/1000, cross-fitted τ \(Int(rate * 1000))/1000")
        #expect(rate <= 0.03)

        let saved = FileManager.default.temporaryDirectory.appendingPathComponent("ood-guard-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: saved) }
        try crossFitted.write(to: saved)
        #expect(try OODGuard.read(saved) == crossFitted)
    }

    @Test func monitorFlagsPushedOffStates() throws {
        let guardModel = try ToyArm.fittedGuard()
        let held = ToyArm.states(400, seed: 77)
        let pushed = held.map { zip($0, ToyArm.offset).map { $0 + $1 } }
        func flagged(_ states: [[Float]]) throws -> Int {
            try states.filter { try guardModel.apply(.monitor, nativeState: $0, spec: ToyArm.spec).isOutOfDistribution }.count
        }
        let inDistribution = try flagged(held), offData = try flagged(pushed)
        print("monitor: \(inDistribution)/400 held-out in-distribution states flagged, \(offData)/400 pushed states flagged")
        #expect(inDistribution <= 12)        // τ is the 1% quantile: ~4 expected
        #expect(offData >= 380)              // a few pushes land where the other cluster still explains them
        // Monitor changes nothing; off does not even score.
        let chunk: [[Float]] = [[0.5, -0.3, 1.0, 0.04]]
        let monitored = try guardModel.apply(.monitor, nativeState: pushed[0], chunk: chunk, spec: ToyArm.spec)
        #expect(monitored.state == pushed[0] && monitored.chunk == chunk && monitored.steps == 0)
        let off = try guardModel.apply(.off, nativeState: pushed[0], chunk: chunk, spec: ToyArm.spec)
        #expect(!off.isOutOfDistribution && off.chunk == chunk && off.logDensityBefore.isNaN)
        #expect(throws: OODGuardError.nonFinite("state")) { try guardModel.apply(.monitor, nativeState: [0, .nan, 0, 0], spec: ToyArm.spec) }
        #expect(throws: OODGuardError.wrongDimension(expected: 4, got: 3, what: "state")) {
            try guardModel.apply(.monitor, nativeState: [0, 0, 0], spec: ToyArm.spec)
        }
    }

    /// Recovered fraction of pushed states under each rule (α = 0.2, ≤ 20 steps).
    static func recovery(_ rule: CorrectionRule, scale: Float) throws -> (flagged: Int, recovered: Int, meanSteps: Double) {
        var guardModel = try ToyArm.fittedGuard()
        guardModel.correction.rule = rule
        var flagged = 0, recovered = 0, steps = 0
        for state in ToyArm.states(200, seed: 78) {
            let o = try guardModel.apply(.correct, nativeState: zip(state, ToyArm.offset).map { $0 + scale * $1 }, spec: ToyArm.spec)
            guard o.isOutOfDistribution else { continue }
            flagged += 1
            steps += o.steps
            #expect(o.logDensityAfter >= o.logDensityBefore)   // a correction never lowers log p
            if o.recovered { recovered += 1 }
        }
        return (flagged, recovered, flagged == 0 ? 0 : Double(steps) / Double(flagged))
    }

    @Test func correctionRecoversPushedOffStatesAndLogDensityBeatsDensity() throws {
        for scale: Float in [0.5, 1] {
            let density = try Self.recovery(.density, scale: scale), logDensity = try Self.recovery(.logDensity, scale: scale)
            print(String(format: "push ×%.1f: ∇p recovers %d/%d (mean %.1f steps), ∇log p recovers %d/%d (mean %.1f steps)",
                         scale, density.recovered, density.flagged, density.meanSteps, logDensity.recovered, logDensity.flagged, logDensity.meanSteps))
            #expect(density.flagged == logDensity.flagged && logDensity.flagged >= 80)
            let dFraction = Double(density.recovered) / Double(density.flagged)
            let lFraction = Double(logDensity.recovered) / Double(logDensity.flagged)
            // Measured: ×0.5 ∇p 44/95, ∇log p 95/95; ×1 ∇p 18/192, ∇log p 192/192.
            #expect(lFraction >= 0.95)
            #expect(lFraction - dFraction >= 0.3)
            #expect(density.meanSteps > 3 * logDensity.meanSteps)
        }
    }

    @Test func chunkCorrectionMovesOnlyJointTargets() throws {
        var guardModel = try ToyArm.fittedGuard()
        guardModel.correction.rule = .logDensity
        let pushed = zip(ToyArm.states(1, seed: 90)[0], ToyArm.offset).map { $0 + $1 }
        // A chunk that keeps heading away from the data: targets drift further off, gripper closes.
        let chunk: [[Float]] = (0..<4).map { r in [pushed[0] + 0.01 * Float(r), pushed[1] - 0.01 * Float(r), pushed[2], 0.02] }
        let o = try guardModel.apply(.correct, nativeState: pushed, chunk: chunk, spec: ToyArm.spec)
        #expect(o.isOutOfDistribution && o.recovered && o.correctedRows == 4)
        // A row is judged as the state with its joint slots replaced by the row's targets; for
        // this arm that is [targets j1–j3, the state's gripper].
        func composite(_ row: [Float]) -> [Float] { Array(row.prefix(3)) + [pushed[3]] }
        let before = try guardModel.logDensity(nativeStates: chunk.map(composite), spec: ToyArm.spec)
        let after = try guardModel.logDensity(nativeStates: o.chunk.map(composite), spec: ToyArm.spec)
        for r in 0..<4 {
            #expect(o.chunk[r][3] == chunk[r][3])                  // the gripper command is not a joint target
            #expect(before[r] < o.threshold && after[r] >= o.threshold - 1e-3, "row \(r): log p \(before[r]) → \(after[r]), τ \(o.threshold)")
        }
        // The corrected state is back where the density is at least τ (up to Float rounding of the native state).
        #expect(try guardModel.logDensity(nativeStates: [o.state], spec: ToyArm.spec)[0] >= o.threshold - 1e-3)
    }
}


