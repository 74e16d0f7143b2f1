import Foundation
import RobotData
import RobotSim
import TensorKit
import Training
import VLAModel

/// What a post-training algorithm decides inside `PostTrainingBackend`: which online steps are
/// samples and chunk targets, and what each drawn sample is conditioned on. Its state lives
/// on the backend's actor (instances are not shared between backends).
public protocol PostTrainingAlgorithm: AnyObject, Sendable {
    var name: String { get }
    /// Whether the trained policy needs RECAP's advantage token.
    var needsAdvantageToken: Bool { get }
    /// Sampling weight of online step t (0: never drawn).
    func onlineStepWeight(_ episode: Episode, _ t: Int) -> Double
    /// Whether online step t's action may appear in a chunk target.
    func isOnlineTarget(_ episode: Episode, _ t: Int) -> Bool
    /// Sees every accepted online episode before it joins the online data.
    func ingest(_ episode: Episode) throws
    /// The indicator each drawn sample is conditioned on (nil: no conditioning at all).
    func indicators(for samples: [(episode: Episode, step: Int)], online: Bool,
                    generator: inout SplitMix64) -> [AdvantageIndicator?]?
    /// Called after every policy step (e.g. a continuously trained value takes its own step).
    func afterTrainStep(generator: inout SplitMix64) throws
    /// Per-task numbers for logs and reports.
    var summary: [String: Double] { get }
    func saveState(to directory: URL) throws
    func restoreState(from directory: URL) throws
}

extension PostTrainingAlgorithm {
    public var needsAdvantageToken: Bool { false }
    public func ingest(_ episode: Episode) throws {}
    public func indicators(for samples: [(episode: Episode, step: Int)], online: Bool,
                           generator: inout SplitMix64) -> [AdvantageIndicator?]? { nil }
    public func afterTrainStep(generator: inout SplitMix64) throws {}
    public var summary: [String: Double] { [:] }
    public func saveState(to directory: URL) throws {}
    public func restoreState(from directory: URL) throws {}
}

/// HG-DAgger: imitate what the operator did. Policy steps get `policyStepWeight` (0 by
/// default) and never appear as chunk targets: the chunk of an operator step just before a
/// hand-back would otherwise teach the policy its own actions after it.
public final class HGDAgger: PostTrainingAlgorithm, @unchecked Sendable {
    public let name = "hg-dagger"
    public let policyStepWeight: Double
    public init(policyStepWeight: Double = 0) { self.policyStepWeight = policyStepWeight }
    public func onlineStepWeight(_ episode: Episode, _ t: Int) -> Double { episode.sources[t] == .policy ? policyStepWeight : 1 }
    public func isOnlineTarget(_ episode: Episode, _ t: Int) -> Bool { episode.sources[t] != .policy }
}

/// RECAP (π*0.6, as SOP runs it): learn from every step, the policy's own included, conditioned
/// on whether the step was better than usual. A distributional value V(s) over normalized
/// returns-to-go (pre-trained on the offline data, frozen by default) gives each online step
/// an n-step advantage; steps above the task's threshold ε are "positive", the rest
/// "negative"; operator and demo steps are always positive. A fraction of samples drops the
/// indicator so the same model also learns the unconditioned policy, which classifier-free
/// guidance needs at inference (sampling asks for "positive").
public final class RECAP: PostTrainingAlgorithm, @unchecked Sendable {
    public let name = "recap"
    public let needsAdvantageToken = true
    public let value: StepsToGoValue
    public let specs: [String: EmbodimentSpec]
    /// Steps of the n-step return.
    public var lookahead: Int
    /// ε per task: the (1 − positiveFraction) quantile of the task's online policy-step
    /// advantages so far, or `fixedThreshold` when set.
    public var positiveFraction: Double
    public var fixedThreshold: Float?
    /// Share of samples trained without an indicator (the unconditioned policy for CFG).
    public var dropIndicator: Double
    /// Keep training the value head on online episodes too (SOP's option; off: frozen).
    public var continuousValue: Bool
    /// Per episode id, each step's advantage; per task, the sorted policy-step advantages.
    private var advantages: [UUID: [Float]] = [:]
    private var policyAdvantages: [String: [Float]] = [:]
    private var thresholds: [String: Float] = [:]
    /// Online features and two-hot targets (only with `continuousValue`).
    private var valueRows: (features: [Tensor], targets: [Tensor], count: Int) = ([], [], 0)
    /// Per task, how the value did on online episodes at ingest (before any update from them).
    private var diagnostics: [String: ValueDiagnostics] = [:]

    public init(value: StepsToGoValue, specs: [String: EmbodimentSpec], lookahead: Int = 10, positiveFraction: Double = 0.3,
                fixedThreshold: Float? = nil, dropIndicator: Double = 0.3, continuousValue: Bool = false) {
        self.value = value
        self.specs = specs
        self.lookahead = lookahead
        self.positiveFraction = positiveFraction
        self.fixedThreshold = fixedThreshold
        self.dropIndicator = dropIndicator
        self.continuousValue = continuousValue
    }

    static func taskKey(_ e: Episode) -> String { "\(e.embodiment)/\(e.task)" }

    /// The task's step limit L (returns are in units of L).
    public static func stepLimit(_ e: Episode) -> Int { TaskKind(rawValue: e.task)?.stepLimit ?? max(1, e.stepCount) }

    public func onlineStepWeight(_ episode: Episode, _ t: Int) -> Double { 1 }
    public func isOnlineTarget(_ episode: Episode, _ t: Int) -> Bool { true }

    public func ingest(_ episode: Episode) throws {
        guard let spec = specs[episode.embodiment] else { throw PolicyError.unknownEmbodiment(episode.embodiment) }
        let (a, v, features) = try TensorLock.run {
            try value.advantages(of: episode, spec: spec, stepLimit: Self.stepLimit(episode), n: lookahead)
        }
        advantages[episode.id] = a
        let key = Self.taskKey(episode)
        let g = value.returns.returnsToGo(steps: episode.stepCount, success: episode.success, stepLimit: Self.stepLimit(episode))
        diagnostics[key, default: ValueDiagnostics()].add(episode: episode, values: v, returnsToGo: g, advantages: a)
        var sorted = policyAdvantages[key] ?? []
        for t in 0..<episode.stepCount where episode.sources[t] == .policy {
            let i = sorted.partitioningIndex { $0 >= a[t] }
            sorted.insert(a[t], at: i)
        }
        policyAdvantages[key] = sorted
        if let fixedThreshold { thresholds[key] = fixedThreshold }
        else if !sorted.isEmpty {
            thresholds[key] = sorted[min(sorted.count - 1, Int(Double(sorted.count) * (1 - positiveFraction)))]
        }
        if continuousValue {
            valueRows.features.append(features)
            valueRows.targets.append(try value.targets(g))
            valueRows.count += g.count
        }
    }

    /// The indicator of a step before dropout: demo and operator steps are positive.
    public func indicator(_ episode: Episode, _ t: Int) -> AdvantageIndicator {
        guard episode.sources[t] == .policy, let a = advantages[episode.id]?[t] else { return .positive }
        guard let epsilon = thresholds[Self.taskKey(episode)] else { return .positive }
        return a > epsilon ? .positive : .negative
    }

    /// The step's advantage (nil until its episode is ingested; demos have none).
    public func advantage(_ episode: Episode, _ t: Int) -> Float? { advantages[episode.id]?[t] }

    public func indicators(for samples: [(episode: Episode, step: Int)], online: Bool,
                           generator: inout SplitMix64) -> [AdvantageIndicator?]? {
        samples.map { sample in
            generator.nextDouble() < dropIndicator ? nil : (online ? indicator(sample.episode, sample.step) : .positive)
        }
    }

    public func afterTrainStep(generator: inout SplitMix64) throws {
        guard continuousValue, valueRows.count > 0 else { return }
        if valueRows.features.count > 1 {
            valueRows.features = [try concatenated(valueRows.features, axis: 0)]
            valueRows.targets = [try concatenated(valueRows.targets, axis: 0)]
        }
        let rows = (0..<32).map { _ in Int(generator.next() % UInt64(valueRows.count)) }
        let (x, y) = (valueRows.features[0], valueRows.targets[0])
        try TensorLock.run { _ = try value.trainStep(features: x, targets: y, rows: rows) }
    }

    /// Per task: ε, the share of policy steps above it, and how well the value predicted the
    /// online episodes (`ValueDiagnostics`).
    public var summary: [String: Double] {
        var out: [String: Double] = [:]
        for (key, d) in diagnostics {
            for (name, x) in d.summary { out["\(key) \(name)"] = x }
        }
        for (key, sorted) in policyAdvantages {
            guard let e = thresholds[key] else { continue }
            out["\(key) ε"] = Double(e)
            let above = sorted.count - sorted.partitioningIndex { $0 > e }
            out["\(key) positive policy steps"] = Double(above) / Double(max(1, sorted.count))
        }
        return out
    }

    /// The value head (it changes only with `continuousValue`; advantages are recomputed on re-ingest).
    public func saveState(to directory: URL) throws {
        let head = value.head
        try TensorLock.run { try Checkpoint.save(model: head, optimizer: nil, name: "recap-value-head", step: 0, to: directory.appendingPathComponent("value")) }
    }

    public func restoreState(from directory: URL) throws {
        let head = value.head
        try TensorLock.run { _ = try Checkpoint.load(into: head, optimizer: nil, from: directory.appendingPathComponent("value")) }
    }
}

/// How well RECAP's value predicted the online episodes it labelled, measured at ingest: R² of
/// V(s_t) against the realized return-to-go, and the mean advantage of policy steps in
/// successful minus failed episodes (positive: the labels carry the outcome's signal).
public struct ValueDiagnostics: Sendable {
    public private(set) var steps = 0
    private var squaredError = 0.0, sum = 0.0, sumSquares = 0.0
    private var advantage: (success: Double, successSteps: Int, failure: Double, failureSteps: Int) = (0, 0, 0, 0)

    public init() {}

    public mutating func add(episode: Episode, values: [Float], returnsToGo: [Float], advantages: [Float]) {
        for t in 0..<min(values.count, returnsToGo.count) {
            let g = Double(returnsToGo[t])
            squaredError += (Double(values[t]) - g) * (Double(values[t]) - g)
            sum += g
            sumSquares += g * g
            steps += 1
        }
        for t in 0..<min(advantages.count, episode.stepCount) where episode.sources[t] == .policy {
            if episode.success { advantage.success += Double(advantages[t]); advantage.successSteps += 1 }
            else { advantage.failure += Double(advantages[t]); advantage.failureSteps += 1 }
        }
    }

    /// 1 − Σ(V − g)² / Σ(g − ḡ)² over every online step (nil: fewer than 2 steps or constant returns).
    public var rSquared: Double? {
        guard steps > 1 else { return nil }
        let variance = sumSquares - sum * sum / Double(steps)
        return variance > 1e-12 ? 1 - squaredError / variance : nil
    }

    /// Mean advantage of policy steps in successful episodes minus in failed ones (nil: one side empty).
    public var advantageGap: Double? {
        guard advantage.successSteps > 0, advantage.failureSteps > 0 else { return nil }
        return advantage.success / Double(advantage.successSteps) - advantage.failure / Double(advantage.failureSteps)
    }

    public var summary: [String: Double] {
        var out: [String: Double] = [:]
        if let r = rSquared { out["value R² online"] = r }
        if let g = advantageGap { out["advantage success − failure"] = g }
        return out
    }
}

extension Array where Element == Float {
    /// First index whose element satisfies `predicate` (which must be false then true along the array).
    func partitioningIndex(where predicate: (Float) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            if predicate(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
