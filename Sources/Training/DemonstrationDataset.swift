import Foundation
import RobotData
import TensorKit
import VLAModel

/// Turns episodes into training batches for a `FlowMatchingVLA`: for a sampled step t, the
/// observation at t and the unified action chunk t ..< t+H (steps past the episode's end are
/// padding, masked out of the loss together with the embodiment's unused slots).
public final class DemonstrationDataset: @unchecked Sendable {
    public private(set) var episodes: [Episode] = []
    public let specs: [String: EmbodimentSpec]
    public let stats: NormalizationStats
    public let config: VLAConfig
    /// (episode, step) pairs to sample from.
    public private(set) var index: [(episode: Int, step: Int)] = []
    /// Per-sample weight (e.g. operator steps weighted up in HG-DAgger).
    public private(set) var weights: [Double] = []
    private var cumulativeWeights: [Double] = []

    /// Which steps' actions may appear as chunk targets (nil: all). HG-DAgger passes "not a
    /// policy step": the chunk of an operator step just before a hand-back would otherwise
    /// teach the policy the actions it took itself after it; those entries are masked out.
    public let isTarget: ((Episode, Int) -> Bool)?

    /// `stepWeight(episode, t)` returns how much a step counts (0 drops it).
    public init(episodes: [Episode], specs: [String: EmbodimentSpec], config: VLAConfig,
                stats: NormalizationStats? = nil, stepWeight: ((Episode, Int) -> Double)? = nil,
                isTarget: ((Episode, Int) -> Bool)? = nil) throws {
        self.specs = specs
        self.config = config
        self.isTarget = isTarget
        self.stats = try stats ?? Self.statistics(episodes: episodes, specs: specs, config: config)
        try append(episodes, stepWeight: stepWeight)
    }

    /// The normalization statistics a dataset of `episodes` uses by default (share them among
    /// datasets trained into one policy).
    public static func statistics(episodes: [Episode], specs: [String: EmbodimentSpec], config: VLAConfig) throws -> NormalizationStats {
        var stats = try config.relativeActions
            ? NormalizationStats(episodes: episodes, relativeTo: specs, horizon: config.horizon)
            : NormalizationStats(episodes: episodes)
        if config.speedConditioning {
            stats.speedReference = try SpeedAlignment.groupSpeeds(SpeedLabels.measured(episodes), by: \.embodiment)
        }
        return stats
    }

    /// Adds episodes (e.g. online ones as they land) without re-indexing the existing ones.
    /// Statistics stay those given at init.
    public func append(_ new: [Episode], stepWeight: ((Episode, Int) -> Double)? = nil) throws {
        for e in new where specs[e.embodiment] == nil { throw PolicyError.unknownEmbodiment(e.embodiment) }
        for e in new {
            for (name, frames) in e.cameras where frames.height != config.imageSize || frames.width != config.imageSize {
                throw PolicyError.badObservation("episode \(e.id) camera \(name) is \(frames.width)×\(frames.height), model expects \(config.imageSize)")
            }
        }
        if config.speedConditioning, stats.speedReference == nil {
            throw PolicyError.badObservation("a speed-conditioned dataset needs statistics with a speed reference")
        }
        // MiniLM runs here, on the caller's thread, so a prefetch thread only reads the cache.
        if let textFeatures = try ObservationEncoder(config: config, stats: stats).miniLMFeatures() {
            try textFeatures.prepare(new.map { ObservationEncoder.prompt(specs[$0.embodiment]!, $0.instruction, layout: config.promptLayout) })
        }
        for var e in new {
            if config.speedConditioning { e = try SpeedLabels.measured(e) }
            let i = episodes.count
            episodes.append(e)
            if config.pointingWeight > 0 { targetPoints.append(try TargetPointLabel.scenePoint(of: e)) }
            for t in 0..<e.stepCount {
                let w = stepWeight?(e, t) ?? 1
                if w > 0 {
                    index.append((i, t))
                    weights.append(w)
                    cumulativeWeights.append((cumulativeWeights.last ?? 0) + w)
                }
            }
        }
    }

    public var count: Int { index.count }
    /// Per episode, where its target appears in the scene camera (only with a pointing loss).
    public private(set) var targetPoints: [SIMD2<Float>?] = []

    /// A batch of `size` samples drawn with replacement in proportion to the weights
    /// (binary search over the cumulative weights: O(log N) per sample).
    public func sampleBatch(size: Int, generator: inout SplitMix64) throws -> PolicyBatch {
        try batch(samplePicks(size: size, generator: &generator))
    }

    /// The (episode, step) pairs `sampleBatch` would draw.
    public func samplePicks(size: Int, generator: inout SplitMix64) throws -> [(episode: Int, step: Int)] {
        guard let total = cumulativeWeights.last else { throw PolicyError.badObservation("dataset has no steps") }
        var picks: [(episode: Int, step: Int)] = []
        for _ in 0..<size {
            let r = generator.nextDouble() * total
            // First k with cumulative[k] > r.
            var low = 0, high = cumulativeWeights.count - 1
            while low < high {
                let mid = (low + high) / 2
                if cumulativeWeights[mid] > r { high = mid } else { low = mid + 1 }
            }
            picks.append(index[low])
        }
        return picks
    }

    /// The batch for explicit (episode, step) pairs; `advantages` (one per pick) conditions
    /// each row on a RECAP indicator.
    public func batch(_ picks: [(Int, Int)], advantages: [AdvantageIndicator?]? = nil) throws -> PolicyBatch {
        try hostBatch(picks, advantages: advantages).tensors()
    }

    /// `batch` as host arrays (no MLX: safe on a prefetch thread).
    public func hostBatch(_ picks: [(Int, Int)], advantages: [AdvantageIndicator?]? = nil) throws -> HostPolicyBatch {
        let encoder = ObservationEncoder(config: config, stats: stats)
        var observations: [PolicyObservation] = []
        let h = config.horizon, width = VLAConfig.actionDimension
        var actions = [Float](repeating: 0, count: picks.count * h * width)
        var masks = [Float](repeating: 0, count: picks.count * h * width)
        for (b, (ei, t)) in picks.enumerated() {
            let e = episodes[ei], spec = specs[e.embodiment]!
            guard stats.actions[e.embodiment] != nil else { throw PolicyError.unknownEmbodiment(e.embodiment) }
            let anchor = try stats.actionAnchor(nativeState: Array(e.states.row(t)), spec: spec)
            var observation = e.policyObservation(at: t, spec: spec)
            observation.advantage = advantages?[b]
            if config.speedConditioning {
                guard let reference = stats.speedReference?[e.embodiment], reference > 0, let speed = e.speed, speed > 0 else {
                    throw PolicyError.badObservation("episode \(e.id) has no speed label relative to a reference for \(e.embodiment)")
                }
                observation.speed = speed / reference
            }
            observations.append(observation)
            for k in 0..<h where t + k < e.stepCount && isTarget?(e, t + k) ?? true {
                let z = try stats.standardizedAction(Array(e.unifiedActions.row(t + k)), anchor: anchor, embodiment: e.embodiment)
                for j in 0..<width {
                    actions[(b * h + k) * width + j] = z[j]
                    masks[(b * h + k) * width + j] = e.actionMask[j]
                }
            }
        }
        var batch = HostPolicyBatch(inputs: try encoder.hostInputs(observations), horizon: h, actions: actions, actionMask: masks,
                                    embodiments: picks.map { episodes[$0.0].embodiment })
        if config.pointingWeight > 0 {
            let points = picks.map { targetPoints[$0.0] }
            batch.targetPoints = points.flatMap { $0.map { [$0.x, $0.y] } ?? [0, 0] }
            batch.targetPointMask = points.map { $0 == nil ? Float(0) : 1 }
        }
        if config.progressWeight > 0 {
            let labels = picks.map { ProgressLabels.label(episodes[$0.0], step: $0.1) }
            batch.progress = labels.map(\.target)
            batch.progressMask = labels.map(\.weight)
        }
        return batch
    }
}

/// Speed conditioning's labels: each episode's optical-flow speed (RobotData's
/// `SpeedAlignment`), measured on the wrist camera when there is one — the scene camera's flow
/// hardly changes with the operator's speed (README, speed alignment).
public enum SpeedLabels {
    public static func camera(of e: Episode) -> String? {
        e.cameras.keys.sorted().first { $0.contains("wrist") }
    }

    /// The episode with `speed` set (kept when already measured).
    public static func measured(_ e: Episode) throws -> Episode {
        guard e.speed == nil else { return e }
        return try SpeedAlignment(camera: camera(of: e)).measured(e)
    }

    public static func measured(_ episodes: [Episode]) throws -> [Episode] {
        try episodes.map(measured)
    }
}

/// `PolicyBatch` as host arrays: what a loader's prefetch thread builds.
public struct HostPolicyBatch: Sendable {
    public var inputs: HostPolicyInputs
    public var horizon: Int
    public var actions: [Float]
    public var actionMask: [Float]
    public var targetPoints: [Float]?
    public var targetPointMask: [Float]?
    /// Each row's embodiment name.
    public var embodiments: [String] = []
    public var progress: [Float]?
    public var progressMask: [Float]?

    public init(inputs: HostPolicyInputs, horizon: Int, actions: [Float], actionMask: [Float], targetPoints: [Float]? = nil,
                targetPointMask: [Float]? = nil, embodiments: [String] = []) {
        self.inputs = inputs; self.horizon = horizon; self.actions = actions; self.actionMask = actionMask
        self.targetPoints = targetPoints; self.targetPointMask = targetPointMask; self.embodiments = embodiments
    }

    public var batchSize: Int { inputs.batchSize }

    public func tensors() throws -> PolicyBatch {
        let b = batchSize, shape = [b, horizon, VLAConfig.actionDimension]
        var batch = PolicyBatch(inputs: try inputs.tensors(), actions: try Tensor(actions, shape: shape),
                                actionMask: try Tensor(actionMask, shape: shape), embodiments: embodiments)
        if let targetPoints, let targetPointMask {
            batch.targetPoints = try Tensor(targetPoints, shape: [b, 2])
            batch.targetPointMask = try Tensor(targetPointMask, shape: [b])
        }
        if let progress, let progressMask {
            batch.progress = try Tensor(progress, shape: [b])
            batch.progressMask = try Tensor(progressMask, shape: [b])
        }
        return batch
    }

    /// Rows of several batches, in order.
    public static func concatenated(_ parts: [HostPolicyBatch]) -> HostPolicyBatch {
        let first = parts[0].inputs
        var inputs = HostPolicyInputs(batchSize: parts.reduce(0) { $0 + $1.batchSize }, cameraSlots: first.cameraSlots,
                                      imageSize: first.imageSize, textLength: first.textLength)
        for p in parts {
            inputs.pixels += p.inputs.pixels; inputs.cameraMask += p.inputs.cameraMask
            inputs.tokens += p.inputs.tokens; inputs.tokenMask += p.inputs.tokenMask
            inputs.states += p.inputs.states; inputs.stateMasks += p.inputs.stateMasks
            inputs.advantages += p.inputs.advantages; inputs.advantageMask += p.inputs.advantageMask
            inputs.logSpeeds += p.inputs.logSpeeds
            inputs.textFeatures += p.inputs.textFeatures
        }
        inputs.textFeatureWidth = first.textFeatureWidth
        let points = parts.allSatisfy { $0.targetPoints != nil && $0.targetPointMask != nil }
        let progress = parts.allSatisfy { $0.progress != nil && $0.progressMask != nil }
        var joined = HostPolicyBatch(inputs: inputs, horizon: parts[0].horizon, actions: parts.flatMap(\.actions),
                                     actionMask: parts.flatMap(\.actionMask),
                                     targetPoints: points ? parts.flatMap { $0.targetPoints! } : nil,
                                     targetPointMask: points ? parts.flatMap { $0.targetPointMask! } : nil,
                                     embodiments: parts.flatMap(\.embodiments))
        if progress {
            joined.progress = parts.flatMap { $0.progress! }
            joined.progressMask = parts.flatMap { $0.progressMask! }
        }
        return joined
    }
}

extension Episode {
    /// Step t's observation as the policy takes it.
    public func policyObservation(at t: Int, spec: EmbodimentSpec) -> PolicyObservation {
        var frames: [String: [UInt8]] = [:]
        for (name, camera) in cameras { frames[name] = Array(camera.frame(t)) }
        return PolicyObservation(embodiment: spec, instruction: instruction, cameras: frames, nativeState: Array(states.row(t)))
    }
}
