import TensorKit

/// Bad data for a `LinearProbe`.
public enum LinearProbeError: Error, Equatable, CustomStringConvertible {
    /// Rows of `features` (flattened, `width` each) and `labels` disagree, or a set is empty.
    case shapeMismatch(rows: Int, width: Int, features: Int, labels: Int)
    /// A label outside 0 ..< classes.
    case labelOutOfRange(label: Int, classes: Int)
    /// Too few training rows to hold some out for choosing the L2 weight.
    case tooFewRows(Int)

    public var description: String {
        switch self {
        case let .shapeMismatch(rows, width, features, labels):
            return "linear probe: \(features) feature values are not \(rows) rows × \(width) (labels: \(labels)), or a set is empty"
        case let .labelOutOfRange(label, classes): return "linear probe: label \(label) is outside 0 ..< \(classes)"
        case let .tooFewRows(n): return "linear probe: \(n) training rows; need at least 10 to hold out a validation fifth"
        }
    }
}

/// A linear probe: multinomial logistic regression on standardized features, the L2 weight
/// chosen on a held-out fifth of the training rows, then refitted on all of them. What a probe
/// can read from a representation is what a linear layer could — so a probe well above chance
/// means the information is there, linearly; one at chance means it is not (linearly).
public struct LinearProbe: Sendable {
    public var classes: Int
    /// L2 weights tried (on the standardized features' weights, mean over rows of the loss).
    public var l2Weights: [Float] = [1e-4, 1e-3, 1e-2, 1e-1]
    /// Full-batch Adam steps per fit (the problem is convex; these reach its optimum closely).
    public var steps = 400
    public var learningRate: Float = 0.05
    public var seed: UInt64 = 0

    public init(classes: Int) { self.classes = classes }

    public struct Result: Sendable, Codable, Equatable {
        /// The L2 weight the validation fifth chose.
        public var l2Weight: Float
        public var trainAccuracy: Double
        public var testAccuracy: Double
        /// The most frequent training label's share of the test rows: what a probe that
        /// ignores the features scores.
        public var majorityAccuracy: Double
    }

    /// Fits on `train` (features row-major, `width` per row) and scores on `test`.
    public func fit(train: (features: [Float], labels: [Int]), test: (features: [Float], labels: [Int]), width: Int) throws -> Result {
        try check(train, width: width)
        try check(test, width: width)
        let n = train.labels.count
        guard n >= 10 else { throw LinearProbeError.tooFewRows(n) }
        let (mean, scale) = Self.standardization(train.features, width: width)
        func standardized(_ x: [Float]) throws -> Tensor {
            let rows = x.count / width
            var out = x
            for r in 0..<rows { for j in 0..<width { out[r * width + j] = (x[r * width + j] - mean[j]) * scale[j] } }
            return try Tensor(out, shape: [rows, width])
        }
        let xTrain = try standardized(train.features), xTest = try standardized(test.features)
        let yTrain = try Tensor(train.labels.map(Int32.init), shape: [n])

        // The L2 weight: fit on the first four fifths, score on the last.
        let cut = n - n / 5
        let xFit = try xTrain.slice(axis: 0, 0..<cut), yFit = try yTrain.slice(axis: 0, 0..<cut)
        let xValidation = try xTrain.slice(axis: 0, cut..<n)
        let validationLabels = Array(train.labels[cut...])
        var best: (l2: Float, accuracy: Double)?
        for l2 in l2Weights {
            let probe = try trainLogits(x: xFit, y: yFit, width: width, l2: l2)
            let accuracy = try Self.accuracy(probe(xValidation), validationLabels)
            if best == nil || accuracy > best!.accuracy { best = (l2, accuracy) }
        }
        let l2 = best?.l2 ?? 0
        let probe = try trainLogits(x: xTrain, y: yTrain, width: width, l2: l2)
        var counts = [Int](repeating: 0, count: classes)
        for y in train.labels { counts[y] += 1 }
        let majority = counts.indices.max { counts[$0] < counts[$1] }!
        return Result(l2Weight: l2,
                      trainAccuracy: try Self.accuracy(probe(xTrain), train.labels),
                      testAccuracy: try Self.accuracy(probe(xTest), test.labels),
                      majorityAccuracy: Double(test.labels.filter { $0 == majority }.count) / Double(test.labels.count))
    }

    func check(_ set: (features: [Float], labels: [Int]), width: Int) throws {
        let rows = set.labels.count
        guard width > 0, rows > 0, set.features.count == rows * width else {
            throw LinearProbeError.shapeMismatch(rows: rows, width: width, features: set.features.count, labels: rows)
        }
        if let bad = set.labels.first(where: { $0 < 0 || $0 >= classes }) { throw LinearProbeError.labelOutOfRange(label: bad, classes: classes) }
    }

    /// Per-column mean and 1/std of the training rows (constant columns get scale 0: they carry nothing).
    static func standardization(_ x: [Float], width: Int) -> (mean: [Float], scale: [Float]) {
        let rows = x.count / width
        var mean = [Double](repeating: 0, count: width), square = [Double](repeating: 0, count: width)
        for r in 0..<rows {
            for j in 0..<width {
                let v = Double(x[r * width + j])
                mean[j] += v
                square[j] += v * v
            }
        }
        var scale = [Float](repeating: 0, count: width)
        for j in 0..<width {
            mean[j] /= Double(rows)
            let variance = max(square[j] / Double(rows) - mean[j] * mean[j], 0)
            scale[j] = variance > 1e-12 ? Float(1 / variance.squareRoot()) : 0
        }
        return (mean.map(Float.init), scale)
    }

    /// Trains `x W + b` by full-batch Adam on mean cross-entropy + l2·‖W‖²; returns the logits function.
    func trainLogits(x: Tensor, y: Tensor, width: Int, l2: Float) throws -> (Tensor) throws -> Tensor {
        let layer = try Linear(width, classes, key: RandomKey(seed: seed))
        try layer.update(parameters: ["weight": Tensor.zeros([classes, width]), "bias": Tensor.zeros([classes])])
        let optimizer = AdamW(learningRate: learningRate, weightDecay: 0)
        let lossAndGrad = valueAndGrad(model: layer) { m in
            try crossEntropy(logits: m(x), targets: y) + m.weight.square().sum() * Double(l2)
        }
        for _ in 0..<steps {
            let (loss, grads) = try lossAndGrad(layer)
            try optimizer.step(model: layer, gradients: grads, alsoEvaluate: [loss])
        }
        return { try layer($0) }
    }

    static func accuracy(_ logits: Tensor, _ labels: [Int]) throws -> Double {
        let predicted: [Int32] = try logits.argmax(axis: -1).astype(.int32).toArray()
        return Double(zip(predicted, labels).filter { Int($0) == $1 }.count) / Double(max(labels.count, 1))
    }
}
