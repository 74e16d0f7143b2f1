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

/// Normalisation statistics for every embodiment in a dataset, and the frame actions are
/// expressed in.
public struct NormalizationStats: Codable, Sendable, Equatable {
    /// Embodiment → statistics of unified actions (masked by the embodiment's action mask), in
    /// the action frame below.
    public var actions: [String: SlotStatistics]
    /// Embodiment → statistics of native states.
    public var states: [String: SlotStatistics]
    /// nil: absolute actions. Otherwise the relative frame (π0's delta joint actions): every
    /// action of a chunk on a joint-position slot is an offset from the joint state at the
    /// chunk's first step, and `actions` holds statistics of those offsets over chunk positions
    /// 0..<relativeHorizon. Absolute joint targets vary by ±1 rad across scenes while the
    /// offsets a chunk needs are centiradians, so the same standardized error is far smaller.
    public var relativeHorizon: Int?
    /// Embodiment → the reference speed of speed conditioning (the median of the training
    /// episodes' optical-flow speeds, `Episode.speed`); a row's speed label is its episode's
    /// speed over this. nil: the policy is not speed-conditioned.
    public var speedReference: [String: Float]? = nil

    /// Absolute-frame statistics.
    public init(episodes: [Episode]) {
        let byEmbodiment = Dictionary(grouping: episodes, by: \.embodiment)
        actions = byEmbodiment.mapValues { SlotStatistics($0.map(\.unifiedActions), mask: $0[0].actionMask) }
        states = byEmbodiment.mapValues { SlotStatistics($0.map(\.states)) }
        relativeHorizon = nil
    }

    /// Relative-frame statistics for chunks of `horizon` actions (`specs` map native states to
    /// joint slots).
    public init(episodes: [Episode], relativeTo specs: [String: EmbodimentSpec], horizon: Int) throws {
        self.init(episodes: episodes)
        relativeHorizon = horizon
        for (name, group) in Dictionary(grouping: episodes, by: \.embodiment) {
            guard let spec = specs[name] else { throw UnifiedSpaceError.unknownEmbodiment(name) }
            var offsets: [StepMatrix] = []
            for e in group {
                var rows: [Float] = []
                for t in 0..<e.stepCount {
                    let anchor = try actionAnchor(nativeState: Array(e.states.row(t)), spec: spec)
                    for k in 0..<min(horizon, e.stepCount - t) {
                        rows += zip(e.unifiedActions.row(t + k), anchor).map { $0 - $1 }
                    }
                }
                offsets.append(try StepMatrix(rows: rows.count / UnifiedActionSpace.dimension, columns: UnifiedActionSpace.dimension, values: rows))
            }
            actions[name] = SlotStatistics(offsets, mask: group[0].actionMask)
        }
    }

    /// What a chunk's unified actions are relative to: the joint state on the embodiment's
    /// joint-position slots, 0 elsewhere (all 0 in the absolute frame).
    public func actionAnchor(nativeState: [Float], spec: EmbodimentSpec) throws -> [Float] {
        var anchor = [Float](repeating: 0, count: UnifiedActionSpace.dimension)
        guard relativeHorizon != nil else { return anchor }
        let state = try spec.unifiedState(nativeState)
        for slot in spec.jointPositionSlots { anchor[slot] = state[slot] }
        return anchor
    }

    /// A unified action as the model sees it: in the action frame, standardized.
    public func standardizedAction(_ unified: [Float], anchor: [Float], embodiment: String) throws -> [Float] {
        guard let s = actions[embodiment] else { throw UnifiedSpaceError.unknownEmbodiment(embodiment) }
        return s.standardize(zip(unified, anchor).map { $0 - $1 })
    }

    /// The inverse of `standardizedAction`.
    public func unifiedAction(standardized z: [Float], anchor: [Float], embodiment: String) throws -> [Float] {
        guard let s = actions[embodiment] else { throw UnifiedSpaceError.unknownEmbodiment(embodiment) }
        return zip(s.unstandardize(z), anchor).map { $0 + $1 }
    }

    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
    }
    /// Where a dataset's statistics live: `normalization.json` at the store's root, next to
    /// its index (checkpoints carry their own copy).
    public static func url(inStore root: URL) -> URL { root.appendingPathComponent("normalization.json") }

    public static func read(_ url: URL) throws -> NormalizationStats {
        try JSONDecoder().decode(NormalizationStats.self, from: Data(contentsOf: url))
    }
}
