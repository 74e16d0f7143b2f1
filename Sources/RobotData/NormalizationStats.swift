import Foundation

/// Per-slot statistics of one embodiment's data: mean/std and 1st/99th percentiles.
/// Stored next to a dataset and inside checkpoints so a policy normalises as it was trained.
public struct SlotStatistics: Codable, Sendable, Equatable {
    public var mean: [Float]
    public var std: [Float]
    public var q01: [Float]
    public var q99: [Float]
    /// Samples per slot (0 where the slot is masked out).
    public var count: [Int]

    /// Statistics of `matrix` columns, using only rows' entries where `mask` is 1 (all if nil).
    public init(_ matrix: [StepMatrix], mask: [Float]? = nil) {
        let columns = matrix.first?.columns ?? 0
        var mean = [Float](repeating: 0, count: columns), std = mean, q01 = mean, q99 = mean
        var count = [Int](repeating: 0, count: columns)
        for c in 0..<columns where (mask?[c] ?? 1) > 0 {
            var values: [Float] = []
            for m in matrix { for r in 0..<m.rows { values.append(m.values[r * m.columns + c]) } }
            guard !values.isEmpty else { continue }
            let mu = values.reduce(0, +) / Float(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Float(values.count)
            values.sort()
            mean[c] = mu
            std[c] = variance.squareRoot()
            q01[c] = Self.quantile(values, 0.01)
            q99[c] = Self.quantile(values, 0.99)
            count[c] = values.count
        }
        self.mean = mean; self.std = std; self.q01 = q01; self.q99 = q99; self.count = count
    }

    /// Linear interpolation between order statistics (NumPy's default "linear" method).
    static func quantile(_ sorted: [Float], _ q: Double) -> Float {
        let position = q * Double(sorted.count - 1)
        let lo = Int(position.rounded(.down)), hi = Swift.min(lo + 1, sorted.count - 1)
        let frac = Float(position - Double(lo))
        return sorted[lo] + (sorted[hi] - sorted[lo]) * frac
    }

    /// (x − mean) / (std + eps), leaving unused slots at 0.
    public func standardize(_ x: [Float], eps: Float = 1e-6) -> [Float] {
        x.indices.map { count[$0] == 0 ? 0 : (x[$0] - mean[$0]) / (std[$0] + eps) }
    }
    public func unstandardize(_ z: [Float], eps: Float = 1e-6) -> [Float] {
        z.indices.map { count[$0] == 0 ? z[$0] : z[$0] * (std[$0] + eps) + mean[$0] }
    }
}

/// Normalisation statistics for every embodiment in a dataset.
public struct NormalizationStats: Codable, Sendable, Equatable {
    /// Embodiment → statistics of unified actions (masked by the embodiment's action mask).
    public var actions: [String: SlotStatistics]
    /// Embodiment → statistics of native states.
    public var states: [String: SlotStatistics]

    public init(episodes: [Episode]) {
        let byEmbodiment = Dictionary(grouping: episodes, by: \.embodiment)
        actions = byEmbodiment.mapValues { SlotStatistics($0.map(\.unifiedActions), mask: $0[0].actionMask) }
        states = byEmbodiment.mapValues { SlotStatistics($0.map(\.states)) }
    }

    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
    }
    public static func read(_ url: URL) throws -> NormalizationStats {
        try JSONDecoder().decode(NormalizationStats.self, from: Data(contentsOf: url))
    }
}
