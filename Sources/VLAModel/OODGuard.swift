import Foundation
import RobotData

/// What a guard does with the states it sees.
public enum OODGuardMode: String, Codable, Sendable, CaseIterable {
    /// Not consulted: behaviour as without a guard.
    case off
    /// Scores every state and flags those below τ; changes nothing.
    case monitor
    /// Flags, and moves an out-of-distribution state (and the action chunk's joint targets)
    /// uphill on the training density until log p ≥ τ or the step budget runs out.
    case correct
}

/// The direction a correction step follows.
public enum CorrectionRule: String, Codable, Sendable, CaseIterable {
    /// Green-VLA's s ← s + α ∇p(s). ∇p = p ∇log p vanishes far from the data, where a
    /// correction is needed most.
    case density
    /// s ← s + α ∇log p(s): the same direction, not damped by p.
    case logDensity = "log-density"
}

/// How an `OODGuard` is fitted.
public struct OODGuardOptions: Codable, Sendable, Equatable {
    /// The mixture over standardized states. The regularisation (in standardized units)
    /// matters: a state's end-effector entries are functions of its joints and a reach task's
    /// gripper barely moves, so without it the covariances are singular, and with a small one
    /// noise on a near-constant entry decides the verdict.
    public var mixture = GaussianMixtureOptions(components: 4, covariance: .full, regularization: 0.1)
    /// τ is this quantile of the calibration states' log-likelihood (0.01: 1% of them are
    /// flagged).
    public var thresholdQuantile = 0.01
    /// τ is calibrated on out-of-fold scores: the episodes are split into this many folds and
    /// each fold's states are scored by a mixture fitted without them; the guard keeps the
    /// mixture fitted on all states (≤ 1, or a single episode: τ from the fitted states
    /// themselves). A mixture scores the states it was fitted on higher than new ones from the
    /// same distribution, so an in-sample τ flags far more than `thresholdQuantile` of new
    /// in-distribution states.
    public var calibrationFolds = 5
    /// At most this many states per embodiment (evenly spaced over the data).
    public var maxFitStates = 4000

    public init() {}
}

/// How an `OODGuard` corrects (stored with the guard; callers may change it).
public struct OODCorrectionSettings: Codable, Sendable, Equatable {
    public var rule: CorrectionRule = .density
    /// α of s ← s + α g (Green-VLA: 0.2), in standardized units.
    public var stepSize = 0.2
    /// Gradient steps per state or chunk row at most.
    public var maxSteps = 20
    /// Longest move per step (standardized units, nil: unbounded): near a sharp component
    /// α∇p and α∇log p can ask for jumps of many standard deviations.
    public var maxStepNorm: Double? = 1
    /// A step that would lower log p is halved up to this many times, and dropped if it still
    /// does: a correction never makes a state less likely.
    public var backtrackingHalvings = 6

    public init(rule: CorrectionRule = .density, stepSize: Double = 0.2, maxSteps: Int = 20,
                maxStepNorm: Double? = 1, backtrackingHalvings: Int = 6) {
        self.rule = rule; self.stepSize = stepSize; self.maxSteps = maxSteps
        self.maxStepNorm = maxStepNorm; self.backtrackingHalvings = backtrackingHalvings
    }
}

/// Bad input to an OOD guard.
public enum OODGuardError: Error, Equatable, CustomStringConvertible {
    case unknownEmbodiment(String)
    case wrongDimension(expected: Int, got: Int, what: String)
    case nonFinite(String)
    case noStates(String)
    case invalidOption(String)

    public var description: String {
        switch self {
        case .unknownEmbodiment(let e): "OODGuardError.unknownEmbodiment: no state density or statistics for \(e)"
        case let .wrongDimension(e, g, what): "OODGuardError.wrongDimension: \(what) has \(g) values, expected \(e)"
        case .nonFinite(let what): "OODGuardError.nonFinite: \(what) holds NaN or infinity"
        case .noStates(let e): "OODGuardError.noStates: no training states for \(e)"
        case .invalidOption(let m): "OODGuardError.invalidOption: \(m)"
        }
    }
}

/// What the guard found for one state (and, in correct mode, did to it and its chunk).
public struct OODGuardOutcome: Sendable, Equatable {
    /// log p(s) < τ for the state as observed.
    public let isOutOfDistribution: Bool
    public let logDensityBefore: Double
    /// log p of the corrected state (= before when nothing moved).
    public let logDensityAfter: Double
    public let threshold: Double
    /// Gradient steps taken on the state.
    public let steps: Int
    /// The corrected native state (the input when nothing moved).
    public let state: [Float]
    /// The native action chunk with corrected joint targets (the input when nothing moved).
    public let chunk: [[Float]]
    /// Chunk rows whose joint targets were moved.
    public let correctedRows: Int
    /// The state was out of distribution and the correction brought it to log p ≥ τ.
    public var recovered: Bool { isOutOfDistribution && logDensityAfter >= threshold }
}

/// Green-VLA's out-of-distribution guard: a Gaussian mixture over the standardized training
/// states of each embodiment (restricted to the embodiment's state slots), a threshold τ
/// calibrated on the training states (a low quantile of their log-likelihood, cross-fitted
/// over episodes by default), and a correction that moves a state, and the joint targets of
/// the action chunk planned from it, back toward the data along ∇p or ∇log p.
///
/// Everything happens in the standardized space the policy sees (the normalization statistics
/// travel with the guard, so it is self-contained); saved as `ood-guard.json` next to a checkpoint.
public struct OODGuard: Codable, Sendable, Equatable {
    /// One embodiment's training-state density.
    public struct StateDensity: Codable, Sendable, Equatable {
        public let embodiment: String
        /// Unified slots the density is over, ascending (the embodiment's state slots).
        public let slots: [Int]
        /// Native state statistics the states were standardized with.
        public let stateStatistics: SlotStatistics
        public let mixture: GaussianMixture
        /// τ: a state with log p below it is out of distribution.
        public let threshold: Double
        /// States the mixture was fitted on.
        public let trainingStates: Int
        /// Folds τ was cross-fitted over (1: τ from the fitted states themselves).
        public let calibrationFolds: Int
    }

    public static let fileName = "ood-guard.json"

    /// Embodiment name → its density.
    public let densities: [String: StateDensity]
    public let thresholdQuantile: Double
    public var correction: OODCorrectionSettings

    public init(densities: [String: StateDensity], thresholdQuantile: Double, correction: OODCorrectionSettings = .init()) {
        self.densities = densities; self.thresholdQuantile = thresholdQuantile; self.correction = correction
    }

    // MARK: fitting

    /// Fits one density per embodiment in `episodes` on their states, standardized with
    /// `stats` (the policy's normalization statistics), and sets τ from out-of-fold scores
    /// (see `OODGuardOptions.calibrationFolds`).
    public static func fit(episodes: [Episode], specs: [String: EmbodimentSpec], stats: NormalizationStats,
                           options: OODGuardOptions = .init()) throws -> OODGuard {
        guard options.thresholdQuantile >= 0, options.thresholdQuantile <= 1 else {
            throw OODGuardError.invalidOption("thresholdQuantile must lie in [0, 1], got \(options.thresholdQuantile)")
        }
        guard options.maxFitStates >= 1 else { throw OODGuardError.invalidOption("maxFitStates must be ≥ 1") }
        var densities: [String: StateDensity] = [:]
        for (name, group) in Dictionary(grouping: episodes, by: \.embodiment) {
            guard let spec = specs[name], let statistics = stats.states[name] else { throw OODGuardError.unknownEmbodiment(name) }
            let slots = spec.stateMap.slots.sorted()
            // Every state with its episode's index; evenly spaced rows keep every episode
            // represented and the fit deterministic.
            let native = group.enumerated().flatMap { i, e in (0..<e.stepCount).map { (episode: i, state: Array(e.states.row($0))) } }
            let stride = Swift.max(1, (native.count + options.maxFitStates - 1) / options.maxFitStates)
            let kept = Swift.stride(from: 0, to: native.count, by: stride).map { native[$0] }
            let points = try kept.enumerated().map {
                try standardized($0.element.state, spec: spec, statistics: statistics, slots: slots, what: "\(name) training state \($0.offset)")
            }
            guard !points.isEmpty else { throw OODGuardError.noStates(name) }
            let mixture = try GaussianMixture.fit(points, options: options.mixture)
            let folds = Swift.min(Swift.max(options.calibrationFolds, 1), group.count)
            var scores: [Double] = []
            if folds <= 1 {
                scores = try mixture.logDensity(points)
            } else {
                // Episode i belongs to fold i mod folds: its states are scored by a mixture fitted without it.
                for fold in 0..<folds {
                    let inFold = kept.indices.filter { kept[$0].episode % folds == fold }
                    let outOfFold = kept.indices.filter { kept[$0].episode % folds != fold }
                    guard !inFold.isEmpty, outOfFold.count >= options.mixture.components else { continue }
                    let foldMixture = try GaussianMixture.fit(outOfFold.map { points[$0] }, options: options.mixture)
                    scores += try foldMixture.logDensity(inFold.map { points[$0] })
                }
                if scores.isEmpty { scores = try mixture.logDensity(points) }   // no fold had enough states to fit
            }
            densities[name] = StateDensity(embodiment: name, slots: slots, stateStatistics: statistics, mixture: mixture,
                                           threshold: quantile(scores.sorted(), options.thresholdQuantile),
                                           trainingStates: points.count, calibrationFolds: folds)
        }
        guard !densities.isEmpty else { throw OODGuardError.noStates("any embodiment") }
        return OODGuard(densities: densities, thresholdQuantile: options.thresholdQuantile)
    }

    /// NumPy's default ("linear") quantile of ascending `sorted` values.
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard sorted.count > 1 else { return sorted.first ?? -.infinity }
        let position = q * Double(sorted.count - 1)
        let lo = Int(position.rounded(.down)), hi = Swift.min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (position - Double(lo))
    }

    // MARK: scoring and correcting

    /// The guard's verdict on a native state under `mode`, and in `.correct` mode the corrected
    /// state and chunk (joint targets moved for joint-position embodiments). `.off` returns
    /// the inputs untouched without scoring.
    public func apply(_ mode: OODGuardMode, nativeState: [Float], chunk: [[Float]] = [], spec: EmbodimentSpec) throws -> OODGuardOutcome {
        let density = try density(for: spec)
        guard mode != .off else {
            return OODGuardOutcome(isOutOfDistribution: false, logDensityBefore: .nan, logDensityAfter: .nan, threshold: density.threshold,
                                   steps: 0, state: nativeState, chunk: chunk, correctedRows: 0)
        }
        let point = try Self.standardized(nativeState, spec: spec, statistics: density.stateStatistics, slots: density.slots, what: "state")
        let before = try density.mixture.logDensity([point])[0]
        let isOOD = before < density.threshold
        guard mode == .correct, isOOD else {
            return OODGuardOutcome(isOutOfDistribution: isOOD, logDensityBefore: before, logDensityAfter: before, threshold: density.threshold,
                                   steps: 0, state: nativeState, chunk: chunk, correctedRows: 0)
        }
        let climbed = try climb([point], movable: nil, start: [before], density: density)[0]
        let state = try Self.native(climbed.point, spec: spec, statistics: density.stateStatistics, slots: density.slots)
        let (rows, correctedRows) = try correctedChunk(chunk, statePoint: point, spec: spec, density: density)
        return OODGuardOutcome(isOutOfDistribution: true, logDensityBefore: before, logDensityAfter: climbed.logDensity,
                               threshold: density.threshold, steps: climbed.steps, state: state, chunk: rows, correctedRows: correctedRows)
    }

    /// log p of native states (one density evaluation for all of them).
    public func logDensity(nativeStates: [[Float]], spec: EmbodimentSpec) throws -> [Double] {
        let density = try density(for: spec)
        let points = try nativeStates.enumerated().map {
            try Self.standardized($0.element, spec: spec, statistics: density.stateStatistics, slots: density.slots, what: "state \($0.offset)")
        }
        return points.isEmpty ? [] : try density.mixture.logDensity(points)
    }

    public func density(for spec: EmbodimentSpec) throws -> StateDensity {
        guard let d = densities[spec.name] else { throw OODGuardError.unknownEmbodiment(spec.name) }
        guard d.slots == spec.stateMap.slots.sorted() else {
            throw OODGuardError.wrongDimension(expected: d.slots.count, got: spec.stateDimension, what: "\(spec.name) state slots")
        }
        return d
    }

    /// Moves the joint-position targets of each row: the point is the standardized state
    /// with its joint slots replaced by the row's targets (raw targets standardized with the
    /// state statistics, as they are joint positions), and only those coordinates move.
    func correctedChunk(_ chunk: [[Float]], statePoint: [Double], spec: EmbodimentSpec, density: StateDensity) throws -> ([[Float]], Int) {
        let joints = spec.jointPositionSlots
        guard !joints.isEmpty, !chunk.isEmpty else { return (chunk, 0) }
        let statistics = density.stateStatistics, eps: Float = 1e-6
        // For every joint slot: its coordinate in the density's point, its native state index
        // (for mean/std) and its native action index.
        let map = try joints.map { slot -> (coordinate: Int, state: Int, action: Int) in
            guard let c = density.slots.firstIndex(of: slot), let s = spec.stateMap.slots.firstIndex(of: slot),
                  let a = spec.actionMap.slots.firstIndex(of: slot) else {
                throw OODGuardError.wrongDimension(expected: density.slots.count, got: spec.stateDimension, what: "\(spec.name) joint slot \(slot)")
            }
            return (c, s, a)
        }
        var points: [[Double]] = []
        for (r, row) in chunk.enumerated() {
            guard row.count == spec.actionDimension else {
                throw OODGuardError.wrongDimension(expected: spec.actionDimension, got: row.count, what: "chunk row \(r)")
            }
            guard row.allSatisfy(\.isFinite) else { throw OODGuardError.nonFinite("chunk row \(r)") }
            var p = statePoint
            for m in map { p[m.coordinate] = Double((row[m.action] - statistics.mean[m.state]) / (statistics.std[m.state] + eps)) }
            points.append(p)
        }
        let start = try density.mixture.logDensity(points)
        let climbed = try climb(points, movable: map.map(\.coordinate), start: start, density: density)
        var corrected = chunk, moved = 0
        for (r, c) in climbed.enumerated() where c.steps > 0 && c.point != points[r] {
            moved += 1
            for m in map {
                corrected[r][m.action] = Float(c.point[m.coordinate]) * (statistics.std[m.state] + eps) + statistics.mean[m.state]
            }
        }
        return (corrected, moved)
    }

    /// Gradient ascent (rule ∇p or ∇log p, step α, clipped, backtracked) from each point whose
    /// log p is below τ, until it reaches τ, stops moving, or uses `maxSteps`. Only the
    /// coordinates in `movable` (all if nil) change. All points advance together, one
    /// density evaluation per step.
    func climb(_ points: [[Double]], movable: [Int]?, start: [Double], density: StateDensity) throws
        -> [(point: [Double], logDensity: Double, steps: Int)] {
        let settings = correction
        guard settings.stepSize > 0, settings.maxSteps >= 0, settings.backtrackingHalvings >= 0, (settings.maxStepNorm ?? 1) > 0 else {
            throw OODGuardError.invalidOption("stepSize and maxStepNorm must be > 0, maxSteps and backtrackingHalvings ≥ 0")
        }
        let mixture = density.mixture, tau = density.threshold
        var current = points, logP = start, steps = [Int](repeating: 0, count: points.count)
        var active = settings.maxSteps > 0 ? points.indices.filter { logP[$0] < tau } : []
        var gradients: [Int: [Double]] = [:]
        if !active.isEmpty {
            let g = try mixture.logDensityGradient(active.map { current[$0] }).gradient
            for (i, index) in active.enumerated() { gradients[index] = g[i] }
        }
        while !active.isEmpty {
            var proposals: [Int: [Double]] = [:], moves: [Int: [Double]] = [:]
            for i in active {
                var direction = gradients[i]!
                if settings.rule == .density {
                    let p = Foundation.exp(Swift.min(logP[i], 700))   // ∇p = p ∇log p (capped: never inf)
                    direction = direction.map { $0 * p }
                }
                if let movable {
                    var masked = [Double](repeating: 0, count: direction.count)
                    for c in movable { masked[c] = direction[c] }
                    direction = masked
                }
                var move = direction.map { settings.stepSize * $0 }
                let norm = move.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if let limit = settings.maxStepNorm, norm > limit { move = move.map { $0 * limit / norm } }
                moves[i] = move
                proposals[i] = zip(current[i], move).map { $0 + $1 }
            }
            // Backtracking: evaluate the proposals, halve the moves that lower log p.
            var pending = active, accepted: [Int: (point: [Double], logDensity: Double, gradient: [Double])] = [:]
            for attempt in 0...settings.backtrackingHalvings where !pending.isEmpty {
                let evaluated = try mixture.logDensityGradient(pending.map { proposals[$0]! })
                var retry: [Int] = []
                for (k, i) in pending.enumerated() {
                    if evaluated.logDensity[k] >= logP[i] {
                        accepted[i] = (proposals[i]!, evaluated.logDensity[k], evaluated.gradient[k])
                    } else if attempt < settings.backtrackingHalvings {
                        moves[i] = moves[i]!.map { $0 * 0.5 }
                        proposals[i] = zip(current[i], moves[i]!).map { $0 + $1 }
                        retry.append(i)
                    }
                }
                pending = retry
            }
            var stillActive: [Int] = []
            for i in active {
                steps[i] += 1
                guard let a = accepted[i], a.point != current[i] else { continue }   // no uphill move: stuck
                current[i] = a.point
                logP[i] = a.logDensity
                gradients[i] = a.gradient
                if logP[i] < tau && steps[i] < settings.maxSteps { stillActive.append(i) }
            }
            active = stillActive
        }
        return points.indices.map { (current[$0], logP[$0], steps[$0]) }
    }

    // MARK: conversions (native state ⇄ standardized point over the density's slots)

    static func standardized(_ native: [Float], spec: EmbodimentSpec, statistics: SlotStatistics, slots: [Int], what: String) throws -> [Double] {
        guard native.count == spec.stateDimension, statistics.mean.count == spec.stateDimension else {
            throw OODGuardError.wrongDimension(expected: spec.stateDimension, got: native.count, what: what)
        }
        guard native.allSatisfy(\.isFinite) else { throw OODGuardError.nonFinite(what) }
        let unified = try spec.unifiedState(statistics.standardize(native))
        return slots.map { Double(unified[$0]) }
    }

    static func native(_ point: [Double], spec: EmbodimentSpec, statistics: SlotStatistics, slots: [Int]) throws -> [Float] {
        var unified = [Float](repeating: 0, count: UnifiedActionSpace.dimension)
        for (c, slot) in slots.enumerated() { unified[slot] = Float(point[c]) }
        return statistics.unstandardize(try spec.nativeState(unified))
    }

    // MARK: persistence

    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
    }

    public static func read(_ url: URL) throws -> OODGuard {
        try JSONDecoder().decode(OODGuard.self, from: Data(contentsOf: url))
    }

    /// `ood-guard.json` in a checkpoint directory.
    public static func url(inCheckpoint directory: URL) -> URL { directory.appendingPathComponent(fileName) }
}
