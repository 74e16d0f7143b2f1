import Foundation
import RobotData
import TensorKit

/// One robot observation in native form, as an actor or a robot client has it.
public struct PolicyObservation: Sendable {
    public var embodiment: EmbodimentSpec
    public var instruction: String
    /// Camera name → `[S, S, 3]` RGB uint8 at the model's image size.
    public var cameras: [String: [UInt8]]
    public var nativeState: [Float]
    /// RECAP's advantage indicator to condition on (nil: unconditioned).
    public var advantage: AdvantageIndicator?
    /// Speed to act at relative to the training data's reference speed (nil: 1, the
    /// reference; read only by speed-conditioned models).
    public var speed: Float?

    public init(embodiment: EmbodimentSpec, instruction: String, cameras: [String: [UInt8]], nativeState: [Float],
                advantage: AdvantageIndicator? = nil, speed: Float? = nil) {
        self.embodiment = embodiment; self.instruction = instruction; self.cameras = cameras; self.nativeState = nativeState
        self.advantage = advantage; self.speed = speed
    }

    /// The same cameras and instruction with `spec`'s prompt (control mode, arm count) and no
    /// state: what the backbone reads for pointing (images and text only) as that body. Needs
    /// no normalization statistics for `spec`.
    public func withPrompt(of spec: EmbodimentSpec) -> PolicyObservation {
        var o = self
        o.embodiment = spec
        o.nativeState = []
        return o
    }
}

/// Errors from turning observations into model inputs.
public enum PolicyError: Error, CustomStringConvertible, Equatable {
    case unknownEmbodiment(String)
    case badObservation(String)
    public var description: String {
        switch self {
        case .unknownEmbodiment(let e): return "PolicyError.unknownEmbodiment: no normalization statistics for \(e)"
        case .badObservation(let m): return "PolicyError.badObservation: \(m)"
        }
    }
}

/// Turns native observations into normalized model inputs: camera slots, tokens of the
/// embodiment prompt + instruction (bytes, or WordPiece ids with the frozen MiniLM's features
/// from the process's shared `MiniLMFeatureCache`), standardized unified state. Needs only the
/// config and the normalization statistics, so data loaders use it without a model.
public struct ObservationEncoder: Sendable {
    public let config: VLAConfig
    public let stats: NormalizationStats
    public let tokenizer: ByteTokenizer

    public init(config: VLAConfig, stats: NormalizationStats) {
        self.config = config
        self.stats = stats
        tokenizer = ByteTokenizer(maxLength: config.maxTextLength)
    }

    /// The text the model reads: embodiment/control prompt + instruction (Green-VLA).
    public static func prompt(_ spec: EmbodimentSpec, _ instruction: String, layout: PromptLayout = .bodyFirst) -> String {
        switch layout {
        case .bodyFirst: return "\(spec.promptPrefix) \(instruction)"
        case .instructionFirst: return "\(instruction). \(spec.promptPrefix)"
        }
    }

    /// The shared MiniLM feature cache when the config reads MiniLM (loaded on first use from
    /// `MiniLMTextEncoder.defaultDirectory()`), nil for byte tokens.
    public func miniLMFeatures() throws -> MiniLMFeatureCache? {
        config.textEncoder == .miniLM ? try MiniLMFeatureCache.shared(maxLength: config.maxTextLength) : nil
    }

    /// Standardized unified state and its mask for one native state.
    public func unifiedState(_ native: [Float], spec: EmbodimentSpec) throws -> (state: [Float], mask: [Float]) {
        guard let s = stats.states[spec.name] else { throw PolicyError.unknownEmbodiment(spec.name) }
        return (try spec.unifiedState(s.standardize(native)), spec.stateMask)
    }

    /// Builds model inputs for a batch of observations.
    public func inputs(_ observations: [PolicyObservation]) throws -> PolicyInputs {
        try hostInputs(observations).tensors()
    }

    /// The inputs as plain host arrays: no MLX, so a loader's prefetch thread can build them
    /// while the model trains (`HostPolicyInputs.tensors()` makes the tensors, cheaply).
    public func hostInputs(_ observations: [PolicyObservation]) throws -> HostPolicyInputs {
        let c = config, s = c.imageSize, slots = c.cameraSlots
        let frameBytes = s * s * 3
        let textFeatures = try miniLMFeatures()
        var h = HostPolicyInputs(batchSize: observations.count, cameraSlots: slots, imageSize: s, textLength: c.maxTextLength)
        if textFeatures != nil { h.textFeatureWidth = MiniLMTextEncoder.featureWidth }
        h.pixels = [UInt8](repeating: 0, count: observations.count * slots * frameBytes)
        h.cameraMask = [Bool](repeating: false, count: observations.count * slots)
        for (i, o) in observations.enumerated() {
            for (name, image) in o.cameras {
                guard image.count == frameBytes else {
                    throw PolicyError.badObservation("camera \(name) has \(image.count) bytes, expected \(s)×\(s)×3")
                }
                let slot = CameraSlots.slot(for: name)
                h.pixels.replaceSubrange(((i * slots + slot) * frameBytes)..<((i * slots + slot + 1) * frameBytes), with: image)
                h.cameraMask[i * slots + slot] = true
            }
            let prompt = Self.prompt(o.embodiment, o.instruction, layout: c.promptLayout)
            if let textFeatures {
                let f = try textFeatures.features(prompt)
                h.tokens += f.ids
                h.tokenMask += f.mask
                h.textFeatures += f.hiddenStates
            } else {
                let (t, m) = tokenizer.encode(prompt)
                h.tokens += t
                h.tokenMask += m
            }
            if o.nativeState.isEmpty {
                // No state (a pointing or question observation): zeros, every slot masked out.
                let width = o.embodiment.stateMask.count
                h.states += [Float](repeating: 0, count: width)
                h.stateMasks += [Float](repeating: 0, count: width)
            } else {
                let (st, sm) = try unifiedState(o.nativeState, spec: o.embodiment)
                h.states += st
                h.stateMasks += sm
            }
            h.advantages.append(o.advantage?.rawValue ?? 0)
            h.advantageMask.append(o.advantage != nil)
            guard o.speed.map({ $0 > 0 && $0.isFinite }) ?? true else {
                throw PolicyError.badObservation("speed must be positive and finite, got \(o.speed!)")
            }
            h.logSpeeds.append(o.speed.map { Foundation.log($0) } ?? 0)
        }
        return h
    }
}

/// `PolicyInputs` as host arrays (see `ObservationEncoder.hostInputs`).
public struct HostPolicyInputs: Sendable {
    public let batchSize: Int, cameraSlots: Int, imageSize: Int, textLength: Int
    public var pixels: [UInt8] = []
    public var cameraMask: [Bool] = []
    public var tokens: [Int32] = [], tokenMask: [Bool] = []
    public var states: [Float] = [], stateMasks: [Float] = []
    public var advantages: [Int32] = [], advantageMask: [Bool] = []
    public var logSpeeds: [Float] = []
    /// `[B, L, textFeatureWidth]` MiniLM features (empty and width 0 with byte tokens).
    public var textFeatures: [Float] = []
    public var textFeatureWidth = 0


    public init(batchSize: Int, cameraSlots: Int, imageSize: Int, textLength: Int) {
        self.batchSize = batchSize; self.cameraSlots = cameraSlots; self.imageSize = imageSize; self.textLength = textLength
    }

    public func tensors() throws -> PolicyInputs {
        let b = batchSize, s = imageSize
        return try PolicyInputs(
            images: try Tensor(pixels, shape: [b, cameraSlots, s, s, 3]).astype(.float32) / 255,
            cameraMask: try Tensor(cameraMask, shape: [b, cameraSlots]),
            tokens: try Tensor(tokens, shape: [b, textLength]),
            tokenMask: try Tensor(tokenMask, shape: [b, textLength]),
            state: try Tensor(states, shape: [b, VLAConfig.actionDimension]),
            stateMask: try Tensor(stateMasks, shape: [b, VLAConfig.actionDimension]),
            advantage: try Tensor(advantages, shape: [b]), advantageMask: try Tensor(advantageMask, shape: [b]),
            logSpeed: try Tensor(logSpeeds, shape: [b]),
            textFeatures: textFeatureWidth > 0 ? try Tensor(textFeatures, shape: [b, textLength, textFeatureWidth]) : nil)
    }
}

/// "Observation in, action chunk out": the model plus what it needs around it — the
/// observation encoder, normalization statistics (they travel with the checkpoint) and the
/// unified ⇄ native maps.
public final class VLAPolicy: @unchecked Sendable {
    public let model: FlowMatchingVLA
    public let encoder: ObservationEncoder
    public var stats: NormalizationStats { encoder.stats }
    /// RECAP at inference: sample conditioned on "advantage positive" with classifier-free
    /// guidance weight w (1: conditioned only, one pass; SOP uses 1 on the fleet and 1.5–2.5
    /// in evaluation). nil, or a model without the advantage token: unconditioned.
    public var advantageGuidance: Double?
    /// Speed conditioning's knob: the speed to act at relative to the training data's
    /// reference (nil: 1, the reference); an observation's own `speed` wins.
    public var speed: Float?

    public init(model: FlowMatchingVLA, stats: NormalizationStats) {
        self.model = model
        encoder = ObservationEncoder(config: model.config, stats: stats)
    }

    /// Model inputs for observations, at the policy's speed knob where an observation names none.
    public func inputs(_ observations: [PolicyObservation]) throws -> PolicyInputs {
        try encoder.inputs(observations.map { o in
            var o = o
            if o.speed == nil { o.speed = speed }
            return o
        })
    }

    /// Native action chunk `[H][actionDim]` for one observation.
    public func actionChunk(_ observation: PolicyObservation, key: RandomKey) throws -> [[Float]] {
        let spec = observation.embodiment
        guard stats.actions[spec.name] != nil else { throw PolicyError.unknownEmbodiment(spec.name) }
        let sampled: [Float] = try sampleStandardized(observation, key: key).toArray()
        return try nativeChunk(standardized: sampled, observation: observation)
    }

    /// A standardized chunk `[1, H, 64]` for one observation, with the policy's advantage
    /// guidance and optional flow guidance (JPM).
    public func sampleStandardized(_ observation: PolicyObservation, key: RandomKey, guidance: FlowGuidance? = nil) throws -> Tensor {
        guard let weight = advantageGuidance, model.config.advantageConditioning else {
            return try model.sampleActions(inputs([observation]), key: key, guidance: guidance)
        }
        var positive = observation, unconditioned = observation
        positive.advantage = .positive
        unconditioned.advantage = nil
        return try model.sampleActions(inputs([positive]), key: key, guidance: guidance,
                                       classifierFree: ClassifierFreeGuidance(unconditioned: inputs([unconditioned]), weight: weight))
    }

    /// The progress head's estimate of how much of the task is done at `observation`, in (0, 1).
    public func progress(_ observation: PolicyObservation) throws -> Float {
        let inputs = try inputs([observation])
        let predicted = try model.predictProgress(encoded: model.encodePrefix(inputs), state: inputs.state, stateMask: inputs.stateMask)
        return try predicted.toArray()[0]
    }

    /// This policy with RECAP's advantage token added (itself when it has one): the same
    /// weights and frozen parameters, plus a fresh token embedding. Rows without an indicator
    /// compute exactly what this policy computes.
    public func withAdvantageConditioning(seed: UInt64) throws -> VLAPolicy {
        guard !model.config.advantageConditioning else { return self }
        var config = model.config
        config.advantageConditioning = true
        return try extended(to: config, seed: seed)
    }

    /// This policy with an episode-progress head (itself when it has one): the same weights
    /// and frozen parameters, plus a fresh head (`progressWeight` 1 if it was 0).
    public func withProgressHead(seed: UInt64) throws -> VLAPolicy {
        guard model.progressHead == nil else { return self }
        var config = model.config
        config.progressWeight = 1
        return try extended(to: config, seed: seed)
    }

    /// This policy with a place-pointing head drawn fresh from `seed` (itself if it has one).
    public func withPlacePointingHead(seed: UInt64) throws -> VLAPolicy {
        guard model.placePointingHead == nil else { return self }
        guard model.pointingHead != nil else { throw TensorError.unknownParameter("pointingHead (a place head needs the pointing head's model)") }
        var config = model.config
        config.placePointing = true
        return try extended(to: config, seed: seed)
    }

    /// A policy with this one's weights, frozen parameters and knobs in tensors of its own
    /// (changing the copy's weights leaves this one as it is).
    public func copy() throws -> VLAPolicy { try extended(to: model.config, seed: 0) }

    /// A policy of `config` (this one's with parts added) holding every weight, frozen
    /// parameter and knob of this one; the added parts drawn fresh from `seed`.
    private func extended(to config: VLAConfig, seed: UInt64) throws -> VLAPolicy {
        let model = try FlowMatchingVLA(config: config, key: RandomKey(seed: seed))
        try model.update(parameters: self.model.parameters())
        let frozen = Set(self.model.parameters().keys).subtracting(self.model.trainableParameters().keys)
        if !frozen.isEmpty { model.freeze(Array(frozen)) }
        let policy = VLAPolicy(model: model, stats: stats)
        policy.advantageGuidance = advantageGuidance
        policy.speed = speed
        return policy
    }

    /// Native actions `[H][actionDim]` from a standardized chunk `[H · 64]` sampled for
    /// `observation` (whose joint state anchors a relative chunk).
    public func nativeChunk(standardized: [Float], observation: PolicyObservation) throws -> [[Float]] {
        let spec = observation.embodiment, width = VLAConfig.actionDimension
        let anchor = try stats.actionAnchor(nativeState: observation.nativeState, spec: spec)
        return try (0..<(standardized.count / width)).map { i in
            try spec.nativeAction(stats.unifiedAction(standardized: Array(standardized[(i * width)..<((i + 1) * width)]),
                                                       anchor: anchor, embodiment: spec.name))
        }
    }

    // MARK: checkpoints (model + config + normalization statistics together)

    public func save(to directory: URL, optimizer: Optimizer?, step: Int) throws {
        try Checkpoint.save(model: model, optimizer: optimizer, name: "flow-matching-vla", step: step, to: directory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(model.config).write(to: directory.appendingPathComponent("config.json"), options: .atomic)
        try stats.write(to: directory.appendingPathComponent("normalization.json"))
    }

    public static func load(from directory: URL, optimizer: Optimizer? = nil) throws -> (policy: VLAPolicy, step: Int) {
        let config = try JSONDecoder().decode(VLAConfig.self, from: Data(contentsOf: directory.appendingPathComponent("config.json")))
        let stats = try NormalizationStats.read(directory.appendingPathComponent("normalization.json"))
        let model = try FlowMatchingVLA(config: config, key: RandomKey(seed: 0))
        let manifest = try Checkpoint.load(into: model, optimizer: optimizer, from: directory)
        return (VLAPolicy(model: model, stats: stats), manifest.step)
    }
}
