import Foundation
import RobotData
import TensorKit

/// How each mixture component's covariance is parameterised.
public enum CovarianceType: String, Codable, Sendable, CaseIterable {
    /// One variance per dimension (axis-aligned ellipsoids): D numbers per component.
    case diagonal
    /// A full symmetric positive-definite matrix: D² numbers per component.
    case full
}

/// Bad input to a Gaussian mixture, or a fit that cannot go on.
public enum GaussianMixtureError: Error, Equatable, CustomStringConvertible {
    case wrongDimension(expected: Int, got: Int, what: String)
    case nonFinite(String)
    case tooFewPoints(points: Int, components: Int)
    case invalidParameter(String)
    /// A covariance (after regularisation) has no Cholesky factor.
    case notPositiveDefinite(component: Int)

    public var description: String {
        switch self {
        case let .wrongDimension(e, g, what): "GaussianMixtureError.wrongDimension: \(what) has \(g) values, expected \(e)"
        case .nonFinite(let what): "GaussianMixtureError.nonFinite: \(what) holds NaN or infinity"
        case let .tooFewPoints(n, k): "GaussianMixtureError.tooFewPoints: \(n) points cannot fit \(k) components"
        case .invalidParameter(let m): "GaussianMixtureError.invalidParameter: \(m)"
        case .notPositiveDefinite(let k): "GaussianMixtureError.notPositiveDefinite: covariance of component \(k)"
        }
    }
}

/// What `GaussianMixture.fit` does: model shape, regularisation, stopping rule, seed.
public struct GaussianMixtureOptions: Codable, Sendable, Equatable {
    public var components = 4
    public var covariance: CovarianceType = .full
    /// Added to every covariance diagonal: keeps components of degenerate data (a state
    /// whose entries are functions of each other) invertible.
    public var regularization = 1e-3
    /// EM stops when the mean log-likelihood per point changes by less than this.
    public var tolerance = 1e-4
    public var maxIterations = 200
    /// Independent k-means++ starts; the fit with the highest mean log-likelihood wins.
    public var initializations = 1
    /// Lloyd iterations after k-means++ seeding, before EM.
    public var kMeansIterations = 20
    public var seed: UInt64 = 0

    public init(components: Int = 4, covariance: CovarianceType = .full, regularization: Double = 1e-3,
                tolerance: Double = 1e-4, maxIterations: Int = 200, initializations: Int = 1,
                kMeansIterations: Int = 20, seed: UInt64 = 0) {
        self.components = components; self.covariance = covariance; self.regularization = regularization
        self.tolerance = tolerance; self.maxIterations = maxIterations; self.initializations = initializations
        self.kMeansIterations = kMeansIterations; self.seed = seed
    }
}

/// How an EM fit ended.
public struct GaussianMixtureFitSummary: Codable, Sendable, Equatable {
    public var iterations: Int
    public var converged: Bool
    /// Mean log-likelihood per training point under the final parameters.
    public var meanLogLikelihood: Double
    public var points: Int
}

/// A Gaussian mixture density p(x) = Σ_k π_k N(x; μ_k, Σ_k) over D-dimensional points.
///
/// Fitted by EM over TensorKit tensors in float64 (centring, whitening and the M-step's
/// weighted moments are tensor ops); the small per-component linear algebra (Cholesky
/// factors, triangular inverses) and the log-sum-exp over K components are done in Swift
/// (MLX's CPU exp is float32-grade even on float64). Log-densities, ∇p and ∇log p are closed
/// form. Codable: the parameters round-trip through JSON and the derived factors
/// are rebuilt (and validated) on decoding.
public struct GaussianMixture: Sendable, Equatable {
    public let covarianceType: CovarianceType
    /// π_k, summing to 1.
    public let weights: [Double]
    /// μ_k, `[K][D]`.
    public let means: [[Double]]
    /// Σ_k as used (regularisation included): `[K][D]` variances (diagonal) or `[K][D·D]`
    /// row-major matrices (full).
    public let covariances: [[Double]]
    /// What was added to the diagonals when fitting (informational).
    public let regularization: Double
    public let fitSummary: GaussianMixtureFitSummary?

    /// Per component: L_k⁻¹ row-major `[D·D]` with Σ_k = L_k L_kᵀ (full), or 1/σ `[D]` (diagonal).
    let whitening: [[Double]]
    /// Per component: log π_k − ½ D log 2π − log det L_k.
    let logNormalizers: [Double]

    public var components: Int { weights.count }
    public var dimension: Int { means[0].count }

    /// A mixture from explicit parameters; throws on wrong sizes, non-finite numbers, weights
    /// that are not a distribution, or covariances that are not symmetric positive definite.
    public init(weights: [Double], means: [[Double]], covariances: [[Double]], covarianceType: CovarianceType,
                regularization: Double = 0, fitSummary: GaussianMixtureFitSummary? = nil) throws {
        let k = weights.count
        guard k >= 1 else { throw GaussianMixtureError.invalidParameter("a mixture needs at least one component") }
        guard means.count == k else { throw GaussianMixtureError.wrongDimension(expected: k, got: means.count, what: "means") }
        guard covariances.count == k else { throw GaussianMixtureError.wrongDimension(expected: k, got: covariances.count, what: "covariances") }
        let d = means[0].count
        guard d >= 1 else { throw GaussianMixtureError.invalidParameter("points need at least one dimension") }
        guard weights.allSatisfy(\.isFinite), weights.allSatisfy({ $0 > 0 }) else {
            throw GaussianMixtureError.invalidParameter("weights must be finite and positive, got \(weights)")
        }
        let total = weights.reduce(0, +)
        guard Swift.abs(total - 1) < 1e-6 else { throw GaussianMixtureError.invalidParameter("weights sum to \(total), not 1") }
        let entries = covarianceType == .full ? d * d : d
        var whitening: [[Double]] = [], logNormalizers: [Double] = []
        for c in 0..<k {
            guard means[c].count == d else { throw GaussianMixtureError.wrongDimension(expected: d, got: means[c].count, what: "mean \(c)") }
            guard covariances[c].count == entries else {
                throw GaussianMixtureError.wrongDimension(expected: entries, got: covariances[c].count, what: "covariance \(c)")
            }
            guard means[c].allSatisfy(\.isFinite) else { throw GaussianMixtureError.nonFinite("mean \(c)") }
            guard covariances[c].allSatisfy(\.isFinite) else { throw GaussianMixtureError.nonFinite("covariance \(c)") }
            var logDetL = 0.0
            switch covarianceType {
            case .diagonal:
                guard covariances[c].allSatisfy({ $0 > 0 }) else { throw GaussianMixtureError.notPositiveDefinite(component: c) }
                whitening.append(covariances[c].map { 1 / $0.squareRoot() })
                logDetL = covariances[c].reduce(0) { $0 + 0.5 * Foundation.log($1) }
            case .full:
                let s = covariances[c]
                for i in 0..<d { for j in 0..<i where Swift.abs(s[i * d + j] - s[j * d + i]) > 1e-9 * (1 + Swift.abs(s[i * d + j])) {
                    throw GaussianMixtureError.invalidParameter("covariance \(c) is not symmetric at (\(i), \(j))")
                } }
                guard let l = Self.cholesky(s, size: d) else { throw GaussianMixtureError.notPositiveDefinite(component: c) }
                whitening.append(Self.lowerTriangularInverse(l, size: d))
                logDetL = (0..<d).reduce(0) { $0 + Foundation.log(l[$1 * d + $1]) }
            }
            logNormalizers.append(Foundation.log(weights[c] / total) - 0.5 * Double(d) * Foundation.log(2 * Double.pi) - logDetL)
        }
        self.covarianceType = covarianceType
        self.weights = weights.map { $0 / total }
        self.means = means
        self.covariances = covariances
        self.regularization = regularization
        self.fitSummary = fitSummary
        self.whitening = whitening
        self.logNormalizers = logNormalizers
    }

    // MARK: densities

    /// log p(x) for each row of `points` `[N, D]` → `[N]`.
    public func logDensity(_ points: [[Double]]) throws -> [Double] {
        guard !points.isEmpty else { return [] }
        return try posteriors(componentTerms(pointTensor(points), precisionProducts: false).logJoint, wantPosteriors: false).logDensity
    }

    /// log p(x) and ∇ₓ log p(x) = −Σ_k γ_k(x) Σ_k⁻¹ (x − μ_k) (γ: component posteriors) per row.
    public func logDensityGradient(_ points: [[Double]]) throws -> (logDensity: [Double], gradient: [[Double]]) {
        guard !points.isEmpty else { return ([], []) }
        let (logJoint, products) = try componentTerms(pointTensor(points), precisionProducts: true)
        let (logP, posterior) = try posteriors(logJoint, wantPosteriors: true)
        let gamma = try Tensor(posterior, shape: [components, points.count, 1])
        let gradient = try -((gamma * products!).sum(axis: 0))
        return (logP, Self.rows(try gradient.toArray(Double.self), width: dimension))
    }

    /// p(x) and ∇ₓ p(x) = p(x) ∇ₓ log p(x) per row. Far from every component p underflows
    /// and so does the gradient: this is the density itself, not a rescaled direction.
    public func densityGradient(_ points: [[Double]]) throws -> (density: [Double], gradient: [[Double]]) {
        let (logP, g) = try logDensityGradient(points)
        let p = logP.map { Foundation.exp($0) }
        return (p, zip(p, g).map { pi, row in row.map { pi * $0 } })
    }

    /// log p `[N]` and posteriors γ `[K·N]` (row-major `[K, N]`) from log π_k + log N_k `[K, N]`.
    /// The log-sum-exp runs on the host: MLX's CPU exp is float32-grade even on float64
    /// (measured relative error ~2e-8), which would blur log p at the 1e-8 level.
    func posteriors(_ logJoint: Tensor, wantPosteriors: Bool) throws -> (logDensity: [Double], posterior: [Double]) {
        let k = logJoint.dim(0), n = logJoint.dim(1)
        let terms = try logJoint.toArray(Double.self)
        var logP = [Double](repeating: 0, count: n)
        var posterior = wantPosteriors ? [Double](repeating: 0, count: k * n) : []
        for i in 0..<n {
            var top = -Double.infinity
            for c in 0..<k { top = Swift.max(top, terms[c * n + i]) }
            var sum = 0.0
            for c in 0..<k { sum += Foundation.exp(terms[c * n + i] - top) }
            logP[i] = top + Foundation.log(sum)
            if wantPosteriors { for c in 0..<k { posterior[c * n + i] = Foundation.exp(terms[c * n + i] - logP[i]) } }
        }
        return (logP, posterior)
    }

    /// log π_k + log N(x; μ_k, Σ_k) `[K, N]`, and Σ_k⁻¹ (x − μ_k) `[K, N, D]` when asked.
    func componentTerms(_ x: Tensor, precisionProducts: Bool) throws -> (logJoint: Tensor, products: Tensor?) {
        let k = components, d = dimension
        let mu = try Tensor(means.flatMap { $0 }, shape: [k, 1, d])
        let centered = try x.expandedDims(axis: 0) - mu                              // [K, N, D]
        let whitened: Tensor, w: Tensor
        switch covarianceType {
        case .diagonal:
            w = try Tensor(whitening.flatMap { $0 }, shape: [k, 1, d])
            whitened = try centered * w
        case .full:
            w = try Tensor(whitening.flatMap { $0 }, shape: [k, d, d])
            whitened = try centered.matmul(w.T)                                        // L⁻¹(x − μ) as rows
        }
        let logNorm = try Tensor(logNormalizers, shape: [k, 1])
        let logJoint = try whitened.square().sum(axis: -1) * -0.5 + logNorm
        guard precisionProducts else { return (logJoint, nil) }
        // Σ⁻¹ = L⁻ᵀ L⁻¹, so (x − μ)ᵀ Σ⁻¹ = (L⁻¹(x − μ))ᵀ L⁻¹.
        let products = covarianceType == .diagonal ? try whitened * w : try whitened.matmul(w)
        return (logJoint, products)
    }

    func pointTensor(_ points: [[Double]]) throws -> Tensor {
        let d = dimension
        for (i, p) in points.enumerated() {
            guard p.count == d else { throw GaussianMixtureError.wrongDimension(expected: d, got: p.count, what: "point \(i)") }
            guard p.allSatisfy(\.isFinite) else { throw GaussianMixtureError.nonFinite("point \(i)") }
        }
        return try Tensor(points.flatMap { $0 }, shape: [points.count, d])
    }

    static func rows(_ flat: [Double], width: Int) -> [[Double]] {
        stride(from: 0, to: flat.count, by: width).map { Array(flat[$0..<($0 + width)]) }
    }

    // MARK: fitting

    /// Fits a mixture to `points` `[N][D]` by EM from k-means++ starts (seeded).
    public static func fit(_ points: [[Double]], options: GaussianMixtureOptions = .init()) throws -> GaussianMixture {
        guard let d = points.first?.count else { throw GaussianMixtureError.tooFewPoints(points: 0, components: options.components) }
        guard d >= 1 else { throw GaussianMixtureError.invalidParameter("points need at least one dimension") }
        for (i, p) in points.enumerated() {
            guard p.count == d else { throw GaussianMixtureError.wrongDimension(expected: d, got: p.count, what: "point \(i)") }
            guard p.allSatisfy(\.isFinite) else { throw GaussianMixtureError.nonFinite("point \(i)") }
        }
        let k = options.components
        guard k >= 1 else { throw GaussianMixtureError.invalidParameter("components must be ≥ 1, got \(k)") }
        guard points.count >= k else { throw GaussianMixtureError.tooFewPoints(points: points.count, components: k) }
        guard options.regularization >= 0, options.regularization.isFinite else {
            throw GaussianMixtureError.invalidParameter("regularization must be ≥ 0, got \(options.regularization)")
        }
        guard options.tolerance > 0, options.maxIterations >= 1, options.initializations >= 1 else {
            throw GaussianMixtureError.invalidParameter("tolerance > 0, maxIterations ≥ 1 and initializations ≥ 1 are needed")
        }
        let x = try Tensor(points.flatMap { $0 }, shape: [points.count, d])
        var seeds = SplitMix64(seed: options.seed)
        var best: GaussianMixture?
        for _ in 0..<options.initializations {
            var generator = SplitMix64(seed: seeds.next())
            let centres = try kMeans(points, x: x, components: k, iterations: options.kMeansIterations, generator: &generator)
            let fitted = try expectationMaximization(x, initialResponsibilities: centres.responsibilities, options: options)
            if best == nil || fitted.fitSummary!.meanLogLikelihood > best!.fitSummary!.meanLogLikelihood { best = fitted }
        }
        return best!
    }

    /// EM from hard initial responsibilities `[N, K]`.
    static func expectationMaximization(_ x: Tensor, initialResponsibilities: Tensor, options: GaussianMixtureOptions) throws -> GaussianMixture {
        let n = x.dim(0)
        var model = try maximization(x, responsibilities: initialResponsibilities, options: options)
        var (meanLogLikelihood, responsibilities) = try model.expectation(x)
        var iterations = 0, converged = false
        while iterations < options.maxIterations {
            iterations += 1
            model = try maximization(x, responsibilities: responsibilities, options: options)
            let (next, nextResponsibilities) = try model.expectation(x)
            let change = Swift.abs(next - meanLogLikelihood)
            meanLogLikelihood = next
            responsibilities = nextResponsibilities
            if change < options.tolerance { converged = true; break }
        }
        return try GaussianMixture(weights: model.weights, means: model.means, covariances: model.covariances,
                                   covarianceType: model.covarianceType, regularization: options.regularization,
                                   fitSummary: .init(iterations: iterations, converged: converged,
                                                     meanLogLikelihood: meanLogLikelihood, points: n))
    }

    /// E-step: mean log-likelihood per point and component posteriors `[N, K]`.
    func expectation(_ x: Tensor) throws -> (meanLogLikelihood: Double, responsibilities: Tensor) {
        let (logP, posterior) = try posteriors(componentTerms(x, precisionProducts: false).logJoint, wantPosteriors: true)
        let value = logP.reduce(0, +) / Double(logP.count)
        guard value.isFinite else { throw GaussianMixtureError.nonFinite("mean log-likelihood during EM") }
        return (value, try Tensor(posterior, shape: [components, logP.count]).T)         // [N, K]
    }

    /// M-step: weights, means and (regularised) covariances from responsibilities `[N, K]`.
    static func maximization(_ x: Tensor, responsibilities r: Tensor, options: GaussianMixtureOptions) throws -> GaussianMixture {
        let d = x.dim(1), k = r.dim(1)
        // A few ε keep a component that lost all its points from dividing by zero; its
        // covariance then falls back to the regularisation.
        let counts = try r.sum(axis: 0) + 10 * Double.ulpOfOne                           // [K]
        let means = try r.T.matmul(x) / counts.expandedDims(axis: -1)                     // [K, D]
        let centered = try x.expandedDims(axis: 0) - means.expandedDims(axis: 1)         // [K, N, D]
        let weightsPerPoint = try r.T.expandedDims(axis: -1)                              // [K, N, 1]
        let covariance: Tensor
        switch options.covariance {
        case .diagonal:
            covariance = try (centered.square() * weightsPerPoint).sum(axis: 1) / counts.expandedDims(axis: -1)
        case .full:
            covariance = try (centered * weightsPerPoint).transposed([0, 2, 1]).matmul(centered)
                / counts.reshaped([k, 1, 1])
        }
        try TensorKit.eval([counts, means, covariance])
        let countValues = try counts.toArray(Double.self)
        let meanRows = rows(try means.toArray(Double.self), width: d)
        let entries = options.covariance == .full ? d * d : d
        var covariances = rows(try covariance.toArray(Double.self), width: entries)
        for c in 0..<k {
            switch options.covariance {
            case .diagonal:
                for i in 0..<d { covariances[c][i] += options.regularization }
            case .full:
                // Rounding leaves the two triangles a few ulps apart: average them.
                for i in 0..<d {
                    for j in 0..<i {
                        let v = 0.5 * (covariances[c][i * d + j] + covariances[c][j * d + i])
                        covariances[c][i * d + j] = v
                        covariances[c][j * d + i] = v
                    }
                    covariances[c][i * d + i] += options.regularization
                }
            }
        }
        let total = countValues.reduce(0, +)
        return try GaussianMixture(weights: countValues.map { $0 / total }, means: meanRows, covariances: covariances,
                                   covarianceType: options.covariance, regularization: options.regularization)
    }

    /// k-means++ seeding (Arthur & Vassilvitskii) then Lloyd iterations; returns one-hot
    /// responsibilities `[N, K]` of the final assignment.
    static func kMeans(_ points: [[Double]], x: Tensor, components k: Int, iterations: Int,
                       generator: inout SplitMix64) throws -> (centres: [[Double]], responsibilities: Tensor) {
        let n = points.count, d = points[0].count
        func squaredDistance(_ a: [Double], _ b: [Double]) -> Double {
            var s = 0.0
            for i in 0..<d { let t = a[i] - b[i]; s += t * t }
            return s
        }
        var centres = [points[Int(generator.next() % UInt64(n))]]
        var nearest = points.map { squaredDistance($0, centres[0]) }
        while centres.count < k {
            let total = nearest.reduce(0, +)
            var pick: Int
            if total > 0 {
                // Draw a point with probability proportional to its squared distance to the nearest centre.
                var target = generator.nextDouble() * total
                pick = n - 1
                for (i, v) in nearest.enumerated() {
                    target -= v
                    if target < 0 { pick = i; break }
                }
            } else {
                pick = Int(generator.next() % UInt64(n))   // all points coincide with a centre
            }
            centres.append(points[pick])
            for i in 0..<n { nearest[i] = Swift.min(nearest[i], squaredDistance(points[i], points[pick])) }
        }
        let squaredNorms = try x.square().sum(axis: 1, keepDims: true)                   // [N, 1]
        let labels = try Tensor.arange(0, Double(k), dtype: .int32).reshaped([1, k])
        func assignment(_ centres: [[Double]]) throws -> Tensor {
            let c = try Tensor(centres.flatMap { $0 }, shape: [k, d])
            let distances = try squaredNorms - 2 * x.matmul(c.T) + c.square().sum(axis: 1).reshaped([1, k])
            return try distances.argmin(axis: 1, keepDims: true).astype(.int32).equal(labels).astype(.float64)
        }
        var oneHot = try assignment(centres)
        for _ in 0..<iterations {
            let counts = try oneHot.sum(axis: 0)
            let sums = try oneHot.T.matmul(x)
            try TensorKit.eval([counts, sums])
            let countValues = try counts.toArray(Double.self), sumRows = rows(try sums.toArray(Double.self), width: d)
            // An emptied cluster keeps its previous centre.
            let updated = (0..<k).map { c in countValues[c] > 0 ? sumRows[c].map { $0 / countValues[c] } : centres[c] }
            if updated == centres { break }
            centres = updated
            oneHot = try assignment(centres)
        }
        return (centres, oneHot)
    }

    // MARK: small dense linear algebra (D ≤ 64)

    /// Lower Cholesky factor of a row-major symmetric matrix, or nil if not positive definite.
    static func cholesky(_ a: [Double], size n: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            var diagonal = a[j * n + j]
            for p in 0..<j { diagonal -= l[j * n + p] * l[j * n + p] }
            guard diagonal > 0, diagonal.isFinite else { return nil }
            let ljj = diagonal.squareRoot()
            l[j * n + j] = ljj
            for i in (j + 1)..<n {
                var s = a[i * n + j]
                for p in 0..<j { s -= l[i * n + p] * l[j * n + p] }
                l[i * n + j] = s / ljj
            }
        }
        return l
    }

    /// Inverse of a row-major lower-triangular matrix (forward substitution per column).
    static func lowerTriangularInverse(_ l: [Double], size n: Int) -> [Double] {
        var inverse = [Double](repeating: 0, count: n * n)
        for column in 0..<n {
            for i in column..<n {
                var s = i == column ? 1.0 : 0.0
                for p in column..<i { s -= l[i * n + p] * inverse[p * n + column] }
                inverse[i * n + column] = s / l[i * n + i]
            }
        }
        return inverse
    }
}

extension GaussianMixture: Codable {
    enum CodingKeys: String, CodingKey { case covarianceType, weights, means, covariances, regularization, fitSummary }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(weights: c.decode([Double].self, forKey: .weights),
                      means: c.decode([[Double]].self, forKey: .means),
                      covariances: c.decode([[Double]].self, forKey: .covariances),
                      covarianceType: c.decode(CovarianceType.self, forKey: .covarianceType),
                      regularization: c.decodeIfPresent(Double.self, forKey: .regularization) ?? 0,
                      fitSummary: c.decodeIfPresent(GaussianMixtureFitSummary.self, forKey: .fitSummary))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(covarianceType, forKey: .covarianceType)
        try c.encode(weights, forKey: .weights)
        try c.encode(means, forKey: .means)
        try c.encode(covariances, forKey: .covariances)
        try c.encode(regularization, forKey: .regularization)
        try c.encodeIfPresent(fitSummary, forKey: .fitSummary)
    }
}
